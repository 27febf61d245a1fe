use chrono::{DateTime, Utc};
use sea_orm::prelude::*;
use sea_orm::{ActiveValue::Set, QueryOrder, QuerySelect, sea_query::Expr};

use super::entity::user;
use super::{Store, StoreError, classify};

pub use user::Model as User;

impl Store {
    /// Insert a user; `Duplicate` when the username key is taken.
    pub async fn insert_user(&self, u: User) -> Result<(), StoreError> {
        user::ActiveModel {
            id: Set(u.id),
            username: Set(u.username),
            username_key: Set(u.username_key),
            password_hash: Set(u.password_hash),
            created_at: Set(u.created_at),
            disabled: Set(u.disabled),
        }
        .insert(&self.db)
        .await
        .map_err(classify)?;
        Ok(())
    }

    pub async fn user_by_key(&self, key: &str) -> Result<Option<User>, StoreError> {
        Ok(user::Entity::find()
            .filter(user::Column::UsernameKey.eq(key))
            .one(&self.db)
            .await?)
    }

    pub async fn user_by_id(&self, id: Uuid) -> Result<Option<User>, StoreError> {
        Ok(user::Entity::find_by_id(id).one(&self.db).await?)
    }

    /// Replace a password hash, only if it is still the one we read (a concurrent
    /// password change wins over a re-hash).
    pub async fn replace_password_hash(
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

    /// Set the disabled flag; `None` when no such user.
    pub async fn set_user_disabled(
        &self,
        key: &str,
        disabled: bool,
    ) -> Result<Option<User>, StoreError> {
        let r = user::Entity::update_many()
            .col_expr(user::Column::Disabled, Expr::value(disabled))
            .filter(user::Column::UsernameKey.eq(key))
            .exec(&self.db)
            .await?;
        if r.rows_affected == 0 {
            return Ok(None);
        }
        self.user_by_key(key).await
    }

    pub async fn list_users(&self) -> Result<Vec<User>, StoreError> {
        Ok(user::Entity::find()
            .order_by_asc(user::Column::UsernameKey)
            .all(&self.db)
            .await?)
    }

    pub async fn disabled_user_ids(&self) -> Result<Vec<Uuid>, StoreError> {
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
pub fn new_user(
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
    }
}
