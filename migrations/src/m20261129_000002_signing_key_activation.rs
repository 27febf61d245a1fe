//! Key rotation: a signing key signs from `activates_at` on. A newer key's `activates_at`
//! is when an older one stopped signing, which is what decides when it may retire.
use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // Nullable: SQLite cannot add a NOT NULL column without a constant default. The
        // code reads NULL as `created_at`; existing keys get it spelled out below.
        manager
            .alter_table(
                Table::alter()
                    .table(SigningKeys::Table)
                    .add_column(timestamp_with_time_zone_null(SigningKeys::ActivatesAt))
                    .to_owned(),
            )
            .await?;
        manager
            .execute(
                Query::update()
                    .table(SigningKeys::Table)
                    .value(SigningKeys::ActivatesAt, Expr::col(SigningKeys::CreatedAt))
                    .and_where(Expr::col(SigningKeys::ActivatesAt).is_null())
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(SigningKeys::Table)
                    .drop_column(SigningKeys::ActivatesAt)
                    .to_owned(),
            )
            .await
    }
}

#[derive(DeriveIden)]
enum SigningKeys {
    Table,
    CreatedAt,
    ActivatesAt,
}
