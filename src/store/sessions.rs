use chrono::{DateTime, Utc};
use sea_orm::prelude::*;
use sea_orm::{ActiveValue::Set, Condition, QuerySelect, TransactionTrait, sea_query::Expr};

use super::entity::{refresh_token, session, user};
use super::{Store, StoreError};

pub use refresh_token::Model as RefreshTokenRow;
pub use session::Model as SessionRow;

/// A refresh token with the session and user it belongs to.
#[derive(Debug, Clone)]
pub struct RefreshLookup {
    pub token: RefreshTokenRow,
    pub session: SessionRow,
    pub user: user::Model,
}

/// What `Validate` must refuse beyond signature and claims.
#[derive(Debug, Clone, Default)]
pub struct RevocationSnapshot {
    pub revoked_sessions: Vec<Uuid>,
    pub disabled_users: Vec<Uuid>,
}

fn token_active(t: RefreshTokenRow) -> refresh_token::ActiveModel {
    refresh_token::ActiveModel {
        token_hash: Set(t.token_hash),
        session_id: Set(t.session_id),
        issued_at: Set(t.issued_at),
        expires_at: Set(t.expires_at),
        spent_at: Set(t.spent_at),
    }
}

impl Store {
    /// Open a session together with its first refresh token.
    pub async fn open_session(
        &self,
        s: SessionRow,
        first: RefreshTokenRow,
    ) -> Result<(), StoreError> {
        let txn = self.db.begin().await?;
        session::ActiveModel {
            id: Set(s.id),
            user_id: Set(s.user_id),
            audience: Set(s.audience),
            created_at: Set(s.created_at),
            expires_at: Set(s.expires_at),
            revoked_at: Set(s.revoked_at),
        }
        .insert(&txn)
        .await?;
        token_active(first).insert(&txn).await?;
        txn.commit().await?;
        Ok(())
    }

    pub async fn lookup_refresh(&self, hash: &str) -> Result<Option<RefreshLookup>, StoreError> {
        let Some(token) = refresh_token::Entity::find_by_id(hash.to_owned())
            .one(&self.db)
            .await?
        else {
            return Ok(None);
        };
        let Some(session) = session::Entity::find_by_id(token.session_id)
            .one(&self.db)
            .await?
        else {
            return Ok(None);
        };
        let Some(user) = user::Entity::find_by_id(session.user_id)
            .one(&self.db)
            .await?
        else {
            return Ok(None);
        };
        Ok(Some(RefreshLookup {
            token,
            session,
            user,
        }))
    }

    /// Spend `hash` and store `successor`, atomically. The spend is one conditional write
    /// (`... WHERE spent_at IS NULL`): of any number of concurrent callers, on any number of
    /// instances, exactly one gets `true`.
    pub async fn rotate_refresh(
        &self,
        hash: &str,
        now: DateTime<Utc>,
        successor: RefreshTokenRow,
    ) -> Result<bool, StoreError> {
        let txn = self.db.begin().await?;
        let spent = refresh_token::Entity::update_many()
            .col_expr(refresh_token::Column::SpentAt, Expr::value(now))
            .filter(refresh_token::Column::TokenHash.eq(hash))
            .filter(refresh_token::Column::SpentAt.is_null())
            .exec(&txn)
            .await?;
        if spent.rows_affected != 1 {
            txn.rollback().await?;
            return Ok(false);
        }
        token_active(successor).insert(&txn).await?;
        txn.commit().await?;
        Ok(true)
    }

    /// Add a refresh token to an existing session (the grace-window reissue).
    pub async fn insert_refresh(&self, t: RefreshTokenRow) -> Result<(), StoreError> {
        token_active(t).insert(&self.db).await?;
        Ok(())
    }

    /// Whether no token of the session was spent after `spent_at`.
    pub async fn is_latest_spent(
        &self,
        session_id: Uuid,
        spent_at: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let later = refresh_token::Entity::find()
            .filter(refresh_token::Column::SessionId.eq(session_id))
            .filter(refresh_token::Column::SpentAt.gt(spent_at))
            .count(&self.db)
            .await?;
        Ok(later == 0)
    }

    /// End a session; `false` when it had already ended (revocation is idempotent).
    pub async fn revoke_session(&self, id: Uuid, now: DateTime<Utc>) -> Result<bool, StoreError> {
        let r = session::Entity::update_many()
            .col_expr(session::Column::RevokedAt, Expr::value(now))
            .filter(session::Column::Id.eq(id))
            .filter(session::Column::RevokedAt.is_null())
            .exec(&self.db)
            .await?;
        Ok(r.rows_affected == 1)
    }

    /// End every live session of a user; returns how many ended.
    pub async fn revoke_user_sessions(
        &self,
        user_id: Uuid,
        now: DateTime<Utc>,
    ) -> Result<u64, StoreError> {
        let r = session::Entity::update_many()
            .col_expr(session::Column::RevokedAt, Expr::value(now))
            .filter(session::Column::UserId.eq(user_id))
            .filter(session::Column::RevokedAt.is_null())
            .filter(session::Column::ExpiresAt.gt(now))
            .exec(&self.db)
            .await?;
        Ok(r.rows_affected)
    }

    /// Sessions revoked after `since` and all disabled users.
    pub async fn revocation_snapshot(
        &self,
        since: DateTime<Utc>,
    ) -> Result<RevocationSnapshot, StoreError> {
        let revoked_sessions = session::Entity::find()
            .select_only()
            .column(session::Column::Id)
            .filter(session::Column::RevokedAt.gt(since))
            .into_tuple()
            .all(&self.db)
            .await?;
        Ok(RevocationSnapshot {
            revoked_sessions,
            disabled_users: self.disabled_user_ids().await?,
        })
    }

    /// Delete refresh tokens spent or expired before `before`, and sessions that ended
    /// before it (their tokens go with them). Returns (tokens, sessions) deleted.
    pub async fn delete_dead_sessions(
        &self,
        before: DateTime<Utc>,
    ) -> Result<(u64, u64), StoreError> {
        let tokens = refresh_token::Entity::delete_many()
            .filter(
                Condition::any()
                    .add(refresh_token::Column::SpentAt.lt(before))
                    .add(refresh_token::Column::ExpiresAt.lt(before)),
            )
            .exec(&self.db)
            .await?;
        let sessions = session::Entity::delete_many()
            .filter(
                Condition::any()
                    .add(session::Column::RevokedAt.lt(before))
                    .add(session::Column::ExpiresAt.lt(before)),
            )
            .exec(&self.db)
            .await?;
        Ok((tokens.rows_affected, sessions.rows_affected))
    }
}
