//! The use cases: register, issue, validate, refresh, revoke, and managing users. No tonic
//! type crosses into here, and no database API: the store hands over its rows as plain
//! data structs (SeaORM derives them, but nothing here queries through them) and its
//! failures as a classified `StoreError`, never a driver error.
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use authd_client::{Claims, LEEWAY_SECS};
use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::password::{Hasher, Verified};
use crate::store::users::{User, new_user};
use crate::store::{Store, StoreError};
use crate::token::{KeyError, Subject, Tokens};

pub mod admin;
mod credentials;
mod error;
mod maintenance;
#[cfg(test)]
mod proptests;
mod revocations;
pub mod roles;
pub mod service_accounts;
mod sessions;
mod throttle;
mod users;

pub use credentials::{
    LoginName, PASSWORD_MAX_BYTES, PASSWORD_MIN_CHARS, Password, PasswordPolicy, Username,
};
pub use error::AuthError;
pub use revocations::Revocations;
pub use throttle::{Backoff, ThrottlePolicy};
pub use users::{revoke_user_sessions, set_user_disabled};

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
    /// The rules a new password must meet (Register, `authd user add`).
    pub password: PasswordPolicy,
    pub default_audience: String,
    /// Every audience a token may carry: the default one first.
    pub allowed_audiences: Vec<String>,
    pub access_ttl: Duration,
    pub refresh_ttl: Duration,
    pub session_max_age: Duration,
    pub refresh_reuse_grace: Duration,
    pub throttle: ThrottlePolicy,
    /// Lifetime of a service account's access token.
    pub service_token_ttl: Duration,
}

/// The authentication service, shared by every request.
#[derive(Debug)]
pub struct Auth {
    store: Store,
    hasher: Hasher,
    tokens: Tokens,
    revocations: Arc<Revocations>,
    addresses: throttle::AddressThrottle,
    policy: Policy,
}

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
            addresses: throttle::AddressThrottle::new(policy.throttle.address),
            policy,
        }
    }

    /// Self sign-up.
    pub async fn register(&self, username: &str, password: String) -> Result<Uuid, AuthError> {
        if !self.policy.allow_registration {
            return Err(AuthError::RegistrationClosed);
        }
        create_user(
            &self.store,
            &self.hasher,
            &self.policy.password,
            username,
            password,
            Vec::new(),
        )
        .await
    }

    /// Log in with a password: opens a session and returns its first token pair. `from`
    /// is the caller's address, for the per-address throttle.
    pub async fn issue(
        &self,
        username: &str,
        password: String,
        audience: &str,
        from: Option<IpAddr>,
    ) -> Result<TokenPair, AuthError> {
        let username = LoginName::parse(username)?;
        let password = Password::parse(password)?.into_secret();
        let audience = self.audience(audience)?;
        let user = find_user(&self.store, &username).await?;
        // Throttled calls are refused here, before any argon2 work.
        self.begin_attempt(username.key(), from, user.as_ref().map(|u| u.id))
            .await?;
        let stored = user.as_ref().map(|u| u.password_hash.clone());
        let verified = match self.hasher.verify(password.clone(), stored).await {
            Ok(v) => v,
            Err(e) => {
                // No guess was checked; the account keeps its count (a flood that fills
                // the queue must not wipe it).
                self.forgive_address(from);
                return Err(e.into());
            }
        };
        let (user, rehash) = match (user, verified) {
            (Some(u), Verified::Match { rehash }) => (u, rehash),
            (user, _) => {
                tracing::info!(
                    event = "login_failed",
                    user_id = %user.map(|u| u.id.to_string()).unwrap_or_default(),
                    "login refused: bad credentials"
                );
                crate::metrics::login_failed("bad_credentials");
                return Err(AuthError::BadCredentials);
            }
        };
        self.end_attempt_ok(username.key(), from).await;
        if user.disabled {
            tracing::info!(event = "login_failed", user_id = %user.id, "login refused: user disabled");
            crate::metrics::login_failed("user_disabled");
            return Err(AuthError::UserDisabled);
        }
        if rehash {
            self.rehash(user.id, &user.password_hash, password).await;
        }
        self.open_session(&user, audience).await
    }

    /// Verify an access token and check what only authd knows (revocations).
    pub fn validate(&self, token: &str, audience: &str) -> Result<Claims, AuthError> {
        // The verifier refuses an empty token as malformed; an empty audience is the
        // default one.
        let audience = self.audience(audience)?;
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
    pub(crate) async fn reload_keys(&self) -> Result<(), KeyError> {
        self.tokens.reload(&self.store).await
    }

    /// The audience asked for, if the server allows it; the default one when none is asked.
    /// An audience is a promise to the services that check it: self-registered users must
    /// not be able to pick one.
    fn audience<'a>(&'a self, requested: &str) -> Result<&'a str, AuthError> {
        if requested.is_empty() {
            return Ok(&self.policy.default_audience);
        }
        self.policy
            .allowed_audiences
            .iter()
            .find(|a| *a == requested)
            .map(String::as_str)
            .ok_or(AuthError::AudienceNotAllowed)
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

    /// A user's access token in session `session_id`, with their roles as stored.
    fn mint(
        &self,
        user_id: Uuid,
        username: &str,
        roles: &str,
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
                roles: roles::from_stored(roles),
                client_id: None,
                ttl: self.policy.access_ttl,
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

    pub(crate) fn hasher(&self) -> &Hasher {
        &self.hasher
    }

    pub(crate) fn policy(&self) -> &Policy {
        &self.policy
    }

    pub(crate) fn revocations(&self) -> &Revocations {
        &self.revocations
    }
}

/// Create a user (self sign-up and `authd user add`): the username rules, then the
/// password policy, then uniqueness.
pub async fn create_user(
    store: &Store,
    hasher: &Hasher,
    policy: &PasswordPolicy,
    username: &str,
    password: String,
    roles: Vec<String>,
) -> Result<Uuid, AuthError> {
    let username = Username::parse(username)?;
    let roles = roles::normalize(roles)?;
    let password = Password::parse(password)?;
    let secret = password.into_secret();
    // zxcvbn is CPU work whose cost grows with the input: it queues on the hashing pool
    // with argon2, off the async runtime.
    let (policy, checked, name) = (policy.clone(), secret.clone(), username.clone());
    hasher
        .run(move || Ok(policy.check(secrecy::ExposeSecret::expose_secret(&checked), &name)))
        .await??;
    // Saves an argon2 run for the common duplicate; the unique index is what decides.
    if store.user_by_key(username.key()).await?.is_some() {
        return Err(AuthError::UsernameTaken);
    }
    let hash = hasher.hash(secret).await?;
    let id = Uuid::new_v4();
    let mut row = new_user(
        id,
        username.as_str().to_owned(),
        username.key().to_owned(),
        hash,
        Utc::now(),
    );
    row.roles = roles::to_stored(&roles);
    match store.insert_user(row).await {
        Ok(()) => {}
        // Someone took the name (or a look-alike) between our check and our insert.
        Err(StoreError::Duplicate { .. }) => return Err(AuthError::UsernameTaken),
        Err(e) => return Err(e.into()),
    }
    tracing::info!(event = "user_registered", user_id = %id, "user registered");
    Ok(id)
}

/// The user a name typed at login (or given to `authd user ...`) refers to, whichever
/// username rule it was registered under.
pub(crate) async fn find_user(store: &Store, name: &LoginName) -> Result<Option<User>, AuthError> {
    let rows = store.users_by_keys(&name.lookup_keys()).await?;
    Ok(name.pick(rows))
}
