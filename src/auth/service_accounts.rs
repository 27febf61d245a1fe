//! Service accounts (OAuth client credentials): a client id and a secret give an access
//! token with the account's roles, and nothing else (no refresh token, no session).
use std::net::IpAddr;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::Utc;
use hmac::{Hmac, KeyInit, Mac};
use rand::RngCore;
use sha2::Sha256;
use uuid::Uuid;

use super::{Auth, AuthError, chrono_dur, roles};
use crate::store::service_accounts::ServiceAccount;
use crate::store::{Store, StoreError};
use crate::token::Subject;

/// Marks authd secrets, so secret scanners (and people) can tell what leaked.
const SECRET_PREFIX: &str = "authd_sk_";

/// A service account's access token.
#[derive(Debug, Clone)]
pub struct ServiceToken {
    pub access_token: String,
    pub expires_in: i64,
}

/// A service account with the secret just made for it: the one time it is shown.
#[derive(Debug, Clone)]
pub struct NewSecret {
    pub account: ServiceAccount,
    pub secret: String,
}

/// 256 random bits: far beyond guessing, so a keyed SHA-256 stores it safely and argon2
/// would only cost CPU.
fn new_secret() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    format!("{SECRET_PREFIX}{}", URL_SAFE_NO_PAD.encode(bytes))
}

/// HMAC-SHA256 of the secret, keyed by the account's client id: a stored hash is bound to
/// its account (copying it to another account's row lets nobody in).
fn mac(client_id: Uuid, secret: &str) -> Result<Hmac<Sha256>, AuthError> {
    let key = format!("authd service account {client_id}");
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(key.as_bytes())
        .map_err(|e| AuthError::Internal(format!("HMAC key: {e}")))?;
    mac.update(secret.as_bytes());
    Ok(mac)
}

fn secret_hash(client_id: Uuid, secret: &str) -> Result<String, AuthError> {
    Ok(hex::encode(mac(client_id, secret)?.finalize().into_bytes()))
}

/// Whether `secret` is the one `stored` was made from, compared in constant time.
fn secret_matches(client_id: Uuid, secret: &str, stored: &str) -> bool {
    let (Ok(stored), Ok(mac)) = (hex::decode(stored), mac(client_id, secret)) else {
        return false;
    };
    mac.verify_slice(&stored).is_ok()
}

/// A service account's name: 1 to 64 ASCII letters, digits and `.` `_` `-`, starting with
/// a letter or digit.
fn check_name(name: &str) -> Result<(), AuthError> {
    if roles::is_identifier(name, &['.', '_', '-']) {
        Ok(())
    } else {
        Err(AuthError::InvalidInput(
            "a service account name is 1 to 64 ASCII letters, digits and . _ -, starting with \
             a letter or digit"
                .into(),
        ))
    }
}

/// The account a client id or a name refers to.
pub async fn find_service_account(
    store: &Store,
    id_or_name: &str,
) -> Result<ServiceAccount, AuthError> {
    let found = match Uuid::parse_str(id_or_name) {
        Ok(id) => store.service_account(id).await?,
        Err(_) => store.service_account_by_name(id_or_name).await?,
    };
    found.ok_or(AuthError::ClientNotFound)
}

/// Create a service account; its secret is in the answer and nowhere else.
pub async fn create_service_account(
    store: &Store,
    name: &str,
    roles: Vec<String>,
) -> Result<NewSecret, AuthError> {
    check_name(name)?;
    let roles = roles::normalize(roles)?;
    let client_id = Uuid::new_v4();
    let secret = new_secret();
    let account = ServiceAccount {
        client_id,
        name: name.to_owned(),
        roles: roles::to_stored(&roles),
        secret_hash: secret_hash(client_id, &secret)?,
        previous_secret_hash: None,
        previous_secret_expires_at: None,
        disabled: false,
        created_at: Utc::now(),
    };
    match store.insert_service_account(account.clone()).await {
        Ok(()) => {}
        Err(StoreError::Duplicate { .. }) => return Err(AuthError::ClientNameTaken),
        Err(e) => return Err(e.into()),
    }
    tracing::info!(event = "service_account_created", client_id = %client_id, name, "service account created");
    Ok(NewSecret { account, secret })
}

/// A new secret for the account; the current one keeps working for `overlap`, so the
/// clients can be moved over without an outage.
pub async fn rotate_service_account_secret(
    store: &Store,
    id_or_name: &str,
    overlap: Duration,
) -> Result<NewSecret, AuthError> {
    let account = find_service_account(store, id_or_name).await?;
    let secret = new_secret();
    let until = Utc::now() + chrono_dur(overlap);
    let hash = secret_hash(account.client_id, &secret)?;
    if !store
        .rotate_service_account_secret(account.client_id, &hash, until)
        .await?
    {
        return Err(AuthError::ClientNotFound);
    }
    tracing::info!(
        event = "service_account_secret_rotated",
        client_id = %account.client_id,
        previous_valid_until = %until.to_rfc3339(),
        "service account secret rotated"
    );
    let account = find_service_account(store, &account.client_id.to_string()).await?;
    Ok(NewSecret { account, secret })
}

