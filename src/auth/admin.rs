//! Managing users by id or name, for the admin API and the CLI alike: one path per action,
//! logged the same way whoever asks.
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{AuthError, LoginName, Password, PasswordPolicy, Username, find_user, roles};
use crate::password::Hasher;
use crate::store::Store;
use crate::store::sessions::SessionRow;
use crate::store::users::User;

/// A user as an admin names them.
#[derive(Debug, Clone)]
pub enum UserRef {
    Id(String),
    Name(String),
}

/// The (undeleted) user a reference names.
pub async fn get_user(store: &Store, who: &UserRef) -> Result<User, AuthError> {
    let found = match who {
        UserRef::Id(id) => {
            let id = Uuid::parse_str(id)
                .map_err(|_| AuthError::InvalidInput("user_id is not a UUID".into()))?;
            store.user_by_id(id).await?
        }
        UserRef::Name(name) => find_user(store, &LoginName::parse(name)?).await?,
    };
    found
        .filter(|u| u.deleted_at.is_none())
        .ok_or(AuthError::UserNotFound)
}

/// Replace a user's roles. New tokens carry them from the next Issue or Refresh.
pub async fn set_roles(store: &Store, who: &UserRef, new: Vec<String>) -> Result<User, AuthError> {
    let user = get_user(store, who).await?;
    let new = roles::normalize(new)?;
    if !store
        .set_user_roles(user.id, &roles::to_stored(&new))
        .await?
    {
        return Err(AuthError::UserNotFound);
    }
    tracing::info!(event = "user_roles_set", user_id = %user.id, roles = ?new, "user roles replaced");
    get_user(store, &UserRef::Id(user.id.to_string())).await
}

/// Add (`add`) or remove roles, keeping the others.
pub async fn change_roles(
    store: &Store,
    who: &UserRef,
    add: bool,
    changed: Vec<String>,
) -> Result<User, AuthError> {
    let user = get_user(store, who).await?;
    let changed = roles::normalize(changed)?;
    let mut current = roles::from_stored(&user.roles);
    if add {
        current.extend(changed);
    } else {
        current.retain(|r| !changed.contains(r));
    }
    set_roles(store, &UserRef::Id(user.id.to_string()), current).await
}

/// Set a new password (the policy applies) and end the user's sessions, all but `keep`.
/// Returns the user and how many sessions ended.
pub async fn set_password(
    store: &Store,
    hasher: &Hasher,
    policy: &PasswordPolicy,
    who: &UserRef,
    new_password: String,
    keep: Option<Uuid>,
) -> Result<(User, u64), AuthError> {
    let user = get_user(store, who).await?;
    let secret = Password::parse(new_password)?.into_secret();
    // Usernames registered under an older rule are checked against their current form.
    let name = Username::parse(&user.username)?;
    let (policy, checked) = (policy.clone(), secret.clone());
    hasher
        .run(move || Ok(policy.check(secrecy::ExposeSecret::expose_secret(&checked), &name)))
        .await??;
    let hash = hasher.hash(secret).await?;
    let ended = store
        .set_password_hash(user.id, &hash, keep, Utc::now())
        .await?
        .ok_or(AuthError::UserNotFound)?;
    tracing::info!(event = "password_set", user_id = %user.id, sessions_ended = ended, "password changed");
    crate::metrics::sessions_revoked("password_changed", ended);
    Ok((user, ended))
}

/// Delete a user: their sessions end at once and their name is free again.
pub async fn delete_user(store: &Store, who: &UserRef) -> Result<(User, u64), AuthError> {
    let user = get_user(store, who).await?;
    let ended = store
        .delete_user(user.id, Utc::now())
        .await?
        .ok_or(AuthError::UserNotFound)?;
    tracing::info!(event = "user_deleted", user_id = %user.id, sessions_ended = ended, "user deleted");
    crate::metrics::sessions_revoked("user_deleted", ended);
    Ok((user, ended))
}

