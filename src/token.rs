//! Access tokens: claims, minting with the signing key in force (with its `kid`), and
//! verification through the same `authd-client` code other services use, so the rules live
//! in one place. The key set is swapped atomically on reload: `verify` is a pointer load,
//! never a database call.
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use authd_client::{Claims, TOKEN_TYPE, VerifyError};
use chrono::{DateTime, Utc};
use jsonwebtoken::{Header, encode};
use secrecy::{ExposeSecret, SecretString};
use uuid::Uuid;

pub use crate::keys::KeyError;
use crate::keys::{self, KeyEncryptionKey, KeySet, SigningMaterial};
use crate::store::Store;

/// Where the signing keys come from.
#[derive(Debug, Clone)]
pub enum KeySource {
    /// HS256 with a shared secret (`AUTHD_JWT_SECRET`); nothing is published.
    Secret(SecretString),
    /// An operator's Ed25519 PKCS#8 PEM file (`AUTHD_SIGNING_KEY_FILE`). Rotating it is the
    /// operator's: replace the file and restart.
    KeyFile(PathBuf),
    /// Keys kept in the database: an Ed25519 key generated at first start, rotated with
    /// `authd keys rotate`, reloaded every `key_refresh`.
    Database,
}

/// The token rules that come from the settings.
#[derive(Debug, Clone)]
pub struct TokenSettings {
    pub issuer: String,
    pub audience: String,
    pub access_ttl: Duration,
    /// How often database keys are reloaded (`AUTHD_KEY_REFRESH`).
    pub key_refresh: Duration,
    /// Seals and unseals the database keys (`AUTHD_KEY_ENCRYPTION_KEY_FILE`); `None`: they
    /// are stored in the clear.
    pub key_encryption: Option<Arc<KeyEncryptionKey>>,
    /// How many verified tokens to remember (`AUTHD_VERIFIED_TOKEN_CACHE`); 0: none.
    pub verified_cache: usize,
}

impl TokenSettings {
    /// How long a replaced database key keeps verifying.
    fn grace(&self) -> Duration {
        keys::retire_grace(self.access_ttl, self.key_refresh)
    }
}

/// What an access token is minted for.
#[derive(Debug, Clone)]
pub struct Subject<'a> {
    /// The user id, or a service account's client id.
    pub user_id: Uuid,
    /// The username, or a service account's name.
    pub username: &'a str,
    /// The session; for a service token, a fresh id per token (it has no session).
    pub session_id: Uuid,
    pub audience: &'a str,
    pub roles: Vec<String>,
    /// Set for a service account's token.
    pub client_id: Option<&'a str>,
    /// How long the token lives.
    pub ttl: Duration,
}

/// Mints and verifies access tokens.
pub struct Tokens {
    keys: ArcSwap<KeySet>,
    from_database: bool,
    settings: TokenSettings,
    /// Tokens that passed the full check, by their exact text: an Ed25519 signature check
    /// costs more than the rest of a Validate call, and a service checks the same token on
    /// every request. Exact text, so no other token can ever match an entry; expiry and
    /// audience are checked again on every hit, revocation by the caller as always.
    verified: Option<quick_cache::sync::Cache<String, Arc<Claims>>>,
}

impl std::fmt::Debug for Tokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tokens")
            .field("kids", &self.keys.load().kids())
            .field("from_database", &self.from_database)
            .finish_non_exhaustive()
    }
}

impl Tokens {
    /// Load the signing keys. From the database, the first start generates an Ed25519 key,
    /// so tokens survive restarts and every instance signs with the same key.
    pub async fn load(
        store: &Store,
        source: &KeySource,
        settings: TokenSettings,
    ) -> Result<Self, KeyError> {
        let (issuer, audience) = (&settings.issuer, &settings.audience);
        let set = match source {
            KeySource::Secret(s) => {
                let key = SigningMaterial::shared_secret(s.expose_secret().as_bytes())?;
                KeySet::single(key, issuer, audience)
            }
            KeySource::KeyFile(path) => {
                let key = SigningMaterial::from_pem_file(path)?;
                tracing::info!(kid = key.kid(), "signing with the Ed25519 key file");
                KeySet::single(key, issuer, audience)
            }
            KeySource::Database => {
                keys::load_or_generate(
                    store,
                    settings.grace(),
                    issuer,
                    audience,
                    settings.key_encryption.as_deref(),
                )
                .await?
            }
        };
        let verified = (settings.verified_cache > 0)
            .then(|| quick_cache::sync::Cache::new(settings.verified_cache));
        Ok(Self {
            keys: ArcSwap::from_pointee(set),
            from_database: matches!(source, KeySource::Database),
            settings,
            verified,
        })
    }

