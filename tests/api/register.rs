//! Register and Issue: the happy path, uniqueness, input rules, identical refusals.
use tonic::Code;

use crate::helpers::*;
use crate::on_both;

on_both!(
    register_issue_validate,
    usernames_are_unique_across_case_and_unicode_forms,
    every_input_rule_is_enforced_and_changes_nothing,
    wrong_password_and_unknown_user_are_indistinguishable,
    oversized_request_is_refused_and_server_keeps_serving,
    registration_can_be_switched_off,
    rehash_on_login_when_parameters_change,
);

async fn register_issue_validate(b: Backend) {
    let Some((_db, app)) = start(b).await else {
        return;
    };
    let id = app.register("Alice", PASSWORD).await.unwrap();
    uuid::Uuid::parse_str(&id).unwrap();

    let pair = app.issue("alice", PASSWORD).await.unwrap();
    assert_eq!(pair.token_type, "Bearer");
    assert_eq!(pair.expires_in, 900);
    assert!(pair.refresh_expires_in > 0);
    assert!(!pair.refresh_token.is_empty());

    let claims = app.validate(&pair.access_token, "").await.unwrap();
    assert_eq!(claims.sub, id);
    assert_eq!(claims.username, "Alice");
    assert_eq!(claims.iss, "authd");
    assert_eq!(claims.aud, vec!["authd".to_string()]);
    assert_eq!(claims.exp - claims.iat, 900);
    uuid::Uuid::parse_str(&claims.sid).unwrap();
    assert!(!claims.jti.is_empty());

    // An audience asked for at Issue is the one the token is good for.
    let other = app.issue_for("alice", PASSWORD, "billing").await.unwrap();
    let c = app.validate(&other.access_token, "billing").await.unwrap();
    assert_eq!(c.aud, vec!["billing".to_string()]);
    assert_refused(
        app.validate(&other.access_token, "").await,
        Code::Unauthenticated,
        "WRONG_AUDIENCE",
    );
    app.stop().await;
}

async fn usernames_are_unique_across_case_and_unicode_forms(b: Backend) {
    let Some((db, app)) = start(b).await else {
        return;
    };
    app.register("Alice", PASSWORD).await.unwrap();
    for twin in ["alice", "ALICE", " alice ", "Ａｌｉｃｅ", "ａｌｉｃｅ"] {
        let s = app.register(twin, PASSWORD).await.unwrap_err();
        assert_eq!(s.code(), Code::AlreadyExists, "{twin:?}: {s:?}");
    }
    // NFKC: the Angstrom sign and the precomposed letter are one name.
    app.register("\u{212B}sa", PASSWORD).await.unwrap();
    let s = app.register("\u{00C5}SA", PASSWORD).await.unwrap_err();
    assert_eq!(s.code(), Code::AlreadyExists);
    // Any form logs in.
    app.issue("ＡＬＩＣＥ", PASSWORD).await.unwrap();
    assert_eq!(db.store().await.list_users().await.unwrap().len(), 2);
    app.stop().await;
}

async fn every_input_rule_is_enforced_and_changes_nothing(b: Backend) {
    let Some((db, app)) = start(b).await else {
        return;
    };
    let cases: Vec<(String, String, &str)> = vec![
        ("".into(), PASSWORD.into(), "username must not be empty"),
        ("   ".into(), PASSWORD.into(), "username must not be empty"),
        ("x".repeat(65), PASSWORD.into(), "at most 64 characters"),
        ("bob\u{0}".into(), PASSWORD.into(), "control characters"),
        ("bob\nsmith".into(), PASSWORD.into(), "control characters"),
        ("bob".into(), "1234567".into(), "at least 8 bytes"),
        ("bob".into(), "".into(), "at least 8 bytes"),
        ("bob".into(), "x".repeat(1025), "at most 1024 bytes"),
    ];
    for (u, p, rule) in &cases {
        let s = app.register(u, p).await.unwrap_err();
        assert_eq!(s.code(), Code::InvalidArgument, "{u:?}: {s:?}");
        assert!(s.message().contains(rule), "{u:?}: {:?}", s.message());
        let s = app.issue(u, p).await.unwrap_err();
        assert_eq!(s.code(), Code::InvalidArgument, "issue {u:?}: {s:?}");
    }
    // The limits themselves are allowed.
    app.register(&"é".repeat(64), &"p".repeat(1024))
        .await
        .unwrap();
    app.register("carol", "12345678").await.unwrap();
    let users = db.store().await.list_users().await.unwrap();
    assert_eq!(users.len(), 2, "refused input must not create users");
    app.stop().await;
}