/// The live sessions of a user.
pub async fn list_sessions(store: &Store, who: &UserRef) -> Result<Vec<SessionRow>, AuthError> {
    let user = get_user(store, who).await?;
    Ok(store.live_sessions(user.id, Utc::now()).await?)
}

/// Page tokens say where the previous page ended. They are only ever read back by authd,
/// but a caller could send anything: one that does not parse is `PageTokenInvalid`.
const PAGE_TOKEN_VERSION: &str = "u1";

/// Nanoseconds: SQLite keeps the instant as text at that precision, and a coarser bound
/// would sort before the row it came from, repeating it on the next page.
fn encode_page_token(last: &User) -> String {
    let nanos = last
        .created_at
        .timestamp_nanos_opt()
        .unwrap_or_else(|| last.created_at.timestamp_micros().saturating_mul(1000));
    URL_SAFE_NO_PAD.encode(format!("{PAGE_TOKEN_VERSION}:{nanos}:{}", last.id))
}

fn parse_page_token(token: &str) -> Result<Option<(DateTime<Utc>, Uuid)>, AuthError> {
    if token.is_empty() {
        return Ok(None);
    }
    let bad = || AuthError::PageTokenInvalid;
    let raw = URL_SAFE_NO_PAD.decode(token).map_err(|_| bad())?;
    let text = String::from_utf8(raw).map_err(|_| bad())?;
    let mut parts = text.split(':');
    let (Some(PAGE_TOKEN_VERSION), Some(nanos), Some(id), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(bad());
    };
    let nanos: i64 = nanos.parse().map_err(|_| bad())?;
    let at = DateTime::<Utc>::from_timestamp_nanos(nanos);
    let id = Uuid::parse_str(id).map_err(|_| bad())?;
    Ok(Some((at, id)))
}

/// Largest page; 0 asks for the default.
pub const MAX_PAGE_SIZE: u64 = 1000;
const DEFAULT_PAGE_SIZE: u64 = 100;

/// The size a request asks for, within bounds.
pub fn page_size(asked: i32) -> Result<u64, AuthError> {
    match asked {
        0 => Ok(DEFAULT_PAGE_SIZE),
        n if n < 0 => Err(AuthError::InvalidInput(
            "page_size cannot be negative".into(),
        )),
        n => Ok(u64::try_from(n).unwrap_or(MAX_PAGE_SIZE).min(MAX_PAGE_SIZE)),
    }
}

/// One page of users and the token of the next (empty on the last page).
pub async fn list_users(
    store: &Store,
    page_size: u64,
    page_token: &str,
) -> Result<(Vec<User>, String), AuthError> {
    let after = parse_page_token(page_token)?;
    // One more than asked tells whether another page follows.
    let mut users = store.list_users_page(after, page_size + 1).await?;
    let more = users.len() as u64 > page_size;
    users.truncate(usize::try_from(page_size).unwrap_or(usize::MAX));
    let next = match users.last() {
        Some(last) if more => encode_page_token(last),
        _ => String::new(),
    };
    Ok((users, next))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_tokens_round_trip_and_strangers_are_refused() {
        let user = crate::store::users::new_user(
            Uuid::new_v4(),
            "ada".into(),
            "ada".into(),
            "x".into(),
            Utc::now(),
        );
        let t = encode_page_token(&user);
        let (at, id) = parse_page_token(&t).unwrap().unwrap();
        assert_eq!(
            (at.timestamp_micros(), id),
            (user.created_at.timestamp_micros(), user.id)
        );
        assert!(parse_page_token("").unwrap().is_none());
        for bad in [
            "x",
            "dTE6MTox",
            &URL_SAFE_NO_PAD.encode("u2:1:x"),
            &t[..t.len() - 2],
        ] {
            assert!(
                matches!(parse_page_token(bad), Err(AuthError::PageTokenInvalid)),
                "{bad}"
            );
        }
    }
}
