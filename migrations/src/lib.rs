//! The authd schema, one file per change (`mYYYYMMDD_HHMMSS_what.rs`). Run at server start
//! and by `authd migrate`.
pub use sea_orm_migration::prelude::*;

mod m20261129_000001_initial;
mod m20261129_000002_signing_key_activation;
mod m20261129_000003_revocation_indexes;
mod m20261129_000004_username_skeleton;
mod m20261129_000005_refresh_replay;
mod m20261129_000006_login_throttle;
mod m20261129_000007_sealed_signing_keys;
mod m20261129_000008_roles_and_service_accounts;

pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261129_000001_initial::Migration),
            Box::new(m20261129_000002_signing_key_activation::Migration),
            Box::new(m20261129_000003_revocation_indexes::Migration),
            Box::new(m20261129_000004_username_skeleton::Migration),
            Box::new(m20261129_000005_refresh_replay::Migration),
            Box::new(m20261129_000006_login_throttle::Migration),
            Box::new(m20261129_000007_sealed_signing_keys::Migration),
            Box::new(m20261129_000008_roles_and_service_accounts::Migration),
        ]
    }
}
