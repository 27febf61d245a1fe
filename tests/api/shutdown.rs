//! Graceful shutdown: health turns NOT_SERVING, in-flight calls finish, new ones are refused.
use std::process::Stdio;
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
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let addr = format!("127.0.0.1:{port}");
    let child = tokio::process::Command::new(env!("CARGO_BIN_EXE_authd"))
        .env("AUTHD_LISTEN", &addr)
        .env("AUTHD_DATABASE_URL", &db.url)
        .env("AUTHD_LOG_FORMAT", "json")
        .env("AUTHD_JWT_SECRET", SECRET)
        .env("AUTHD_ALLOW_REGISTRATION", "true")
        .env("AUTHD_ARGON2_M_KIB", "256")
        .env("AUTHD_ARGON2_T", "1")
        .env("RUST_LOG", "debug")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    // Ready when health says so.
    eventually(Duration::from_secs(30), || {
        let addr = addr.clone();
        async move {
            match health(&addr).await {
                Ok(mut h) => h
                    .check(HealthCheckRequest {
                        service: String::new(),
                    })
                    .await
                    .is_ok_and(|r| r.into_inner().status == ServingStatus::Serving as i32),
                Err(_) => false,
            }
        }
    })
    .await;
    // Some traffic, including refusals, whose secrets must not reach the log.
    let mut client =
        authd::proto::auth_service_client::AuthServiceClient::connect(format!("http://{addr}"))
            .await
            .unwrap();
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

    let pid = child.id().unwrap().to_string();
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    assert!(killed.success());
    let out = tokio::time::timeout(Duration::from_secs(20), child.wait_with_output())
        .await
        .expect("authd exits after SIGTERM")
        .unwrap();
    assert!(out.status.success(), "{:?}", out.status);
    let log = String::from_utf8_lossy(&out.stdout);
    assert!(log.contains("shutting down"), "{log}");
    assert!(log.contains("authd stopped"), "{log}");
    assert!(
        log.contains("refresh_token_reuse"),
        "the reuse is logged as a security event"
    );
    let all = format!("{log}{}", String::from_utf8_lossy(&out.stderr));
    for secret in [
        PASSWORD,
        wrong,
        SECRET,
        &pair.access_token,
        &pair.refresh_token,
        &next.access_token,
        &next.refresh_token,
    ] {
        assert!(!all.contains(secret), "a secret reached the log");
    }
    // Signatures alone must not appear either (a token split across fields).
    let sig = pair.access_token.rsplit('.').next().unwrap();
    assert!(!all.contains(sig));
}
