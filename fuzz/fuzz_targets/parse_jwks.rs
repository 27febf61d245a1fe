//! A JWKS document, as authd's GetJwks (or whoever answers in its place) returns it.
//!
//! Never panics. Whatever `parse_jwks` accepts is an Ed25519 verification key: 32 bytes, a
//! valid and not small-order point, published in the document as its canonical base64url
//! `x`, kids unique. A set with private (`d`) or symmetric (`k`) material in any key is
//! refused whole. `Verifier::from_jwks_json` agrees with `parse_jwks`.
#![no_main]

use authd_client::{Verifier, parse_jwks};
use authd_fuzz::b64;
use ed25519_dalek::VerifyingKey;
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

/// Every string in the document (keys and values), however deeply nested.
fn strings(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::String(s) => out.push(s.clone()),
        Value::Array(items) => items.iter().for_each(|i| strings(i, out)),
        Value::Object(map) => map.iter().for_each(|(k, i)| {
            out.push(k.clone());
            strings(i, out);
        }),
        _ => {}
    }
}

/// Whether any key object of the set carries a non-null `d` or `k`.
fn leaks_private_material(doc: &Value) -> bool {
    let keys = match doc {
        Value::Object(map) => map.get("keys"),
        // serde also reads a struct from a JSON array, in field order: `[[key, ...]]`.
        Value::Array(items) => items.first(),
        _ => None,
    };
    let Some(Value::Array(keys)) = keys else {
        return false;
    };
    keys.iter().any(|k| {
        k.as_object().is_some_and(|o| {
            ["d", "k"]
                .iter()
                .any(|m| o.get(*m).is_some_and(|v| !v.is_null()))
        })
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(json) = std::str::from_utf8(data) else {
        return;
    };
    let parsed = parse_jwks(json);
    let verifier = Verifier::from_jwks_json(json, "authd", "authd");
    assert_eq!(
        parsed.as_ref().map(Vec::len).map_err(Clone::clone),
        verifier
            .as_ref()
            .map(|v| v.keys().len())
            .map_err(Clone::clone),
        "parse_jwks and Verifier::from_jwks_json disagree"
    );
    if let Err(e) = &parsed {
        let _ = e.to_string();
    }
    let Ok(keys) = parsed else {
        return;
    };
    let doc: Value =
        serde_json::from_str(&authd_fuzz::tame_for_value(json)).expect("an accepted JWKS is JSON");
    assert!(
        !leaks_private_material(&doc),
        "a JWKS with private key material was accepted: {json}"
    );
    let mut published = Vec::new();
    strings(&doc, &mut published);
    let mut kids = Vec::new();
    for key in &keys {
        assert_eq!(key.algorithm(), "EdDSA", "{key:?}");
        let public = key
            .ed25519_public_key()
            .expect("an accepted key is an Ed25519 public key");
        let point = VerifyingKey::from_bytes(&public).expect("an accepted key is a curve point");
        assert!(!point.is_weak(), "a small-order key was accepted: {json}");
        assert!(
            published.contains(&b64(public)),
            "key {public:?} is not in the document: {json}"
        );
        if let Some(kid) = key.kid() {
            assert!(!kids.contains(&kid), "duplicate kid {kid} accepted: {json}");
            kids.push(kid);
        }
    }
});
