//! Work done on a timer rather than per request.
use std::time::Duration;

use chrono::Utc;

use super::{Auth, AuthError, chrono_dur};

impl Auth {
    /// Reload the revocation view from the database.
    pub(crate) async fn reload_revocations(&self) -> Result<(), AuthError> {
        let since = Utc::now() - chrono_dur(self.revocation_horizon());
        let snap = self.store().revocation_snapshot(since).await?;
        self.revocations().replace(snap);
        Ok(())
    }

    /// Delete dead refresh tokens and ended sessions older than `retention`. A revoked
    /// session is kept at least as long as its access tokens may live, so the revocation
    /// view (and with it `Validate`) keeps refusing them.
    pub(crate) async fn cleanup(&self, retention: Duration) -> Result<(u64, u64), AuthError> {
        let keep = retention.max(self.revocation_horizon());
        let before = Utc::now() - chrono_dur(keep);
        let (tokens, sessions) = self.store().delete_dead_sessions(before).await?;
        // A deleted user's row is what keeps their tokens refused; gone after the same wait.
        let users = self.store().purge_deleted_users(before).await?;
        if users > 0 {
            tracing::info!(users, "removed the rows of deleted users");
        }
        self.prune_throttle().await?;
        if tokens + sessions > 0 {
            tracing::info!(
                tokens,
                sessions,
                "deleted dead refresh tokens and ended sessions"
            );
        }
        Ok((tokens, sessions))
    }
}