/// Disable or enable a service account. A disabled account gets no new tokens, and
/// `Validate` refuses the ones it has (within the revocation refresh interval).
pub async fn set_service_account_disabled(
    store: &Store,
    id_or_name: &str,
    disabled: bool,
) -> Result<ServiceAccount, AuthError> {
    let account = find_service_account(store, id_or_name).await?;
    store
        .set_service_account_disabled(account.client_id, disabled)
        .await?;
    tracing::info!(
        event = if disabled { "service_account_disabled" } else { "service_account_enabled" },
        client_id = %account.client_id,
        "service account {}",
        if disabled { "disabled" } else { "enabled" }
    );
    find_service_account(store, &account.client_id.to_string()).await
}

/// One page of service accounts, by name, and the token of the next (empty on the last).
pub async fn list_service_accounts(
    store: &Store,
    page_size: u64,
    page_token: &str,
) -> Result<(Vec<ServiceAccount>, String), AuthError> {
    let after = if page_token.is_empty() {
        None
    } else {
        let raw = URL_SAFE_NO_PAD
            .decode(page_token)
            .map_err(|_| AuthError::PageTokenInvalid)?;
        let text = String::from_utf8(raw).map_err(|_| AuthError::PageTokenInvalid)?;
        let name = text
            .strip_prefix("a1:")
            .filter(|n| check_name(n).is_ok())
            .ok_or(AuthError::PageTokenInvalid)?;
        Some(name.to_owned())
    };
    let mut page = store
        .list_service_accounts(after.as_deref(), page_size + 1)
        .await?;
    let more = page.len() as u64 > page_size;
    page.truncate(usize::try_from(page_size).unwrap_or(usize::MAX));
    let next = match page.last() {
        Some(last) if more => URL_SAFE_NO_PAD.encode(format!("a1:{}", last.name)),
        _ => String::new(),
    };
    Ok((page, next))
}

/// Key of a client in the failed-login counts: a space cannot occur in a username key,
/// so no user shares it.
fn throttle_key(client_id: &str) -> String {
    format!("client {client_id}")
}

impl Auth {
    /// Client credentials: an access token for a service account. Unknown client and wrong
    /// secret get the same answer; failures count like password logins.
    pub async fn issue_service_token(
        &self,
        client_id: &str,
        secret: &str,
        audience: &str,
        from: Option<IpAddr>,
    ) -> Result<ServiceToken, AuthError> {
        if client_id.len() > 64 || secret.len() > 256 {
            return Err(AuthError::InvalidClient);
        }
        let audience = self.audience(audience)?;
        let key = throttle_key(client_id);
        self.begin_attempt(&key, from, None).await?;
        let account = match Uuid::parse_str(client_id) {
            Ok(id) => self.store.service_account(id).await?,
            Err(_) => None,
        };
        let now = Utc::now();
        let ok = account.as_ref().is_some_and(|a| {
            secret_matches(a.client_id, secret, &a.secret_hash)
                || (a
                    .previous_secret_expires_at
                    .is_some_and(|until| now < until)
                    && a.previous_secret_hash
                        .as_deref()
                        .is_some_and(|h| secret_matches(a.client_id, secret, h)))
        });
        let Some(account) = account.filter(|_| ok) else {
            tracing::info!(
                event = "login_failed",
                client = true,
                "service token refused: bad client credentials"
            );
            crate::metrics::login_failed("bad_client");
            return Err(AuthError::InvalidClient);
        };
        self.end_attempt_ok(&key, from).await;
        if account.disabled {
            tracing::info!(event = "login_failed", client_id = %account.client_id, "service token refused: account disabled");
            crate::metrics::login_failed("client_disabled");
            return Err(AuthError::ClientDisabled);
        }
        let id = account.client_id.to_string();
        let (access_token, expires_in) = self.tokens.mint(
            &Subject {
                user_id: account.client_id,
                username: &account.name,
                // No session: a fresh id, so each token is told apart in logs.
                session_id: Uuid::new_v4(),
                audience,
                roles: roles::from_stored(&account.roles),
                client_id: Some(&id),
                ttl: self.policy.service_token_ttl,
            },
            now,
        )?;
        tracing::info!(event = "service_token_issued", client_id = %account.client_id, "service token issued");
        Ok(ServiceToken {
            access_token,
            expires_in,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_long_random_and_checked_against_their_account_only() {
        let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
        let s = new_secret();
        assert!(s.starts_with(SECRET_PREFIX) && s.len() == SECRET_PREFIX.len() + 43);
        assert_ne!(s, new_secret());
        let h = secret_hash(a, &s).unwrap();
        assert!(secret_matches(a, &s, &h));
        assert!(!secret_matches(b, &s, &h));
        assert!(!secret_matches(a, &new_secret(), &h));
        assert!(!secret_matches(a, &s, "not hex"));
    }

    #[test]
    fn names() {
        check_name("billing-worker").unwrap();
        for bad in ["", "-x", "a b", "a:b", &"n".repeat(65)] {
            assert!(check_name(bad).is_err(), "{bad:?}");
        }
    }
}