    /// Re-read the database keys, so a rotation reaches this instance without a restart
    /// and retired keys stop verifying. A no-op for a secret or a key file. On failure the
    /// keys in force stay.
    pub async fn reload(&self, store: &Store) -> Result<(), KeyError> {
        self.reload_at(store, Utc::now()).await
    }

    async fn reload_at(&self, store: &Store, now: DateTime<Utc>) -> Result<(), KeyError> {
        if !self.from_database {
            return Ok(());
        }
        let set = keys::load_stored(
            store,
            now,
            self.settings.grace(),
            &self.settings.issuer,
            &self.settings.audience,
            self.settings.key_encryption.as_deref(),
        )
        .await?;
        let changed = set.kids() != self.keys.load().kids();
        self.keys.store(Arc::new(set));
        if changed {
            tracing::info!(kids = ?self.keys.load().kids(), "signing keys changed");
            // A key that stopped verifying must not keep its tokens alive from the cache.
            if let Some(cache) = &self.verified {
                cache.clear();
            }
        }
        Ok(())
    }

    /// Mint an access token; returns it with its lifetime in seconds.
    pub fn mint(&self, who: &Subject<'_>, now: DateTime<Utc>) -> Result<(String, i64), KeyError> {
        let ttl = i64::try_from(who.ttl.as_secs()).unwrap_or(i64::MAX);
        let iat = now.timestamp();
        let claims = Claims {
            iss: self.settings.issuer.clone(),
            sub: who.user_id.to_string(),
            aud: vec![who.audience.to_owned()],
            exp: iat.saturating_add(ttl),
            iat,
            nbf: iat,
            jti: Uuid::new_v4().to_string(),
            sid: who.session_id.to_string(),
            username: who.username.to_owned(),
            roles: who.roles.clone(),
            client_id: who.client_id.map(str::to_owned),
        };
        let keys = self.keys.load();
        let key = keys.signer(now).ok_or(KeyError::NoKey)?;
        let mut header = Header::new(key.algorithm());
        header.kid = Some(key.kid().to_owned());
        header.typ = Some(TOKEN_TYPE.to_owned());
        let token = encode(&header, &claims, key.encoding())
            .map_err(|e| KeyError::Unusable(e.to_string()))?;
        Ok((token, ttl))
    }

    /// Verify signature and claims (not revocation: that is the caller's).
    pub fn verify(&self, token: &str, audience: Option<&str>) -> Result<Claims, VerifyError> {
        self.verify_at(token, audience, Utc::now().timestamp())
    }

    /// As `verify`; `now` is when a remembered token's expiry is checked again.
    fn verify_at(
        &self,
        token: &str,
        audience: Option<&str>,
        now: i64,
    ) -> Result<Claims, VerifyError> {
        let keys = self.keys.load();
        let Some(cache) = &self.verified else {
            return keys.verifier().verify(token, audience);
        };
        if let Some(claims) = cache.get(token) {
            keys.verifier().recheck(&claims, audience, now)?;
            return Ok(Claims::clone(&claims));
        }
        let claims = keys.verifier().verify(token, audience)?;
        cache.insert(token.to_owned(), Arc::new(claims.clone()));
        Ok(claims)
    }

    /// The id of the key that signs at `now`.
    #[cfg(test)]
    fn signing_kid(&self, now: DateTime<Utc>) -> Option<String> {
        self.keys.load().signer(now).map(|k| k.kid().to_owned())
    }

    /// RFC 7517 JWKS of the public keys that may verify a live token (next, active,
    /// retiring). HS256 secrets are symmetric and never published: in HS256 mode the set
    /// is empty.
    pub fn jwks_json(&self) -> String {
        self.keys.load().jwks().to_owned()
    }
}

#[cfg(test)]
mod tests {
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use jsonwebtoken::Algorithm;

    use super::*;

    const TTL: Duration = Duration::from_secs(900);
    const REFRESH: Duration = Duration::from_secs(10);

    fn settings() -> TokenSettings {
        TokenSettings {
            issuer: "authd".into(),
            audience: "authd".into(),
            access_ttl: TTL,
            key_refresh: REFRESH,
            key_encryption: None,
            verified_cache: 100,
        }
    }

