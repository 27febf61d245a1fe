//! Fixed keys, token minting and the oracles shared by the fuzz targets and the seed
//! generator (`cargo run --example seeds`).
//!
//! The oracles re-check, with the raw primitives and `serde_json::Value` instead of the
//! client's code paths, everything a verifier that said `Ok` has vouched for. The fuzzer
//! holds none of the keys, so an `Ok` the oracle cannot back up is an accepted forgery.
#![allow(clippy::missing_panics_doc)]

use std::time::{SystemTime, UNIX_EPOCH};

use authd_client::{Claims, VerificationKey, Verifier};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use hmac::{Hmac, KeyInit, Mac};
use serde_json::Value;
use sha2::Sha256;

pub const ISSUER: &str = "authd";
pub const AUDIENCE: &str = "authd";
pub const HS_SECRET: &[u8] = b"fuzz-secret-0123456789abcdef0123";
pub const HS_KID: &str = "hs-1";
/// The Ed25519 keys the verifiers trust, by kid (private seeds: the harness signs with them).
pub const ED_KEYS: [(&str, [u8; 32]); 2] = [("ed-1", [1; 32]), ("ed-2", [2; 32])];
/// A key no verifier trusts.
pub const UNTRUSTED_ED: [u8; 32] = [9; 32];
/// Far in the future (2100-01-01), so the valid seed tokens stay valid.
pub const FAR_FUTURE: i64 = 4_102_444_800;
pub const PAST: i64 = 1_700_000_000;

pub fn b64(bytes: impl AsRef<[u8]>) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

pub fn hmac_sha256(secret: &[u8], input: &[u8]) -> Vec<u8> {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes any key length");
    mac.update(input);
    mac.finalize().into_bytes().to_vec()
}

pub fn ed_signing(seed: [u8; 32]) -> SigningKey {
    SigningKey::from_bytes(&seed)
}

pub fn ed_public(seed: [u8; 32]) -> [u8; 32] {
    ed_signing(seed).verifying_key().to_bytes()
}

/// What may sign a token: a trusted key, an untrusted one, or an algorithm confusion.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignWith {
    Hs,
    Ed(usize),
    UntrustedEd,
    /// HS256 with the raw Ed25519 public key of `ed-1` as the HMAC secret.
    HsWithEdPublic,
    /// HS256 with the base64url `x` of `ed-1` as the HMAC secret.
    HsWithEdX,
}

impl SignWith {
    pub const ALL: [Self; 6] = [
        Self::Hs,
        Self::Ed(0),
        Self::Ed(1),
        Self::UntrustedEd,
        Self::HsWithEdPublic,
        Self::HsWithEdX,
    ];

    pub fn sign(self, input: &[u8]) -> Vec<u8> {
        let ed1 = ed_public(ED_KEYS[0].1);
        match self {
            Self::Hs => hmac_sha256(HS_SECRET, input),
            Self::Ed(i) => ed_signing(ED_KEYS[i].1).sign(input).to_bytes().to_vec(),
            Self::UntrustedEd => ed_signing(UNTRUSTED_ED).sign(input).to_bytes().to_vec(),
            Self::HsWithEdPublic => hmac_sha256(&ed1, input),
            Self::HsWithEdX => hmac_sha256(b64(ed1).as_bytes(), input),
        }
    }
}

/// `b64(header).b64(payload).b64(signature)`, the payload and header taken as raw bytes.
pub fn mint_bytes(header: &[u8], payload: &[u8], signer: SignWith) -> String {
    let input = format!("{}.{}", b64(header), b64(payload));
    let sig = signer.sign(input.as_bytes());
    format!("{input}.{}", b64(sig))
}

pub fn mint(header: &Value, payload: &Value, signer: SignWith) -> String {
    mint_bytes(
        header.to_string().as_bytes(),
        payload.to_string().as_bytes(),
        signer,
    )
}

/// The claims authd puts in an access token, valid until 2100.
pub fn authd_claims() -> Value {
    let c = Claims {
        iss: ISSUER.into(),
        sub: "6f1c2a9e-4b3d-4e5f-8a7b-9c0d1e2f3a4b".into(),
        aud: vec![AUDIENCE.into()],
        exp: FAR_FUTURE,
        iat: PAST,
        nbf: PAST,
        jti: "0b8e4b8a-5d0c-4f7e-9a41-2f4f7b0d9c11".into(),
        sid: "3c2b1a09-8f7e-4d6c-b5a4-93827160f5e4".into(),
        username: "ada".into(),
        roles: vec![],
        client_id: None,
    };
    serde_json::to_value(c).expect("claims serialise")
}

