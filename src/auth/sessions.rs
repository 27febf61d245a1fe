//! Sessions and refresh tokens: rotation with reuse detection (RFC 9700), logout.
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use rand::RngCore;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::{Auth, AuthError, TokenPair, chrono_dur};
use crate::store::RefreshLookup;
use crate::store::sessions::{RefreshTokenRow, SessionRow};

/// A new opaque refresh token: 256 random bits, base64url. Only its hash is stored.
fn new_refresh_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Hex SHA-256 of a well-formed refresh token; `RefreshMalformed` for anything else.
fn refresh_hash(token: &str) -> Result<String, AuthError> {
    match URL_SAFE_NO_PAD.decode(token) {
        Ok(b) if b.len() == 32 => {}
        _ => return Err(AuthError::RefreshMalformed),
    }
    Ok(hex(&Sha256::digest(token.as_bytes())))
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes.iter().fold(String::with_capacity(64), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

fn secs_until(t: DateTime<Utc>, now: DateTime<Utc>) -> i64 {
    (t - now).num_seconds().max(0)
}

impl Auth {
    pub(super) async fn open_session(
        &self,
        user_id: Uuid,
        username: &str,
        audience: &str,
    ) -> Result<TokenPair, AuthError> {
        let now = Utc::now();
        let session = SessionRow {
            id: Uuid::new_v4(),
            user_id,
            audience: audience.to_owned(),
            created_at: now,
            expires_at: now + chrono_dur(self.policy.session_max_age),
            revoked_at: None,
        };
        let (refresh, row) = self.new_refresh_row(&session, now);
        let (access, expires_in) = self.mint(user_id, username, session.id, audience, now)?;
        let refresh_expires_in = secs_until(row.expires_at, now);
        self.store.open_session(session, row).await?;
        Ok(TokenPair {
            access_token: access,
            refresh_token: refresh,
            expires_in,
            refresh_expires_in,
        })
    }

    fn new_refresh_row(
        &self,
        session: &SessionRow,
        now: DateTime<Utc>,
    ) -> (String, RefreshTokenRow) {
        let token = new_refresh_token();
        let expires_at = (now + chrono_dur(self.policy.refresh_ttl)).min(session.expires_at);
        let row = RefreshTokenRow {
            token_hash: hex(&Sha256::digest(token.as_bytes())),
            session_id: session.id,
            issued_at: now,
            expires_at,
            spent_at: None,
        };
        (token, row)
    }

    /// Spend a refresh token for a new pair in the same session.
    pub async fn refresh(&self, token: &str) -> Result<TokenPair, AuthError> {
        let hash = refresh_hash(token)?;
        let found = self
            .store
            .lookup_refresh(&hash)
            .await?
            .ok_or(AuthError::RefreshUnknown)?;
        let now = Utc::now();
        self.check_session(&found, now)?;
        if found.token.spent_at.is_some() {
            return self.on_spent(found, now).await;
        }
        if found.token.expires_at <= now {
            return Err(AuthError::RefreshExpired);
        }
        let (refresh, row) = self.new_refresh_row(&found.session, now);
        let refresh_expires_in = secs_until(row.expires_at, now);
        if !self.store.rotate_refresh(&hash, now, row).await? {
            // Lost a race: someone spent it between our read and our write.
            let again = self
                .store
                .lookup_refresh(&hash)
                .await?
                .ok_or(AuthError::RefreshUnknown)?;
            return self.on_spent(again, Utc::now()).await;
        }
        let s = &found.session;
        let (access, expires_in) =
            self.mint(found.user.id, &found.user.username, s.id, &s.audience, now)?;
        Ok(TokenPair {
            access_token: access,
            refresh_token: refresh,
            expires_in,
            refresh_expires_in,
        })
    }

    fn check_session(&self, found: &RefreshLookup, now: DateTime<Utc>) -> Result<(), AuthError> {
        if found.session.revoked_at.is_some() {
            return Err(AuthError::SessionRevoked);
        }
        if found.session.expires_at <= now {
            return Err(AuthError::RefreshExpired);
        }
        if found.user.disabled {
            return Err(AuthError::UserDisabled);
        }
        Ok(())
    }

    /// A spent token came back. Within the grace window, the newest spent token of the
    /// session earns a fresh pair; anything else is reuse and ends the session.
    async fn on_spent(
        &self,
        found: RefreshLookup,
        now: DateTime<Utc>,
    ) -> Result<TokenPair, AuthError> {
        let grace = chrono_dur(self.policy.refresh_reuse_grace);
        if let Some(spent_at) = found.token.spent_at
            && !grace.is_zero()
            && now - spent_at <= grace
            && found.session.revoked_at.is_none()
            && self
                .store
                .is_latest_spent(found.session.id, spent_at)
                .await?
        {
            let (refresh, row) = self.new_refresh_row(&found.session, now);
            let refresh_expires_in = secs_until(row.expires_at, now);
            self.store.insert_refresh(row).await?;
            let s = &found.session;
            let (access, expires_in) =
                self.mint(found.user.id, &found.user.username, s.id, &s.audience, now)?;
            tracing::info!(
                event = "refresh_grace_reissue",
                user_id = %found.user.id,
                sid = %s.id,
                "spent refresh token re-presented within the grace window: fresh pair issued"
            );
            return Ok(TokenPair {
                access_token: access,
                refresh_token: refresh,
                expires_in,
                refresh_expires_in,
            });
        }
        if self.store.revoke_session(found.session.id, now).await? {
            crate::metrics::session_revoked("reuse");
        }
        self.revocations.add_session(found.session.id);
        crate::metrics::refresh_reuse();
        tracing::warn!(
            event = "refresh_token_reuse",
            security = true,
            user_id = %found.user.id,
            sid = %found.session.id,
            "spent refresh token presented again: session revoked"
        );
        Err(AuthError::RefreshReused)
    }

    /// Log out: end the session of this refresh token. Unknown tokens are not an error
    /// (RFC 7009): the outcome the caller wants holds either way.
    pub async fn revoke(&self, token: &str) -> Result<(), AuthError> {
        let hash = refresh_hash(token)?;
        let Some(found) = self.store.lookup_refresh(&hash).await? else {
            return Ok(());
        };
        if self
            .store
            .revoke_session(found.session.id, Utc::now())
            .await?
        {
            crate::metrics::session_revoked("logout");
            tracing::info!(
                event = "session_revoked",
                user_id = %found.user.id,
                sid = %found.session.id,
                "session revoked (logout)"
            );
        }
        self.revocations.add_session(found.session.id);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refresh_tokens_are_256_bit_base64url_and_hash_to_hex() {
        let t = new_refresh_token();
        assert_eq!(t.len(), 43);
        let h = refresh_hash(&t).unwrap();
        assert_eq!(h.len(), 64);
        assert_ne!(new_refresh_token(), t);
        assert!(matches!(
            refresh_hash("short"),
            Err(AuthError::RefreshMalformed)
        ));
        assert!(matches!(refresh_hash(""), Err(AuthError::RefreshMalformed)));
    }
}
