//! Test support (feature `test-util`): keys that mint tokens shaped like authd's, and a
//! stand-in authd on 127.0.0.1 that serves a JWKS you control and, when asked to,
//! answers `Validate`. For the tests of services that use this crate; never in production.
//!
//! They panic on a test's own set-up mistakes (an empty secret), as test helpers do.
#![allow(clippy::panic)]

#[cfg(feature = "grpc")]
mod fake_authd;
#[cfg(feature = "grpc")]
pub use fake_authd::FakeAuthd;

use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ed25519_dalek::{Signer as _, SigningKey};
use hmac::{Hmac, KeyInit, Mac};
use serde_json::{Value, json};
use sha2::Sha256;

use crate::{Claims, TOKEN_TYPE, VerificationKey};

/// A signing key for tests: HS256 or Ed25519, with a kid.
#[derive(Clone)]
pub struct TestKey {
    kid: String,
    kind: Kind,
}

#[derive(Clone)]
enum Kind {
    Hs256(Vec<u8>),
    Ed25519(SigningKey),
}

impl std::fmt::Debug for TestKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestKey")
            .field("kid", &self.kid)
            .field("alg", &self.alg())
            .finish_non_exhaustive()
    }
}

impl TestKey {
    /// An HS256 shared secret.
    pub fn hs256(kid: &str, secret: &[u8]) -> Self {
        Self {
            kid: kid.to_owned(),
            kind: Kind::Hs256(secret.to_vec()),
        }
    }

    /// An Ed25519 key from a 32-byte seed (fixed seeds keep tests reproducible).
    pub fn ed25519(kid: &str, seed: [u8; 32]) -> Self {
        Self {
            kid: kid.to_owned(),
            kind: Kind::Ed25519(SigningKey::from_bytes(&seed)),
        }
    }

    /// The key id.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// `HS256` or `EdDSA`.
    pub fn alg(&self) -> &'static str {
        match self.kind {
            Kind::Hs256(_) => "HS256",
            Kind::Ed25519(_) => "EdDSA",
        }
    }

    /// What verifies this key's tokens.
    pub fn verification_key(&self) -> VerificationKey {
        let built = match &self.kind {
            Kind::Hs256(secret) => VerificationKey::hs256(Some(self.kid.clone()), secret),
            Kind::Ed25519(k) => {
                VerificationKey::ed25519(Some(self.kid.clone()), k.verifying_key().as_bytes())
            }
        };
        match built {
            Ok(key) => key,
            // Only an empty HS256 secret fails, and that is the test's own mistake.
            Err(e) => panic!("test key {} is unusable: {e}", self.kid),
        }
    }

    /// The raw Ed25519 public key (`None` for HS256).
    pub fn public_key(&self) -> Option<[u8; 32]> {
        match &self.kind {
            Kind::Ed25519(k) => Some(k.verifying_key().to_bytes()),
            Kind::Hs256(_) => None,
        }
    }

    /// The public JWK, as authd publishes it (`None` for HS256: a secret is never published).
    pub fn jwk(&self) -> Option<Value> {
        self.public_key().map(|x| {
            json!({
                "kty": "OKP", "crv": "Ed25519", "kid": self.kid, "alg": "EdDSA", "use": "sig",
                "x": URL_SAFE_NO_PAD.encode(x),
            })
        })
    }

    /// Sign `input` with this key's own algorithm, whatever a header says.
    pub fn sign(&self, input: &[u8]) -> Vec<u8> {
        match &self.kind {
            Kind::Hs256(secret) => hmac_sha256(secret, input),
            Kind::Ed25519(k) => k.sign(input).to_bytes().to_vec(),
        }
    }

    /// The header authd puts on its access tokens.
    pub fn header(&self) -> Value {
        json!({ "alg": self.alg(), "typ": TOKEN_TYPE, "kid": self.kid })
    }

    /// A token with any header and claims, signed by this key: for tokens authd would
    /// never mint (`alg: none`, a wrong `typ`, a missing claim...).
    pub fn mint_raw(&self, header: &Value, claims: &Value) -> String {
        let input = format!("{}.{}", encode_part(header), encode_part(claims));
        let signature = URL_SAFE_NO_PAD.encode(self.sign(input.as_bytes()));
        format!("{input}.{signature}")
    }

    /// A token as authd mints it.
    pub fn mint(&self, claims: &Claims) -> String {
        self.mint_raw(&self.header(), &claims_json(claims))
    }
}

/// HMAC-SHA256 of `input` under `key`: also what an attacker would compute with a public
/// key as the "secret" in an algorithm-confusion attempt.
pub fn hmac_sha256(key: &[u8], input: &[u8]) -> Vec<u8> {
    match Hmac::<Sha256>::new_from_slice(key) {
        Ok(mut mac) => {
            mac.update(input);
            mac.finalize().into_bytes().to_vec()
        }
        // HMAC takes a key of any length.
        Err(_) => Vec::new(),
    }
}

fn encode_part(value: &Value) -> String {
    URL_SAFE_NO_PAD.encode(value.to_string())
}

/// `claims` as JSON (for editing before [`TestKey::mint_raw`]).
pub fn claims_json(claims: &Claims) -> Value {
    serde_json::to_value(claims).unwrap_or(Value::Null)
}

/// Seconds since the Unix epoch.
pub fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// Claims authd would mint now for `username`: issuer and audience `authd`, 15 minutes.
pub fn claims(username: &str) -> Claims {
    let now = now();
    Claims {
        iss: "authd".into(),
        sub: "6f1c2a9e-4b3d-4e5f-8a7b-9c0d1e2f3a4b".into(),
        aud: vec!["authd".into()],
        exp: now + 900,
        iat: now,
        nbf: now,
        jti: format!("jti-{username}-{now}"),
        sid: format!("sid-{username}"),
        username: username.into(),
        roles: vec![],
        client_id: None,
    }
}

/// A JWKS of the public keys among `keys` (HS256 keys are left out, as authd does).
pub fn jwks_json(keys: &[&TestKey]) -> String {
    let keys: Vec<Value> = keys.iter().filter_map(|k| k.jwk()).collect();
    json!({ "keys": keys }).to_string()
}
