//! Service accounts (client credentials): created by the admin API and by `authd client`,
//! their tokens, secret rotation with overlap, disabling, throttling, and an independent
//! verifier (PyJWT) accepting their tokens.
use std::time::Duration;

use authd::proto::{ListServiceAccountsRequest, ServiceAccount, ServiceAccountRef};
use prost::Message;
use tonic::{Code, Status};

use crate::helpers::*;
use crate::on_both;

on_both!(
    a_service_account_gets_an_access_token_and_nothing_else,
    bad_client_credentials_get_one_answer,
    bad_input_to_service_account_calls_changes_nothing,
    a_rotated_secret_works_during_the_overlap_and_not_after,
    a_disabled_service_account_gets_no_token_and_its_tokens_are_refused,
    wrong_secrets_for_one_client_are_throttled,
    client_commands_manage_service_accounts_on_the_shared_database,
);

/// The refusal of bad client credentials.
#[track_caller]
fn assert_invalid_client<T: std::fmt::Debug>(r: Result<T, Status>) -> Status {
    assert_refused(r, Code::Unauthenticated, "INVALID_CLIENT")
}

async fn list_accounts(
    admin: &Admin,
    page_size: i32,
    token: &str,
) -> (Vec<ServiceAccount>, String) {
    let r = admin
        .api()
        .list_service_accounts(admin.req(ListServiceAccountsRequest {
            page_size,
            page_token: token.into(),
        }))
        .await
        .unwrap()
        .into_inner();
    (r.accounts, r.next_page_token)
}

async fn rotate(
    admin: &Admin,
    client_id: &str,
) -> Result<authd::proto::ServiceAccountSecret, Status> {
    admin
        .api()
        .rotate_service_account_secret(admin.req(ServiceAccountRef {
            client_id: client_id.into(),
        }))
        .await
        .map(|r| r.into_inner())
}

async fn disable(admin: &Admin, client_id: &str) -> Result<ServiceAccount, Status> {
    admin
        .api()
        .disable_service_account(admin.req(ServiceAccountRef {
            client_id: client_id.into(),
        }))
        .await
        .map(|r| r.into_inner())
}

async fn a_service_account_gets_an_access_token_and_nothing_else(b: Backend) {
    let Some((db, app, admin)) = start_admin(b, |_| {}).await else {
        return;
    };
    let created = admin
        .create_service_account("billing-worker", &["billing:write", "billing:read"])
        .await
        .unwrap();
    uuid::Uuid::parse_str(&created.client_id).unwrap();
    assert!(
        created.client_secret.starts_with("authd_sk_"),
        "{created:?}"
    );
    // 256 random bits, base64url without padding.
    assert_eq!(created.client_secret.len(), "authd_sk_".len() + 43);
    let account = created.account.clone().unwrap();
    assert_eq!(account.client_id, created.client_id);
    assert_eq!(account.name, "billing-worker");
    assert_eq!(account.roles, ["billing:read", "billing:write"]);
    assert!(!account.disabled);
    // The secret is kept only as a hash: the listing has no field for it.
    let (listed, _) = list_accounts(&admin, 0, "").await;
    assert_eq!(listed, std::slice::from_ref(&account));
    assert!(!format!("{listed:?}").contains(&created.client_secret));

    let (sessions, refresh_tokens) = (
        count_rows(&db, "sessions").await,
        count_rows(&db, "refresh_tokens").await,
    );
    let token = app
        .issue_service_token(&created.client_id, &created.client_secret)
        .await
        .unwrap();
    assert_eq!(token.token_type, "Bearer");
    assert_eq!(token.expires_in, 15 * 60);
    let claims = app.validate(&token.access_token, "").await.unwrap();
    assert_eq!(claims.sub, created.client_id);
    assert_eq!(claims.client_id, created.client_id);
    assert_eq!(claims.roles, ["billing:read", "billing:write"]);
    assert_eq!(claims.aud, ["authd"]);
    let payload = jwt_payload(&token.access_token);
    assert_eq!(payload["client_id"], created.client_id.as_str());
    assert_eq!(payload["sub"], created.client_id.as_str());
    // Each token is told apart.
    let again = app
        .issue_service_token(&created.client_id, &created.client_secret)
        .await
        .unwrap();
    let again = app.validate(&again.access_token, "").await.unwrap();
    assert_ne!(again.jti, claims.jti);

    // No refresh token: none in the answer's type, none stored, and Refresh takes nothing
    // a service account has.
    let set = prost_types::FileDescriptorSet::decode(authd::proto::FILE_DESCRIPTOR_SET).unwrap();
    let fields: Vec<&str> = set
        .file
        .iter()
        .flat_map(|f| &f.message_type)
        .filter(|m| m.name() == "ServiceToken")
        .flat_map(|m| m.field.iter().map(|f| f.name()))
        .collect();
    assert_eq!(fields, ["access_token", "token_type", "expires_in"]);
    assert_eq!(count_rows(&db, "sessions").await, sessions);
    assert_eq!(count_rows(&db, "refresh_tokens").await, refresh_tokens);
    for not_a_refresh_token in [
        token.access_token.as_str(),
        &created.client_secret,
        &created.client_id,
        "",
    ] {
        let s = app.refresh(not_a_refresh_token).await.unwrap_err();
        assert!(
            matches!(s.code(), Code::Unauthenticated | Code::InvalidArgument),
            "{s:?}"
        );
    }
    // A service account is not a user of the admin API's user calls.
    assert_refused(
        admin.get_user(by_id(&created.client_id)).await,
        Code::NotFound,
        "USER_NOT_FOUND",
    );
    app.stop().await;
}

