//! Operating authd: `authd healthcheck`, the Prometheus endpoint, and the container's entry
//! point as the Dockerfile writes it.
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::process::Command;

use crate::helpers::*;

pub struct Run {
    pub ok: bool,
    pub stdout: String,
    pub stderr: String,
}

pub async fn run(bin: &str, args: &[&str], env: &[(&str, &str)]) -> Run {
    let out = Command::new(bin)
        .args(args)
        .envs(env.iter().copied())
        .output()
        .await
        .unwrap();
    Run {
        ok: out.status.success(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn healthcheck_reports_serving_refused_unknown_and_timeout() {
    let Some((_db, app)) = start(Backend::Sqlite).await else {
        return;
    };
    let addr = app.addr.to_string();

    let ok = run(AUTHD_BIN, &["healthcheck", "--addr", &addr], &[]).await;
    assert!(ok.ok, "{}{}", ok.stdout, ok.stderr);
    assert!(ok.stdout.contains("SERVING"));
    let whole = run(
        AUTHD_BIN,
        &["healthcheck", "--addr", &addr, "--service", ""],
        &[],
    )
    .await;
    assert!(whole.ok, "{}", whole.stderr);
    // The default address comes from AUTHD_LISTEN, as in the container.
    let from_env = run(
        AUTHD_BIN,
        &["healthcheck"],
        &[("AUTHD_LISTEN", &format!("0.0.0.0:{}", app.addr.port()))],
    )
    .await;
    assert!(from_env.ok, "{}", from_env.stderr);

    let unknown = run(
        AUTHD_BIN,
        &["healthcheck", "--addr", &addr, "--service", "nope.Svc"],
        &[],
    )
    .await;
    assert!(!unknown.ok);
    assert_eq!(unknown.stderr.lines().count(), 1, "{}", unknown.stderr);
    assert!(unknown.stderr.contains("UNKNOWN"), "{}", unknown.stderr);

    // Connection refused needs a closed port that stays closed: see `refusing_addr`.
    let (_held, closed) = refusing_addr();
    let closed = closed.to_string();
    let refused = run(AUTHD_BIN, &["healthcheck", "--addr", &closed], &[]).await;
    assert!(!refused.ok);
    assert_eq!(refused.stderr.lines().count(), 1, "{}", refused.stderr);
    assert!(
        refused.stderr.contains("cannot connect"),
        "{}",
        refused.stderr
    );

    // A peer that accepts and never answers.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let silent_addr = silent.local_addr().unwrap().to_string();
    let hold = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((s, _)) = silent.accept().await {
            held.push(s);
        }
    });
    let started = std::time::Instant::now();
    let timeout = run(
        AUTHD_BIN,
        &["healthcheck", "--addr", &silent_addr, "--timeout", "500ms"],
        &[],
    )
    .await;
    assert!(!timeout.ok);
    assert!(started.elapsed() < Duration::from_secs(10));
    assert!(timeout.stderr.contains("no answer"), "{}", timeout.stderr);
    hold.abort();
    app.stop().await;
}

async fn http_get(addr: &str, path: &str) -> Option<String> {
    let mut s = tokio::net::TcpStream::connect(addr).await.ok()?;
    let req = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes()).await.ok()?;
    let mut body = String::new();
    s.read_to_string(&mut body).await.ok()?;
    Some(body)
}

/// The value of the first sample whose line starts with `prefix`.
fn sample(text: &str, prefix: &str) -> Option<f64> {
    text.lines()
        .find(|l| l.starts_with(prefix))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_endpoint_counts_calls() {
    let Some(db) = TestDb::new(Backend::Sqlite).await else {
        return;
    };
    // Port 0 for both: the log says where each one was bound.
    let server = ServerProcess::start(&[
        ("AUTHD_DATABASE_URL", db.url.as_str()),
        ("AUTHD_METRICS_LISTEN", "127.0.0.1:0"),
        ("AUTHD_ARGON2_M_KIB", "256"),
        ("AUTHD_ARGON2_T", "1"),
        ("AUTHD_ALLOW_REGISTRATION", "true"),
    ])
    .await;
    let metrics = server
        .metrics_addr
        .expect("the metrics address is logged")
        .to_string();

    let mut c = server.client().await;
    c.register(authd::proto::RegisterRequest {
        username: "mona".into(),
        password: PASSWORD.into(),
    })
    .await
    .unwrap();
    let issue = |p: &str| authd::proto::IssueRequest {
        username: "mona".into(),
        password: p.into(),
        audience: String::new(),
    };
    c.issue(issue("wrong password!")).await.unwrap_err();
    c.issue(issue("wrong password!")).await.unwrap_err();
    let pair = c.issue(issue(PASSWORD)).await.unwrap().into_inner();
    let refresh = |t: &str| authd::proto::RefreshRequest {
        refresh_token: t.into(),
    };
    c.refresh(refresh(&pair.refresh_token)).await.unwrap();
    c.refresh(refresh(&pair.refresh_token)).await.unwrap_err();
    // Made-up paths: each must not become a label value of its own.
    let channel = tonic::transport::Endpoint::from_shared(server.url())
        .unwrap()
        .connect()
        .await
        .unwrap();
    for i in 0..20 {
        let mut grpc = tonic::client::Grpc::new(channel.clone());
        grpc.ready().await.unwrap();
        let path: tonic::codegen::http::uri::PathAndQuery =
            format!("/evil.Svc/m{i}").parse().unwrap();
        let s = grpc
            .unary(
                tonic::Request::new(authd::proto::GetJwksRequest {}),
                path,
                tonic_prost::ProstCodec::<
                    authd::proto::GetJwksRequest,
                    authd::proto::GetJwksResponse,
                >::default(),
            )
            .await
            .unwrap_err();
        assert_eq!(s.code(), tonic::Code::Unimplemented);
    }

    let body = http_get(&metrics, "/metrics").await.unwrap();
    assert!(body.starts_with("HTTP/1.1 200"), "{body}");
    let reg = r#"authd_rpc_requests_total{method="/authd.v1.AuthService/Register",code="Ok"}"#;
    assert_eq!(sample(&body, reg), Some(1.0), "{body}");
    let bad =
        r#"authd_rpc_requests_total{method="/authd.v1.AuthService/Issue",code="Unauthenticated"}"#;
    assert_eq!(sample(&body, bad), Some(2.0), "{body}");
    assert_eq!(
        sample(
            &body,
            r#"authd_logins_failed_total{reason="bad_credentials"}"#
        ),
        Some(2.0),
        "{body}"
    );
    assert_eq!(
        sample(&body, "authd_refresh_reuse_detected_total"),
        Some(1.0),
        "{body}"
    );
    assert_eq!(
        sample(&body, r#"authd_sessions_revoked_total{cause="reuse"}"#),
        Some(1.0),
        "{body}"
    );
    assert!(
        body.contains(
            r#"authd_rpc_duration_seconds_bucket{method="/authd.v1.AuthService/Issue",le="0.5"}"#
        ),
        "{body}"
    );
    for gauge in [
        "authd_password_hashes_queued",
        "authd_password_hashes_running",
    ] {
        assert_eq!(sample(&body, gauge), Some(0.0), "{body}");
    }
    assert!(!body.contains("evil"), "{body}");
    assert_eq!(
        sample(
            &body,
            r#"authd_rpc_requests_total{method="unknown",code="Unimplemented"}"#
        ),
        Some(20.0),
        "{body}"
    );
    // Never a secret in the metrics.
    assert!(!body.contains(PASSWORD) && !body.contains(&pair.refresh_token));
}
