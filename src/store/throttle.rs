//! Failed-login counts per account, shared by every instance on the database.
use chrono::{DateTime, Utc};
use sea_orm::ActiveValue::Set;
use sea_orm::prelude::*;
use sea_orm::sea_query::{Expr, OnConflict};

use super::entity::login_throttle;
use super::{Store, StoreError};

/// The count of an account as read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AccountCount {
    pub failures: u32,
    pub last_failure_at: DateTime<Utc>,
    pub blocked_until: Option<DateTime<Utc>>,
}

impl Store {
    pub(crate) async fn account_count(
        &self,
        key: &str,
    ) -> Result<Option<AccountCount>, StoreError> {
        Ok(login_throttle::Entity::find_by_id(key.to_owned())
            .one(&self.db)
            .await?
            .map(|r| AccountCount {
                failures: u32::try_from(r.failures).unwrap_or(0),
                last_failure_at: r.last_failure_at,
                blocked_until: r.blocked_until,
            }))
    }

    /// Replace the count of `key`, only if it is still `seen` (`None`: no row): of
    /// concurrent writers, on any instances, one wins and the others read again.
    pub(crate) async fn swap_account_count(
        &self,
        key: &str,
        seen: Option<AccountCount>,
        new: AccountCount,
    ) -> Result<bool, StoreError> {
        let failures = i32::try_from(new.failures).unwrap_or(i32::MAX);
        let Some(seen) = seen else {
            let row = login_throttle::ActiveModel {
                account_key: Set(key.to_owned()),
                failures: Set(failures),
                last_failure_at: Set(new.last_failure_at),
                blocked_until: Set(new.blocked_until),
            };
            let inserted = login_throttle::Entity::insert(row)
                .on_conflict(
                    OnConflict::column(login_throttle::Column::AccountKey)
                        .do_nothing()
                        .to_owned(),
                )
                .exec_without_returning(&self.db)
                .await?;
            return Ok(inserted == 1);
        };
        let r = login_throttle::Entity::update_many()
            .col_expr(login_throttle::Column::Failures, Expr::value(failures))
            .col_expr(
                login_throttle::Column::LastFailureAt,
                Expr::value(new.last_failure_at),
            )
            .col_expr(
                login_throttle::Column::BlockedUntil,
                Expr::value(new.blocked_until),
            )
            .filter(login_throttle::Column::AccountKey.eq(key))
            .filter(login_throttle::Column::Failures.eq(i32::try_from(seen.failures).unwrap_or(0)))
            .exec(&self.db)
            .await?;
        Ok(r.rows_affected == 1)
    }

    /// Forget the count of `key` (a successful login).
    pub(crate) async fn clear_account_count(&self, key: &str) -> Result<(), StoreError> {
        login_throttle::Entity::delete_by_id(key.to_owned())
            .exec(&self.db)
            .await?;
        Ok(())
    }

    /// Delete counts whose last failure is older than `before` and that block nothing.
    pub(crate) async fn delete_stale_counts(
        &self,
        before: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<u64, StoreError> {
        let r = login_throttle::Entity::delete_many()
            .filter(login_throttle::Column::LastFailureAt.lt(before))
            .filter(
                sea_orm::Condition::any()
                    .add(login_throttle::Column::BlockedUntil.is_null())
                    .add(login_throttle::Column::BlockedUntil.lt(now)),
            )
            .exec(&self.db)
            .await?;
        Ok(r.rows_affected)
    }
}
