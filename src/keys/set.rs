//! The keys in force: which one signs at an instant, the verifier, the JWKS document.
use std::time::Duration;

use authd_client::Verifier;
use chrono::{DateTime, Utc};

use super::KeyError;
use super::material::SigningMaterial;
use super::schedule::{activation, by_activation, key_states};
use super::sealing::KeyEncryptionKey;
use crate::store::keys::SigningKeyRow;

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
        let verifier = Verifier::new(vec![key.verification().clone()], issuer, audience);
        let jwks = jwks_json(std::iter::once(&key));
        let kids = vec![key.kid().to_owned()];
        Self {
            signers: vec![(DateTime::<Utc>::MIN_UTC, key)],
            verifier,
            jwks,
            kids,
        }
    }

    /// The stored keys as they stand at `now`: retired ones are left out.
    pub(super) fn from_rows(
        rows: &[SigningKeyRow],
        now: DateTime<Utc>,
        grace: Duration,
        issuer: &str,
        audience: &str,
        kek: Option<&KeyEncryptionKey>,
    ) -> Result<Self, KeyError> {
        let states = key_states(rows, now, grace);
        let mut signers = Vec::new();
        let mut others = Vec::new();
        for i in by_activation(rows) {
            if !states[i].verifies() {
                continue;
            }
            let key = SigningMaterial::from_row(&rows[i], kek)?;
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
            all().map(|k| k.verification().clone()).collect(),
            issuer,
            audience,
        );
        let jwks = jwks_json(all());
        let kids = all().map(|k| k.kid().to_owned()).collect();
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

#[cfg(test)]
mod tests {
    use base64::Engine;
    use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
    use ed25519_dalek::pkcs8::DecodePrivateKey;
    use jsonwebtoken::Algorithm;

    use super::*;
    use crate::keys::HS256;
    use crate::keys::fixtures::{at, row};
    use crate::keys::lifecycle::generate_ed25519;

    const MIN: Duration = Duration::from_secs(60);

    fn hs256_row(kid: &str, created: i64) -> SigningKeyRow {
        SigningKeyRow {
            kid: kid.into(),
            algorithm: HS256.into(),
            material: STANDARD.encode([7u8; 64]),
            created_at: at(created),
            activates_at: None,
            kek_id: None,
        }
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
        let set = KeySet::from_rows(&rows, at(120), MIN, "authd", "authd", None).unwrap();
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

        let later = KeySet::from_rows(&rows, at(160), MIN, "authd", "authd", None).unwrap();
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
        let key = SigningMaterial::shared_secret(&[1u8; 32]).unwrap();
        let set = KeySet::single(key, "authd", "authd");
        assert_eq!(set.jwks(), r#"{"keys":[]}"#);
        assert_eq!(set.signer(at(0)).unwrap().algorithm(), Algorithm::HS256);
    }

    #[test]
    fn an_unreadable_stored_key_is_named_without_its_material() {
        let mut bad = row("broken", 0, None);
        bad.material = STANDARD.encode(b"not a pkcs8 document, but secret-ish");
        let err =
            KeySet::from_rows(&[bad.clone()], at(10), MIN, "authd", "authd", None).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("broken"), "{msg}");
        assert!(!msg.contains(&bad.material), "{msg}");
        assert!(matches!(
            KeySet::from_rows(&[], at(10), MIN, "authd", "authd", None),
            Err(KeyError::NoKey)
        ));
        let mut odd = hs256_row("odd", 0);
        odd.algorithm = "RS256".into();
        assert!(KeySet::from_rows(&[odd], at(10), MIN, "authd", "authd", None).is_err());
    }
}
