//! Graceful shutdown: health turns NOT_SERVING, in-flight calls finish, new ones are refused.
use std::time::Duration;

use tonic::transport::Endpoint;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::{HealthCheckRequest, HealthCheckResponse};

use crate::helpers::*;

async fn health(
    addr: &str,
) -> Result<HealthClient<tonic::transport::Channel>, tonic::transport::Error> {
    let channel = Endpoint::from_shared(format!("http://{addr}"))?
        .connect_timeout(Duration::from_secs(2))
        .connect()
        .await?;
    Ok(HealthClient::new(channel))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_reports_not_serving_and_lets_in_flight_calls_finish() {
    let Some((_db, app)) = start(Backend::Sqlite).await else {
        return;
    };
    let addr = app.addr.to_string();
    let mut h = health(&addr).await.unwrap();
    let status = |r: HealthCheckResponse| ServingStatus::try_from(r.status).unwrap();
    let checked = h
        .check(HealthCheckRequest {
            service: "authd.v1.AuthService".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(status(checked), ServingStatus::Serving);
    let empty = h
        .check(HealthCheckRequest {
            service: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(status(empty), ServingStatus::Serving);

    // A Watch stream is a call in flight across the shutdown.
    let mut watch = h
        .watch(HealthCheckRequest {
            service: "authd.v1.AuthService".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        status(watch.message().await.unwrap().unwrap()),
        ServingStatus::Serving
    );

    let stopping = tokio::spawn(app.stop());
    let next = tokio::time::timeout(Duration::from_secs(10), watch.message())
        .await
        .expect("the in-flight stream is still served during shutdown")
        .unwrap()
        .unwrap();
    assert_eq!(status(next), ServingStatus::NotServing);
    drop(watch);
    drop(h);
    tokio::time::timeout(Duration::from_secs(10), stopping)
        .await
        .expect("shutdown completes once in-flight calls are done")
        .unwrap();
    assert!(
        health(&addr).await.is_err(),
        "no new connections after shutdown"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_stops_cleanly_on_sigterm() {
    let Some(db) = TestDb::new(Backend::Sqlite).await else {
        return;
    };
    // No subcommand: serving is the default. Ready once it logs where it serves (port 0:
    // no port is guessed).
    let server = ServerProcess::start_bin(
        AUTHD_BIN,
        &[],
        &[
            ("AUTHD_LISTEN", "127.0.0.1:0"),
            ("AUTHD_LOG_FORMAT", "json"),
            ("AUTHD_DATABASE_URL", db.url.as_str()),
            ("AUTHD_JWT_SECRET", SECRET),
            ("AUTHD_ALLOW_REGISTRATION", "true"),
            ("AUTHD_ARGON2_M_KIB", "256"),
            ("AUTHD_ARGON2_T", "1"),
            ("RUST_LOG", "debug"),
        ],
    )
    .await;
    let status = health(&server.addr.to_string())
        .await
        .unwrap()
        .check(HealthCheckRequest {
            service: String::new(),
        })
        .await
        .unwrap()
        .into_inner()
        .status;
    assert_eq!(status, ServingStatus::Serving as i32);
    // Some traffic, including refusals, whose secrets must not reach the log.
    let mut client = server.client().await;
    let cred = |p: &str| authd::proto::RegisterRequest {
        username: "logan".into(),
        password: p.into(),
    };
    client.register(cred(PASSWORD)).await.unwrap();
    let pair = client
        .issue(authd::proto::IssueRequest {
            username: "logan".into(),
            password: PASSWORD.into(),
            audience: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    let wrong = "wrong-password-in-the-log?";
    let _ = client
        .issue(authd::proto::IssueRequest {
            username: "logan".into(),
            password: wrong.into(),
            audience: String::new(),
        })
        .await
        .unwrap_err();
    let next = client
        .refresh(authd::proto::RefreshRequest {
            refresh_token: pair.refresh_token.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    let _ = client
        .refresh(authd::proto::RefreshRequest {
            refresh_token: pair.refresh_token.clone(),
        })
        .await
        .unwrap_err();
    drop(client);

    let (exit, log) = server.terminate().await;
    assert!(exit.success(), "{exit:?}\n{log}");
    assert!(log.contains("shutting down"), "{log}");
    assert!(log.contains("authd stopped"), "{log}");
    assert!(
        log.contains("refresh_token_reuse"),
        "the reuse is logged as a security event"
    );
    // The log holds stdout and stderr.
    for secret in [
        PASSWORD,
        wrong,
        SECRET,
        &pair.access_token,
        &pair.refresh_token,
        &next.access_token,
        &next.refresh_token,
    ] {
        assert!(!log.contains(secret), "a secret reached the log");
    }
    // Signatures alone must not appear either (a token split across fields).
    let sig = pair.access_token.rsplit('.').next().unwrap();
    assert!(!log.contains(sig));
}