    #[tokio::test]
    async fn a_remembered_token_is_still_refused_once_expired_or_for_another_audience() {
        let dir = tempfile::tempdir().unwrap();
        let store = store(&dir).await;
        let tokens = Tokens::load(&store, &KeySource::Database, settings())
            .await
            .unwrap();
        let now = Utc::now();
        let token = mint(&tokens, now);
        let claims = tokens.verify(&token, None).unwrap();
        // Now it comes from the cache.
        assert_eq!(tokens.verify(&token, None).unwrap(), claims);
        assert_eq!(
            tokens.verify(&token, Some("billing")),
            Err(VerifyError::WrongAudience)
        );
        let after = claims.exp + authd_client::LEEWAY_SECS as i64 + 1;
        assert_eq!(
            tokens.verify_at(&token, None, after),
            Err(VerifyError::Expired)
        );
        // A token one byte off is not the remembered one.
        let at = token.len() - 10;
        let swap = if &token[at..=at] == "A" { "B" } else { "A" };
        let forged = format!("{}{swap}{}", &token[..at], &token[at + 1..]);
        assert!(tokens.verify(&forged, None).is_err());
    }

    async fn store(dir: &tempfile::TempDir) -> Store {
        let url = format!("sqlite://{}/x.db?mode=rwc", dir.path().display());
        Store::connect_and_migrate(&SecretString::from(url))
            .await
            .unwrap()
    }

