//! Signing keys: what a key is (an Ed25519 private key or an HS256 secret), when a stored
//! key signs and verifies (rotation), and the public JWKS. `token` mints and verifies with
//! the [`KeySet`] built here.
//!
//! Rotation: every stored key has an activation time. The key with the latest activation
//! not in the future signs (`active`); keys activating later are published and verify
//! already (`next`); an older key stopped signing when the key after it activated, and
//! verifies until its last token has expired (`retiring`), then is dropped (`retired`).
use std::path::Path;
use std::time::Duration;

use authd_client::{LEEWAY_SECS, VerificationKey, Verifier};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use chrono::{DateTime, Utc};
use ed25519_dalek::pkcs8::{DecodePrivateKey, EncodePrivateKey};
use jsonwebtoken::{Algorithm, EncodingKey};
use rand::RngCore;
use secrecy::zeroize::Zeroizing;
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};

use crate::store::{Store, StoreError, keys::SigningKeyRow};

/// The `algorithm` column of an Ed25519 key (its JWS name).
pub const EDDSA: &str = "EdDSA";
/// The `algorithm` column of a generated HS256 secret (kept by databases from before
/// Ed25519 keys).
pub const HS256: &str = "HS256";

/// Signing-key failures. None of them carries key material.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("stored signing key {kid} is unreadable: {reason}")]
    BadStoredKey { kid: String, reason: String },
    #[error("cannot use the signing key file {path}: {reason}")]
    BadKeyFile { path: String, reason: String },
    #[error("the database holds no signing key")]
    NoKey,
    #[error("cannot use the signing key: {0}")]
    Unusable(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Where a stored key stands at a given moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyState {
    /// Activates later: published and verifying already, not signing yet.
    Next,
    /// Signs new tokens.
    Active,
    /// A newer key signs; tokens this one signed may still be live, so it still verifies.
    Retiring,
    /// Every token it signed has expired: neither published nor accepted.
    Retired,
}

impl KeyState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Next => "next",
            Self::Active => "active",
            Self::Retiring => "retiring",
            Self::Retired => "retired",
        }
    }

    fn verifies(self) -> bool {
        self != Self::Retired
    }

    fn signs_now_or_later(self) -> bool {
        matches!(self, Self::Next | Self::Active)
    }
}

impl std::fmt::Display for KeyState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How long after a newer key activates an older one keeps verifying: a token it signed
/// just before lives `access_ttl`, verifiers allow the leeway past `exp`, and an instance
/// that has not reloaded the keys yet may sign with the older key for `key_refresh` more.
pub fn retire_grace(access_ttl: Duration, key_refresh: Duration) -> Duration {
    access_ttl
        .saturating_add(Duration::from_secs(LEEWAY_SECS))
        .saturating_add(key_refresh)
}

/// When a stored key signs from; rows from before rotation existed have only `created_at`.
pub fn activation(row: &SigningKeyRow) -> DateTime<Utc> {
    row.activates_at.unwrap_or(row.created_at)
}

/// Indexes of `rows` by activation (ties: creation, then kid), so every instance agrees on
/// which key is the newest.
fn by_activation(rows: &[SigningKeyRow]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..rows.len()).collect();
    order.sort_by(|&a, &b| {
        let (a, b) = (&rows[a], &rows[b]);
        (activation(a), a.created_at, &a.kid).cmp(&(activation(b), b.created_at, &b.kid))
    });
    order
}

