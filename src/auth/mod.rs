//! The use cases: register, issue, validate, refresh, revoke. No tonic or sea-orm types
//! cross into here.
use std::sync::Arc;
use std::time::Duration;

use authd_client::{Claims, LEEWAY_SECS};
use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::password::{Hasher, Verified};
use crate::store::{Store, users::new_user};
use crate::token::{KeyError, Subject, Tokens};

mod credentials;
mod error;
mod maintenance;
mod revocations;
mod sessions;

pub use credentials::{Password, Username};
pub use error::AuthError;
pub use revocations::Revocations;

/// A freshly minted access token with its refresh token.
#[derive(Debug, Clone)]
pub struct TokenPair {
    pub access_token: String,
    pub refresh_token: String,
    pub expires_in: i64,
    pub refresh_expires_in: i64,
}

/// The session rules.
#[derive(Debug, Clone)]
pub struct Policy {
    pub allow_registration: bool,
    pub default_audience: String,
    pub access_ttl: Duration,
    pub refresh_ttl: Duration,
    pub session_max_age: Duration,
    pub refresh_reuse_grace: Duration,
}

/// The authentication service, shared by every request.
#[derive(Debug)]
pub struct Auth {
    store: Store,
    hasher: Hasher,
    tokens: Tokens,
    revocations: Arc<Revocations>,
    policy: Policy,
}

const AUDIENCE_MAX_CHARS: usize = 256;

pub(crate) fn chrono_dur(d: Duration) -> chrono::Duration {
    chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX)
}

impl Auth {
    pub fn new(
        store: Store,
        hasher: Hasher,
        tokens: Tokens,
        revocations: Arc<Revocations>,
        policy: Policy,
    ) -> Self {
        Self {
            store,
            hasher,
            tokens,
            revocations,
            policy,
        }
    }

    /// Self sign-up.
    pub async fn register(&self, username: &str, password: String) -> Result<Uuid, AuthError> {
        if !self.policy.allow_registration {
            return Err(AuthError::RegistrationClosed);
        }
        create_user(&self.store, &self.hasher, username, password).await
    }

    /// Log in with a password: opens a session and returns its first token pair.
    pub async fn issue(
        &self,
        username: &str,
        password: String,
        audience: &str,
    ) -> Result<TokenPair, AuthError> {
        let username = Username::parse(username)?;
        let password = Password::parse(password)?.into_secret();
        let audience = self.audience(audience)?;
        let user = self.store.user_by_key(username.key()).await?;
        let stored = user.as_ref().map(|u| u.password_hash.clone());
        let verified = self.hasher.verify(password.clone(), stored).await?;
        let (user, rehash) = match (user, verified) {
            (Some(u), Verified::Match { rehash }) => (u, rehash),
            _ => {
                tracing::info!(event = "login_failed", "login refused: bad credentials");
                crate::metrics::login_failed("bad_credentials");
                return Err(AuthError::BadCredentials);
            }
        };
        if user.disabled {
            tracing::info!(event = "login_failed", user_id = %user.id, "login refused: user disabled");
            crate::metrics::login_failed("user_disabled");
            return Err(AuthError::UserDisabled);
        }
        if rehash {
            self.rehash(user.id, &user.password_hash, password).await;
        }
        self.open_session(user.id, &user.username, audience).await
    }

    /// Verify an access token and check what only authd knows (revocations).
    pub fn validate(&self, token: &str, audience: &str) -> Result<Claims, AuthError> {
        // The verifier refuses an empty token as malformed and reads an empty audience as
        // the default one.
        let claims = self.tokens.verify(token, Some(audience))?;
        let (Ok(sid), Ok(sub)) = (Uuid::parse_str(&claims.sid), Uuid::parse_str(&claims.sub))
        else {
            return Err(AuthError::Token(authd_client::VerifyError::Malformed));
        };
        if self.revocations.is_refused(&sid, &sub) {
            return Err(AuthError::TokenRevoked);
        }
        Ok(claims)
    }

    /// The public verification keys as a JWKS document.
    pub fn jwks_json(&self) -> String {
        self.tokens.jwks_json()
    }

    /// Re-read the signing keys from the database (a rotation by any instance or by
    /// `authd keys rotate`). Validate keeps using the keys in force meanwhile.
    pub async fn reload_keys(&self) -> Result<(), KeyError> {
        self.tokens.reload(&self.store).await
    }

    fn audience<'a>(&'a self, requested: &'a str) -> Result<&'a str, AuthError> {
        if requested.is_empty() {
            return Ok(&self.policy.default_audience);
        }
        if requested.chars().count() > AUDIENCE_MAX_CHARS || requested.chars().any(char::is_control)
        {
            return Err(AuthError::InvalidInput(format!(
                "audience must be at most {AUDIENCE_MAX_CHARS} characters with no control characters"
            )));
        }
        Ok(requested)
    }

    async fn rehash(&self, user_id: Uuid, old: &str, password: secrecy::SecretString) {
        // Best effort: a failure here must not fail the login it rides on.
        match self.hasher.hash(password).await {
            Ok(new) => match self.store.replace_password_hash(user_id, old, &new).await {
                Ok(_) => tracing::info!(%user_id, "password re-hashed with the current parameters"),
                Err(e) => tracing::warn!(%user_id, error = %e, "password re-hash not stored"),
            },
            Err(e) => tracing::warn!(%user_id, error = %e, "password re-hash failed"),
        }
    }

    fn mint(
        &self,
        user_id: Uuid,
        username: &str,
        session_id: Uuid,
        audience: &str,
        now: DateTime<Utc>,
    ) -> Result<(String, i64), AuthError> {
        Ok(self.tokens.mint(
            &Subject {
                user_id,
                username,
                session_id,
                audience,
            },
            now,
        )?)
    }

    /// The longest a revoked session's access tokens can still pass signature checks.
    pub(crate) fn revocation_horizon(&self) -> Duration {
        self.policy.access_ttl + Duration::from_secs(LEEWAY_SECS)
    }

    pub(crate) fn store(&self) -> &Store {
        &self.store
    }

    pub(crate) fn revocations(&self) -> &Revocations {
        &self.revocations
    }
}

/// Create a user (self sign-up and `authd user add`).
pub async fn create_user(
    store: &Store,
    hasher: &Hasher,
    username: &str,
    password: String,
) -> Result<Uuid, AuthError> {
    let username = Username::parse(username)?;
    let password = Password::parse(password)?;
    // Saves an argon2 run for the common duplicate; the unique index is what decides.
    if store.user_by_key(username.key()).await?.is_some() {
        return Err(AuthError::UsernameTaken);
    }
    let hash = hasher.hash(password.into_secret()).await?;
    let id = Uuid::new_v4();
    store
        .insert_user(new_user(
            id,
            username.as_str().to_owned(),
            username.key().to_owned(),
            hash,
            Utc::now(),
        ))
        .await?;
    tracing::info!(event = "user_registered", user_id = %id, "user registered");
    Ok(id)
}
