//! Indexes for the queries every instance runs on a timer: the once-a-second reload of
//! disabled users and recently revoked sessions (without them, a full scan of `users` and
//! `sessions` per instance per second), and the periodic clean-up of dead rows.
use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

const INDEXES: [(&str, Tbl, Col); 4] = [
    ("idx_users_disabled", Tbl::Users, Col::Disabled),
    ("idx_sessions_revoked_at", Tbl::Sessions, Col::RevokedAt),
    ("idx_sessions_expires_at", Tbl::Sessions, Col::ExpiresAt),
    (
        "idx_refresh_tokens_expires_at",
        Tbl::RefreshTokens,
        Col::ExpiresAt,
    ),
];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for (name, table, col) in INDEXES {
            manager
                .create_index(
                    Index::create()
                        .if_not_exists()
                        .name(name)
                        .table(table)
                        .col(col)
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for (name, table, _) in INDEXES {
            manager
                .drop_index(Index::drop().if_exists().name(name).table(table).to_owned())
                .await?;
        }
        Ok(())
    }
}

#[derive(DeriveIden, Clone, Copy)]
enum Tbl {
    Users,
    Sessions,
    RefreshTokens,
}

#[derive(DeriveIden, Clone, Copy)]
enum Col {
    Disabled,
    RevokedAt,
    ExpiresAt,
}