/// The state of every row at `now`, in the order of `rows`. `grace` as [`retire_grace`].
pub fn key_states(rows: &[SigningKeyRow], now: DateTime<Utc>, grace: Duration) -> Vec<KeyState> {
    let grace = chrono::Duration::from_std(grace).unwrap_or(chrono::Duration::MAX);
    let order = by_activation(rows);
    let mut states = vec![KeyState::Retired; rows.len()];
    for (pos, &i) in order.iter().enumerate() {
        states[i] = if activation(&rows[i]) > now {
            KeyState::Next
        } else {
            // The key after this one in activation order replaced it, if it is active yet.
            let replaced_at = order
                .get(pos + 1)
                .map(|&j| activation(&rows[j]))
                .filter(|t| *t <= now);
            match replaced_at {
                None => KeyState::Active,
                Some(t) if t.checked_add_signed(grace).is_none_or(|end| now < end) => {
                    KeyState::Retiring
                }
                Some(_) => KeyState::Retired,
            }
        };
    }
    states
}

/// A key that can sign, with what verifies its tokens. Debug never shows the material.
pub(crate) struct SigningMaterial {
    kid: String,
    algorithm: Algorithm,
    encoding: EncodingKey,
    verification: VerificationKey,
    /// The Ed25519 public key, for the JWKS. `None` for an HS256 secret: symmetric material
    /// is never published.
    public: Option<[u8; 32]>,
}

impl std::fmt::Debug for SigningMaterial {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningMaterial")
            .field("kid", &self.kid)
            .field("algorithm", &self.algorithm)
            .finish_non_exhaustive()
    }
}

impl SigningMaterial {
    pub(crate) fn hs256(kid: String, secret: &[u8]) -> Result<Self, KeyError> {
        let encoding =
            EncodingKey::from_secret(secret).map_err(|e| KeyError::Unusable(e.to_string()))?;
        let verification = VerificationKey::hs256(Some(kid.clone()), secret)
            .map_err(|e| KeyError::Unusable(e.to_string()))?;
        Ok(Self {
            kid,
            algorithm: Algorithm::HS256,
            encoding,
            verification,
            public: None,
        })
    }

    /// An Ed25519 key; `kid` defaults to its RFC 7638 thumbprint.
    pub(crate) fn ed25519(
        kid: Option<String>,
        key: &ed25519_dalek::SigningKey,
    ) -> Result<Self, KeyError> {
        let der = key
            .to_pkcs8_der()
            .map_err(|e| KeyError::Unusable(e.to_string()))?;
        let public = key.verifying_key().to_bytes();
        let kid = kid.unwrap_or_else(|| thumbprint(&public));
        let verification = VerificationKey::ed25519(Some(kid.clone()), &public)
            .map_err(|e| KeyError::Unusable(e.to_string()))?;
        Ok(Self {
            kid,
            algorithm: Algorithm::EdDSA,
            encoding: EncodingKey::from_ed_der(der.as_bytes()),
            verification,
            public: Some(public),
        })
    }

    /// An operator's Ed25519 key: a PKCS#8 PEM file (`openssl genpkey -algorithm ed25519`).
    /// Its kid is the thumbprint, so every instance given the same file names it alike.
    pub(crate) fn from_pem_file(path: &Path) -> Result<Self, KeyError> {
        let bad = |reason: String| KeyError::BadKeyFile {
            path: path.display().to_string(),
            reason,
        };
        let pem =
            SecretString::from(std::fs::read_to_string(path).map_err(|e| bad(e.to_string()))?);
        // pkcs8's errors name what is wrong with the document, never its content.
        let key = ed25519_dalek::SigningKey::from_pkcs8_pem(pem.expose_secret())
            .map_err(|e| bad(format!("not an Ed25519 PKCS#8 PEM private key ({e})")))?;
        Self::ed25519(None, &key)
    }

    fn from_row(row: &SigningKeyRow) -> Result<Self, KeyError> {
        let bad = |reason: String| KeyError::BadStoredKey {
            kid: row.kid.clone(),
            reason,
        };
        let material = Zeroizing::new(
            STANDARD
                .decode(&row.material)
                .map_err(|e| bad(e.to_string()))?,
        );
        match row.algorithm.as_str() {
            EDDSA => {
                let key = ed25519_dalek::SigningKey::from_pkcs8_der(&material)
                    .map_err(|e| bad(e.to_string()))?;
                Self::ed25519(Some(row.kid.clone()), &key)
            }
            HS256 => Self::hs256(row.kid.clone(), &material),
            other => Err(bad(format!("unknown algorithm {other:?}"))),
        }
    }