/// The key material a verifier trusts, for the oracle.
#[derive(Clone)]
pub enum Trusted {
    Hs {
        kid: Option<&'static str>,
        secret: &'static [u8],
    },
    Ed {
        kid: &'static str,
        key: VerifyingKey,
    },
}

impl Trusted {
    fn kid(&self) -> Option<&str> {
        match self {
            Self::Hs { kid, .. } => *kid,
            Self::Ed { kid, .. } => Some(kid),
        }
    }

    fn alg(&self) -> &'static str {
        match self {
            Self::Hs { .. } => "HS256",
            Self::Ed { .. } => "EdDSA",
        }
    }

    /// Whether `sig_b64` is, in canonical base64url, this key's signature over `input`.
    fn signed(&self, input: &[u8], sig_b64: &str) -> bool {
        match self {
            Self::Hs { secret, .. } => b64(hmac_sha256(secret, input)) == sig_b64,
            Self::Ed { key, .. } => {
                let Ok(bytes) = URL_SAFE_NO_PAD.decode(sig_b64) else {
                    return false;
                };
                let Ok(sig) = Signature::from_slice(&bytes) else {
                    return false;
                };
                b64(&bytes) == sig_b64 && key.verify_strict(input, &sig).is_ok()
            }
        }
    }
}

/// A verifier under test with what the oracle knows it trusts.
pub struct Subject {
    pub name: &'static str,
    pub verifier: Verifier,
    pub trusted: Vec<Trusted>,
}

fn ed_trusted(i: usize) -> Trusted {
    let (kid, seed) = ED_KEYS[i];
    Trusted::Ed {
        kid,
        key: VerifyingKey::from_bytes(&ed_public(seed)).expect("valid point"),
    }
}

fn ed_key(i: usize) -> VerificationKey {
    let (kid, seed) = ED_KEYS[i];
    VerificationKey::ed25519(Some(kid.into()), &ed_public(seed)).expect("usable key")
}

/// The verifiers every token is tried against: the bare HS256 secret (no kid: any kid), two
/// Ed25519 keys by kid, and a mixed set (HS256 with a kid next to an Ed25519 key).
pub fn subjects() -> Vec<Subject> {
    vec![
        Subject {
            name: "hs256",
            verifier: Verifier::hs256(HS_SECRET, ISSUER, AUDIENCE).expect("secret"),
            trusted: vec![Trusted::Hs {
                kid: None,
                secret: HS_SECRET,
            }],
        },
        Subject {
            name: "ed25519",
            verifier: Verifier::new(vec![ed_key(0), ed_key(1)], ISSUER, AUDIENCE),
            trusted: vec![ed_trusted(0), ed_trusted(1)],
        },
        Subject {
            name: "mixed",
            verifier: Verifier::new(
                vec![
                    VerificationKey::hs256(Some(HS_KID.into()), HS_SECRET).expect("secret"),
                    ed_key(0),
                ],
                ISSUER,
                AUDIENCE,
            ),
            trusted: vec![
                Trusted::Hs {
                    kid: Some(HS_KID),
                    secret: HS_SECRET,
                },
                ed_trusted(0),
            ],
        },
    ]
}

/// The audience argument, chosen by the low two bits of a byte: none, empty (the default),
/// the default named, another.
pub fn audience(selector: u8) -> Option<&'static str> {
    match selector & 3 {
        0 => None,
        1 => Some(""),
        2 => Some(AUDIENCE),
        _ => Some("billing"),
    }
}

