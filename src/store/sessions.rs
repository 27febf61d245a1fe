use chrono::{DateTime, Utc};
use sea_orm::prelude::*;
use sea_orm::sea_query::{Expr, Query};
use sea_orm::{
    ActiveValue::Set, Condition, DatabaseBackend, DatabaseTransaction, QuerySelect,
    TransactionTrait,
};

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

/// What a refresh done in one statement tells the caller: enough to mint the access token.
#[derive(Debug, Clone)]
pub struct Rotated {
    pub session_id: Uuid,
    pub user_id: Uuid,
    pub username: String,
    /// The user's roles column (a JSON array).
    pub roles: String,
    pub audience: String,
    /// When the successor refresh token expires.
    pub expires_at: DateTime<Utc>,
}

/// PostgreSQL's refresh in one round trip: lock the session (as the locked path does, so a
/// revocation or a disable either commits first and is seen, or waits for this), spend the
/// token only if unspent (re-checked on the row's newest version, so two concurrent calls
/// cannot both spend it), and insert the successor only if it was spent here. Any condition
/// not met yields no row, and the caller takes the locked path, which says why.
const ROTATE_IN_ONE_STATEMENT: &str = r#"
WITH live AS (
    SELECT s.id AS session_id, s.user_id, s.audience, s.expires_at AS session_expires_at,
           u.username, u.roles
    FROM sessions s
    JOIN refresh_tokens t ON t.session_id = s.id
    JOIN users u ON u.id = s.user_id
    WHERE t.token_hash = $1
      AND t.spent_at IS NULL
      AND t.expires_at > $2
      AND s.revoked_at IS NULL
      AND s.expires_at > $2
      AND NOT u.disabled
    FOR UPDATE OF s
), spent AS (
    UPDATE refresh_tokens t SET spent_at = $2
    FROM live
    WHERE t.token_hash = $1 AND t.spent_at IS NULL
    RETURNING live.session_id, live.user_id, live.username, live.roles, live.audience,
              live.session_expires_at
), successor AS (
    INSERT INTO refresh_tokens
        (token_hash, session_id, issued_at, expires_at, spent_at, replayed_at, superseded)
    SELECT $3, session_id, $2, LEAST($4, session_expires_at), NULL, NULL, false FROM spent
    RETURNING session_id, expires_at
)
SELECT spent.session_id, spent.user_id, spent.username, spent.roles, spent.audience,
       successor.expires_at
FROM spent JOIN successor ON successor.session_id = spent.session_id
"#;

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
        replayed_at: Set(t.replayed_at),
        superseded: Set(t.superseded),
    }
}

/// A refresh token, its session and its user, read while the session is locked: until
/// the guard ends, a revocation, a disable or another refresh of the same session waits,
/// so what was read is what the guard's write is conditional on.
#[derive(Debug)]
pub struct SessionGuard {
    txn: DatabaseTransaction,
    pub token: RefreshTokenRow,
    pub session: SessionRow,
    pub user: user::Model,
}

impl SessionGuard {
    /// Spend the token and store its successor.
    pub async fn rotate(
        self,
        now: DateTime<Utc>,
        successor: RefreshTokenRow,
    ) -> Result<(), StoreError> {
        refresh_token::Entity::update_many()
            .col_expr(refresh_token::Column::SpentAt, Expr::value(now))
            .filter(refresh_token::Column::TokenHash.eq(self.token.token_hash.as_str()))
            .filter(refresh_token::Column::SpentAt.is_null())
            .exec(&self.txn)
            .await?;
        token_active(successor).insert(&self.txn).await?;
        self.txn.commit().await?;
        Ok(())
    }

    /// The grace-window replay of a spent token: it is marked replayed (it cannot be
    /// replayed twice), the session's live token is superseded, and `successor` becomes
    /// the one live token.
    pub async fn replay(
        self,
        now: DateTime<Utc>,
        successor: RefreshTokenRow,
    ) -> Result<(), StoreError> {
        refresh_token::Entity::update_many()
            .col_expr(refresh_token::Column::ReplayedAt, Expr::value(now))
            .filter(refresh_token::Column::TokenHash.eq(self.token.token_hash.as_str()))
            .exec(&self.txn)
            .await?;
        refresh_token::Entity::update_many()
            .col_expr(refresh_token::Column::SpentAt, Expr::value(now))
            .col_expr(refresh_token::Column::Superseded, Expr::value(true))
            .filter(refresh_token::Column::SessionId.eq(self.session.id))
            .filter(refresh_token::Column::SpentAt.is_null())
            .exec(&self.txn)
            .await?;
        token_active(successor).insert(&self.txn).await?;
        self.txn.commit().await?;
        Ok(())
    }

    /// End the session; `false` when it had already ended.
    pub async fn revoke(self, now: DateTime<Utc>) -> Result<bool, StoreError> {
        let r = revoke_session(&self.txn, self.session.id, now).await?;
        self.txn.commit().await?;
        Ok(r)
    }