async fn bad_client_credentials_get_one_answer(b: Backend) {
    let Some((_db, app, admin)) = start_admin(b, |_| {}).await else {
        return;
    };
    let a = admin.create_service_account("alpha", &[]).await.unwrap();
    let z = admin.create_service_account("zulu", &[]).await.unwrap();
    let wrong = assert_invalid_client(
        app.issue_service_token(&a.client_id, &format!("{}x", a.client_secret))
            .await,
    );
    let unknown = assert_invalid_client(
        app.issue_service_token(&uuid::Uuid::new_v4().to_string(), &a.client_secret)
            .await,
    );
    assert_eq!(wrong.message(), unknown.message());
    assert!(!wrong.message().contains(&a.client_secret));
    // Another account's secret, the name for the id, and nothing at all.
    assert_invalid_client(
        app.issue_service_token(&a.client_id, &z.client_secret)
            .await,
    );
    assert_invalid_client(app.issue_service_token("alpha", &a.client_secret).await);
    assert_invalid_client(app.issue_service_token(&a.client_id, "").await);
    assert_invalid_client(app.issue_service_token("", "").await);
    assert_invalid_client(
        app.issue_service_token(&a.client_id, &"s".repeat(10_000))
            .await,
    );
    // The right one still works (three failures are under the throttle).
    app.issue_service_token(&a.client_id, &a.client_secret)
        .await
        .unwrap();
    app.stop().await;
}

