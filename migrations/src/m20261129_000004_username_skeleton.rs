//! Usernames are unique on a UTS #39 confusable skeleton of their RFC 8265 form (version 2)
//! instead of NFKC + lower case (version 1). `key_version` says which rule wrote a row's
//! `username_key`. The new keys are computed by the server's Rust code, so this migration
//! only makes room: `Store::migrate` re-keys the version-1 rows right after it.
use sea_orm_migration::{prelude::*, schema::*, sea_orm::DbBackend};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Users::Table)
                    .add_column(small_integer(Users::KeyVersion).default(1))
                    .to_owned(),
            )
            .await?;
        // A skeleton can be longer than the name (one character may become several), and
        // a collided legacy key carries a prefix. SQLite does not enforce VARCHAR lengths;
        // on PostgreSQL widening a varchar is a catalog-only change and keeps the unique
        // index.
        if manager.get_database_backend() == DbBackend::Postgres {
            manager
                .alter_table(
                    Table::alter()
                        .table(Users::Table)
                        .modify_column(ColumnDef::new(Users::UsernameKey).string_len(1024))
                        .to_owned(),
                )
                .await?;
        }
        // Start-up asks for the rows still to re-key: an index keeps that cheap once there
        // are none.
        manager
            .create_index(
                Index::create()
                    .if_not_exists()
                    .name("idx_users_key_version")
                    .table(Users::Table)
                    .col(Users::KeyVersion)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // The keys stay as re-keyed: version-2 keys fit the old column only when short, so
        // the width is left alone too.
        manager
            .drop_index(
                Index::drop()
                    .if_exists()
                    .name("idx_users_key_version")
                    .table(Users::Table)
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Users::Table)
                    .drop_column(Users::KeyVersion)
                    .to_owned(),
            )
            .await
    }
}

#[derive(DeriveIden)]
enum Users {
    Table,
    UsernameKey,
    KeyVersion,
}
