//! Validate refuses every forged or unfit token, each with its own reason.
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey, Header, encode};
use serde_json::{Value, json};
use tonic::Code;

use crate::helpers::*;

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// Sign arbitrary claims with the server's secret, the server's kid, and `typ: at+jwt`.
fn forge(kid: &str, claims: &Value, secret: &str) -> String {
    let mut h = Header::new(Algorithm::HS256);
    h.kid = Some(kid.into());
    h.typ = Some("at+jwt".into());
    encode(
        &h,
        claims,
        &EncodingKey::from_secret(secret.as_bytes()).unwrap(),
    )
    .unwrap()
}

fn b64(v: &Value) -> String {
    URL_SAFE_NO_PAD.encode(v.to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_and_unfit_tokens_are_refused_with_their_reason() {
    let Some((_db, app)) = start(Backend::Sqlite).await else {
        return;
    };
    let pair = app.login("mallory").await;
    let real = app.validate(&pair.access_token, "").await.unwrap();
    let kid = jsonwebtoken::decode_header(&pair.access_token)
        .unwrap()
        .kid
        .unwrap();
    let base = json!({
        "iss": "authd", "sub": real.sub, "aud": "authd", "exp": now() + 600,
        "iat": now(), "nbf": now(), "jti": "j", "sid": real.sid, "username": "mallory",
        "roles": ["admin"],
    });
    let with = |k: &str, v: Value| {
        let mut c = base.clone();
        c[k] = v;
        c
    };
    let without = |k: &str| {
        let mut c = base.clone();
        c.as_object_mut().unwrap().remove(k);
        c
    };
    // A correctly forged token passes: the test's forging is faithful.
    app.validate(&forge(&kid, &base, SECRET), "").await.unwrap();

    let parts: Vec<&str> = pair.access_token.split('.').collect();
    let mut sig = parts[2].to_owned();
    let flipped = if sig.starts_with('A') { 'B' } else { 'A' };
    sig.replace_range(0..1, &flipped.to_string());
    let flipped_sig = format!("{}.{}.{}", parts[0], parts[1], sig);

    let alg_none = format!(
        "{}.{}.",
        b64(&json!({"alg": "none", "typ": "at+jwt", "kid": kid})),
        b64(&base)
    );
    // HS/RS confusion: claims RS256 while carrying an HMAC signature.
    let hs_as_rs = {
        let t = forge(&kid, &base, SECRET);
        let p: Vec<&str> = t.split('.').collect();
        format!(
            "{}.{}.{}",
            b64(&json!({"alg": "RS256", "typ": "at+jwt", "kid": kid})),
            p[1],
            p[2]
        )
    };
    let wrong_typ = {
        let mut h = Header::new(Algorithm::HS256);
        h.kid = Some(kid.clone());
        h.typ = Some("JWT".into());
        encode(
            &h,
            &base,
            &EncodingKey::from_secret(SECRET.as_bytes()).unwrap(),
        )
        .unwrap()
    };

    let cases: Vec<(&str, String, &str)> = vec![
        ("alg none", alg_none, "WRONG_ALGORITHM"),
        ("HS256 signature, RS256 header", hs_as_rs, "WRONG_ALGORITHM"),
        ("flipped signature", flipped_sig, "BAD_SIGNATURE"),
        (
            "other secret",
            forge(&kid, &base, "another-secret-0123456789-abcdefghijkl"),
            "BAD_SIGNATURE",
        ),
        (
            "expired",
            forge(&kid, &with("exp", json!(now() - 120)), SECRET),
            "TOKEN_EXPIRED",
        ),
        (
            "not yet valid",
            forge(&kid, &with("nbf", json!(now() + 600)), SECRET),
            "TOKEN_NOT_YET_VALID",
        ),
        (
            "other issuer",
            forge(&kid, &with("iss", json!("evil")), SECRET),
            "WRONG_ISSUER",
        ),
        (
            "other audience",
            forge(&kid, &with("aud", json!("evil")), SECRET),
            "WRONG_AUDIENCE",
        ),
        (
            "missing exp",
            forge(&kid, &without("exp"), SECRET),
            "MISSING_CLAIM",
        ),
        (
            "unknown kid",
            forge("other-kid", &base, SECRET),
            "UNKNOWN_KEY",
        ),
        ("wrong typ", wrong_typ, "WRONG_TOKEN_TYPE"),
        ("garbage", "abc.def.ghi".into(), "TOKEN_MALFORMED"),
        ("not even a JWT", "hello".into(), "TOKEN_MALFORMED"),
        ("empty", String::new(), "TOKEN_MALFORMED"),
    ];
    for (what, token, why) in cases {
        let s = app.validate(&token, "").await.unwrap_err();
        assert_eq!(s.code(), Code::Unauthenticated, "{what}: {s:?}");
        assert_eq!(reason(&s), why, "{what}: {s:?}");
        assert!(!s.message().is_empty(), "{what}: a person-readable message");
        if !token.is_empty() {
            assert!(
                !s.message().contains(&token),
                "{what}: the token is not echoed"
            );
        }
    }

    // Within the 30 s leeway, a just-expired token still passes; past it, it does not.
    app.validate(&forge(&kid, &with("exp", json!(now() - 10)), SECRET), "")
        .await
        .unwrap();
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn validate_with_an_expected_audience() {
    let Some(db) = TestDb::new(Backend::Sqlite).await else {
        return;
    };
    let mut s = settings(&db);
    s.audiences = vec!["payments".into()];
    let app = spawn(s).await;
    let pair = app.login("olivia").await;
    app.validate(&pair.access_token, "authd").await.unwrap();
    assert_refused(
        app.validate(&pair.access_token, "payments").await,
        Code::Unauthenticated,
        "WRONG_AUDIENCE",
    );
    app.stop().await;
}
