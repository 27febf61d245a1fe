//! Attacks on logins and their cost, replayed against the real server.
use std::time::Duration;

use authd::proto::IssueRequest;
use tonic::Code;

use crate::helpers::*;

/// What the process costs, read from /proc.
impl ServerProcess {
    fn status_field(&self, field: &str) -> u64 {
        let pid = self.child.id().unwrap();
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
        status
            .lines()
            .find_map(|l| l.strip_prefix(field))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap()
    }

    /// Peak resident set size so far, in KiB.
    pub fn peak_rss_kib(&self) -> u64 {
        self.status_field("VmHWM:")
    }

    /// Names of the process's OS threads right now.
    pub fn thread_names(&self) -> Vec<String> {
        let pid = self.child.id().unwrap();
        let mut names: Vec<String> = std::fs::read_dir(format!("/proc/{pid}/task"))
            .unwrap()
            .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("comm")).ok())
            .map(|n| n.trim().to_owned())
            .collect();
        names.sort();
        names
    }

    /// OS threads of the process right now, but for the database driver's (SQLite runs
    /// one per pooled connection, and the pool grows under load).
    pub fn threads(&self) -> u64 {
        self.thread_names()
            .iter()
            .filter(|n| !n.starts_with("sqlx-sqlite"))
            .count() as u64
    }
}

fn issue(username: &str, password: &str) -> IssueRequest {
    IssueRequest {
        username: username.into(),
        password: password.into(),
        audience: String::new(),
    }
}

/// The cancellation attack: a burst of logins that give up (grpc-timeout) long before their
/// argon2 job would run. The jobs they leave behind must still queue behind the cap: with
/// the default argon2 cost (19 MiB each), running hashes beyond the cap show up at once as
/// threads and as peak memory.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelled_logins_cannot_run_more_hashes_than_the_cap() {
    let Some(db) = TestDb::new(Backend::Sqlite).await else {
        return;
    };
    let server = ServerProcess::start(&[
        ("AUTHD_DATABASE_URL", &db.url),
        ("AUTHD_JWT_SECRET", SECRET),
        ("AUTHD_ALLOW_REGISTRATION", "true"),
        // The attack comes from one address; its throttle is not what is measured here.
        ("AUTHD_ADDRESS_FREE_FAILURES", "1000"),
    ])
    .await;
    const ATTACK: usize = 48;
    let mut c = server.client().await;
    c.register(authd::proto::RegisterRequest {
        username: "victim".into(),
        password: PASSWORD.into(),
    })
    .await
    .unwrap();
    // Warm up, so the baseline holds what the server allocates anyway: a hash's memory on
    // each hashing thread, and a database pool grown by a burst of concurrent look-ups
    // (registering a taken name reads the database and hashes nothing).
    let mut warm = tokio::task::JoinSet::new();
    for _ in 0..ATTACK {
        let mut c = c.clone();
        warm.spawn(async move {
            c.register(authd::proto::RegisterRequest {
                username: "victim".into(),
                password: PASSWORD.into(),
            })
            .await
        });
    }
    while let Some(r) = warm.join_next().await {
        assert_eq!(r.unwrap().unwrap_err().code(), Code::AlreadyExists);
    }
    c.issue(issue("victim", PASSWORD)).await.unwrap();
    c.issue(issue("nobody", PASSWORD)).await.unwrap_err();
    let base_rss = server.peak_rss_kib();
    let base_threads = server.threads();
    let mut calls = tokio::task::JoinSet::new();
    for i in 0..ATTACK {
        let mut c = c.clone();
        calls.spawn(async move {
            let mut req = tonic::Request::new(issue(&format!("ghost{i}"), "guess-guess-guess"));
            // Staggered deadlines: each caller gives up just after the one before it, the
            // moment a cancelled job's slot could pass to it.
            req.set_timeout(Duration::from_millis(15 + 2 * i as u64));
            c.issue(req).await
        });
    }
    while let Some(r) = calls.join_next().await {
        let code = r.unwrap().unwrap_err().code();
        // Racy by design: which side notices the deadline first (the client's timer, or
        // the server's grpc-timeout), or whether a wrong password's hash still made it in
        // time, depends on scheduling. What matters is measured below.
        assert!(
            matches!(
                code,
                Code::DeadlineExceeded | Code::Cancelled | Code::Unauthenticated
            ),
            "{code:?}"
        );
    }
    let threads_after_attack = server.threads();
    // A real login after the storm: it queues behind whatever the storm left running.
    c.issue(issue("victim", PASSWORD)).await.unwrap();
    let peak = server.peak_rss_kib();

    let cap = std::thread::available_parallelism().unwrap().get() as u64;
    let hash_kib = 19456;
    eprintln!(
        "cancellation attack: threads {base_threads} -> {threads_after_attack}, \
         peak RSS {base_rss} -> {peak} KiB (cap {cap} x {hash_kib} KiB)"
    );
    assert!(
        threads_after_attack <= base_threads,
        "threads started for abandoned hashes: {base_threads} -> {threads_after_attack}: {:?}",
        server.thread_names()
    );
    assert!(
        peak <= base_rss + cap * hash_kib,
        "peak RSS grew by {} KiB, more than cap x argon2 memory ({} KiB)",
        peak - base_rss,
        cap * hash_kib
    );
}

crate::on_both!(audiences_are_an_allowlist);

/// A self-registered user must not be able to mint a token for an audience of their
/// choosing: only the default audience and `AUTHD_AUDIENCES` are issued and validated.
async fn audiences_are_an_allowlist(b: Backend) {
    let Some(db) = TestDb::new(b).await else {
        return;
    };
    let mut s = settings(&db);
    s.audiences = vec!["billing".into(), "reports".into()];
    let app = spawn(s).await;
    app.register("alice", PASSWORD).await.unwrap();

    for aud in ["billing-admin", "BILLING", "billing ", "*", "authd,billing"] {
        let refused = assert_refused(
            app.issue_for("alice", PASSWORD, aud).await,
            Code::InvalidArgument,
            "AUDIENCE_NOT_ALLOWED",
        );
        assert!(refused.message().contains("audience"), "{refused:?}");
    }
    // An allowed one is the token's audience, and only that one.
    let billing = app.issue_for("alice", PASSWORD, "billing").await.unwrap();
    let c = app
        .validate(&billing.access_token, "billing")
        .await
        .unwrap();
    assert_eq!(c.aud, vec!["billing".to_string()]);
    assert_refused(
        app.validate(&billing.access_token, "").await,
        Code::Unauthenticated,
        "WRONG_AUDIENCE",
    );
    assert_refused(
        app.validate(&billing.access_token, "reports").await,
        Code::Unauthenticated,
        "WRONG_AUDIENCE",
    );
    // Validate refuses to check against an audience the server never issues.
    let default = app.issue("alice", PASSWORD).await.unwrap();
    app.validate(&default.access_token, "").await.unwrap();
    app.validate(&default.access_token, "authd").await.unwrap();
    assert_refused(
        app.validate(&default.access_token, "billing-admin").await,
        Code::InvalidArgument,
        "AUDIENCE_NOT_ALLOWED",
    );
    // No session was opened by a refused Issue: only the two that succeeded exist.
    let n = count_rows(&db, "sessions").await;
    assert_eq!(n, 2);
    app.stop().await;
}