    pub(crate) fn kid(&self) -> &str {
        &self.kid
    }

    pub(crate) fn algorithm(&self) -> Algorithm {
        self.algorithm
    }

    pub(crate) fn encoding(&self) -> &EncodingKey {
        &self.encoding
    }

    /// The public JWK (RFC 7517/8037), or `None` for a secret.
    fn jwk(&self) -> Option<serde_json::Value> {
        let public = self.public.as_ref()?;
        Some(serde_json::json!({
            "kty": "OKP",
            "crv": "Ed25519",
            "kid": self.kid,
            "alg": EDDSA,
            "use": "sig",
            "x": URL_SAFE_NO_PAD.encode(public),
        }))
    }
}

/// RFC 7638 thumbprint of an Ed25519 public key: base64url SHA-256 of the required members
/// in lexicographic order, no whitespace.
fn thumbprint(public: &[u8; 32]) -> String {
    let x = URL_SAFE_NO_PAD.encode(public);
    let canonical = format!(r#"{{"crv":"Ed25519","kty":"OKP","x":"{x}"}}"#);
    URL_SAFE_NO_PAD.encode(Sha256::digest(canonical.as_bytes()))
}

/// The keys in force: which signs when, what verifies, and the JWKS. Built whole and
/// swapped in whole, so a request sees one consistent set.
#[derive(Debug)]
pub(crate) struct KeySet {
    /// Keys that sign now or will (active and next), by activation.
    signers: Vec<(DateTime<Utc>, SigningMaterial)>,
    verifier: Verifier,
    jwks: String,
    /// Every kid that verifies, by activation.
    kids: Vec<String>,
}

impl KeySet {
    /// One key that always signs: the shared secret or the operator's key file.
    pub(crate) fn single(key: SigningMaterial, issuer: &str, audience: &str) -> Self {
        let verifier = Verifier::new(vec![key.verification.clone()], issuer, audience);
        let jwks = jwks_json(std::iter::once(&key));
        let kids = vec![key.kid.clone()];
        Self {
            signers: vec![(DateTime::<Utc>::MIN_UTC, key)],
            verifier,
            jwks,
            kids,
        }
    }

    /// The stored keys as they stand at `now`: retired ones are left out.
    pub(crate) fn from_rows(
        rows: &[SigningKeyRow],
        now: DateTime<Utc>,
        grace: Duration,
        issuer: &str,
        audience: &str,
    ) -> Result<Self, KeyError> {
        let states = key_states(rows, now, grace);
        let mut signers = Vec::new();
        let mut others = Vec::new();
        for i in by_activation(rows) {
            if !states[i].verifies() {
                continue;
            }
            let key = SigningMaterial::from_row(&rows[i])?;
            if states[i].signs_now_or_later() {
                signers.push((activation(&rows[i]), key));
            } else {
                others.push(key);
            }
        }
        if signers.is_empty() {
            return Err(KeyError::NoKey);
        }
        let all = || others.iter().chain(signers.iter().map(|(_, k)| k));
        let verifier = Verifier::new(
            all().map(|k| k.verification.clone()).collect(),
            issuer,
            audience,
        );
        let jwks = jwks_json(all());
        let kids = all().map(|k| k.kid.clone()).collect();
        Ok(Self {
            signers,
            verifier,
            jwks,
            kids,
        })
    }

    /// The key that signs at `now`: the latest activated. A clock behind the one that
    /// wrote the keys may see none activated yet: then the first.
    pub(crate) fn signer(&self, now: DateTime<Utc>) -> Option<&SigningMaterial> {
        self.signers
            .iter()
            .rev()
            .find(|(from, _)| *from <= now)
            .or_else(|| self.signers.first())
            .map(|(_, k)| k)
    }

    pub(crate) fn verifier(&self) -> &Verifier {
        &self.verifier
    }

    pub(crate) fn jwks(&self) -> &str {
        &self.jwks
    }

    /// Every kid that verifies, by activation.
    pub(crate) fn kids(&self) -> &[String] {
        &self.kids
    }
}

fn jwks_json<'a>(keys: impl Iterator<Item = &'a SigningMaterial>) -> String {
    let keys: Vec<_> = keys.filter_map(SigningMaterial::jwk).collect();
    serde_json::json!({ "keys": keys }).to_string()
}