async fn bad_input_to_service_account_calls_changes_nothing(b: Backend) {
    let Some((db, app, admin)) = start_admin(b, |_| {}).await else {
        return;
    };
    for name in ["cron", "ingest", "mailer"] {
        admin.create_service_account(name, &["x"]).await.unwrap();
    }
    assert_refused(
        admin.create_service_account("cron", &[]).await,
        Code::AlreadyExists,
        "CLIENT_NAME_TAKEN",
    );
    for bad in ["", "-x", "a b", "a:b", &"n".repeat(65)] {
        assert_refused(
            admin.create_service_account(bad, &[]).await,
            Code::InvalidArgument,
            "INVALID_INPUT",
        );
    }
    assert_refused(
        admin.create_service_account("ok", &["not a role"]).await,
        Code::InvalidArgument,
        "INVALID_ROLE",
    );
    assert_eq!(count_rows(&db, "service_accounts").await, 3);

    // Paged by name, each once.
    let (first, token) = list_accounts(&admin, 2, "").await;
    let (second, end) = list_accounts(&admin, 2, &token).await;
    assert_eq!(end, "");
    let names: Vec<String> = first
        .iter()
        .chain(&second)
        .map(|a| a.name.clone())
        .collect();
    assert_eq!(names, ["cron", "ingest", "mailer"]);
    for bad in ["bogus", "YTE6", &format!("{token}x")] {
        assert_refused(
            admin
                .api()
                .list_service_accounts(admin.req(ListServiceAccountsRequest {
                    page_size: 2,
                    page_token: bad.into(),
                }))
                .await,
            Code::InvalidArgument,
            "PAGE_TOKEN_INVALID",
        );
    }

    // Unknown and malformed client ids.
    let unknown = uuid::Uuid::new_v4().to_string();
    assert_refused(
        rotate(&admin, &unknown).await,
        Code::NotFound,
        "CLIENT_NOT_FOUND",
    );
    assert_refused(
        disable(&admin, &unknown).await,
        Code::NotFound,
        "CLIENT_NOT_FOUND",
    );
    for bad in ["", "cron", "not-a-uuid"] {
        assert_refused(
            rotate(&admin, bad).await,
            Code::InvalidArgument,
            "INVALID_INPUT",
        );
        assert_refused(
            disable(&admin, bad).await,
            Code::InvalidArgument,
            "INVALID_INPUT",
        );
    }
    let (after, _) = list_accounts(&admin, 0, "").await;
    assert_eq!(after, [first, second].concat());
    app.stop().await;
}

async fn a_rotated_secret_works_during_the_overlap_and_not_after(b: Backend) {
    const OVERLAP: Duration = Duration::from_secs(2);
    let Some((_db, app, admin)) = start_admin(b, |s| s.client_secret_overlap = OVERLAP).await
    else {
        return;
    };
    let first = admin.create_service_account("rotor", &["r"]).await.unwrap();
    let second = rotate(&admin, &first.client_id).await.unwrap();
    assert_eq!(second.client_id, first.client_id);
    assert_ne!(second.client_secret, first.client_secret);
    assert_eq!(second.account.unwrap().roles, ["r"]);
    let rotated_at = tokio::time::Instant::now();

    // Both work during the overlap.
    let t = app
        .issue_service_token(&first.client_id, &second.client_secret)
        .await
        .unwrap();
    assert_eq!(
        app.validate(&t.access_token, "").await.unwrap().client_id,
        first.client_id
    );
    app.issue_service_token(&first.client_id, &first.client_secret)
        .await
        .unwrap();
    assert!(
        rotated_at.elapsed() < OVERLAP,
        "too slow to check the overlap"
    );

    // Then the old one stops (each success resets the failure count, so polling is safe).
    eventually(Duration::from_secs(15), || async {
        match app
            .issue_service_token(&first.client_id, &first.client_secret)
            .await
        {
            Ok(_) => false,
            Err(s) => {
                assert_eq!(reason(&s), "INVALID_CLIENT", "{s:?}");
                true
            }
        }
    })
    .await;
    assert!(rotated_at.elapsed() >= OVERLAP - Duration::from_millis(100));
    app.issue_service_token(&first.client_id, &second.client_secret)
        .await
        .unwrap();

    // Only the last secret overlaps: after two rotations the first is long gone, the
    // second works for the overlap, the third from now on.
    let third = rotate(&admin, &first.client_id).await.unwrap();
    app.issue_service_token(&first.client_id, &third.client_secret)
        .await
        .unwrap();
    app.issue_service_token(&first.client_id, &second.client_secret)
        .await
        .unwrap();
    let fourth = rotate(&admin, &first.client_id).await.unwrap();
    assert_invalid_client(
        app.issue_service_token(&first.client_id, &second.client_secret)
            .await,
    );
    app.issue_service_token(&first.client_id, &third.client_secret)
        .await
        .unwrap();
    app.issue_service_token(&first.client_id, &fourth.client_secret)
        .await
        .unwrap();
    // Tokens issued before a rotation stay valid: a rotation is not a revocation.
    app.validate(&t.access_token, "").await.unwrap();
    app.stop().await;
}