    /// Whether no token of the session was spent after this one.
    pub(crate) async fn is_latest_spent(&self) -> Result<bool, StoreError> {
        let Some(spent_at) = self.token.spent_at else {
            return Ok(false);
        };
        let later = refresh_token::Entity::find()
            .filter(refresh_token::Column::SessionId.eq(self.session.id))
            .filter(refresh_token::Column::SpentAt.gt(spent_at))
            .count(&self.txn)
            .await?;
        Ok(later == 0)
    }

    /// End the guard without writing.
    pub async fn release(self) -> Result<(), StoreError> {
        self.txn.rollback().await?;
        Ok(())
    }
}

async fn revoke_session(
    db: &impl ConnectionTrait,
    id: Uuid,
    now: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let r = session::Entity::update_many()
        .col_expr(session::Column::RevokedAt, Expr::value(now))
        .filter(session::Column::Id.eq(id))
        .filter(session::Column::RevokedAt.is_null())
        .exec(db)
        .await?;
    Ok(r.rows_affected == 1)
}

impl Store {
    /// Open a session together with its first refresh token.
    pub(crate) async fn open_session(
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

    pub(crate) async fn lookup_refresh(
        &self,
        hash: &str,
    ) -> Result<Option<RefreshLookup>, StoreError> {
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

    /// Lock the session of refresh token `hash` and read the token, session and user;
    /// `None` when the token is unknown. Every decision about spending the token is taken
    /// on this view and written through the guard, in one transaction: across instances
    /// and databases, no refresh commits after the session's revocation has.
    pub(crate) async fn lock_refresh(
        &self,
        hash: &str,
    ) -> Result<Option<SessionGuard>, StoreError> {
        let txn = self.db.begin().await?;
        match txn.get_database_backend() {
            DatabaseBackend::Postgres => {
                let Some(session_id) = refresh_token::Entity::find_by_id(hash.to_owned())
                    .select_only()
                    .column(refresh_token::Column::SessionId)
                    .into_tuple::<Uuid>()
                    .one(&txn)
                    .await?
                else {
                    txn.rollback().await?;
                    return Ok(None);
                };
                session::Entity::find_by_id(session_id)
                    .lock_exclusive()
                    .one(&txn)
                    .await?;
            }
            _ => {
                // SQLite has one writer: a write first takes the database's write lock for
                // the whole transaction (a read first could not be upgraded later), so
                // what is read next is current and nobody writes until the guard ends.
                session::Entity::update_many()
                    .col_expr(
                        session::Column::RevokedAt,
                        Expr::col(session::Column::RevokedAt),
                    )
                    .filter(
                        session::Column::Id.in_subquery(
                            Query::select()
                                .column(refresh_token::Column::SessionId)
                                .from(refresh_token::Entity)
                                .and_where(refresh_token::Column::TokenHash.eq(hash))
                                .to_owned(),
                        ),
                    )
                    .exec(&txn)
                    .await?;
            }
        }
        let Some(token) = refresh_token::Entity::find_by_id(hash.to_owned())
            .one(&txn)
            .await?
        else {
            txn.rollback().await?;
            return Ok(None);
        };
        let session = session::Entity::find_by_id(token.session_id)
            .one(&txn)
            .await?;
        let user = match &session {
            Some(s) => user::Entity::find_by_id(s.user_id).one(&txn).await?,
            None => None,
        };
        let (Some(session), Some(user)) = (session, user) else {
            txn.rollback().await?;
            return Ok(None);
        };
        Ok(Some(SessionGuard {
            txn,
            token,
            session,
            user,
        }))
    }

    /// Whether `rotate_in_one_statement` can be used here (PostgreSQL). SQLite runs in the
    /// process, where the locked path's statements cost no network round trips.
    pub(crate) fn rotates_in_one_statement(&self) -> bool {
        self.db.get_database_backend() == DatabaseBackend::Postgres
    }

    /// On PostgreSQL, spend refresh token `hash` for `successor` (expiring at `max_expiry`
    /// or with its session, whichever is first) in one statement; `None` when the token is
    /// not an unspent, unexpired token of a live session of an enabled user.
    pub(crate) async fn rotate_in_one_statement(
        &self,
        hash: &str,
        successor: &str,
        now: DateTime<Utc>,
        max_expiry: DateTime<Utc>,
    ) -> Result<Option<Rotated>, StoreError> {
        let stmt = sea_orm::Statement::from_sql_and_values(
            DatabaseBackend::Postgres,
            ROTATE_IN_ONE_STATEMENT,
            [hash.into(), now.into(), successor.into(), max_expiry.into()],
        );
        let Some(row) = self.db.query_one_raw(stmt).await? else {
            return Ok(None);
        };
        Ok(Some(Rotated {
            session_id: row.try_get("", "session_id")?,
            user_id: row.try_get("", "user_id")?,
            username: row.try_get("", "username")?,
            roles: row.try_get("", "roles")?,
            audience: row.try_get("", "audience")?,
            expires_at: row.try_get("", "expires_at")?,
        }))
    }

    /// Give live session `id` a new refresh token in place of its current one (a password
    /// change: the caller keeps their session, any copy of its old refresh token dies).
    /// `false` when the session has ended.
    pub(crate) async fn reissue_in_session(
        &self,
        id: Uuid,
        successor: RefreshTokenRow,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let txn = self.db.begin().await?;
        let live = session::Entity::update_many()
            .col_expr(
                session::Column::RevokedAt,
                Expr::col(session::Column::RevokedAt),
            )
            .filter(session::Column::Id.eq(id))
            .filter(session::Column::RevokedAt.is_null())
            .filter(session::Column::ExpiresAt.gt(now))
            .exec(&txn)
            .await?;
        if live.rows_affected == 0 {
            txn.rollback().await?;
            return Ok(false);
        }
        refresh_token::Entity::update_many()
            .col_expr(refresh_token::Column::SpentAt, Expr::value(now))
            .col_expr(refresh_token::Column::Superseded, Expr::value(true))
            .filter(refresh_token::Column::SessionId.eq(id))
            .filter(refresh_token::Column::SpentAt.is_null())
            .exec(&txn)
            .await?;
        token_active(successor).insert(&txn).await?;
        txn.commit().await?;
        Ok(true)
    }

    /// One live session of a user, by its id: `None` when it has ended or is not theirs.
    pub async fn live_session(
        &self,
        user_id: Uuid,
        id: Uuid,
        now: DateTime<Utc>,
    ) -> Result<Option<SessionRow>, StoreError> {
        Ok(session::Entity::find_by_id(id)
            .filter(session::Column::UserId.eq(user_id))
            .filter(session::Column::RevokedAt.is_null())
            .filter(session::Column::ExpiresAt.gt(now))
            .one(&self.db)
            .await?)
    }

    /// The live sessions of a user, newest first.
    pub async fn live_sessions(
        &self,
        user_id: Uuid,
        now: DateTime<Utc>,
    ) -> Result<Vec<SessionRow>, StoreError> {
        use sea_orm::QueryOrder;
        Ok(session::Entity::find()
            .filter(session::Column::UserId.eq(user_id))
            .filter(session::Column::RevokedAt.is_null())
            .filter(session::Column::ExpiresAt.gt(now))
            .order_by_desc(session::Column::CreatedAt)
            .all(&self.db)
            .await?)
    }

    /// End a session; `false` when it had already ended (revocation is idempotent).
    pub async fn revoke_session(&self, id: Uuid, now: DateTime<Utc>) -> Result<bool, StoreError> {
        revoke_session(&self.db, id, now).await
    }

    /// End every live session of a user; returns how many ended.
    pub async fn revoke_user_sessions(
        &self,
        user_id: Uuid,
        now: DateTime<Utc>,
    ) -> Result<u64, StoreError> {
        revoke_user_sessions(&self.db, user_id, now).await
    }

    /// Sessions revoked after `since` and all disabled users.
    pub(crate) async fn revocation_snapshot(
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
        // A service token's `sub` is its client id: a disabled account is refused the
        // same way as a disabled user.
        let mut disabled_users = self.disabled_user_ids().await?;
        disabled_users.extend(self.disabled_service_account_ids().await?);
        Ok(RevocationSnapshot {
            revoked_sessions,
            disabled_users,
        })
    }

    /// Delete refresh tokens spent or expired before `before`, and sessions that ended
    /// before it (their tokens go with them). Returns (tokens, sessions) deleted.
    pub(crate) async fn delete_dead_sessions(
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

/// As `revoke_user_sessions`, sparing the session `keep`.
pub(super) async fn revoke_user_sessions_except(
    db: &impl ConnectionTrait,
    user_id: Uuid,
    keep: Option<Uuid>,
    now: DateTime<Utc>,
) -> Result<u64, StoreError> {
    let mut q = session::Entity::update_many()
        .col_expr(session::Column::RevokedAt, Expr::value(now))
        .filter(session::Column::UserId.eq(user_id))
        .filter(session::Column::RevokedAt.is_null())
        .filter(session::Column::ExpiresAt.gt(now));
    if let Some(keep) = keep {
        q = q.filter(session::Column::Id.ne(keep));
    }
    Ok(q.exec(db).await?.rows_affected)
}

pub(super) async fn revoke_user_sessions(
    db: &impl ConnectionTrait,
    user_id: Uuid,
    now: DateTime<Utc>,
) -> Result<u64, StoreError> {
    let r = session::Entity::update_many()
        .col_expr(session::Column::RevokedAt, Expr::value(now))
        .filter(session::Column::UserId.eq(user_id))
        .filter(session::Column::RevokedAt.is_null())
        .filter(session::Column::ExpiresAt.gt(now))
        .exec(db)
        .await?;
    Ok(r.rows_affected)
}