/// A new Ed25519 key as a row: the kid is its thumbprint, the material its PKCS#8 DER in
/// base64.
pub fn generate_ed25519(
    created_at: DateTime<Utc>,
    activates_at: DateTime<Utc>,
) -> Result<SigningKeyRow, KeyError> {
    let mut seed = Zeroizing::new([0u8; 32]);
    // ThreadRng is a CSPRNG seeded from the OS.
    rand::rng().fill_bytes(seed.as_mut());
    let key = ed25519_dalek::SigningKey::from_bytes(&seed);
    let der = key
        .to_pkcs8_der()
        .map_err(|e| KeyError::Unusable(e.to_string()))?;
    Ok(SigningKeyRow {
        kid: thumbprint(&key.verifying_key().to_bytes()),
        algorithm: EDDSA.to_owned(),
        material: STANDARD.encode(der.as_bytes()),
        created_at,
        activates_at: Some(activates_at),
    })
}

/// `authd keys rotate`: store a new Ed25519 key that signs from `activates_at` on. Running
/// instances publish it at their next key reload. Returns its kid.
pub async fn rotate(store: &Store, activates_at: DateTime<Utc>) -> Result<String, KeyError> {
    let row = generate_ed25519(Utc::now(), activates_at)?;
    let kid = row.kid.clone();
    store.insert_signing_key(row).await?;
    tracing::info!(%kid, %activates_at, "signing key added");
    Ok(kid)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: Duration = Duration::from_secs(60);

    fn at(secs: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000 + secs, 0).unwrap()
    }

    fn row(kid: &str, created: i64, activates: Option<i64>) -> SigningKeyRow {
        SigningKeyRow {
            kid: kid.into(),
            algorithm: EDDSA.into(),
            material: String::new(),
            created_at: at(created),
            activates_at: activates.map(at),
        }
    }

    fn hs256_row(kid: &str, created: i64) -> SigningKeyRow {
        SigningKeyRow {
            kid: kid.into(),
            algorithm: HS256.into(),
            material: STANDARD.encode([7u8; 64]),
            created_at: at(created),
            activates_at: None,
        }
    }

    #[test]
    fn grace_is_access_ttl_plus_leeway_plus_reload_interval() {
        assert_eq!(
            retire_grace(15 * MIN, Duration::from_secs(10)),
            15 * MIN + Duration::from_secs(LEEWAY_SECS + 10)
        );
    }

    #[test]
    fn states_follow_activation_times_and_grace() {
        use KeyState::*;
        // a: legacy row (no activation: its creation); b rotated in at 100 s, activating at
        // 200 s; c rotated in at 300 s for 10_000 s.
        let rows = [
            row("a", 0, None),
            row("b", 100, Some(200)),
            row("c", 300, Some(10_000)),
        ];
        let grace = MIN;
        let states = |now| key_states(&rows, at(now), grace);
        assert_eq!(states(50), [Active, Next, Next]);
        assert_eq!(states(199), [Active, Next, Next]);
        assert_eq!(states(200), [Retiring, Active, Next]);
        assert_eq!(states(259), [Retiring, Active, Next]);
        assert_eq!(states(260), [Retired, Active, Next]);
        assert_eq!(states(10_000), [Retired, Retiring, Active]);
        assert_eq!(states(10_060), [Retired, Retired, Active]);
        // Row order does not matter, only the timestamps do.
        let reversed: Vec<_> = rows.iter().rev().cloned().collect();
        assert_eq!(
            key_states(&reversed, at(230), grace),
            [Next, Active, Retiring]
        );
    }

    #[test]
    fn equal_activations_are_ordered_by_creation_then_kid() {
        use KeyState::*;
        let rows = [row("y", 0, Some(10)), row("x", 0, Some(10))];
        assert_eq!(key_states(&rows, at(20), MIN), [Active, Retiring]);
        let rows = [row("late", 5, Some(10)), row("early", 0, Some(10))];
        assert_eq!(key_states(&rows, at(20), MIN), [Active, Retiring]);
    }

    #[test]
    fn a_future_grace_end_that_overflows_keeps_the_key() {
        let rows = [row("a", 0, None), row("b", 10, None)];
        assert_eq!(
            key_states(&rows, at(20), Duration::MAX),
            [KeyState::Retiring, KeyState::Active]
        );
    }

    #[test]
    fn generated_key_is_ed25519_pkcs8_named_by_its_thumbprint() {
        let row = generate_ed25519(at(0), at(5)).unwrap();
        assert_eq!(row.algorithm, EDDSA);
        assert_eq!(row.activates_at, Some(at(5)));
        let der = STANDARD.decode(&row.material).unwrap();
        let key = ed25519_dalek::SigningKey::from_pkcs8_der(&der).unwrap();
        assert_eq!(row.kid, thumbprint(&key.verifying_key().to_bytes()));
        assert_ne!(row.kid, generate_ed25519(at(0), at(0)).unwrap().kid);
        // Debug shows no material.
        let shown = format!("{row:?}");
        assert!(!shown.contains(&row.material), "{shown}");
    }

    #[test]
    fn thumbprint_matches_rfc_8037() {
        // RFC 8037, appendix A.3.
        let x = URL_SAFE_NO_PAD
            .decode("11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo")
            .unwrap();
        let x: [u8; 32] = x.try_into().unwrap();
        assert_eq!(
            thumbprint(&x),
            "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"
        );
    }

    fn jwks(set: &KeySet) -> serde_json::Value {
        serde_json::from_str(set.jwks()).unwrap()
    }

    #[test]
    fn jwks_has_the_public_ed25519_keys_only() {
        let mut old = generate_ed25519(at(0), at(0)).unwrap();
        old.created_at = at(0);
        let legacy = hs256_row("hs256-legacy", -10);
        let new = generate_ed25519(at(100), at(100)).unwrap();
        let next = generate_ed25519(at(110), at(10_000)).unwrap();
        let rows = [legacy, old.clone(), new.clone(), next.clone()];
        let set = KeySet::from_rows(&rows, at(120), MIN, "authd", "authd").unwrap();
        let doc = jwks(&set);
        let keys = doc["keys"].as_array().unwrap();
        let kids: Vec<&str> = keys.iter().map(|k| k["kid"].as_str().unwrap()).collect();
        // The HS256 secret is never published; `old` retires at 160 s, `next` is out early.
        assert_eq!(kids, [old.kid.as_str(), &new.kid, &next.kid]);
        for (k, r) in keys.iter().zip([&old, &new, &next]) {
            let mut members: Vec<&str> =
                k.as_object().unwrap().keys().map(|s| s.as_str()).collect();
            members.sort_unstable();
            assert_eq!(members, ["alg", "crv", "kid", "kty", "use", "x"]);
            assert_eq!(k["kty"], "OKP");
            assert_eq!(k["crv"], "Ed25519");
            assert_eq!(k["alg"], "EdDSA");
            assert_eq!(k["use"], "sig");
            let der = STANDARD.decode(&r.material).unwrap();
            let public = ed25519_dalek::SigningKey::from_pkcs8_der(&der)
                .unwrap()
                .verifying_key()
                .to_bytes();
            assert_eq!(k["x"], URL_SAFE_NO_PAD.encode(public));
        }
        assert_eq!(set.signer(at(120)).unwrap().kid(), new.kid);
        assert_eq!(set.signer(at(10_000)).unwrap().kid(), next.kid);

        let later = KeySet::from_rows(&rows, at(160), MIN, "authd", "authd").unwrap();
        let kids: Vec<String> = jwks(&later)["keys"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| k["kid"].as_str().unwrap().to_owned())
            .collect();
        assert_eq!(kids, [new.kid.clone(), next.kid.clone()]);
        assert_eq!(later.kids(), [new.kid, next.kid]);
    }

    #[test]
    fn a_shared_secret_publishes_an_empty_set() {
        let key = SigningMaterial::hs256("hs256-x".into(), &[1u8; 32]).unwrap();
        let set = KeySet::single(key, "authd", "authd");
        assert_eq!(set.jwks(), r#"{"keys":[]}"#);
        assert_eq!(set.signer(at(0)).unwrap().algorithm(), Algorithm::HS256);
    }

    #[test]
    fn an_unreadable_stored_key_is_named_without_its_material() {
        let mut bad = row("broken", 0, None);
        bad.material = STANDARD.encode(b"not a pkcs8 document, but secret-ish");
        let err = KeySet::from_rows(&[bad.clone()], at(10), MIN, "authd", "authd").unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("broken"), "{msg}");
        assert!(!msg.contains(&bad.material), "{msg}");
        assert!(matches!(
            KeySet::from_rows(&[], at(10), MIN, "authd", "authd"),
            Err(KeyError::NoKey)
        ));
        let mut odd = hs256_row("odd", 0);
        odd.algorithm = "RS256".into();
        assert!(KeySet::from_rows(&[odd], at(10), MIN, "authd", "authd").is_err());
    }

    /// RFC 8410, section 10.3: a PKCS#8 v1 document as `openssl genpkey` writes it.
    const RFC8410_PEM: &str = "-----BEGIN PRIVATE KEY-----\n\
        MC4CAQAwBQYDK2VwBCIEINTuctv5E1hK1bbY8fdp+K06/nwoy/HU++CXqI9EdVhC\n\
        -----END PRIVATE KEY-----\n";

    #[test]
    fn a_pem_key_file_is_read_and_named_by_its_thumbprint() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("key.pem");
        std::fs::write(&path, RFC8410_PEM).unwrap();
        let key = SigningMaterial::from_pem_file(&path).unwrap();
        let public: [u8; 32] = URL_SAFE_NO_PAD
            .decode("Gb9ECWmEzf6FQbrBZ9w7lshQhqowtrbLDFw4rXAxZuE")
            .unwrap()
            .try_into()
            .unwrap();
        assert_eq!(key.kid(), thumbprint(&public));
        assert_eq!(key.algorithm(), Algorithm::EdDSA);
        let shown = format!("{key:?}");
        assert!(!shown.contains("MC4CAQ"), "{shown}");
        let set = KeySet::single(key, "authd", "authd");
        assert_eq!(
            jwks(&set)["keys"][0]["x"],
            "Gb9ECWmEzf6FQbrBZ9w7lshQhqowtrbLDFw4rXAxZuE"
        );
    }

    #[test]
    fn a_bad_key_file_names_the_file_not_its_content() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("key.pem");
        let not_ed25519 =
            "-----BEGIN PRIVATE KEY-----\nc2VjcmV0LXN0dWZm\n-----END PRIVATE KEY-----\n";
        std::fs::write(&path, not_ed25519).unwrap();
        let msg = SigningMaterial::from_pem_file(&path)
            .unwrap_err()
            .to_string();
        assert!(msg.contains("key.pem"), "{msg}");
        assert!(!msg.contains("c2VjcmV0"), "{msg}");
        let missing = SigningMaterial::from_pem_file(&dir.path().join("nope.pem")).unwrap_err();
        assert!(matches!(missing, KeyError::BadKeyFile { .. }));
    }
}