pub fn now_secs() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// `text` (JSON the client accepted) made readable by `serde_json::Value`, which refuses two
/// things the JSON grammar allows and serde_json skips in members it ignores: unpaired
/// surrogate escapes (`"\ud800"`, RFC 8259 §8.2), replaced by `\ufffd`, and numbers out
/// of the f64 range (`1e999`, §6), replaced by `0`. The oracles read documents through this.
pub fn tame_for_value(text: &str) -> String {
    fn escape_at(b: &[u8], i: usize) -> Option<u16> {
        let hex = b.get(i..i + 6)?;
        if hex[0] != b'\\' || hex[1] != b'u' {
            return None;
        }
        u16::from_str_radix(std::str::from_utf8(&hex[2..]).ok()?, 16).ok()
    }
    let b = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let (mut i, mut copied, mut in_string) = (0, 0, false);
    while i < b.len() {
        match (in_string, b[i]) {
            (_, b'"') => {
                in_string = !in_string;
                i += 1;
            }
            (true, b'\\') => match escape_at(b, i) {
                Some(0xD800..=0xDBFF) if matches!(escape_at(b, i + 6), Some(0xDC00..=0xDFFF)) => {
                    i += 12;
                }
                Some(0xD800..=0xDFFF) => {
                    out.push_str(&text[copied..i]);
                    out.push_str("\\ufffd");
                    i += 6;
                    copied = i;
                }
                // Any other escape: the backslash and the character it escapes.
                _ => i += 2,
            },
            (false, b'-' | b'0'..=b'9') => {
                let start = i;
                while i < b.len() && matches!(b[i], b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E')
                {
                    i += 1;
                }
                if text[start..i].parse::<f64>().is_ok_and(f64::is_infinite) {
                    out.push_str(&text[copied..start]);
                    out.push('0');
                    copied = i;
                }
            }
            _ => i += 1,
        }
    }
    out.push_str(&text[copied..]);
    out
}

fn decode_object(part: &str, what: &str) -> Result<serde_json::Map<String, Value>, String> {
    let bytes = URL_SAFE_NO_PAD
        .decode(part)
        .map_err(|e| format!("{what} is not base64url: {e}"))?;
    let text = std::str::from_utf8(&bytes).map_err(|e| format!("{what} is not UTF-8: {e}"))?;
    match serde_json::from_str(&tame_for_value(text)) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(other) => Err(format!("{what} is JSON but not an object: {other}")),
        Err(e) => Err(format!("{what} is not JSON: {e}")),
    }
}

fn string_list(v: Option<&Value>, what: &str) -> Result<Vec<String>, String> {
    match v {
        Some(Value::String(s)) => Ok(vec![s.clone()]),
        Some(Value::Array(items)) => items
            .iter()
            .map(|i| {
                i.as_str()
                    .map(str::to_owned)
                    .ok_or_else(|| format!("{what} holds a non-string"))
            })
            .collect(),
        _ => Err(format!("{what} is not a string or an array of strings")),
    }
}

/// Everything an `Ok(claims)` from `subject.verifier.verify(token, audience)` vouches for,
/// checked independently; `Err` names what does not hold. `before` and `after` bracket the
/// call's clock.
pub fn check_accepted(
    subject: &Subject,
    token: &str,
    audience: Option<&str>,
    claims: &Claims,
    before: i64,
    after: i64,
) -> Result<(), String> {
    let parts: Vec<&str> = token.split('.').collect();
    let [header_b64, payload_b64, sig_b64] = parts[..] else {
        return Err(format!("{} parts, not 3", parts.len()));
    };
    let signing_input = format!("{header_b64}.{payload_b64}");

    // The header: typed as an access token, no critical extensions, an algorithm we sign with.
    let header = decode_object(header_b64, "header")?;
    let typ = header.get("typ").and_then(Value::as_str).unwrap_or("");
    if !(typ.eq_ignore_ascii_case("at+jwt") || typ.eq_ignore_ascii_case("application/at+jwt")) {
        return Err(format!("typ {:?}", header.get("typ")));
    }
    if header.get("crit").is_some_and(|c| !c.is_null()) {
        return Err("crit present".into());
    }
    let alg = header
        .get("alg")
        .and_then(Value::as_str)
        .ok_or("no string alg")?;
    let kid = match header.get("kid") {
        None | Some(Value::Null) => None,
        Some(Value::String(k)) => Some(k.as_str()),
        Some(other) => return Err(format!("kid {other}")),
    };

    // The key: the one the kid names, else the only key when it has no kid. Its algorithm
    // is the header's, and the signature is its own over exactly `header.payload`.
    let key = kid
        .and_then(|k| subject.trusted.iter().find(|t| t.kid() == Some(k)))
        .or(match subject.trusted.as_slice() {
            [only] if only.kid().is_none() => Some(only),
            _ => None,
        })
        .ok_or_else(|| format!("no trusted key for kid {kid:?}"))?;
    if key.alg() != alg {
        return Err(format!("alg {alg} on a {} key", key.alg()));
    }
    if !key.signed(signing_input.as_bytes(), sig_b64) {
        return Err(format!(
            "FORGERY: the signature is not the {} key {:?}'s over the signing input",
            key.alg(),
            key.kid()
        ));
    }

    // The claims are the payload's, and satisfy the rules.
    let payload = decode_object(payload_b64, "payload")?;
    let s = |name: &str| payload.get(name).and_then(Value::as_str).map(str::to_owned);
    let i = |name: &str| payload.get(name).and_then(Value::as_i64);
    let aud = string_list(payload.get("aud"), "aud")?;
    let roles = match payload.get("roles") {
        None => Vec::new(),
        Some(v @ Value::Array(_)) => string_list(Some(v), "roles")?,
        Some(other) => return Err(format!("roles {other}")),
    };
    let expected = Claims {
        iss: s("iss").ok_or("iss")?,
        sub: s("sub").ok_or("sub")?,
        aud,
        exp: i("exp").ok_or("exp")?,
        iat: i("iat").ok_or("iat")?,
        nbf: i("nbf").ok_or("nbf")?,
        jti: s("jti").ok_or("jti")?,
        sid: s("sid").ok_or("sid")?,
        username: s("username").ok_or("username")?,
        roles,
        // The verifier reads an empty client_id as none.
        client_id: s("client_id").filter(|c| !c.is_empty()),
    };
    if &expected != claims {
        return Err(format!(
            "claims {claims:?} are not the payload's {expected:?}"
        ));
    }
    if claims.iss != ISSUER {
        return Err(format!("issuer {:?}", claims.iss));
    }
    let want = audience.filter(|a| !a.is_empty()).unwrap_or(AUDIENCE);
    if !claims.aud.iter().any(|a| a == want) {
        return Err(format!("audience {:?} lacks {want:?}", claims.aud));
    }
    if claims.exp.saturating_add(30) < before {
        return Err(format!("expired: exp {}", claims.exp));
    }
    if claims.nbf.saturating_sub(30) > after {
        return Err(format!("not yet valid: nbf {}", claims.nbf));
    }
    Ok(())
}

