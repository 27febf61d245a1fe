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
pub mod service_accounts;
pub mod sessions;
pub mod throttle;
pub mod users;

pub use sessions::{RefreshLookup, RevocationSnapshot};

/// A store failure, classified here so no caller needs to know the database driver.
/// `Duplicate` is the one a caller acts on (it knows what it was inserting); `Unavailable`
/// is the database out of reach; the rest is "the database is unwell".
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("a {what} with this key exists")]
    Duplicate { what: &'static str },
    #[error("unsupported database URL scheme (use sqlite:// or postgres://)")]
    UnsupportedUrl,
    #[error("the database is unreachable: {0}")]
    Unavailable(DbErr),
    #[error("database error: {0}")]
    Db(DbErr),
}

impl From<DbErr> for StoreError {
    fn from(e: DbErr) -> Self {
        match e {
            DbErr::Conn(_) | DbErr::ConnectionAcquire(_) => Self::Unavailable(e),
            _ => Self::Db(e),
        }
    }
}

/// Map a DbErr from inserting a `what`, telling unique-key violations apart.
fn classify(what: &'static str) -> impl FnOnce(DbErr) -> StoreError {
    move |e| match e.sql_err() {
        Some(SqlErr::UniqueConstraintViolation(_)) => StoreError::Duplicate { what },
        _ => e.into(),
    }
}

/// Creates a missing SQLite database file (when the URL says `mode=rwc`) with mode 0600,
/// whatever the umask, before SQLite opens it: SQLite gives the `-wal`, `-shm` and journal
/// files it creates beside it the database file's mode, so password hashes and sessions stay
/// private to authd's user. An existing file keeps its mode. A failure here is left for
/// SQLite to report when it opens the file.
fn create_private_sqlite_file(url: &str) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        use std::str::FromStr;

        use sea_orm::sqlx::ConnectOptions as _;
        use sea_orm::sqlx::sqlite::SqliteConnectOptions;

        let Ok(options) = SqliteConnectOptions::from_str(url) else {
            return;
        };
        // sqlx has no getter for the mode; its canonical URL carries it (`memory` for an
        // in-memory database, which has no file).
        let creates = options
            .to_url_lossy()
            .query_pairs()
            .any(|(k, v)| k == "mode" && v == "rwc");
        if creates {
            // `create_new`: an existing database is never touched.
            let _ = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(options.get_filename());
        }
    }
    #[cfg(not(unix))]
    let _ = url;
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
            .sqlx_logging(false)
            // Not a ping before every query (sea-orm's default): that is a second round
            // trip per call. A connection idle long enough for a server, proxy or firewall
            // to have dropped it is still checked before use.
            .test_before_acquire_if_idle_for(Duration::from_secs(30));
        if url.starts_with("sqlite:") {
            create_private_sqlite_file(url);
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

    /// Close the pool.
    pub async fn close(self) -> Result<(), StoreError> {
        Ok(self.db.close().await?)
    }
}
