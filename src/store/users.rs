use chrono::{DateTime, Utc};
use sea_orm::prelude::*;
use sea_orm::{ActiveValue::Set, QueryOrder, QuerySelect, TransactionTrait, sea_query::Expr};

use super::entity::user;
use super::{Store, StoreError, classify};

pub use user::Model as User;

/// The `key_version` of keys the current rule computes (see `auth::Username`); rows of an
/// older version are re-keyed by `Store::migrate`.
pub const USERNAME_KEY_VERSION: i16 = 2;

impl Store {
    /// Insert a user; `Duplicate` when the username key is taken.
    pub(crate) async fn insert_user(&self, u: User) -> Result<(), StoreError> {
        user::ActiveModel {
            id: Set(u.id),
            username: Set(u.username),
            username_key: Set(u.username_key),
            password_hash: Set(u.password_hash),
            created_at: Set(u.created_at),
            disabled: Set(u.disabled),
            key_version: Set(u.key_version),
            roles: Set(u.roles),
            deleted_at: Set(u.deleted_at),
        }
        .insert(&self.db)
        .await
        .map_err(classify("username"))?;
        Ok(())
    }

    pub(crate) async fn user_by_key(&self, key: &str) -> Result<Option<User>, StoreError> {
        Ok(user::Entity::find()
            .filter(user::Column::UsernameKey.eq(key))
            .one(&self.db)
            .await?)
    }

    /// The users stored under any of `keys` (a login name's candidates), in one query.
    pub(crate) async fn users_by_keys(&self, keys: &[String]) -> Result<Vec<User>, StoreError> {
        Ok(user::Entity::find()
            .filter(user::Column::UsernameKey.is_in(keys.iter().cloned()))
            .all(&self.db)
            .await?)
    }

    pub async fn user_by_id(&self, id: Uuid) -> Result<Option<User>, StoreError> {
        Ok(user::Entity::find_by_id(id).one(&self.db).await?)
    }

    /// Replace a password hash, only if it is still the one we read (a concurrent
    /// password change wins over a re-hash).
    pub(crate) async fn replace_password_hash(
        &self,
        id: Uuid,
        old: &str,
        new: &str,
    ) -> Result<bool, StoreError> {
        let r = user::Entity::update_many()
            .col_expr(user::Column::PasswordHash, Expr::value(new))
            .filter(user::Column::Id.eq(id))
            .filter(user::Column::PasswordHash.eq(old))
            .exec(&self.db)
            .await?;
        Ok(r.rows_affected == 1)
    }

    /// Set the disabled flag of a user; disabling also ends every live session of theirs,
    /// in the same transaction, so enabling them again later revives nothing. Returns the
    /// number of sessions ended, `None` when no such user.
    pub async fn set_user_disabled(
        &self,
        id: Uuid,
        disabled: bool,
        now: DateTime<Utc>,
    ) -> Result<Option<u64>, StoreError> {
        let txn = self.db.begin().await?;
        let r = user::Entity::update_many()
            .col_expr(user::Column::Disabled, Expr::value(disabled))
            .filter(user::Column::Id.eq(id))
            .exec(&txn)
            .await?;
        if r.rows_affected == 0 {
            txn.rollback().await?;
            return Ok(None);
        }
        let ended = if disabled {
            super::sessions::revoke_user_sessions(&txn, id, now).await?
        } else {
            0
        };
        txn.commit().await?;
        Ok(Some(ended))
    }

    pub async fn list_users(&self) -> Result<Vec<User>, StoreError> {
        Ok(user::Entity::find()
            .filter(user::Column::DeletedAt.is_null())
            .order_by_asc(user::Column::UsernameKey)
            .all(&self.db)
            .await?)
    }

    /// Replace a user's roles (a JSON array); `false` when no such (undeleted) user.
    pub async fn set_user_roles(&self, id: Uuid, roles: &str) -> Result<bool, StoreError> {
        let r = user::Entity::update_many()
            .col_expr(user::Column::Roles, Expr::value(roles))
            .filter(user::Column::Id.eq(id))
            .filter(user::Column::DeletedAt.is_null())
            .exec(&self.db)
            .await?;
        Ok(r.rows_affected == 1)
    }

