use sea_orm::prelude::*;
use sea_orm::{ActiveValue::Set, QueryOrder, TransactionTrait, sea_query::Expr};

use super::entity::signing_key;
use super::{Store, StoreError, classify};

pub use signing_key::Model as SigningKeyRow;

/// A stored key's material sealed anew: written only if the row still holds
/// `old_material`.
pub(crate) struct MaterialChange {
    pub kid: String,
    pub old_material: String,
    pub material: String,
    pub kek_id: String,
}

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
            kek_id: Set(k.kek_id),
        }
        .insert(&self.db)
        .await
        .map_err(classify("signing key"))?;
        Ok(())
    }

    /// Apply `changes` in one transaction, each only where the row is as it was read.
    /// Returns the kids changed; with `all_or_nothing`, nothing is changed (and the list
    /// is shorter than `changes`) when any row was changed meanwhile.
    pub(crate) async fn replace_signing_key_materials(
        &self,
        changes: &[MaterialChange],
        all_or_nothing: bool,
    ) -> Result<Vec<String>, StoreError> {
        let txn = self.db.begin().await?;
        let mut done = Vec::with_capacity(changes.len());
        for c in changes {
            let r = signing_key::Entity::update_many()
                .col_expr(
                    signing_key::Column::Material,
                    Expr::value(c.material.clone()),
                )
                .col_expr(
                    signing_key::Column::KekId,
                    Expr::value(Some(c.kek_id.clone())),
                )
                .filter(signing_key::Column::Kid.eq(c.kid.as_str()))
                .filter(signing_key::Column::Material.eq(c.old_material.as_str()))
                .exec(&txn)
                .await?;
            if r.rows_affected == 1 {
                done.push(c.kid.clone());
            }
        }
        if all_or_nothing && done.len() != changes.len() {
            txn.rollback().await?;
        } else {
            txn.commit().await?;
        }
        Ok(done)
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
