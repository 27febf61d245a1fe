//! Writes the seed inputs of every target into `fuzz/corpus/<target>/seed-*`:
//! `cargo run --manifest-path fuzz/Cargo.toml --example seeds`. Deterministic (HMAC and
//! Ed25519 signatures are), so re-running rewrites the same files.
//!
//! The signed tokens are valid until 2100 (`FAR_FUTURE`) so the fuzzer reaches the claims
//! checks; the others are the classic attacks, each signed so the verifier gets as far as
//! the check it must fail.
use std::path::{Path, PathBuf};

use authd_fuzz::{
    AUDIENCE, ED_KEYS, FAR_FUTURE, HS_KID, PAST, SignWith, authd_claims, b64, ed_public, mint,
};
use serde_json::{Value, json};

fn dir(target: &str) -> PathBuf {
    let d = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("corpus")
        .join(target);
    std::fs::create_dir_all(&d).expect("create the corpus directory");
    d
}

fn header(alg: &str, kid: Option<&str>) -> Value {
    match kid {
        Some(kid) => json!({"alg": alg, "typ": "at+jwt", "kid": kid}),
        None => json!({"alg": alg, "typ": "at+jwt"}),
    }
}

fn claims_with(edit: impl FnOnce(&mut serde_json::Map<String, Value>)) -> Value {
    let mut c = authd_claims();
    if let Value::Object(map) = &mut c {
        edit(map);
    }
    c
}

