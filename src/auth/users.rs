//! Managing users: one path for each action, whoever asks (the CLI today, the admin API
//! later), so each is logged and counted the same way.
use chrono::Utc;

use super::AuthError;
use super::admin::{UserRef, get_user};
use crate::store::Store;
use crate::store::users::User;

/// Disable or enable the user called `name`; disabling ends every session of theirs in the
/// same transaction. Returns the user and the number of sessions ended, `None` when no
/// user has that name.
pub async fn set_user_disabled(
    store: &Store,
    who: &UserRef,
    disabled: bool,
) -> Result<Option<(User, u64)>, AuthError> {
    let user = match get_user(store, who).await {
        Ok(u) => u,
        Err(AuthError::UserNotFound) => return Ok(None),
        Err(e) => return Err(e),
    };
    let Some(ended) = store
        .set_user_disabled(user.id, disabled, Utc::now())
        .await?
    else {
        return Ok(None);
    };
    if disabled {
        tracing::info!(event = "user_disabled", user_id = %user.id, sessions_ended = ended, "user disabled");
        crate::metrics::sessions_revoked("user_disabled", ended);
    } else {
        tracing::info!(event = "user_enabled", user_id = %user.id, "user enabled");
    }
    Ok(Some((user, ended)))
}

/// End every live session of the user called `name` (log them out everywhere).
pub async fn revoke_user_sessions(
    store: &Store,
    who: &UserRef,
) -> Result<Option<(User, u64)>, AuthError> {
    let user = match get_user(store, who).await {
        Ok(u) => u,
        Err(AuthError::UserNotFound) => return Ok(None),
        Err(e) => return Err(e),
    };
    let ended = store.revoke_user_sessions(user.id, Utc::now()).await?;
    tracing::info!(event = "sessions_revoked", user_id = %user.id, sessions_ended = ended, "all sessions of the user revoked");
    crate::metrics::sessions_revoked("admin", ended);
    Ok(Some((user, ended)))
}
