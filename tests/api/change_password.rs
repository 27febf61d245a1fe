//! ChangePassword: the caller's access token in `authorization: Bearer`, the current
//! password checked, the policy applied; every other session ends and the caller gets a
//! fresh pair in theirs.
use std::time::Duration;

use tonic::Code;

use crate::helpers::*;
use crate::on_both;

on_both!(
    a_changed_password_ends_the_other_sessions_and_renews_the_callers,
    change_password_refuses_callers_that_are_not_a_logged_in_user,
    wrong_current_passwords_are_throttled_like_logins,
);

const NEW_PASSWORD: &str = "a different horse, battery and staple";

async fn a_changed_password_ends_the_other_sessions_and_renews_the_callers(b: Backend) {
    let Some(db) = TestDb::new(b).await else {
        return;
    };
    let mut s = settings(&db);
    // Long: what this instance revokes must apply at once, not at the next reload.
    s.revocation_refresh = Duration::from_secs(3600);
    let app = spawn(s).await;
    let caller = app.login("kim").await;
    let other = app.issue("kim", PASSWORD).await.unwrap();
    let bystander = app.login("lou").await;
    let caller_sid = app.validate(&caller.access_token, "").await.unwrap().sid;

    assert_refused(
        app.change_password(Some(&caller.access_token), "not my password", NEW_PASSWORD)
            .await,
        Code::Unauthenticated,
        "INVALID_CREDENTIALS",
    );
    for weak in ["short", "password", "kim-kim-kim", "authd-authd"] {
        assert_refused(
            app.change_password(Some(&caller.access_token), PASSWORD, weak)
                .await,
            Code::InvalidArgument,
            "PASSWORD_TOO_WEAK",
        );
    }
    // Nothing changed: both sessions live, the old password works.
    let other = app.refresh(&other.refresh_token).await.unwrap();
    app.validate(&caller.access_token, "").await.unwrap();
    let third = app.issue("kim", PASSWORD).await.unwrap();

    let fresh = app
        .change_password(Some(&caller.access_token), PASSWORD, NEW_PASSWORD)
        .await
        .unwrap();
    assert_eq!(fresh.token_type, "Bearer");
    assert!(
        fresh.expires_in > 0 && fresh.refresh_expires_in > 0,
        "{fresh:?}"
    );
    assert_ne!(fresh.refresh_token, caller.refresh_token);
    // The fresh pair is the caller's session's, and works.
    let claims = app.validate(&fresh.access_token, "").await.unwrap();
    assert_eq!(
        (claims.username.as_str(), claims.sid.as_str()),
        ("kim", caller_sid.as_str())
    );
    // Every other session of the user ended.
    for p in [&other, &third] {
        assert_refused(
            app.refresh(&p.refresh_token).await,
            Code::Unauthenticated,
            "SESSION_REVOKED",
        );
    }
    // Another user's session is untouched.
    app.refresh(&bystander.refresh_token).await.unwrap();
    // The caller's own session lives on: its access token too.
    app.validate(&caller.access_token, "").await.unwrap();
    let renewed = app.refresh(&fresh.refresh_token).await.unwrap();
    app.validate(&renewed.access_token, "").await.unwrap();

    // The new password logs in, the old does not.
    assert_refused(
        app.issue("kim", PASSWORD).await,
        Code::Unauthenticated,
        "INVALID_CREDENTIALS",
    );
    app.issue("kim", NEW_PASSWORD).await.unwrap();

    // The ended sessions' access tokens are refused at once on this instance, as after
    // every other revocation it makes (the next reload is an hour away).
    for p in [&other, &third] {
        assert_refused(
            app.validate(&p.access_token, "").await,
            Code::Unauthenticated,
            "TOKEN_REVOKED",
        );
    }

    // The caller's refresh token from before the change is dead: presented again, it is
    // treated as a stolen copy.
    assert_refused(
        app.refresh(&caller.refresh_token).await,
        Code::Unauthenticated,
        "REFRESH_TOKEN_REUSED",
    );
    app.stop().await;
}

async fn change_password_refuses_callers_that_are_not_a_logged_in_user(b: Backend) {
    let Some((_db, app, admin)) = start_admin(b, |_| {}).await else {
        return;
    };
    let pair = app.login("max").await;
    assert_refused(
        app.change_password(None, PASSWORD, NEW_PASSWORD).await,
        Code::Unauthenticated,
        "TOKEN_MISSING",
    );
    // The refresh token is not an access token.
    app.change_password(Some(&pair.refresh_token), PASSWORD, NEW_PASSWORD)
        .await
        .unwrap_err();
    let s = app
        .change_password(Some("not.a.jwt"), PASSWORD, NEW_PASSWORD)
        .await
        .unwrap_err();
    assert_eq!(s.code(), Code::Unauthenticated, "{s:?}");

    // A service account has no password.
    let acct = admin.create_service_account("svc", &[]).await.unwrap();
    let service = app
        .issue_service_token(&acct.client_id, &acct.client_secret)
        .await
        .unwrap();
    assert_refused(
        app.change_password(
            Some(&service.access_token),
            &acct.client_secret,
            NEW_PASSWORD,
        )
        .await,
        Code::PermissionDenied,
        "NOT_A_USER",
    );

    // A revoked session's token cannot change the password.
    app.revoke(&pair.refresh_token).await.unwrap();
    assert_refused(
        app.change_password(Some(&pair.access_token), PASSWORD, NEW_PASSWORD)
            .await,
        Code::Unauthenticated,
        "TOKEN_REVOKED",
    );
    // None of it changed the password.
    app.issue("max", PASSWORD).await.unwrap();
    app.stop().await;
}

async fn wrong_current_passwords_are_throttled_like_logins(b: Backend) {
    let Some(db) = TestDb::new(b).await else {
        return;
    };
    let mut s = settings(&db);
    s.login_free_failures = 2;
    s.login_delay = Duration::from_secs(1);
    let app = spawn(s).await;
    let pair = app.login("ned").await;
    for _ in 0..2 {
        assert_refused(
            app.change_password(Some(&pair.access_token), "wrong guess", NEW_PASSWORD)
                .await,
            Code::Unauthenticated,
            "INVALID_CREDENTIALS",
        );
    }
    // Right or wrong, the next try waits; and so does a login to the same account.
    assert_refused(
        app.change_password(Some(&pair.access_token), PASSWORD, NEW_PASSWORD)
            .await,
        Code::ResourceExhausted,
        "THROTTLED",
    );
    assert_refused(
        app.issue("ned", PASSWORD).await,
        Code::ResourceExhausted,
        "THROTTLED",
    );
    eventually(Duration::from_secs(15), || async {
        app.change_password(Some(&pair.access_token), PASSWORD, NEW_PASSWORD)
            .await
            .is_ok()
    })
    .await;
    app.issue("ned", NEW_PASSWORD).await.unwrap();
    app.stop().await;
}
