//! An independent JWT implementation (PyJWT with cryptography) accepts authd's tokens:
//! EdDSA ones through the published JWKS, HS256 ones through the shared secret.
use serde_json::Value;

use crate::helpers::*;

/// What PyJWT made of a token.
#[derive(Debug, PartialEq)]
enum Verdict {
    /// Verified: the claims.
    Accepted(Value),
    /// Not verified: PyJWT's exception class (or the script's own reason).
    Refused(String),
}

fn refused(why: &str) -> Verdict {
    Verdict::Refused(why.to_owned())
}

/// Run the script (`pyjwt_verify`: a crash fails the test rather than passing for a
/// refusal).
fn pyjwt(args: &[&str]) -> Verdict {
    match pyjwt_verify(args) {
        Ok(claims) => Verdict::Accepted(claims),
        Err(why) => Verdict::Refused(why),
    }
}

fn accepted(verdict: Verdict) -> Value {
    match verdict {
        Verdict::Accepted(claims) => claims,
        other => panic!("PyJWT refused a good token: {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pyjwt_verifies_eddsa_tokens_from_the_jwks_and_hs256_from_the_secret() {
    if !have_pyjwt() {
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
    let claims = accepted(pyjwt(&[
        "eddsa",
        &jwks,
        &pair.access_token,
        "authd",
        "authd",
    ]));
    assert_eq!(claims["username"], "pat");
    // It also refuses what it should, for the right reason: another audience, a tampered
    // token.
    assert_eq!(
        pyjwt(&["eddsa", &jwks, &pair.access_token, "authd", "other"]),
        refused("InvalidAudienceError")
    );
    // Flip a character inside the signature (not its last, which carries padding bits).
    let at = pair.access_token.len() - 10;
    let mut tampered = pair.access_token.clone();
    let c = if &tampered[at..at + 1] == "A" {
        "B"
    } else {
        "A"
    };
    tampered.replace_range(at..at + 1, c);
    assert_eq!(
        pyjwt(&["eddsa", &jwks, &tampered, "authd", "authd"]),
        refused("InvalidSignatureError")
    );
    app.stop().await;

    // HS256: the shared secret.
    let Some((_db, app)) = start(Backend::Sqlite).await else {
        return;
    };
    let pair = app.login("quin").await;
    let claims = accepted(pyjwt(&[
        "hs256",
        SECRET,
        &pair.access_token,
        "authd",
        "authd",
    ]));
    assert_eq!(claims["username"], "quin");
    assert_eq!(
        pyjwt(&[
            "hs256",
            "another-secret-0123456789-abcdefghij",
            &pair.access_token,
            "authd",
            "authd"
        ]),
        refused("InvalidSignatureError")
    );
    app.stop().await;
}
