//! Refresh-token states for the reuse grace window: a spent token may be presented again
//! once (`replayed_at`), and the live token such a replay replaces is marked `superseded`
//! rather than spent by rotation, so a session never has two live refresh tokens.
use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // SQLite takes one column per ALTER TABLE.
        manager
            .alter_table(
                Table::alter()
                    .table(RefreshTokens::Table)
                    .add_column_if_not_exists(timestamp_with_time_zone_null(
                        RefreshTokens::ReplayedAt,
                    ))
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(RefreshTokens::Table)
                    .add_column_if_not_exists(boolean(RefreshTokens::Superseded).default(false))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .if_not_exists()
                    .name("idx_refresh_tokens_session_id")
                    .table(RefreshTokens::Table)
                    .col(RefreshTokens::SessionId)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_index(
                Index::drop()
                    .if_exists()
                    .name("idx_refresh_tokens_session_id")
                    .table(RefreshTokens::Table)
                    .to_owned(),
            )
            .await?;
        for col in [RefreshTokens::ReplayedAt, RefreshTokens::Superseded] {
            manager
                .alter_table(
                    Table::alter()
                        .table(RefreshTokens::Table)
                        .drop_column(col)
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }
}

#[derive(DeriveIden)]
enum RefreshTokens {
    Table,
    SessionId,
    ReplayedAt,
    Superseded,
}
