//! `authd user add --role`, `authd user role add|remove|list` and `authd user set-password`,
//! run as an operator would on the database a running authd uses.
use std::time::Duration;

use tonic::Code;

use crate::helpers::*;
use crate::on_both;

on_both!(
    user_role_commands_grant_and_take_roles,
    user_set_password_reads_stdin_and_ends_every_session,
);

const NEW_PASSWORD: &str = "a different horse, battery and staple";

fn lines(s: &str) -> Vec<&str> {
    s.lines().collect()
}

async fn user_role_commands_grant_and_take_roles(b: Backend) {
    let Some(db) = TestDb::new(b).await else {
        return;
    };
    let pw = format!("{PASSWORD}\n");
    let id = authd_cli_ok(
        &db,
        &[
            "user",
            "add",
            "Dana",
            "--role",
            "billing:write",
            "--role",
            "billing:read",
        ],
        Some(&pw),
    )
    .await;
    let id = id.trim().to_owned();
    uuid::Uuid::parse_str(&id).unwrap();
    let list = authd_cli_ok(&db, &["user", "role", "list", "dana"], None).await;
    assert_eq!(lines(&list), ["billing:read", "billing:write"]);

    // A bad role refuses the user altogether.
    let bad = authd_cli(
        &db,
        &["user", "add", "eve", "--role", "bad role"],
        Some(&pw),
    )
    .await;
    assert!(!bad.ok);
    assert!(bad.stderr.contains("INVALID_ROLE"), "{}", bad.stderr);
    let missing = authd_cli(&db, &["user", "role", "list", "eve"], None).await;
    assert!(!missing.ok);
    assert!(
        missing.stderr.contains("USER_NOT_FOUND"),
        "{}",
        missing.stderr
    );

    let mut s = settings(&db);
    s.revocation_refresh = Duration::from_millis(100);
    let app = spawn(s).await;
    let before = app.issue("dana", PASSWORD).await.unwrap();
    assert_eq!(
        app.validate(&before.access_token, "").await.unwrap().roles,
        ["billing:read", "billing:write"]
    );

    let add = authd_cli_ok(
        &db,
        &[
            "user",
            "role",
            "add",
            "DANA",
            "reports:read",
            "billing:read",
        ],
        None,
    )
    .await;
    assert!(
        add.contains("billing:read billing:write reports:read"),
        "{add}"
    );
    assert!(add.contains("revoke-sessions"), "{add}");
    let remove = authd_cli_ok(
        &db,
        &["user", "role", "remove", "dana", "billing:write"],
        None,
    )
    .await;
    assert!(remove.contains("billing:read reports:read"), "{remove}");
    let list = authd_cli_ok(&db, &["user", "role", "list", "dana"], None).await;
    assert_eq!(lines(&list), ["billing:read", "reports:read"]);
    // Removing a role the user does not have is no error.
    authd_cli_ok(&db, &["user", "role", "remove", "dana", "never:had"], None).await;

    // The token in hand is unchanged; the next Refresh and Issue carry the new roles.
    assert_eq!(
        app.validate(&before.access_token, "").await.unwrap().roles,
        ["billing:read", "billing:write"]
    );
    let refreshed = app.refresh(&before.refresh_token).await.unwrap();
    assert_eq!(
        app.validate(&refreshed.access_token, "")
            .await
            .unwrap()
            .roles,
        ["billing:read", "reports:read"]
    );
    let issued = app.issue("dana", PASSWORD).await.unwrap();
    assert_eq!(
        jwt_payload(&issued.access_token)["roles"],
        serde_json::json!(["billing:read", "reports:read"])
    );

    // Refusals, with their reasons, change nothing.
    for (args, why) in [
        (
            vec!["user", "role", "add", "dana", "ok", "not ok"],
            "INVALID_ROLE",
        ),
        (vec!["user", "role", "remove", "dana", ":x"], "INVALID_ROLE"),
        (vec!["user", "role", "add", "nobody", "x"], "USER_NOT_FOUND"),
        (vec!["user", "role", "list", "nobody"], "USER_NOT_FOUND"),
    ] {
        let out = authd_cli(&db, &args, None).await;
        assert!(!out.ok, "{args:?}");
        assert!(out.stderr.contains(why), "{args:?}: {}", out.stderr);
    }
    // A role is required.
    assert!(
        !authd_cli(&db, &["user", "role", "add", "dana"], None)
            .await
            .ok
    );
    let list = authd_cli_ok(&db, &["user", "role", "list", "dana"], None).await;
    assert_eq!(lines(&list), ["billing:read", "reports:read"]);

    // Roles are case-sensitive: `Billing:Read` is another role.
    authd_cli_ok(&db, &["user", "role", "add", "dana", "Billing:Read"], None).await;
    let list = authd_cli_ok(&db, &["user", "role", "list", "dana"], None).await;
    assert_eq!(
        lines(&list),
        ["Billing:Read", "billing:read", "reports:read"]
    );

    // An admin made by the CLI is an admin of the running server.
    authd_cli_ok(&db, &["user", "role", "add", "dana", ADMIN_ROLE], None).await;
    let admin = Admin::login(&app, "dana").await;
    assert_eq!(admin.get_user(by_name("dana")).await.unwrap().user_id, id);
    authd_cli_ok(&db, &["user", "role", "remove", "dana", ADMIN_ROLE], None).await;
    let former = Admin::login(&app, "dana").await;
    assert_refused(
        former.get_user(by_name("dana")).await,
        Code::PermissionDenied,
        "ROLE_REQUIRED",
    );
    app.stop().await;
}

