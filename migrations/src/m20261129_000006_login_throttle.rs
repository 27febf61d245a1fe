//! Failed-login counts per account, shared by every instance on the database, so two
//! instances give a guesser no more tries than one.
use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(LoginThrottle::Table)
                    .if_not_exists()
                    // The username's uniqueness key, whether or not such a user exists, so
                    // the throttle says nothing about which accounts exist.
                    .col(string_len(LoginThrottle::AccountKey, 256).primary_key())
                    .col(integer(LoginThrottle::Failures))
                    .col(timestamp_with_time_zone(LoginThrottle::LastFailureAt))
                    .col(timestamp_with_time_zone_null(LoginThrottle::BlockedUntil))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .if_not_exists()
                    .name("idx_login_throttle_last_failure_at")
                    .table(LoginThrottle::Table)
                    .col(LoginThrottle::LastFailureAt)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(
                Table::drop()
                    .table(LoginThrottle::Table)
                    .if_exists()
                    .to_owned(),
            )
            .await
    }
}

#[derive(DeriveIden)]
enum LoginThrottle {
    Table,
    AccountKey,
    Failures,
    LastFailureAt,
    BlockedUntil,
}
