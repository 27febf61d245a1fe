//! The database: connection set-up, migrations, and the queries the use cases need.
//! SQLite (embedded, WAL) by default; PostgreSQL with a pool for production and scale-out.
use std::time::Duration;

use migration::{Migrator, MigratorTrait};
use sea_orm::sqlx::sqlite::{SqliteJournalMode, SqliteSynchronous};
use sea_orm::{ConnectOptions, Database, DatabaseConnection, DbErr, SqlErr};
use secrecy::{ExposeSecret, SecretString};

pub mod entity;
pub mod keys;
mod rekey;
pub mod sessions;
pub mod throttle;
pub mod users;

pub use sessions::{RefreshLookup, RevocationSnapshot};

/// A store failure. `Duplicate` is the only one a caller acts on; the rest is "the
/// database is unwell", which the API reports as INTERNAL/UNAVAILABLE without detail.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("a row with this unique key exists")]
    Duplicate,
    #[error("unsupported database URL scheme (use sqlite:// or postgres://)")]
    UnsupportedUrl,
    #[error("database error: {0}")]
    Db(#[from] DbErr),
}

/// Map a DbErr, telling unique-key violations apart.
fn classify(e: DbErr) -> StoreError {
    match e.sql_err() {
        Some(SqlErr::UniqueConstraintViolation(_)) => StoreError::Duplicate,
        _ => StoreError::Db(e),
    }
}

/// Handle to the database; cheap to clone (the pool is shared).
#[derive(Debug, Clone)]
pub struct Store {
    db: DatabaseConnection,
}

impl Store {
    /// Connect (without migrating). The URL is a secret: it may carry a password.
    pub async fn connect(url: &SecretString) -> Result<Self, StoreError> {
        let url = url.expose_secret();
        let mut opt = ConnectOptions::new(url.to_owned());
        opt.connect_timeout(Duration::from_secs(5))
            .acquire_timeout(Duration::from_secs(5))
            // sqlx logs every statement at INFO otherwise.
            .sqlx_logging(false);
        if url.starts_with("sqlite:") {
            // One writer at a time is SQLite's nature: WAL lets readers go on meanwhile and
            // the busy timeout queues writers instead of failing them.
            opt.max_connections(8).map_sqlx_sqlite_opts(|o| {
                o.journal_mode(SqliteJournalMode::Wal)
                    .synchronous(SqliteSynchronous::Normal)
                    .busy_timeout(Duration::from_secs(10))
                    .foreign_keys(true)
            });
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            opt.max_connections(32).min_connections(1);
        } else {
            return Err(StoreError::UnsupportedUrl);
        }
        let db = Database::connect(opt).await?;
        Ok(Self { db })
    }

    /// Connect and apply pending migrations.
    pub async fn connect_and_migrate(url: &SecretString) -> Result<Self, StoreError> {
        let store = Self::connect(url).await?;
        store.migrate().await?;
        Ok(store)
    }

    /// Apply pending migrations, then re-key the users an older username rule wrote
    /// (their new key is Rust code, not SQL).
    pub async fn migrate(&self) -> Result<(), StoreError> {
        Migrator::up(&self.db, None).await?;
        self.rekey_usernames().await
    }

    /// Whether the database answers.
    pub async fn ping(&self) -> Result<(), StoreError> {
        Ok(self.db.ping().await?)
    }

    /// Close the pool.
    pub async fn close(self) -> Result<(), StoreError> {
        Ok(self.db.close().await?)
    }
}
