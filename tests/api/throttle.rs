//! Brute-force throttling of logins, per account (shared by every instance through the
//! database) and per source address.
use std::time::Duration;

use authd::proto::IssueRequest;
use tonic::{Code, Status};
use tonic_types::StatusExt;

use crate::helpers::*;
use crate::on_both;

on_both!(
    guesses_at_one_account_are_throttled_and_a_success_resets_the_count,
    two_instances_give_a_guesser_no_more_tries_than_one,
    concurrent_guesses_cannot_slip_past_the_count,
);

const WRONG: &str = "not the password at all";

/// A throttled refusal: RESOURCE_EXHAUSTED, reason THROTTLED, and how long to wait.
#[track_caller]
fn assert_throttled<T: std::fmt::Debug>(r: Result<T, Status>) -> Duration {
    let s = assert_refused(r, Code::ResourceExhausted, "THROTTLED");
    let wait = s
        .get_details_retry_info()
        .and_then(|i| i.retry_delay)
        .expect("a throttled call says how long to wait (RetryInfo)");
    assert!(wait >= Duration::from_secs(1), "{wait:?}");
    assert!(!s.message().contains(PASSWORD) && !s.message().contains(WRONG));
    wait
}

fn throttled_settings(db: &TestDb, free: u32) -> authd::config::ServeArgs {
    let mut s = settings(db);
    s.login_free_failures = free;
    s.login_delay = Duration::from_secs(1);
    s
}

/// The attack of the issue: a dozen wrong passwords in a few seconds, then the right one.
async fn guesses_at_one_account_are_throttled_and_a_success_resets_the_count(b: Backend) {
    let Some(db) = TestDb::new(b).await else {
        return;
    };
    let app = spawn(throttled_settings(&db, 3)).await;
    app.register("victim", PASSWORD).await.unwrap();
    for _ in 0..3 {
        assert_refused(
            app.issue("victim", WRONG).await,
            Code::Unauthenticated,
            "INVALID_CREDENTIALS",
        );
    }
    // The fourth try waits, right password or not: it is refused before it is checked.
    let wait = assert_throttled(app.issue("victim", PASSWORD).await);
    assert!(wait <= Duration::from_secs(2), "{wait:?}");
    for _ in 0..9 {
        assert_throttled(app.issue("victim", WRONG).await);
    }
    // Any spelling of the name is the same account; an unknown name is throttled alike.
    assert_throttled(app.issue("VICTIM", WRONG).await);

    // Once the wait is over the right password gets in, and the count starts again.
    eventually(Duration::from_secs(10), || async {
        app.issue("victim", PASSWORD).await.is_ok()
    })
    .await;
    for _ in 0..3 {
        assert_refused(
            app.issue("victim", WRONG).await,
            Code::Unauthenticated,
            "INVALID_CREDENTIALS",
        );
    }
    assert_throttled(app.issue("victim", WRONG).await);

    // Names nobody has are counted the same way, so throttling tells nothing about who
    // exists.
    for _ in 0..3 {
        app.issue("ghost", WRONG).await.unwrap_err();
    }
    let ghost = app.issue("ghost", WRONG).await.unwrap_err();
    let victim = app.issue("victim", WRONG).await.unwrap_err();
    assert_eq!(ghost.code(), victim.code());
    assert_eq!(reason(&ghost), reason(&victim));
    app.stop().await;
}

async fn two_instances_give_a_guesser_no_more_tries_than_one(b: Backend) {
    let Some(db) = TestDb::new(b).await else {
        return;
    };
    let one = spawn(throttled_settings(&db, 4)).await;
    let two = spawn(throttled_settings(&db, 4)).await;
    one.register("shared", PASSWORD).await.unwrap();
    for app in [&one, &two, &one, &two] {
        assert_refused(
            app.issue("shared", WRONG).await,
            Code::Unauthenticated,
            "INVALID_CREDENTIALS",
        );
    }
    assert_throttled(one.issue("shared", WRONG).await);
    assert_throttled(two.issue("shared", PASSWORD).await);
    two.stop().await;
    one.stop().await;
}

/// Guesses sent all at once are each counted before any is checked: exactly the free ones
/// get an answer about the password.
async fn concurrent_guesses_cannot_slip_past_the_count(b: Backend) {
    let Some(db) = TestDb::new(b).await else {
        return;
    };
    let mut s = throttled_settings(&db, 3);
    // Long enough that the wait cannot end while the burst is still arriving.
    s.login_delay = Duration::from_secs(60);
    let app = spawn(s).await;
    app.register("burst", PASSWORD).await.unwrap();
    let mut calls = tokio::task::JoinSet::new();
    for _ in 0..24 {
        let mut c = app.client.clone();
        calls.spawn(async move {
            c.issue(IssueRequest {
                username: "burst".into(),
                password: WRONG.into(),
                audience: String::new(),
            })
            .await
        });
    }
    let (mut checked, mut throttled) = (0, 0);
    while let Some(r) = calls.join_next().await {
        let s = r.unwrap().unwrap_err();
        match reason(&s).as_str() {
            "INVALID_CREDENTIALS" => checked += 1,
            "THROTTLED" => throttled += 1,
            other => panic!("{other}: {s:?}"),
        }
    }
    assert_eq!((checked, throttled), (3, 21));
    app.stop().await;
}

fn issue_from(
    username: &str,
    password: &str,
    forwarded_for: Option<&str>,
) -> tonic::Request<IssueRequest> {
    let mut r = tonic::Request::new(IssueRequest {
        username: username.into(),
        password: password.into(),
        audience: String::new(),
    });
    if let Some(ip) = forwarded_for {
        r.metadata_mut()
            .insert("x-forwarded-for", ip.parse().unwrap());
    }
    r
}

/// Password spraying: one address, one guess at each of many accounts. The per-address
/// count stops it; `X-Forwarded-For` counts only when the peer is a trusted proxy.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_address_spraying_many_accounts_is_throttled() {
    let Some(db) = TestDb::new(Backend::Sqlite).await else {
        return;
    };
    let mut s = settings(&db);
    s.address_free_failures = 3;
    let app = spawn(s.clone()).await;
    app.register("sprayed", PASSWORD).await.unwrap();
    let mut c = app.client.clone();
    for name in ["a1", "a2", "a3"] {
        let r = c.issue(issue_from(name, WRONG, Some("203.0.113.1"))).await;
        assert_refused(r, Code::Unauthenticated, "INVALID_CREDENTIALS");
    }
    // From an untrusted peer the header is the attacker's word: ignored.
    assert_throttled(c.issue(issue_from("a4", WRONG, Some("203.0.113.2"))).await);
    assert_throttled(c.issue(issue_from("sprayed", PASSWORD, None)).await);
    app.stop().await;

    // Behind a trusted proxy each client address has its own count.
    s.trusted_proxies = vec!["127.0.0.1/32".parse().unwrap()];
    let app = spawn(s).await;
    let mut c = app.client.clone();
    for name in ["b1", "b2", "b3"] {
        let r = c.issue(issue_from(name, WRONG, Some("203.0.113.1"))).await;
        assert_refused(r, Code::Unauthenticated, "INVALID_CREDENTIALS");
    }
    assert_throttled(c.issue(issue_from("b4", WRONG, Some("203.0.113.1"))).await);
    // A spoofed entry to the left of the proxy's own does not help the same client.
    assert_throttled(
        c.issue(issue_from("b5", WRONG, Some("198.51.100.1, 203.0.113.1")))
            .await,
    );
    c.issue(issue_from("sprayed", PASSWORD, Some("203.0.113.2")))
        .await
        .unwrap();
    app.stop().await;
}
