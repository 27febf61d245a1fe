//! Sessions and refresh tokens: rotation with reuse detection (RFC 9700), logout.
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use rand::RngCore;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use std::net::IpAddr;

use super::{Auth, AuthError, LoginName, Password, TokenPair, admin, chrono_dur};
use crate::password::Verified;
use crate::store::sessions::{RefreshTokenRow, SessionGuard, SessionRow};
use crate::store::users::User;

/// A new opaque refresh token: 256 random bits, base64url. Only its hash is stored.
fn new_refresh_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Hex SHA-256 of a well-formed refresh token; `RefreshMalformed` for anything else.
pub(super) fn refresh_hash(token: &str) -> Result<String, AuthError> {
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

fn check_session(guard: &SessionGuard, now: DateTime<Utc>) -> Result<(), AuthError> {
    if guard.session.revoked_at.is_some() {
        return Err(AuthError::SessionRevoked);
    }
    if guard.session.expires_at <= now {
        return Err(AuthError::RefreshExpired);
    }
    if guard.user.disabled {
        return Err(AuthError::UserDisabled);
    }
    Ok(())
}

fn secs_until(t: DateTime<Utc>, now: DateTime<Utc>) -> i64 {
    (t - now).num_seconds().max(0)
}

impl Auth {
    pub(super) async fn open_session(
        &self,
        user: &User,
        audience: &str,
    ) -> Result<TokenPair, AuthError> {
        let (user_id, username) = (user.id, user.username.as_str());
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
        let (access, expires_in) =
            self.mint(user_id, username, &user.roles, session.id, audience, now)?;
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
            replayed_at: None,
            superseded: false,
        };
        (token, row)
    }

    /// Spend a refresh token for a new pair in the same session. The decision and the write
    /// happen under the session's lock: a refresh never commits after its session was
    /// revoked or its user disabled, and a session never has two live refresh tokens.
    pub async fn refresh(&self, token: &str) -> Result<TokenPair, AuthError> {
        let hash = refresh_hash(token)?;
        if let Some(pair) = self.refresh_in_one_statement(&hash).await? {
            return Ok(pair);
        }
        let guard = self
            .store
            .lock_refresh(&hash)
            .await?
            .ok_or(AuthError::RefreshUnknown)?;
        let now = Utc::now();
        if let Err(refused) = check_session(&guard, now) {
            guard.release().await?;
            return Err(refused);
        }
        if guard.token.spent_at.is_some() {
            return self.on_spent(guard, now).await;
        }
        if guard.token.expires_at <= now {
            guard.release().await?;
            return Err(AuthError::RefreshExpired);
        }
        let (pair, row) = self.pair_in(&guard.user, &guard.session, now)?;
        guard.rotate(now, row).await?;
        Ok(pair)
    }

    /// The common case on PostgreSQL in one round trip; `None` when the store cannot do it
    /// or the token is not plainly spendable (then the locked path decides and says why).
    async fn refresh_in_one_statement(&self, hash: &str) -> Result<Option<TokenPair>, AuthError> {
        if !self.store.rotates_in_one_statement() {
            return Ok(None);
        }
        let now = Utc::now();
        let refresh = new_refresh_token();
        let successor = hex(&Sha256::digest(refresh.as_bytes()));
        let max_expiry = now + chrono_dur(self.policy.refresh_ttl);
        let Some(r) = self
            .store
            .rotate_in_one_statement(hash, &successor, now, max_expiry)
            .await?
        else {
            return Ok(None);
        };
        let (access, expires_in) = self.mint(
            r.user_id,
            &r.username,
            &r.roles,
            r.session_id,
            &r.audience,
            now,
        )?;
        Ok(Some(TokenPair {
            access_token: access,
            refresh_token: refresh,
            expires_in,
            refresh_expires_in: secs_until(r.expires_at, now),
        }))
    }

    /// Change the caller's password. `access_token` says who they are; the current password
    /// is checked like a login (throttled, same cost), the new one against the policy.
    /// Every other session of the user ends; the caller's session gets a fresh pair (any
    /// copy of its old refresh token dies with it).
    pub async fn change_password(
        &self,
        access_token: &str,
        current: String,
        new: String,
        from: Option<IpAddr>,
    ) -> Result<TokenPair, AuthError> {
        let claims = self.validate(access_token, "")?;
        if claims.client_id.is_some() {
            return Err(AuthError::NotAUser);
        }
        let (Ok(user_id), Ok(sid)) = (Uuid::parse_str(&claims.sub), Uuid::parse_str(&claims.sid))
        else {
            return Err(AuthError::Token(authd_client::VerifyError::Malformed));
        };
        let current = Password::parse(current)?.into_secret();
        let user = self
            .store
            .user_by_id(user_id)
            .await?
            .filter(|u| u.deleted_at.is_none() && !u.disabled)
            .ok_or(AuthError::TokenRevoked)?;
        let key = LoginName::parse(&user.username)?;
        self.begin_attempt(key.key(), from, Some(user.id)).await?;
        let verified = match self
            .hasher
            .verify(current, Some(user.password_hash.clone()))
            .await
        {
            Ok(v) => v,
            Err(e) => {
                self.forgive_address(from);
                return Err(e.into());
            }
        };
        if !matches!(verified, Verified::Match { .. }) {
            tracing::info!(event = "login_failed", user_id = %user.id, "password change refused: wrong current password");
            crate::metrics::login_failed("bad_credentials");
            return Err(AuthError::BadCredentials);
        }
        self.end_attempt_ok(key.key(), from).await;
        let who = admin::UserRef::Id(user.id.to_string());
        admin::set_password(
            &self.store,
            &self.hasher,
            &self.policy.password,
            &who,
            new,
            Some(sid),
        )
        .await?;
        // The other sessions' access tokens are refused here at once, not at the next reload.
        self.reload_revocations().await?;
        let now = Utc::now();
        let session = self
            .store
            .live_session(user.id, sid, now)
            .await?
            .ok_or(AuthError::SessionRevoked)?;
        let (pair, row) = self.pair_in(&user, &session, now)?;
        if !self.store.reissue_in_session(sid, row, now).await? {
            return Err(AuthError::SessionRevoked);
        }
        Ok(pair)
    }

    /// A new pair for `user` in `session`, and the row of its refresh token (not stored).
    fn pair_in(
        &self,
        user: &User,
        session: &SessionRow,
        now: DateTime<Utc>,
    ) -> Result<(TokenPair, RefreshTokenRow), AuthError> {
        let (refresh, row) = self.new_refresh_row(session, now);
        let (access, expires_in) = self.mint(
            user.id,
            &user.username,
            &user.roles,
            session.id,
            &session.audience,
            now,
        )?;
        let pair = TokenPair {
            access_token: access,
            refresh_token: refresh,
            expires_in,
            refresh_expires_in: secs_until(row.expires_at, now),
        };
        Ok((pair, row))
    }

    /// A spent token came back. Within the grace window, the newest token spent by a
    /// rotation may come back once: it gets a fresh pair and the live token it had been
    /// rotated into dies. Anything else is reuse and ends the session.
    async fn on_spent(
        &self,
        guard: SessionGuard,
        now: DateTime<Utc>,
    ) -> Result<TokenPair, AuthError> {
        let grace = chrono_dur(self.policy.refresh_reuse_grace);
        let t = &guard.token;
        let replayable = !grace.is_zero()
            && t.spent_at.is_some_and(|at| now - at <= grace)
            && !t.superseded
            && t.replayed_at.is_none()
            && guard.is_latest_spent().await?;
        let (user_id, sid) = (guard.user.id, guard.session.id);
        if replayable {
            let (pair, row) = self.pair_in(&guard.user, &guard.session, now)?;
            guard.replay(now, row).await?;
            tracing::info!(
                event = "refresh_grace_reissue",
                user_id = %user_id,
                sid = %sid,
                "spent refresh token re-presented within the grace window: fresh pair issued, \
                 the pair it had been rotated into is no longer valid"
            );
            return Ok(pair);
        }
        if guard.revoke(now).await? {
            crate::metrics::session_revoked("reuse");
        }
        self.revocations.add_session(sid);
        crate::metrics::refresh_reuse();
        tracing::warn!(
            event = "refresh_token_reuse",
            security = true,
            user_id = %user_id,
            sid = %sid,
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
