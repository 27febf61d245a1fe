//! The README's walk-through, with the real grpcurl binary and no proto files.
use std::process::Command;

use serde_json::Value;

use crate::helpers::*;

fn grpcurl(addr: &str, args: &[&str]) -> (bool, String, String) {
    let mut cmd = Command::new("grpcurl");
    cmd.args(["-plaintext", addr]);
    cmd.args(args);
    let out = cmd.output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn call(addr: &str, method: &str, body: &str) -> Value {
    let mut cmd = Command::new("grpcurl");
    cmd.args(["-plaintext", "-d", body, addr, method]);
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{method}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpcurl_walkthrough_with_reflection_only() {
    if !have_grpcurl() {
        return;
    }
    let Some((_db, app)) = start(Backend::Sqlite).await else {
        return;
    };
    let addr = app.addr.to_string();
    tokio::task::spawn_blocking(move || {
        let (ok, list, err) = grpcurl(&addr, &["list"]);
        assert!(ok, "{err}");
        assert!(list.contains("authd.v1.AuthService"), "{list}");
        assert!(list.contains("grpc.health.v1.Health"), "{list}");

        let (ok, desc, err) = grpcurl(&addr, &["describe", "authd.v1.AuthService"]);
        assert!(ok, "{err}");
        for rpc in [
            "Register", "Issue", "Validate", "Refresh", "Revoke", "GetJwks",
        ] {
            assert!(desc.contains(&format!("rpc {rpc}")), "{desc}");
        }

        let reg = call(
            &addr,
            "authd.v1.AuthService/Register",
            r#"{"username":"alice","password":"correct horse battery staple"}"#,
        );
        let user_id = reg["userId"].as_str().unwrap().to_owned();
        let pair = call(
            &addr,
            "authd.v1.AuthService/Issue",
            r#"{"username":"alice","password":"correct horse battery staple"}"#,
        );
        let access = pair["accessToken"].as_str().unwrap();
        let refresh = pair["refreshToken"].as_str().unwrap();
        let v = call(
            &addr,
            "authd.v1.AuthService/Validate",
            &format!(r#"{{"token":"{access}"}}"#),
        );
        assert_eq!(v["claims"]["sub"], user_id.as_str());
        assert_eq!(v["claims"]["username"], "alice");

        let next = call(
            &addr,
            "authd.v1.AuthService/Refresh",
            &format!(r#"{{"refreshToken":"{refresh}"}}"#),
        );
        let next_refresh = next["refreshToken"].as_str().unwrap();
        assert_ne!(next_refresh, refresh);
        call(
            &addr,
            "authd.v1.AuthService/Revoke",
            &format!(r#"{{"refreshToken":"{next_refresh}"}}"#),
        );

        // A refusal shows its code, message and the decoded ErrorInfo reason.
        let out = Command::new("grpcurl")
            .args(["-plaintext", "-d", r#"{"token":"garbage"}"#, &addr])
            .arg("authd.v1.AuthService/Validate")
            .output()
            .unwrap();
        assert!(!out.status.success());
        let err = String::from_utf8_lossy(&out.stdout).into_owned()
            + &*String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("Unauthenticated"), "{err}");
        assert!(err.contains("TOKEN_MALFORMED"), "{err}");

        let health = call(
            &addr,
            "grpc.health.v1.Health/Check",
            r#"{"service":"authd.v1.AuthService"}"#,
        );
        assert_eq!(health["status"], "SERVING");
    })
    .await
    .unwrap();
    app.stop().await;
}

/// The README's grpcurl walk-through, run as written (only the address differs), so the
/// documented commands stay copy-paste correct.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readme_grpcurl_walkthrough_runs_as_written() {
    if !have_grpcurl() {
        return;
    }
    let script = readme_sh_block("## Try it with grpcurl", 0);
    assert!(script.contains("127.0.0.1:50051"));
    let Some((_db, app)) = start(Backend::Sqlite).await else {
        return;
    };
    let stdout = run_script(&script.replace("127.0.0.1:50051", &app.addr.to_string())).await;
    for expected in [
        "authd.v1.AuthService",
        "userId",
        "accessToken",
        "\"claims\"",
        "SERVING",
    ] {
        assert!(stdout.contains(expected), "missing {expected}:\n{stdout}");
    }
    app.stop().await;
}
