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
    let mut child = Command::new(env!("CARGO_BIN_EXE_authd"))
        .args(args)
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
    let weak = authd(&db, &["user", "add", "uma"], Some("short\n")).await;
    assert!(!weak.ok);
    assert!(weak.stderr.contains("at least 8 bytes"), "{}", weak.stderr);
    assert!(!weak.stderr.contains("short\n"));

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
