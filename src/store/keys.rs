use sea_orm::prelude::*;
use sea_orm::{ActiveValue::Set, QueryOrder};

use super::entity::signing_key;
use super::{Store, StoreError, classify};

pub use signing_key::Model as SigningKeyRow;

impl Store {
    /// Every stored signing key, oldest first. Small: a handful of rows, rotated rarely.
    pub async fn signing_keys(&self) -> Result<Vec<SigningKeyRow>, StoreError> {
        Ok(signing_key::Entity::find()
            .order_by_asc(signing_key::Column::CreatedAt)
            .order_by_asc(signing_key::Column::Kid)
            .all(&self.db)
            .await?)
    }

    /// Store a new key. `Duplicate` when its kid is taken.
    pub(crate) async fn insert_signing_key(&self, k: SigningKeyRow) -> Result<(), StoreError> {
        signing_key::ActiveModel {
            kid: Set(k.kid),
            algorithm: Set(k.algorithm),
            material: Set(k.material),
            created_at: Set(k.created_at),
            activates_at: Set(k.activates_at),
        }
        .insert(&self.db)
        .await
        .map_err(classify("signing key"))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use migration::{Migrator, MigratorTrait};
    use sea_orm::ConnectionTrait;
    use secrecy::SecretString;

    use super::*;

    #[tokio::test]
    async fn keys_from_before_rotation_activate_at_their_creation() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}/x.db?mode=rwc", dir.path().display());
        let store = Store::connect(&SecretString::from(url)).await.unwrap();
        // The schema as the first release left it, with its generated HS256 key.
        Migrator::up(&store.db, Some(1)).await.unwrap();
        store
            .db
            .execute_unprepared(
                "INSERT INTO signing_keys (kid, algorithm, material, created_at) \
                 VALUES ('hs256-old', 'HS256', 'c2VjcmV0', '2026-11-29 10:00:00+00:00')",
            )
            .await
            .unwrap();
        store.migrate().await.unwrap();
        let keys = store.signing_keys().await.unwrap();
        assert_eq!(keys.len(), 1);
        assert_eq!(keys[0].activates_at, Some(keys[0].created_at));

        // And the change can be undone and redone.
        Migrator::down(&store.db, Some(1)).await.unwrap();
        store.migrate().await.unwrap();
        assert_eq!(store.signing_keys().await.unwrap().len(), 1);
    }
}
