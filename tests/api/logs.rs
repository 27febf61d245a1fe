//! What the default (info) log says about calls: every login, refresh and refusal, but not
//! each successful Validate or health check.
use crate::helpers::*;

/// `(method, code)` of every `rpc finished` line in a JSON log.
fn finished_calls(log: &str) -> Vec<(String, i64)> {
    log.lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["message"] == "rpc finished")
        .map(|v| {
            (
                v["method"].as_str().unwrap_or_default().to_owned(),
                v["code"].as_i64().unwrap_or(-1),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn successful_validates_are_not_logged_one_by_one_but_refusals_are() {
    let Some(db) = TestDb::new(Backend::Sqlite).await else {
        return;
    };
    let server = ServerProcess::start(&[
        ("AUTHD_DATABASE_URL", &db.url),
        ("AUTHD_JWT_SECRET", SECRET),
        ("AUTHD_ALLOW_REGISTRATION", "true"),
        ("AUTHD_ARGON2_M_KIB", "256"),
        ("AUTHD_ARGON2_T", "1"),
    ])
    .await;
    let mut c = server.client().await;
    c.register(authd::proto::RegisterRequest {
        username: "quiet".into(),
        password: PASSWORD.into(),
    })
    .await
    .unwrap();
    let pair = c
        .issue(authd::proto::IssueRequest {
            username: "quiet".into(),
            password: PASSWORD.into(),
            audience: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    let validate = |token: &str| authd::proto::ValidateRequest {
        token: token.into(),
        audience: String::new(),
    };
    for _ in 0..50 {
        c.validate(validate(&pair.access_token)).await.unwrap();
    }
    c.validate(validate("not-a-token")).await.unwrap_err();
    c.refresh(authd::proto::RefreshRequest {
        refresh_token: pair.refresh_token.clone(),
    })
    .await
    .unwrap();

    let (_, log) = server.terminate().await;
    let calls = finished_calls(&log);
    let of = |m: &str| -> Vec<i64> {
        calls
            .iter()
            .filter(|(method, _)| method == &format!("/authd.v1.AuthService/{m}"))
            .map(|(_, code)| *code)
            .collect()
    };
    // 51 Validate calls: only the refusal (UNAUTHENTICATED) has a line.
    assert_eq!(of("Validate"), [16], "{calls:?}");
    assert_eq!(of("Register"), [0]);
    assert_eq!(of("Issue"), [0]);
    assert_eq!(of("Refresh"), [0]);
    assert!(!log.contains(&pair.access_token) && !log.contains(PASSWORD));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_refused_calls_is_logged_at_a_bounded_rate() {
    let Some(db) = TestDb::new(Backend::Sqlite).await else {
        return;
    };
    let server = ServerProcess::start(&[
        ("AUTHD_DATABASE_URL", &db.url),
        ("AUTHD_JWT_SECRET", SECRET),
    ])
    .await;
    let c = server.client().await;
    const CALLS: usize = 1000;
    let started = std::time::Instant::now();
    let calls = (0..CALLS).map(|_| {
        let mut c = c.clone();
        async move {
            c.validate(authd::proto::ValidateRequest {
                token: "not-a-token".into(),
                audience: String::new(),
            })
            .await
            .unwrap_err()
        }
    });
    for refused in futures_join_all(calls).await {
        assert_eq!(refused.code(), tonic::Code::Unauthenticated);
    }
    let seconds = started.elapsed().as_secs() as usize;
    let (_, log) = server.terminate().await;
    let lines = finished_calls(&log)
        .into_iter()
        .filter(|(m, _)| m == "/authd.v1.AuthService/Validate")
        .count();
    // 50 lines a second at most, over the seconds the flood spanned.
    assert!(lines >= 1, "refusals still get lines");
    assert!(
        lines <= 50 * (seconds + 2) && lines < CALLS,
        "{lines} lines for {CALLS} refusals in {seconds} s"
    );
}

/// Run every future at once and collect their outputs in order.
async fn futures_join_all<F: std::future::Future + Send + 'static>(
    fs: impl Iterator<Item = F>,
) -> Vec<F::Output>
where
    F::Output: Send + 'static,
{
    let handles: Vec<_> = fs.map(tokio::spawn).collect();
    let mut out = Vec::with_capacity(handles.len());
    for h in handles {
        out.push(h.await.unwrap());
    }
    out
}