/// (name, audience selector, header, payload, signer)
type Case = (&'static str, u8, Value, Value, SignWith);

fn cases() -> Vec<Case> {
    let ok = authd_claims();
    let (ed1, ed2) = (ED_KEYS[0].0, ED_KEYS[1].0);
    let hs = |kid| header("HS256", kid);
    let ed = |kid| header("EdDSA", Some(kid));
    let mut v: Vec<Case> = vec![
        // Valid: what authd mints.
        ("ok-hs256", 0, hs(Some(HS_KID)), ok.clone(), SignWith::Hs),
        ("ok-hs256-no-kid", 0, hs(None), ok.clone(), SignWith::Hs),
        ("ok-eddsa-ed1", 0, ed(ed1), ok.clone(), SignWith::Ed(0)),
        ("ok-eddsa-ed2", 2, ed(ed2), ok.clone(), SignWith::Ed(1)),
        (
            "ok-eddsa-roles-two-audiences",
            3,
            ed(ed1),
            claims_with(|c| {
                c.insert("aud".into(), json!(["billing", AUDIENCE]));
                c.insert("roles".into(), json!(["admin", "ops"]));
            }),
            SignWith::Ed(0),
        ),
        (
            "ok-hs256-typ-variants",
            1,
            json!({"alg": "HS256", "typ": "application/AT+JWT"}),
            ok.clone(),
            SignWith::Hs,
        ),
        (
            "ok-hs256-escaped-header",
            0,
            // JSON escapes: the header fields are owned, not borrowed, on this path.
            Value::Null,
            ok.clone(),
            SignWith::Hs,
        ),
        // alg none, and algorithms authd never uses.
        (
            "alg-none-kid",
            0,
            json!({"alg": "none", "typ": "at+jwt", "kid": HS_KID}),
            ok.clone(),
            SignWith::Hs,
        ),
        (
            "alg-hs512",
            0,
            hs(None).tap("alg", json!("HS512")),
            ok.clone(),
            SignWith::Hs,
        ),
        // HS256/EdDSA confusion: the Ed25519 public key (raw, or its `x`) as an HMAC secret.
        (
            "confusion-raw-public",
            0,
            hs(Some(ed1)),
            ok.clone(),
            SignWith::HsWithEdPublic,
        ),
        (
            "confusion-x-public",
            0,
            hs(Some(ed1)),
            ok.clone(),
            SignWith::HsWithEdX,
        ),
        (
            "confusion-eddsa-on-hs",
            0,
            header("EdDSA", Some(HS_KID)),
            ok.clone(),
            SignWith::Ed(0),
        ),
        // Right key, wrong kid; untrusted key, trusted kid.
        ("kid-swap", 0, ed(ed1), ok.clone(), SignWith::Ed(1)),
        (
            "untrusted-key",
            0,
            ed(ed1),
            ok.clone(),
            SignWith::UntrustedEd,
        ),
        ("unknown-kid", 0, ed("ed-3"), ok.clone(), SignWith::Ed(0)),
        // Not an access token; critical extensions.
        (
            "typ-jwt",
            0,
            json!({"alg": "HS256", "typ": "JWT"}),
            ok.clone(),
            SignWith::Hs,
        ),
        (
            "typ-missing",
            0,
            json!({"alg": "HS256"}),
            ok.clone(),
            SignWith::Hs,
        ),
        (
            "crit",
            0,
            json!({"alg": "HS256", "typ": "at+jwt", "crit": ["exp"], "exp": 1}),
            ok.clone(),
            SignWith::Hs,
        ),
        // Claims checks, each failing one rule.
        (
            "expired",
            0,
            hs(None),
            claims_with(|c| drop(c.insert("exp".into(), json!(PAST)))),
            SignWith::Hs,
        ),
        (
            "nbf-future",
            0,
            hs(None),
            claims_with(|c| drop(c.insert("nbf".into(), json!(FAR_FUTURE)))),
            SignWith::Hs,
        ),
        (
            "exp-float",
            0,
            hs(None),
            claims_with(|c| drop(c.insert("exp".into(), json!(4.1e9)))),
            SignWith::Hs,
        ),
        (
            "ok-exp-max",
            0,
            hs(None),
            claims_with(|c| drop(c.insert("exp".into(), json!(i64::MAX)))),
            SignWith::Hs,
        ),
        (
            "ok-nbf-min",
            0,
            hs(None),
            claims_with(|c| drop(c.insert("nbf".into(), json!(i64::MIN)))),
            SignWith::Hs,
        ),
        (
            "wrong-issuer",
            0,
            hs(None),
            claims_with(|c| drop(c.insert("iss".into(), json!("evil")))),
            SignWith::Hs,
        ),
        (
            "wrong-audience",
            2,
            hs(None),
            claims_with(|c| drop(c.insert("aud".into(), json!("billing")))),
            SignWith::Hs,
        ),
        (
            "aud-null",
            0,
            hs(None),
            claims_with(|c| drop(c.insert("aud".into(), Value::Null))),
            SignWith::Hs,
        ),
        (
            "roles-string",
            0,
            hs(None),
            claims_with(|c| drop(c.insert("roles".into(), json!("admin")))),
            SignWith::Hs,
        ),
        ("payload-array", 0, hs(None), json!(["authd"]), SignWith::Hs),
    ];
    for claim in [
        "exp", "nbf", "iss", "aud", "sub", "iat", "jti", "sid", "username",
    ] {
        let name: &'static str = Box::leak(format!("missing-{claim}").into_boxed_str());
        v.push((
            name,
            0,
            hs(None),
            claims_with(|c| drop(c.remove(claim))),
            SignWith::Hs,
        ));
    }
    v
}

trait Tap {
    fn tap(self, key: &str, value: Value) -> Self;
}

impl Tap for Value {
    fn tap(mut self, key: &str, value: Value) -> Self {
        self[key] = value;
        self
    }
}

const ESCAPED_HEADER: &str =
    r#"{"alg":"HS\u0032\u0035\u0036","typ":"at\u002bjwt","kid":"hs\u002d1"}"#;

/// The valid seeds verify somewhere (with the oracle's blessing), the others nowhere: the
/// seeds reach the checks they are meant to.
fn check(name: &str, token: &str, selector: u8) {
    let audience = authd_fuzz::audience(selector);
    let results: Vec<String> = authd_fuzz::subjects()
        .iter()
        .map(|s| {
            let r = s.verifier.verify(token, audience);
            authd_fuzz::verify_everywhere(std::slice::from_ref(s), token, audience);
            format!("{}: {}", s.name, r.map_or_else(|e| e.reason(), |_| "OK"))
        })
        .collect();
    let accepted = results.iter().any(|r| r.ends_with("OK"));
    assert_eq!(accepted, name.starts_with("ok-"), "{name}: {results:?}");
    println!("{name:34} {}", results.join(", "));
}

fn write(dir: &Path, name: &str, bytes: &[u8]) {
    std::fs::write(dir.join(format!("seed-{name}")), bytes).expect("write a seed");
}

fn main() {
    let tokens = dir("verify_token");
    let claims = dir("verify_claims");
    for (name, selector, header, payload, signer) in cases() {
        let header_text = if header.is_null() {
            ESCAPED_HEADER.to_owned()
        } else {
            header.to_string()
        };
        let payload_text = payload.to_string();
        let token = authd_fuzz::mint_bytes(header_text.as_bytes(), payload_text.as_bytes(), signer);
        check(name, &token, selector);
        write(&tokens, name, &[&[selector][..], token.as_bytes()].concat());

        let signer_index = SignWith::ALL
            .iter()
            .position(|s| *s == signer)
            .expect("a listed signer") as u8;
        let selector = selector | (signer_index << 2);
        let input = [
            &[selector][..],
            header_text.as_bytes(),
            &[0xFF],
            payload_text.as_bytes(),
        ]
        .concat();
        write(&claims, name, &input);
    }
    // Unsigned and garbled tokens.
    let valid = mint(&header("HS256", None), &authd_claims(), SignWith::Hs);
    let (input, sig) = valid.rsplit_once('.').expect("three parts");
    let unsigned = format!(
        "{}.{}.",
        b64(json!({"alg":"none","typ":"at+jwt"}).to_string()),
        b64(authd_claims().to_string())
    );
    for (name, token) in [
        ("alg-none-unsigned", unsigned),
        ("two-parts", input.to_owned()),
        ("four-parts", format!("{valid}.x")),
        ("padded", format!("{input}.{sig}=")),
        ("signature-truncated", format!("{input}.{}", &sig[4..])),
        ("empty", String::new()),
    ] {
        write(&tokens, name, &[&[0u8][..], token.as_bytes()].concat());
    }

    let jwks = dir("parse_jwks");
    let x = |i: usize| b64(ed_public(ED_KEYS[i].1));
    let okp = |kid: &str, x: &str| json!({"kty": "OKP", "crv": "Ed25519", "kid": kid, "alg": "EdDSA", "use": "sig", "x": x});
    let docs: Vec<(&str, Value)> = vec![
        ("authd-hs256-mode", json!({"keys": []})),
        ("authd-one-key", json!({"keys": [okp(ED_KEYS[0].0, &x(0))]})),
        (
            "authd-rotation",
            json!({"keys": [okp(ED_KEYS[0].0, &x(0)), okp(ED_KEYS[1].0, &x(1))]}),
        ),
        (
            "minimal-okp",
            json!({"keys": [{"kty": "OKP", "crv": "Ed25519", "x": x(0)}]}),
        ),
        (
            "key-ops-verify",
            json!({"keys": [{"kty": "OKP", "crv": "Ed25519", "kid": "k", "key_ops": ["verify"], "x": x(0), "x5t": "ignored"}]}),
        ),
        (
            "others-ignored",
            json!({"keys": [
                {"kty": "RSA", "kid": "rsa", "n": "AQAB", "e": "AQAB", "alg": "RS256"},
                {"kty": "EC", "kid": "ec", "crv": "P-256", "x": "AA", "y": "AA"},
                {"kty": "OKP", "crv": "X25519", "kid": "x25519", "x": x(0)},
                {"kty": "OKP", "crv": "Ed25519", "kid": "enc", "use": "enc", "x": x(0)},
                {"kty": "OKP", "crv": "Ed25519", "kid": "sign-only", "key_ops": ["sign"], "x": x(0)},
                okp("good", &x(1)),
            ]}),
        ),
        (
            "private-d",
            json!({"keys": [okp("pub", &x(0)), {"kty": "OKP", "crv": "Ed25519", "kid": "leak", "x": x(1), "d": b64([2u8; 32])}]}),
        ),
        (
            "oct-k",
            json!({"keys": [okp("pub", &x(0)), {"kty": "oct", "kid": "hmac", "k": b64(b"secret")}]}),
        ),
        (
            "rsa-d",
            json!({"keys": [{"kty": "RSA", "kid": "r", "n": "AQAB", "e": "AQAB", "d": "AQAB"}]}),
        ),
        (
            "duplicate-kid",
            json!({"keys": [okp("k", &x(0)), okp("k", &x(1))]}),
        ),
        (
            "weak-key",
            json!({"keys": [okp("k", "AQAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")]}),
        ),
        ("short-x", json!({"keys": [okp("k", "AAAA")]})),
        (
            "no-x",
            json!({"keys": [{"kty": "OKP", "crv": "Ed25519", "kid": "k"}]}),
        ),
        ("bad-base64-x", json!({"keys": [okp("k", "!!")]})),
        ("not-a-set", json!({"kees": []})),
    ];
    for (name, doc) in docs {
        write(&jwks, name, doc.to_string().as_bytes());
    }
    // Pretty-printed, as a proxy might re-serialise it.
    let pretty =
        serde_json::to_string_pretty(&json!({"keys": [okp(ED_KEYS[0].0, &x(0))]})).expect("json");
    write(&jwks, "pretty", pretty.as_bytes());
    println!(
        "seeds written under {}",
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("corpus")
            .display()
    );
}
