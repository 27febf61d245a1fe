//! Access tokens: claims, the signing key (with its `kid`), and verification through the
//! same `authd-client` code other services use, so the rules live in one place.
use std::time::Duration;

use authd_client::{Claims, TOKEN_TYPE, VerificationKey, Verifier, VerifyError};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use chrono::{DateTime, Utc};
use jsonwebtoken::{Algorithm, EncodingKey, Header, encode};
use rand::RngCore;
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::store::{Store, StoreError, keys::SigningKeyRow};

/// Signing-key set-up failures. None of them carries key material.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("stored signing key {kid} is unreadable: {reason}")]
    BadStoredKey { kid: String, reason: String },
    #[error("cannot use the signing key: {0}")]
    Unusable(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What an access token is minted for.
#[derive(Debug, Clone)]
pub struct Subject<'a> {
    pub user_id: Uuid,
    pub username: &'a str,
    pub session_id: Uuid,
    pub audience: &'a str,
}

/// Mints and verifies access tokens.
pub struct Tokens {
    kid: String,
    algorithm: Algorithm,
    encoding: EncodingKey,
    verifier: Verifier,
    issuer: String,
    access_ttl: Duration,
}

impl std::fmt::Debug for Tokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tokens")
            .field("kid", &self.kid)
            .field("algorithm", &self.algorithm)
            .finish_non_exhaustive()
    }
}

const GENERATED_SECRET_BYTES: usize = 64;

impl Tokens {
    /// With a shared secret, sign HS256 with it. Without, use the key kept in the database,
    /// generating it at first start, so tokens survive restarts.
    pub async fn load(
        store: &Store,
        secret: Option<&SecretString>,
        issuer: &str,
        audience: &str,
        access_ttl: Duration,
    ) -> Result<Self, KeyError> {
        let (kid, material) = match secret {
            Some(s) => (
                secret_kid(s.expose_secret().as_bytes()),
                s.expose_secret().as_bytes().to_vec(),
            ),
            None => stored_hs256_key(store).await?,
        };
        let encoding =
            EncodingKey::from_secret(&material).map_err(|e| KeyError::Unusable(e.to_string()))?;
        let key = VerificationKey::hs256(Some(kid.clone()), &material)
            .map_err(|e| KeyError::Unusable(e.to_string()))?;
        Ok(Self {
            kid,
            algorithm: Algorithm::HS256,
            encoding,
            verifier: Verifier::new(vec![key], issuer, audience),
            issuer: issuer.to_owned(),
            access_ttl,
        })
    }

    /// Mint an access token; returns it with its lifetime in seconds.
    pub fn mint(&self, who: &Subject<'_>, now: DateTime<Utc>) -> Result<(String, i64), KeyError> {
        let ttl = i64::try_from(self.access_ttl.as_secs()).unwrap_or(i64::MAX);
        let iat = now.timestamp();
        let claims = Claims {
            iss: self.issuer.clone(),
            sub: who.user_id.to_string(),
            aud: vec![who.audience.to_owned()],
            exp: iat.saturating_add(ttl),
            iat,
            nbf: iat,
            jti: Uuid::new_v4().to_string(),
            sid: who.session_id.to_string(),
            username: who.username.to_owned(),
            roles: Vec::new(),
        };
        let mut header = Header::new(self.algorithm);
        header.kid = Some(self.kid.clone());
        header.typ = Some(TOKEN_TYPE.to_owned());
        let token = encode(&header, &claims, &self.encoding)
            .map_err(|e| KeyError::Unusable(e.to_string()))?;
        Ok((token, ttl))
    }

    /// Verify signature and claims (not revocation: that is the caller's).
    pub fn verify(&self, token: &str, audience: Option<&str>) -> Result<Claims, VerifyError> {
        self.verifier.verify(token, audience)
    }

    /// The id of the signing key.
    pub fn kid(&self) -> &str {
        &self.kid
    }
}

/// A key id for a shared secret that says nothing about the secret: the first bytes of its
/// SHA-256, so every instance with the same secret names it alike.
fn secret_kid(secret: &[u8]) -> String {
    let digest = Sha256::digest(secret);
    format!("hs256-{}", URL_SAFE_NO_PAD.encode(&digest[..9]))
}

async fn stored_hs256_key(store: &Store) -> Result<(String, Vec<u8>), KeyError> {
    if let Some(found) = first_hs256(store).await? {
        return Ok(found);
    }
    let mut material = vec![0u8; GENERATED_SECRET_BYTES];
    rand::rng().fill_bytes(&mut material);
    let kid = format!("hs256-{}", Uuid::new_v4().simple());
    tracing::warn!(
        %kid,
        "no AUTHD_JWT_SECRET given: generated an HS256 signing key and stored it in the database; \
         services that verify tokens locally need AUTHD_JWT_SECRET instead"
    );
    match store
        .insert_signing_key(SigningKeyRow {
            kid,
            algorithm: "HS256".into(),
            material: STANDARD.encode(&material),
            created_at: Utc::now(),
        })
        .await
    {
        Ok(()) | Err(StoreError::Duplicate) => {}
        Err(e) => return Err(e.into()),
    }
    // Another instance may have generated one at the same moment: all take the oldest.
    first_hs256(store)
        .await?
        .ok_or_else(|| KeyError::Unusable("the generated key was not stored".into()))
}

async fn first_hs256(store: &Store) -> Result<Option<(String, Vec<u8>)>, KeyError> {
    let Some(row) = store
        .signing_keys()
        .await?
        .into_iter()
        .find(|k| k.algorithm == "HS256")
    else {
        return Ok(None);
    };
    let material = STANDARD
        .decode(&row.material)
        .map_err(|e| KeyError::BadStoredKey {
            kid: row.kid.clone(),
            reason: e.to_string(),
        })?;
    Ok(Some((row.kid, material)))
}

impl Tokens {
    /// RFC 7517 JWKS of the public verification keys. HS256 keys are symmetric and never
    /// published, so in HS256 mode the set is empty.
    pub fn jwks_json(&self) -> String {
        serde_json::json!({ "keys": [] }).to_string()
    }
}