async fn a_disabled_service_account_gets_no_token_and_its_tokens_are_refused(b: Backend) {
    let Some((db, app, admin)) = start_admin(b, |s| {
        s.revocation_refresh = Duration::from_millis(200);
    })
    .await
    else {
        return;
    };
    let mut s = settings(&db);
    s.revocation_refresh = Duration::from_millis(200);
    let other = second_instance_with(b, s).await;
    let acct = admin.create_service_account("batch", &["b"]).await.unwrap();
    let keep = admin.create_service_account("keep", &["k"]).await.unwrap();
    let token = app
        .issue_service_token(&acct.client_id, &acct.client_secret)
        .await
        .unwrap()
        .access_token;
    let kept = app
        .issue_service_token(&keep.client_id, &keep.client_secret)
        .await
        .unwrap()
        .access_token;
    if let Some(other) = &other {
        other.validate(&token, "").await.unwrap();
    }

    let disabled = disable(&admin, &acct.client_id).await.unwrap();
    assert!(disabled.disabled);
    assert_eq!(disabled.name, "batch");
    let s = assert_refused(
        app.issue_service_token(&acct.client_id, &acct.client_secret)
            .await,
        Code::Unauthenticated,
        "CLIENT_DISABLED",
    );
    assert!(!s.message().contains(&acct.client_secret));
    // A wrong secret learns nothing about the account's state.
    assert_invalid_client(app.issue_service_token(&acct.client_id, "wrong").await);
    assert_refused(
        app.validate(&token, "").await,
        Code::Unauthenticated,
        "TOKEN_REVOKED",
    );
    if let Some(other) = &other {
        eventually(Duration::from_secs(10), || async {
            other.validate(&token, "").await.is_err()
        })
        .await;
        assert_refused(
            other
                .issue_service_token(&acct.client_id, &acct.client_secret)
                .await,
            Code::Unauthenticated,
            "CLIENT_DISABLED",
        );
    }
    // Others are untouched; the listing shows it.
    app.validate(&kept, "").await.unwrap();
    let (listed, _) = list_accounts(&admin, 0, "").await;
    assert_eq!(
        listed
            .iter()
            .map(|a| (a.name.as_str(), a.disabled))
            .collect::<Vec<_>>(),
        [("batch", true), ("keep", false)]
    );
    // Disabling again is no error.
    disable(&admin, &acct.client_id).await.unwrap();
    if let Some(other) = other {
        other.stop().await;
    }
    app.stop().await;
}

/// A second instance on the same database, on PostgreSQL (SQLite serves one instance).
async fn second_instance_with(b: Backend, s: authd::config::ServeArgs) -> Option<TestApp> {
    match b {
        Backend::Postgres => Some(spawn(s).await),
        Backend::Sqlite => None,
    }
}

async fn wrong_secrets_for_one_client_are_throttled(b: Backend) {
    let Some((_db, app, admin)) = start_admin(b, |s| {
        s.login_free_failures = 3;
        s.login_delay = Duration::from_secs(1);
    })
    .await
    else {
        return;
    };
    let target = admin.create_service_account("target", &[]).await.unwrap();
    let bystander = admin
        .create_service_account("bystander", &[])
        .await
        .unwrap();
    for _ in 0..3 {
        assert_invalid_client(app.issue_service_token(&target.client_id, "guess").await);
    }
    let mut waits = Vec::new();
    for secret in ["guess", "guess again", target.client_secret.as_str()] {
        let s = assert_refused(
            app.issue_service_token(&target.client_id, secret).await,
            Code::ResourceExhausted,
            "THROTTLED",
        );
        waits.push(s);
    }
    for s in &waits {
        use tonic_types::StatusExt;
        let wait = s
            .get_details_retry_info()
            .and_then(|i| i.retry_delay)
            .expect("a throttled call says how long to wait");
        assert!(wait >= Duration::from_secs(1), "{wait:?}");
        assert!(!s.message().contains(&target.client_secret));
    }
    // Another client is not held up by it.
    app.issue_service_token(&bystander.client_id, &bystander.client_secret)
        .await
        .unwrap();
    // Once the wait is over the right secret gets in again.
    eventually(Duration::from_secs(15), || async {
        app.issue_service_token(&target.client_id, &target.client_secret)
            .await
            .is_ok()
    })
    .await;
    app.stop().await;
}

