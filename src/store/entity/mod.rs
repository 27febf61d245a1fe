//! SeaORM entities, one per table of `migrations/`.
pub mod login_throttle;
pub mod refresh_token;
pub mod service_account;
pub mod session;
pub mod signing_key;
pub mod user;
