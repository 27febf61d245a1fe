//! Re-keying users whose `username_key` an older rule computed (migration 000004): the key
//! is Rust code (`auth::Username::migrated_key`), so it runs here, after the SQL
//! migrations, at every start-up and `authd migrate`; with nothing left to do it is one
//! indexed query.
use std::collections::HashSet;

use sea_orm::prelude::*;
use sea_orm::{DatabaseTransaction, QueryOrder, QuerySelect, TransactionTrait, sea_query::Expr};

use super::entity::user;
use super::users::USERNAME_KEY_VERSION;
use super::{Store, StoreError, classify};
use crate::auth::Username;

/// Rows whose key stays as it is are marked done this many at a time.
const BATCH: usize = 500;

/// What one old row becomes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Rekey {
    pub id: Uuid,
    pub old: String,
    pub new: String,
}

/// Assign new keys to the not yet re-keyed rows (`(id, old key)`, oldest first), given
/// the keys already held under the current rule. The oldest user gets a contested
/// skeleton; a later one keeps `legacy:` + its old key, which its exact name still logs
/// in with. Pure, so the rule is tested without a database.
pub(crate) fn plan(old_rows: Vec<(Uuid, String)>, mut taken: HashSet<String>) -> Vec<Rekey> {
    let mut out = Vec::with_capacity(old_rows.len());
    for (id, old) in old_rows {
        let new = match Username::migrated_key(&old) {
            Some(k) if !taken.contains(&k) => k,
            _ => {
                let legacy = Username::legacy_key(&old);
                if taken.contains(&legacy) {
                    // Only when an older authd wrote a first-rule row after this name's
                    // first holder was re-keyed: no name reaches this row any more.
                    tracing::warn!(user_id = %id, "username collides twice after re-keying; the user cannot log in by name");
                    format!("{legacy}#{id}")
                } else {
                    tracing::warn!(
                        user_id = %id,
                        "username looks like an older user's; it keeps a legacy key and logs in only by its exact name"
                    );
                    legacy
                }
            }
        };
        taken.insert(new.clone());
        out.push(Rekey { id, old, new });
    }
    out
}

impl Store {
    /// Re-key every row an older rule wrote. Safe to run from several instances at once:
    /// every write is conditional on the row still being old, and a lost race (a unique
    /// violation) is retried on the other instance's result.
    pub(crate) async fn rekey_usernames(&self) -> Result<(), StoreError> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            match self.rekey_once().await {
                Err(StoreError::Duplicate { .. }) if attempt < 3 => continue,
                other => return other,
            }
        }
    }

    async fn rekey_once(&self) -> Result<(), StoreError> {
        let pending: Vec<(Uuid, String)> = user::Entity::find()
            .select_only()
            .columns([user::Column::Id, user::Column::UsernameKey])
            .filter(user::Column::KeyVersion.lt(USERNAME_KEY_VERSION))
            .order_by_asc(user::Column::CreatedAt)
            .order_by_asc(user::Column::Id)
            .into_tuple()
            .all(&self.db)
            .await?;
        if pending.is_empty() {
            return Ok(());
        }
        let txn = self.db.begin().await?;
        let taken: HashSet<String> = user::Entity::find()
            .select_only()
            .column(user::Column::UsernameKey)
            .filter(user::Column::KeyVersion.gte(USERNAME_KEY_VERSION))
            .into_tuple::<String>()
            .all(&txn)
            .await?
            .into_iter()
            .collect();
        let plan = plan(pending, taken);
        let (same, changed): (Vec<_>, Vec<_>) = plan.into_iter().partition(|r| r.new == r.old);
        // Two passes, so that a key moving to another row never meets the row still
        // holding it: first every changing row gets a key no rule produces (a control
        // character), then its final one.
        for r in &changed {
            set_key(&txn, r.id, &format!("\u{1}rekey:{}", r.id), false).await?;
        }
        for r in &changed {
            set_key(&txn, r.id, &r.new, true).await?;
        }
        for chunk in same.chunks(BATCH) {
            user::Entity::update_many()
                .col_expr(user::Column::KeyVersion, Expr::value(USERNAME_KEY_VERSION))
                .filter(user::Column::Id.is_in(chunk.iter().map(|r| r.id)))
                .filter(user::Column::KeyVersion.lt(USERNAME_KEY_VERSION))
                .exec(&txn)
                .await?;
        }
        txn.commit().await?;
        tracing::info!(
            rekeyed = changed.len(),
            unchanged = same.len(),
            "usernames re-keyed to their confusable skeletons"
        );
        Ok(())
    }
}

async fn set_key(
    txn: &DatabaseTransaction,
    id: Uuid,
    key: &str,
    done: bool,
) -> Result<(), StoreError> {
    let mut update = user::Entity::update_many()
        .col_expr(user::Column::UsernameKey, Expr::value(key))
        .filter(user::Column::Id.eq(id))
        .filter(user::Column::KeyVersion.lt(USERNAME_KEY_VERSION));
    if done {
        update = update.col_expr(user::Column::KeyVersion, Expr::value(USERNAME_KEY_VERSION));
    }
    update.exec(txn).await.map_err(classify("username"))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: u128) -> Uuid {
        Uuid::from_u128(n)
    }

    #[test]
    fn the_oldest_look_alike_gets_the_skeleton_and_the_later_one_a_legacy_key() {
        let rows = vec![
            (id(1), "\u{0430}lice".to_owned()),
            (id(2), "alice".to_owned()),
            (id(3), "bob".to_owned()),
            (id(4), "john smith".to_owned()),
        ];
        let p = plan(rows, HashSet::new());
        let new: Vec<&str> = p.iter().map(|r| r.new.as_str()).collect();
        assert_eq!(
            new,
            vec![
                "alice",
                "legacy:alice",
                "bob",
                Username::migrated_key("john smith").unwrap().as_str()
            ]
        );
    }

    #[test]
    fn keys_already_held_under_the_new_rule_are_not_taken_again() {
        let taken = HashSet::from(["alice".to_owned(), "legacy:bob".to_owned()]);
        let p = plan(vec![(id(1), "alice".into()), (id(2), "bob".into())], taken);
        assert_eq!(p[0].new, "legacy:alice");
        // "bob" is free, so the legacy key held elsewhere does not matter.
        assert_eq!(p[1].new, "bob");
        let p = plan(vec![(id(3), "legacy:bob".into())], HashSet::new());
        // A first-rule name in the legacy namespace is moved out of it.
        assert_eq!(p[0].new, "legacy:legacy:bob");
    }
}
