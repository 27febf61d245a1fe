//! The `authd user ...` commands, run as an operator would, on both backends.
use std::process::Stdio;

use tokio::io::AsyncWriteExt;
use tokio::process::Command;
use tonic::Code;

use crate::helpers::*;
use crate::on_both;

on_both!(user_commands_manage_users_on_the_shared_database);

struct Out {
    ok: bool,
    stdout: String,
    stderr: String,
}

async fn authd(db: &TestDb, args: &[&str], stdin: Option<&str>) -> Out {
    authd_with(db, args, stdin, &[]).await
}

async fn authd_with(db: &TestDb, args: &[&str], stdin: Option<&str>, env: &[(&str, &str)]) -> Out {
    let mut child = Command::new(env!("CARGO_BIN_EXE_authd"))
        .args(args)
        // Only what the test sets: a developer's AUTHD_* variables must not change it.
        .env_clear()
        .envs(env.iter().copied())
        .env("AUTHD_DATABASE_URL", &db.url)
        .env("AUTHD_ARGON2_M_KIB", "256")
        .env("AUTHD_ARGON2_T", "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut pipe = child.stdin.take().unwrap();
    if let Some(input) = stdin {
        pipe.write_all(input.as_bytes()).await.unwrap();
    }
    drop(pipe);
    let out = child.wait_with_output().await.unwrap();
    Out {
        ok: out.status.success(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

async fn user_commands_manage_users_on_the_shared_database(b: Backend) {
    let Some(db) = TestDb::new(b).await else {
        return;
    };
    let migrate = authd(&db, &["migrate"], None).await;
    assert!(migrate.ok, "{}", migrate.stderr);

    let add = authd(
        &db,
        &["user", "add", "Tina"],
        Some(&format!("{PASSWORD}\n")),
    )
    .await;
    assert!(add.ok, "{}", add.stderr);
    let id = add.stdout.trim().to_owned();
    uuid::Uuid::parse_str(&id).unwrap();
    assert!(!add.stdout.contains(PASSWORD) && !add.stderr.contains(PASSWORD));

    let dup = authd(
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
        let weak = authd(&db, &["user", "add", "uma"], Some(&format!("{password}\n"))).await;
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
    let low = authd_with(
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
    let long = authd_with(
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
    let list = authd(&db, &["user", "list"], None).await;
    assert!(!list.stdout.contains("uma"), "{}", list.stdout);

    let mut s = settings(&db);
    s.revocation_refresh = std::time::Duration::from_millis(100);
    let app = spawn(s).await;
    let phone = app.issue("tina", PASSWORD).await.unwrap();
    let laptop = app.issue("tina", PASSWORD).await.unwrap();

    let list = authd(&db, &["user", "list"], None).await;
    assert!(list.ok, "{}", list.stderr);
    assert!(
        list.stdout.contains("Tina") && list.stdout.contains(&id),
        "{}",
        list.stdout
    );
    assert!(list.stdout.contains("enabled"));

    let revoke = authd(&db, &["user", "revoke-sessions", "TINA"], None).await;
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

    let disable = authd(&db, &["user", "disable", "tina"], None).await;
    assert!(disable.ok, "{}", disable.stderr);
    assert_refused(
        app.issue("tina", PASSWORD).await,
        Code::Unauthenticated,
        "USER_DISABLED",
    );
    let list = authd(&db, &["user", "list"], None).await;
    assert!(list.stdout.contains("disabled"), "{}", list.stdout);
    let enable = authd(&db, &["user", "enable", "tina"], None).await;
    assert!(enable.ok, "{}", enable.stderr);
    app.issue("tina", PASSWORD).await.unwrap();

    let missing = authd(&db, &["user", "disable", "nobody"], None).await;
    assert!(!missing.ok);
    assert!(
        missing.stderr.contains("no user named"),
        "{}",
        missing.stderr
    );
    app.stop().await;
}
