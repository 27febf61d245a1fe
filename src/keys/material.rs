//! One signing key: an HS256 secret or an Ed25519 private key, read from a setting, a PEM
//! file or a stored row, with its kid and the JWK of its public half.
use std::path::Path;

use authd_client::VerificationKey;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ed25519_dalek::pkcs8::{DecodePrivateKey, EncodePrivateKey};
use jsonwebtoken::{Algorithm, EncodingKey};
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};

use super::sealing::{KeyEncryptionKey, stored_material};
use super::{EDDSA, HS256, KeyError};
use crate::store::keys::SigningKeyRow;

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
    fn hs256(kid: String, secret: &[u8]) -> Result<Self, KeyError> {
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

    /// An operator's shared HS256 secret (`AUTHD_JWT_SECRET`), named by [`secret_kid`].
    pub(crate) fn shared_secret(secret: &[u8]) -> Result<Self, KeyError> {
        Self::hs256(secret_kid(secret), secret)
    }

    /// An Ed25519 key; `kid` defaults to its RFC 7638 thumbprint.
    fn ed25519(kid: Option<String>, key: &ed25519_dalek::SigningKey) -> Result<Self, KeyError> {
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

    /// A stored key: its material is base64 of a PKCS#8 DER (Ed25519) or of the secret
    /// (HS256), sealed with `kek` when the row says so.
    pub(super) fn from_row(
        row: &SigningKeyRow,
        kek: Option<&KeyEncryptionKey>,
    ) -> Result<Self, KeyError> {
        let bad = |reason: String| KeyError::BadStoredKey {
            kid: row.kid.clone(),
            reason,
        };
        let material = stored_material(row, kek)?;
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

    pub(super) fn verification(&self) -> &VerificationKey {
        &self.verification
    }

    /// The public JWK (RFC 7517/8037), or `None` for a secret.
    pub(super) fn jwk(&self) -> Option<serde_json::Value> {
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
pub(super) fn thumbprint(public: &[u8; 32]) -> String {
    let x = URL_SAFE_NO_PAD.encode(public);
    let canonical = format!(r#"{{"crv":"Ed25519","kty":"OKP","x":"{x}"}}"#);
    URL_SAFE_NO_PAD.encode(Sha256::digest(canonical.as_bytes()))
}

/// A key id for a shared secret that says nothing about the secret: the first bytes of its
/// SHA-256, so every instance with the same secret names it alike.
fn secret_kid(secret: &[u8]) -> String {
    let digest = Sha256::digest(secret);
    format!("hs256-{}", URL_SAFE_NO_PAD.encode(&digest[..9]))
}

#[cfg(test)]
mod tests {
    use super::*;

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
        assert_eq!(
            key.jwk().unwrap()["x"],
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