    /// Replace a user's password hash and end their sessions, all but `keep` (the caller's
    /// own, for a password change), in one transaction. `None` when no such user.
    pub async fn set_password_hash(
        &self,
        id: Uuid,
        hash: &str,
        keep: Option<Uuid>,
        now: DateTime<Utc>,
    ) -> Result<Option<u64>, StoreError> {
        let txn = self.db.begin().await?;
        let r = user::Entity::update_many()
            .col_expr(user::Column::PasswordHash, Expr::value(hash))
            .filter(user::Column::Id.eq(id))
            .filter(user::Column::DeletedAt.is_null())
            .exec(&txn)
            .await?;
        if r.rows_affected == 0 {
            txn.rollback().await?;
            return Ok(None);
        }
        let ended = super::sessions::revoke_user_sessions_except(&txn, id, keep, now).await?;
        txn.commit().await?;
        Ok(Some(ended))
    }

    /// Delete a user: their sessions end, and the row stays disabled, with its name freed,
    /// until the clean-up removes it (so other instances refuse their tokens through the
    /// revocation view). Returns the sessions ended; `None` when no such user.
    pub async fn delete_user(
        &self,
        id: Uuid,
        now: DateTime<Utc>,
    ) -> Result<Option<u64>, StoreError> {
        let txn = self.db.begin().await?;
        let r = user::Entity::update_many()
            .col_expr(user::Column::Disabled, Expr::value(true))
            .col_expr(user::Column::DeletedAt, Expr::value(now))
            .col_expr(
                user::Column::UsernameKey,
                Expr::value(format!("deleted:{id}")),
            )
            .filter(user::Column::Id.eq(id))
            .filter(user::Column::DeletedAt.is_null())
            .exec(&txn)
            .await?;
        if r.rows_affected == 0 {
            txn.rollback().await?;
            return Ok(None);
        }
        let ended = super::sessions::revoke_user_sessions(&txn, id, now).await?;
        txn.commit().await?;
        Ok(Some(ended))
    }

    /// Up to `limit` undeleted users after `after` (created_at, id), in that order: a
    /// stable order, so pages neither skip nor repeat a user while others are added.
    pub async fn list_users_page(
        &self,
        after: Option<(DateTime<Utc>, Uuid)>,
        limit: u64,
    ) -> Result<Vec<User>, StoreError> {
        let mut q = user::Entity::find().filter(user::Column::DeletedAt.is_null());
        if let Some((at, id)) = after {
            q = q.filter(
                sea_orm::Condition::any()
                    .add(user::Column::CreatedAt.gt(at))
                    .add(
                        sea_orm::Condition::all()
                            .add(user::Column::CreatedAt.eq(at))
                            .add(user::Column::Id.gt(id)),
                    ),
            );
        }
        Ok(q.order_by_asc(user::Column::CreatedAt)
            .order_by_asc(user::Column::Id)
            .limit(limit)
            .all(&self.db)
            .await?)
    }

    /// Remove the rows of users deleted before `before`; returns how many.
    pub(crate) async fn purge_deleted_users(
        &self,
        before: DateTime<Utc>,
    ) -> Result<u64, StoreError> {
        let r = user::Entity::delete_many()
            .filter(user::Column::DeletedAt.lt(before))
            .exec(&self.db)
            .await?;
        Ok(r.rows_affected)
    }

    pub(crate) async fn disabled_user_ids(&self) -> Result<Vec<Uuid>, StoreError> {
        Ok(user::Entity::find()
            .select_only()
            .column(user::Column::Id)
            .filter(user::Column::Disabled.eq(true))
            .into_tuple()
            .all(&self.db)
            .await?)
    }
}

/// For callers that build a user row.
pub(crate) fn new_user(
    id: Uuid,
    username: String,
    username_key: String,
    password_hash: String,
    now: DateTime<Utc>,
) -> User {
    User {
        id,
        username,
        username_key,
        password_hash,
        created_at: now,
        disabled: false,
        key_version: USERNAME_KEY_VERSION,
        roles: "[]".to_owned(),
        deleted_at: None,
    }
}
