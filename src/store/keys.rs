use sea_orm::prelude::*;
use sea_orm::{ActiveValue::Set, QueryOrder};

use super::entity::signing_key;
use super::{Store, StoreError, classify};

pub use signing_key::Model as SigningKeyRow;

impl Store {
    /// Every stored signing key, oldest first.
    pub async fn signing_keys(&self) -> Result<Vec<SigningKeyRow>, StoreError> {
        Ok(signing_key::Entity::find()
            .order_by_asc(signing_key::Column::CreatedAt)
            .order_by_asc(signing_key::Column::Kid)
            .all(&self.db)
            .await?)
    }

    pub async fn insert_signing_key(&self, k: SigningKeyRow) -> Result<(), StoreError> {
        signing_key::ActiveModel {
            kid: Set(k.kid),
            algorithm: Set(k.algorithm),
            material: Set(k.material),
            created_at: Set(k.created_at),
        }
        .insert(&self.db)
        .await
        .map_err(classify)?;
        Ok(())
    }
}