    fn subject() -> Subject<'static> {
        Subject {
            user_id: Uuid::new_v4(),
            username: "ada",
            session_id: Uuid::new_v4(),
            audience: "authd",
            roles: Vec::new(),
            client_id: None,
            ttl: TTL,
        }
    }

    fn mint(tokens: &Tokens, now: DateTime<Utc>) -> String {
        tokens.mint(&subject(), now).unwrap().0
    }

    fn header_kid(token: &str) -> String {
        jsonwebtoken::decode_header(token).unwrap().kid.unwrap()
    }

    fn jwks_kids(tokens: &Tokens) -> Vec<String> {
        let doc: serde_json::Value = serde_json::from_str(&tokens.jwks_json()).unwrap();
        doc["keys"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| k["kid"].as_str().unwrap().to_owned())
            .collect()
    }

    #[tokio::test]
    async fn sealed_keys_load_rotate_and_reload_with_the_key_encryption_key() {
        let dir = tempfile::tempdir().unwrap();
        let store = store(&dir).await;
        let kek = Arc::new(KeyEncryptionKey::from_bytes([5; 32]));
        let sealed = TokenSettings {
            key_encryption: Some(kek.clone()),
            verified_cache: 0,
            ..settings()
        };
        let tokens = Tokens::load(&store, &KeySource::Database, sealed.clone())
            .await
            .unwrap();
        let before = mint(&tokens, Utc::now());
        let new_kid = keys::rotate(&store, Utc::now(), Some(&kek)).await.unwrap();
        tokens.reload(&store).await.unwrap();
        let after = mint(&tokens, Utc::now());
        assert_eq!(header_kid(&after), new_kid);
        tokens.verify(&before, None).unwrap();
        // Another instance without the key cannot load them, and generates nothing.
        let err = Tokens::load(&store, &KeySource::Database, settings())
            .await
            .unwrap_err();
        assert!(matches!(err, KeyError::SealedWithoutKek { .. }), "{err}");
        assert_eq!(store.signing_keys().await.unwrap().len(), 2);
        let again = Tokens::load(&store, &KeySource::Database, sealed)
            .await
            .unwrap();
        again.verify(&before, None).unwrap();
        again.verify(&after, None).unwrap();
    }

    #[tokio::test]
    async fn after_a_rotation_old_tokens_verify_and_new_ones_carry_the_new_kid() {
        let dir = tempfile::tempdir().unwrap();
        let store = store(&dir).await;
        let tokens = Tokens::load(&store, &KeySource::Database, settings())
            .await
            .unwrap();
        let before = mint(&tokens, Utc::now());
        let old_kid = header_kid(&before);

        let new_kid = keys::rotate(&store, Utc::now(), None).await.unwrap();
        // Not seen before the reload: this instance still signs with the old key.
        assert_eq!(header_kid(&mint(&tokens, Utc::now())), old_kid);
        tokens.reload(&store).await.unwrap();

        let after = mint(&tokens, Utc::now());
        assert_eq!(header_kid(&after), new_kid);
        assert_ne!(new_kid, old_kid);
        tokens.verify(&before, None).unwrap();
        tokens.verify(&after, None).unwrap();
        assert_eq!(jwks_kids(&tokens), [old_kid, new_kid.clone()]);
        assert_eq!(tokens.signing_kid(Utc::now()), Some(new_kid));
    }

    #[tokio::test]
    async fn a_next_key_is_published_at_once_and_signs_from_its_activation() {
        let dir = tempfile::tempdir().unwrap();
        let store = store(&dir).await;
        let tokens = Tokens::load(&store, &KeySource::Database, settings())
            .await
            .unwrap();
        let now = Utc::now();
        let old_kid = tokens.signing_kid(now).unwrap();
        let in_an_hour = now + chrono::Duration::hours(1);
        let next_kid = keys::rotate(&store, in_an_hour, None).await.unwrap();
        tokens.reload(&store).await.unwrap();

        assert_eq!(jwks_kids(&tokens), [old_kid.clone(), next_kid.clone()]);
        assert_eq!(header_kid(&mint(&tokens, now)), old_kid);
        // The switch needs no reload: the set knows when the next key activates.
        assert_eq!(tokens.signing_kid(in_an_hour), Some(next_kid));
    }

    #[tokio::test]
    async fn a_retired_key_no_longer_verifies_nor_is_published() {
        let dir = tempfile::tempdir().unwrap();
        let store = store(&dir).await;
        let tokens = Tokens::load(&store, &KeySource::Database, settings())
            .await
            .unwrap();
        let old = mint(&tokens, Utc::now());
        let old_kid = header_kid(&old);
        let new_kid = keys::rotate(&store, Utc::now(), None).await.unwrap();

        // Just inside the grace the old key still verifies...
        let grace = keys::retire_grace(TTL, REFRESH);
        let almost =
            Utc::now() + chrono::Duration::from_std(grace).unwrap() - chrono::Duration::seconds(5);
        tokens.reload_at(&store, almost).await.unwrap();
        tokens.verify(&old, None).unwrap();
        assert_eq!(jwks_kids(&tokens), [old_kid, new_kid.clone()]);

        // ...and past it, it is gone (the token itself has not expired: only the key).
        let past =
            Utc::now() + chrono::Duration::from_std(grace).unwrap() + chrono::Duration::seconds(1);
        tokens.reload_at(&store, past).await.unwrap();
        assert_eq!(tokens.verify(&old, None), Err(VerifyError::UnknownKey));
        assert_eq!(jwks_kids(&tokens), [new_kid]);
    }

    #[tokio::test]
    async fn a_shared_secret_signs_hs256_publishes_nothing_and_ignores_the_database() {
        let dir = tempfile::tempdir().unwrap();
        let store = store(&dir).await;
        let secret = SecretString::from("a-shared-secret-of-at-least-32-bytes!!");
        let tokens = Tokens::load(&store, &KeySource::Secret(secret), settings())
            .await
            .unwrap();
        assert!(
            store.signing_keys().await.unwrap().is_empty(),
            "no key generated"
        );
        assert_eq!(tokens.jwks_json(), r#"{"keys":[]}"#);
        let token = mint(&tokens, Utc::now());
        assert_eq!(
            jsonwebtoken::decode_header(&token).unwrap().alg,
            Algorithm::HS256
        );
        keys::rotate(&store, Utc::now(), None).await.unwrap();
        tokens.reload(&store).await.unwrap();
        assert_eq!(tokens.jwks_json(), r#"{"keys":[]}"#);
        tokens.verify(&token, None).unwrap();
        assert!(!format!("{tokens:?}").contains("a-shared-secret"));
    }

    #[tokio::test]
    async fn a_key_file_signs_eddsa_and_is_published() {
        use ed25519_dalek::pkcs8::EncodePrivateKey;
        let dir = tempfile::tempdir().unwrap();
        let store = store(&dir).await;
        let key = ed25519_dalek::SigningKey::from_bytes(&[3u8; 32]);
        let pem = key
            .to_pkcs8_pem(ed25519_dalek::pkcs8::spki::der::pem::LineEnding::LF)
            .unwrap();
        let path = dir.path().join("signing.pem");
        std::fs::write(&path, pem.as_bytes()).unwrap();
        let tokens = Tokens::load(&store, &KeySource::KeyFile(path), settings())
            .await
            .unwrap();
        assert!(
            store.signing_keys().await.unwrap().is_empty(),
            "no key generated"
        );
        let token = mint(&tokens, Utc::now());
        assert_eq!(
            jsonwebtoken::decode_header(&token).unwrap().alg,
            Algorithm::EdDSA
        );
        tokens.verify(&token, None).unwrap();
        // A local verifier built from the published key accepts it.
        let doc: serde_json::Value = serde_json::from_str(&tokens.jwks_json()).unwrap();
        let jwk = &doc["keys"][0];
        let x = URL_SAFE_NO_PAD.decode(jwk["x"].as_str().unwrap()).unwrap();
        assert_eq!(x, key.verifying_key().to_bytes());
        let kid = jwk["kid"].as_str().unwrap().to_owned();
        let local = authd_client::Verifier::new(
            vec![authd_client::VerificationKey::ed25519(Some(kid), &x).unwrap()],
            "authd",
            "authd",
        );
        local.verify(&token, None).unwrap();
    }
}
