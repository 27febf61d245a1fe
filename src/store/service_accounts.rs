//! Service accounts: the client-credentials side of the store.
use chrono::{DateTime, Utc};
use sea_orm::prelude::*;
use sea_orm::{ActiveValue::Set, QueryOrder, QuerySelect, sea_query::Expr};

use super::entity::service_account;
use super::{Store, StoreError, classify};

pub use service_account::Model as ServiceAccount;

impl Store {
    /// Insert a service account; `Duplicate` when the name is taken.
    pub async fn insert_service_account(&self, a: ServiceAccount) -> Result<(), StoreError> {
        service_account::ActiveModel {
            client_id: Set(a.client_id),
            name: Set(a.name),
            roles: Set(a.roles),
            secret_hash: Set(a.secret_hash),
            previous_secret_hash: Set(a.previous_secret_hash),
            previous_secret_expires_at: Set(a.previous_secret_expires_at),
            disabled: Set(a.disabled),
            created_at: Set(a.created_at),
        }
        .insert(&self.db)
        .await
        .map_err(classify("service account"))?;
        Ok(())
    }

    pub async fn service_account(&self, id: Uuid) -> Result<Option<ServiceAccount>, StoreError> {
        Ok(service_account::Entity::find_by_id(id)
            .one(&self.db)
            .await?)
    }

    pub async fn service_account_by_name(
        &self,
        name: &str,
    ) -> Result<Option<ServiceAccount>, StoreError> {
        Ok(service_account::Entity::find()
            .filter(service_account::Column::Name.eq(name))
            .one(&self.db)
            .await?)
    }

    /// Up to `limit` service accounts named after `after`, by name.
    pub async fn list_service_accounts(
        &self,
        after: Option<&str>,
        limit: u64,
    ) -> Result<Vec<ServiceAccount>, StoreError> {
        let mut q = service_account::Entity::find();
        if let Some(after) = after {
            q = q.filter(service_account::Column::Name.gt(after));
        }
        Ok(q.order_by_asc(service_account::Column::Name)
            .limit(limit)
            .all(&self.db)
            .await?)
    }

    /// A new secret; the current one keeps working until `previous_until`. `false` when
    /// no such account.
    pub async fn rotate_service_account_secret(
        &self,
        id: Uuid,
        new_hash: &str,
        previous_until: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let r = service_account::Entity::update_many()
            .col_expr(
                service_account::Column::PreviousSecretHash,
                Expr::col(service_account::Column::SecretHash),
            )
            .col_expr(
                service_account::Column::PreviousSecretExpiresAt,
                Expr::value(previous_until),
            )
            .col_expr(service_account::Column::SecretHash, Expr::value(new_hash))
            .filter(service_account::Column::ClientId.eq(id))
            .exec(&self.db)
            .await?;
        Ok(r.rows_affected == 1)
    }

    pub async fn set_service_account_disabled(
        &self,
        id: Uuid,
        disabled: bool,
    ) -> Result<bool, StoreError> {
        let r = service_account::Entity::update_many()
            .col_expr(service_account::Column::Disabled, Expr::value(disabled))
            .filter(service_account::Column::ClientId.eq(id))
            .exec(&self.db)
            .await?;
        Ok(r.rows_affected == 1)
    }

    pub async fn set_service_account_roles(
        &self,
        id: Uuid,
        roles: &str,
    ) -> Result<bool, StoreError> {
        let r = service_account::Entity::update_many()
            .col_expr(service_account::Column::Roles, Expr::value(roles))
            .filter(service_account::Column::ClientId.eq(id))
            .exec(&self.db)
            .await?;
        Ok(r.rows_affected == 1)
    }

    /// Disabled service accounts: `Validate` refuses their tokens (their `sub`).
    pub(crate) async fn disabled_service_account_ids(&self) -> Result<Vec<Uuid>, StoreError> {
        Ok(service_account::Entity::find()
            .select_only()
            .column(service_account::Column::ClientId)
            .filter(service_account::Column::Disabled.eq(true))
            .into_tuple()
            .all(&self.db)
            .await?)
    }
}