/// Verify `token` with every subject and panic on an `Ok` the oracle does not back.
pub fn verify_everywhere(subjects: &[Subject], token: &str, audience: Option<&str>) {
    for subject in subjects {
        let before = now_secs();
        let result = subject.verifier.verify(token, audience);
        let after = now_secs();
        // The error's reason must be one of the stable codes (and computing it must not panic).
        if let Err(e) = &result {
            let _ = (e.reason(), e.to_string());
        }
        if let Ok(claims) = result
            && let Err(why) = check_accepted(subject, token, audience, &claims, before, after)
        {
            panic!(
                "verifier {} accepted a token it must refuse: {why}\ntoken: {token:?}\naudience: {audience:?}",
                subject.name
            );
        }
        // token_kid reads the header unverified: it must not panic either.
        let _ = authd_client::token_kid(token);
    }
}

#[cfg(test)]
mod tests {
    use super::tame_for_value as tame;

    #[test]
    fn unpaired_surrogates_and_infinite_numbers_are_tamed() {
        assert_eq!(tame(r#"{"a":"\ud800"}"#), r#"{"a":"\ufffd"}"#);
        assert_eq!(
            tame(r#"["\udc00x\uD800\u0041"]"#),
            r#"["\ufffdx\ufffd\u0041"]"#
        );
        assert_eq!(tame(r#"["\ud83d\ude00"]"#), r#"["\ud83d\ude00"]"#, "a pair");
        assert_eq!(
            tame(r#"["\\ud800"]"#),
            r#"["\\ud800"]"#,
            "an escaped backslash"
        );
        assert_eq!(tame(r#"["\\\ud800é"]"#), r#"["\\\ufffdé"]"#);
        assert_eq!(
            tame(r#"["\"\ud800"]"#),
            r#"["\"\ufffd"]"#,
            "an escaped quote"
        );
        assert_eq!(
            tame(r#"{"x":1e999,"y":-1E+400,"z":[1.5e3,-0,12],"s":"1e999"}"#),
            r#"{"x":0,"y":0,"z":[1.5e3,-0,12],"s":"1e999"}"#
        );
        for fixed in [r#"{"a":"\ud800","b":1e999}"#, r#"["\udfff",-9e9999]"#] {
            assert!(serde_json::from_str::<serde_json::Value>(&tame(fixed)).is_ok());
        }
    }
}