async fn wrong_password_and_unknown_user_are_indistinguishable(b: Backend) {
    let Some((_db, app)) = start(b).await else {
        return;
    };
    app.register("dave", PASSWORD).await.unwrap();
    let wrong = app.issue("dave", "not the password").await.unwrap_err();
    let unknown = app.issue("nobody", "not the password").await.unwrap_err();
    assert_eq!(wrong.code(), Code::Unauthenticated);
    assert_eq!(wrong.code(), unknown.code());
    assert_eq!(wrong.message(), unknown.message());
    assert_eq!(reason(&wrong), "INVALID_CREDENTIALS");
    assert_eq!(reason(&wrong), reason(&unknown));
    assert_eq!(wrong.details(), unknown.details());
    // Neither message echoes the input.
    assert!(!wrong.message().contains("not the password"));
    assert!(!unknown.message().contains("nobody"));
    app.stop().await;
}

async fn oversized_request_is_refused_and_server_keeps_serving(b: Backend) {
    let Some((db, app)) = start(b).await else {
        return;
    };
    let huge = "p".repeat(2 * 1024 * 1024);
    let s = app.register("erin", &huge).await.unwrap_err();
    assert!(
        matches!(
            s.code(),
            Code::OutOfRange | Code::ResourceExhausted | Code::InvalidArgument
        ),
        "{s:?}"
    );
    assert!(!s.message().contains("ppppppppp"));
    let s = app.issue("erin", &huge).await.unwrap_err();
    assert_ne!(s.code(), Code::Ok);
    assert!(db.store().await.list_users().await.unwrap().is_empty());
    // Still serving, on the same connection.
    app.register("erin", PASSWORD).await.unwrap();
    app.issue("erin", PASSWORD).await.unwrap();
    app.stop().await;
}

async fn registration_can_be_switched_off(b: Backend) {
    let Some(db) = TestDb::new(b).await else {
        return;
    };
    let mut s = settings(&db);
    s.allow_registration = false;
    let app = spawn(s).await;
    assert_refused(
        app.register("frank", PASSWORD).await,
        Code::PermissionDenied,
        "REGISTRATION_CLOSED",
    );
    assert!(db.store().await.list_users().await.unwrap().is_empty());
    app.stop().await;
}

async fn rehash_on_login_when_parameters_change(b: Backend) {
    let Some(db) = TestDb::new(b).await else {
        return;
    };
    let app = spawn(settings(&db)).await;
    app.register("gina", PASSWORD).await.unwrap();
    app.stop().await;
    let store = db.store().await;
    let before = store.list_users().await.unwrap()[0].password_hash.clone();
    assert!(before.contains("m=256,t=1,p=1"), "{before}");

    let mut s = settings(&db);
    s.argon2_m_kib = 512;
    let app = spawn(s).await;
    app.issue("gina", PASSWORD).await.unwrap();
    let after = store.list_users().await.unwrap()[0].password_hash.clone();
    assert!(
        after.starts_with("$argon2id$v=19$m=512,t=1,p=1$"),
        "{after}"
    );
    // Still the same password.
    app.issue("gina", PASSWORD).await.unwrap();
    app.stop().await;
}