async fn user_set_password_reads_stdin_and_ends_every_session(b: Backend) {
    let Some(db) = TestDb::new(b).await else {
        return;
    };
    authd_cli_ok(
        &db,
        &["user", "add", "fred"],
        Some(&format!("{PASSWORD}\n")),
    )
    .await;
    let mut s = settings(&db);
    s.revocation_refresh = Duration::from_millis(100);
    let app = spawn(s).await;
    let phone = app.issue("fred", PASSWORD).await.unwrap();
    let laptop = app.issue("fred", PASSWORD).await.unwrap();

    // Weak passwords are refused with the reason, and never echoed.
    for weak in ["Xq9z", "fred-fred-fred"] {
        let out = authd_cli(
            &db,
            &["user", "set-password", "fred"],
            Some(&format!("{weak}\n")),
        )
        .await;
        assert!(!out.ok, "{weak}");
        assert!(
            out.stderr.contains("PASSWORD_TOO_WEAK"),
            "{weak}: {}",
            out.stderr
        );
        assert!(
            !out.stderr.contains(weak) && !out.stdout.contains(weak),
            "{out:?}"
        );
    }
    let empty = authd_cli(&db, &["user", "set-password", "fred"], Some("")).await;
    assert!(!empty.ok);
    let nobody = authd_cli(
        &db,
        &["user", "set-password", "nobody"],
        Some(&format!("{NEW_PASSWORD}\n")),
    )
    .await;
    assert!(!nobody.ok);
    assert!(
        nobody.stderr.contains("USER_NOT_FOUND"),
        "{}",
        nobody.stderr
    );
    // Nothing changed.
    let phone = app.refresh(&phone.refresh_token).await.unwrap();

    let out = authd_cli(
        &db,
        &["user", "set-password", "FRED"],
        Some(&format!("{NEW_PASSWORD}\n")),
    )
    .await;
    assert!(out.ok, "{}", out.stderr);
    assert!(out.stdout.contains("ended 2 session(s)"), "{}", out.stdout);
    assert!(!out.stdout.contains(NEW_PASSWORD) && !out.stderr.contains(NEW_PASSWORD));
    for p in [&phone, &laptop] {
        assert_refused(
            app.refresh(&p.refresh_token).await,
            Code::Unauthenticated,
            "SESSION_REVOKED",
        );
    }
    // The running server refuses their access tokens within its refresh interval.
    eventually(Duration::from_secs(10), || async {
        app.validate(&phone.access_token, "").await.is_err()
    })
    .await;
    assert_refused(
        app.validate(&laptop.access_token, "").await,
        Code::Unauthenticated,
        "TOKEN_REVOKED",
    );
    assert_refused(
        app.issue("fred", PASSWORD).await,
        Code::Unauthenticated,
        "INVALID_CREDENTIALS",
    );
    app.issue("fred", NEW_PASSWORD).await.unwrap();
    app.stop().await;
}