/// The `client_id:` and `client_secret:` lines `authd client add|rotate-secret` print.
fn printed_credentials(stdout: &str) -> (String, String) {
    let field = |name: &str| {
        stdout
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .unwrap_or_else(|| panic!("no {name} line in {stdout}"))
            .trim()
            .to_owned()
    };
    (field("client_id:"), field("client_secret:"))
}

/// The `authd client list` line of the account named `name`, split on whitespace.
fn listed(stdout: &str, name: &str) -> Vec<String> {
    stdout
        .lines()
        .map(|l| l.split_whitespace().map(str::to_owned).collect::<Vec<_>>())
        .find(|cols| cols.get(3).is_some_and(|n| n == name))
        .unwrap_or_else(|| panic!("{name} not listed:\n{stdout}"))
}

async fn client_commands_manage_service_accounts_on_the_shared_database(b: Backend) {
    let Some((db, app, admin)) = start_admin(b, |s| {
        s.revocation_refresh = Duration::from_millis(100);
    })
    .await
    else {
        return;
    };
    let add = authd_cli(
        &db,
        &[
            "client",
            "add",
            "reporter",
            "--role",
            "reports:read",
            "--role",
            "billing:read",
        ],
        None,
    )
    .await;
    assert!(add.ok, "{}", add.stderr);
    let (id, secret) = printed_credentials(&add.stdout);
    uuid::Uuid::parse_str(&id).unwrap();
    assert!(add.stderr.contains("shown this once"), "{}", add.stderr);
    assert!(!add.stderr.contains(&secret));

    let token = app.issue_service_token(&id, &secret).await.unwrap();
    let claims = app.validate(&token.access_token, "").await.unwrap();
    assert_eq!(
        (claims.sub.as_str(), claims.client_id.as_str()),
        (id.as_str(), id.as_str())
    );
    assert_eq!(claims.roles, ["billing:read", "reports:read"]);

    // Refusals name their reason; nothing is stored.
    for (args, why) in [
        (vec!["client", "add", "reporter"], "CLIENT_NAME_TAKEN"),
        (vec!["client", "add", "bad name"], "INVALID_INPUT"),
        (
            vec!["client", "add", "ok", "--role", "bad role"],
            "INVALID_ROLE",
        ),
        (vec!["client", "disable", "nobody"], "CLIENT_NOT_FOUND"),
        (
            vec!["client", "rotate-secret", "nobody"],
            "CLIENT_NOT_FOUND",
        ),
    ] {
        let out = authd_cli(&db, &args, None).await;
        assert!(!out.ok, "{args:?}");
        assert!(out.stderr.contains(why), "{args:?}: {}", out.stderr);
    }
    assert_eq!(count_rows(&db, "service_accounts").await, 1);

    // The CLI lists what the admin API made, and the other way round.
    let api = admin
        .create_service_account("api-made", &["x"])
        .await
        .unwrap();
    let list = authd_cli_ok(&db, &["client", "list"], None).await;
    assert!(list.starts_with("CLIENT ID"), "{list}");
    let row = listed(&list, "reporter");
    assert_eq!(row[0], id);
    assert_eq!(row[1], "enabled");
    assert_eq!(row[4..], ["billing:read", "reports:read"]);
    assert_eq!(listed(&list, "api-made")[0], api.client_id);
    assert!(!list.contains(&secret) && !list.contains(&api.client_secret));
    let (accounts, _) = list_accounts(&admin, 0, "").await;
    assert!(
        accounts
            .iter()
            .any(|a| a.client_id == id && a.name == "reporter")
    );

    // Rotation with no overlap: the old secret stops at once.
    let rotated = authd_cli_ok(
        &db,
        &["client", "rotate-secret", "reporter", "--overlap", "0s"],
        None,
    )
    .await;
    let (same, second) = printed_credentials(&rotated);
    assert_eq!(same, id);
    assert_ne!(second, secret);
    assert_invalid_client(app.issue_service_token(&id, &secret).await);
    app.issue_service_token(&id, &second).await.unwrap();
    // By client id, with the default overlap (a day): the previous one keeps working.
    let rotated = authd_cli_ok(&db, &["client", "rotate-secret", &id], None).await;
    let (_, third) = printed_credentials(&rotated);
    app.issue_service_token(&id, &third).await.unwrap();
    app.issue_service_token(&id, &second).await.unwrap();
    // A token issued before is not affected by rotations.
    app.validate(&token.access_token, "").await.unwrap();

    // Disable: no new tokens; running servers refuse the old within the refresh interval.
    let out = authd_cli_ok(&db, &["client", "disable", "reporter"], None).await;
    assert!(out.contains("disabled reporter"), "{out}");
    assert_refused(
        app.issue_service_token(&id, &third).await,
        Code::Unauthenticated,
        "CLIENT_DISABLED",
    );
    eventually(Duration::from_secs(10), || async {
        app.validate(&token.access_token, "").await.is_err()
    })
    .await;
    assert_refused(
        app.validate(&token.access_token, "").await,
        Code::Unauthenticated,
        "TOKEN_REVOKED",
    );
    let list = authd_cli_ok(&db, &["client", "list"], None).await;
    assert_eq!(listed(&list, "reporter")[1], "disabled");
    assert_eq!(listed(&list, "api-made")[1], "enabled");

    // Enable, by client id.
    authd_cli_ok(&db, &["client", "enable", &id], None).await;
    let fresh = app.issue_service_token(&id, &third).await.unwrap();
    // Validate learns of the enable at its next reload, as it learnt of the disable.
    eventually(Duration::from_secs(10), || async {
        app.validate(&fresh.access_token, "").await.is_ok()
    })
    .await;
    app.stop().await;
}

