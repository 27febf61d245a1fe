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
                v["span"]["method"].as_str().unwrap_or_default().to_owned(),
                v["span"]["code"].as_i64().unwrap_or(-1),
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
