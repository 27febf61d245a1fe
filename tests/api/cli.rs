//! The `authd user ...` commands, run as an operator would, on both backends.
use tonic::Code;

use crate::helpers::*;
use crate::on_both;

on_both!(user_commands_manage_users_on_the_shared_database);

async fn user_commands_manage_users_on_the_shared_database(b: Backend) {
    let Some(db) = TestDb::new(b).await else {
        return;
    };
    let migrate = authd_cli(&db, &["migrate"], None).await;
    assert!(migrate.ok, "{}", migrate.stderr);

    let add = authd_cli(
        &db,
        &["user", "add", "Tina"],
        Some(&format!("{PASSWORD}\n")),
    )
    .await;
    assert!(add.ok, "{}", add.stderr);
    let id = add.stdout.trim().to_owned();
    uuid::Uuid::parse_str(&id).unwrap();
    assert!(!add.stdout.contains(PASSWORD) && !add.stderr.contains(PASSWORD));

    let dup = authd_cli(
        &db,
        &["user", "add", "tina"],
        Some(&format!("{PASSWORD}\n")),
    )
    .await;
    assert!(!dup.ok);
    assert!(dup.stderr.contains("taken"), "{}", dup.stderr);
    // The password policy of Register applies here too, with its stable reason.
    for (password, says) in [
        ("short", "at least 8 characters"),
        ("password", "top-10 common password"),
        ("12345678", "too easy to guess"),
        ("aaaaaaaa", "too easy to guess"),
        ("uma-uma-uma", "username or the service name"),
        ("authd-authd", "username or the service name"),
    ] {
        let weak = authd_cli(&db, &["user", "add", "uma"], Some(&format!("{password}\n"))).await;
        assert!(!weak.ok, "{password:?}");
        assert!(weak.stderr.contains(says), "{password:?}: {}", weak.stderr);
        assert!(
            weak.stderr.contains("PASSWORD_TOO_WEAK"),
            "{password:?}: {}",
            weak.stderr
        );
        assert!(password == "password" || !weak.stderr.contains(password));
    }
    // Its settings are the server's; below NIST's floor the command refuses to run.
    let low = authd_cli_with(
        &db,
        &["user", "add", "uma"],
        Some(&format!("{PASSWORD}\n")),
        &[("AUTHD_PASSWORD_MIN_LENGTH", "7")],
    )
    .await;
    assert!(!low.ok);
    assert!(
        low.stderr.contains("AUTHD_PASSWORD_MIN_LENGTH"),
        "{}",
        low.stderr
    );
    let long = authd_cli_with(
        &db,
        &["user", "add", "uma"],
        Some(&format!("{PASSWORD}\n")),
        &[("AUTHD_PASSWORD_MIN_LENGTH", "40")],
    )
    .await;
    assert!(!long.ok);
    assert!(
        long.stderr.contains("at least 40 characters"),
        "{}",
        long.stderr
    );
    let list = authd_cli(&db, &["user", "list"], None).await;
    assert!(!list.stdout.contains("uma"), "{}", list.stdout);

    let mut s = settings(&db);
    s.revocation_refresh = std::time::Duration::from_millis(100);
    let app = spawn(s).await;
    let phone = app.issue("tina", PASSWORD).await.unwrap();
    let laptop = app.issue("tina", PASSWORD).await.unwrap();

    let list = authd_cli(&db, &["user", "list"], None).await;
    assert!(list.ok, "{}", list.stderr);
    assert!(
        list.stdout.contains("Tina") && list.stdout.contains(&id),
        "{}",
        list.stdout
    );
    assert!(list.stdout.contains("enabled"));

    let revoke = authd_cli(&db, &["user", "revoke-sessions", "TINA"], None).await;
    assert!(revoke.ok, "{}", revoke.stderr);
    assert!(
        revoke.stdout.contains("revoked 2 session"),
        "{}",
        revoke.stdout
    );
    for p in [&phone, &laptop] {
        assert_refused(
            app.refresh(&p.refresh_token).await,
            Code::Unauthenticated,
            "SESSION_REVOKED",
        );
    }
    eventually(std::time::Duration::from_secs(10), || async {
        app.validate(&laptop.access_token, "").await.is_err()
    })
    .await;

    let disable = authd_cli(&db, &["user", "disable", "tina"], None).await;
    assert!(disable.ok, "{}", disable.stderr);
    assert_refused(
        app.issue("tina", PASSWORD).await,
        Code::Unauthenticated,
        "USER_DISABLED",
    );
    let list = authd_cli(&db, &["user", "list"], None).await;
    assert!(list.stdout.contains("disabled"), "{}", list.stdout);
    let enable = authd_cli(&db, &["user", "enable", "tina"], None).await;
    assert!(enable.ok, "{}", enable.stderr);
    app.issue("tina", PASSWORD).await.unwrap();

    let missing = authd_cli(&db, &["user", "disable", "nobody"], None).await;
    assert!(!missing.ok);
    assert!(
        missing.stderr.contains("no user named"),
        "{}",
        missing.stderr
    );
    app.stop().await;
}
