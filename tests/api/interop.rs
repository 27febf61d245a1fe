//! An independent JWT implementation (PyJWT with cryptography) accepts authd's tokens:
//! EdDSA ones through the published JWKS, HS256 ones through the shared secret.
use std::process::Command;

use serde_json::Value;

use crate::helpers::*;

const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/interop/verify_pyjwt.py");

fn have_pyjwt() -> bool {
    Command::new("python3")
        .args(["-c", "import jwt, cryptography"])
        .output()
        .is_ok_and(|o| o.status.success())
}

fn pyjwt(args: &[&str]) -> Result<Value, String> {
    let out = Command::new("python3")
        .arg(SCRIPT)
        .args(args)
        .output()
        .unwrap();
    if out.status.success() {
        Ok(serde_json::from_slice(&out.stdout).unwrap())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pyjwt_verifies_eddsa_tokens_from_the_jwks_and_hs256_from_the_secret() {
    if !have_pyjwt() {
        assert!(
            !in_ci(),
            "PyJWT and cryptography must be installed under CI (pip install pyjwt cryptography)"
        );
        eprintln!("skipping: PyJWT not installed");
        return;
    }
    // EdDSA: the generated key, published through GetJwks.
    let Some(db) = TestDb::new(Backend::Sqlite).await else {
        return;
    };
    let mut s = settings(&db);
    s.jwt_secret = None;
    let app = spawn(s).await;
    let pair = app.login("pat").await;
    let jwks = app.jwks().await;
    let claims = pyjwt(&["eddsa", &jwks, &pair.access_token, "authd", "authd"]).unwrap();
    assert_eq!(claims["username"], "pat");
    // It also refuses what it should: another audience, a tampered token.
    assert!(pyjwt(&["eddsa", &jwks, &pair.access_token, "authd", "other"]).is_err());
    // Flip a character inside the signature (not its last, which carries padding bits).
    let at = pair.access_token.len() - 10;
    let mut tampered = pair.access_token.clone();
    let c = if &tampered[at..at + 1] == "A" {
        "B"
    } else {
        "A"
    };
    tampered.replace_range(at..at + 1, c);
    assert!(pyjwt(&["eddsa", &jwks, &tampered, "authd", "authd"]).is_err());
    app.stop().await;

    // HS256: the shared secret.
    let Some((_db, app)) = start(Backend::Sqlite).await else {
        return;
    };
    let pair = app.login("quin").await;
    let claims = pyjwt(&["hs256", SECRET, &pair.access_token, "authd", "authd"]).unwrap();
    assert_eq!(claims["username"], "quin");
    assert!(
        pyjwt(&[
            "hs256",
            "another-secret-0123456789-abcdefghij",
            &pair.access_token,
            "authd",
            "authd"
        ])
        .is_err()
    );
    app.stop().await;
}