/// PyJWT verifies a service token with the key authd publishes (GetJwks), and with the
/// shared secret in HS256 mode.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pyjwt_verifies_service_tokens() {
    if !have_pyjwt() {
        return;
    }
    let Some((_db, app, admin)) = start_admin(Backend::Sqlite, |s| s.jwt_secret = None).await
    else {
        return;
    };
    let acct = admin
        .create_service_account("py-client", &["billing:read", "reports:read"])
        .await
        .unwrap();
    let token = app
        .issue_service_token(&acct.client_id, &acct.client_secret)
        .await
        .unwrap()
        .access_token;
    let jwks = app.jwks().await;
    assert!(jwks.contains("Ed25519"), "{jwks}");
    let claims = pyjwt_verify(&["eddsa", &jwks, &token, "authd", "authd"]).unwrap();
    assert_eq!(claims["sub"], acct.client_id.as_str());
    assert_eq!(claims["client_id"], acct.client_id.as_str());
    assert_eq!(
        claims["roles"],
        serde_json::json!(["billing:read", "reports:read"])
    );
    assert_eq!(
        pyjwt_verify(&["eddsa", &jwks, &token, "authd", "another"]),
        Err("InvalidAudienceError".to_owned())
    );
    app.stop().await;

    let Some((_db, app, admin)) = start_admin(Backend::Sqlite, |_| {}).await else {
        return;
    };
    let acct = admin.create_service_account("py-hs", &["r"]).await.unwrap();
    let token = app
        .issue_service_token(&acct.client_id, &acct.client_secret)
        .await
        .unwrap()
        .access_token;
    let claims = pyjwt_verify(&["hs256", SECRET, &token, "authd", "authd"]).unwrap();
    assert_eq!(claims["client_id"], acct.client_id.as_str());
    assert_eq!(claims["roles"], serde_json::json!(["r"]));
    app.stop().await;
}
