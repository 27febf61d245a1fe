//! Roles on users, soft deletion (a deleted user's row stays, disabled, until the clean-up
//! removes it, so every instance sees the deletion through its revocation view), and
//! service accounts for client-credentials tokens.
use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // SQLite adds one column per ALTER TABLE.
        manager
            .alter_table(
                Table::alter()
                    .table(Users::Table)
                    // A JSON array of role names.
                    .add_column(text(Users::Roles).default("[]"))
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Users::Table)
                    .add_column(timestamp_with_time_zone_null(Users::DeletedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(ServiceAccounts::Table)
                    .if_not_exists()
                    .col(uuid(ServiceAccounts::ClientId).primary_key())
                    .col(string(ServiceAccounts::Name).unique_key())
                    .col(text(ServiceAccounts::Roles).default("[]"))
                    // Keyed SHA-256 of the secret, hex; the secret itself is never stored.
                    .col(string(ServiceAccounts::SecretHash))
                    // The secret before the last rotation, accepted until the time beside it.
                    .col(string_null(ServiceAccounts::PreviousSecretHash))
                    .col(timestamp_with_time_zone_null(
                        ServiceAccounts::PreviousSecretExpiresAt,
                    ))
                    .col(boolean(ServiceAccounts::Disabled).default(false))
                    .col(timestamp_with_time_zone(ServiceAccounts::CreatedAt))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(ServiceAccounts::Table).to_owned())
            .await?;
        for col in [Users::DeletedAt, Users::Roles] {
            manager
                .alter_table(
                    Table::alter()
                        .table(Users::Table)
                        .drop_column(col)
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }
}

#[derive(DeriveIden)]
enum Users {
    Table,
    Roles,
    DeletedAt,
}

#[derive(DeriveIden)]
enum ServiceAccounts {
    Table,
    ClientId,
    Name,
    Roles,
    SecretHash,
    PreviousSecretHash,
    PreviousSecretExpiresAt,
    Disabled,
    CreatedAt,
}
