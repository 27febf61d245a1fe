//! Signing keys: what a key is (an Ed25519 private key or an HS256 secret), when a stored
//! key signs and verifies (rotation), the public JWKS, and the database keys' lifecycle.
//! `token` mints and verifies with the [`KeySet`] built here.
//!
//! Rotation: every stored key has an activation time. The key with the latest activation
//! not in the future signs (`active`); keys activating later are published and verify
//! already (`next`); an older key stopped signing when the key after it activated, and
//! verifies until its last token has expired (`retiring`), then is dropped (`retired`).
//!
//! - `material`: one key — its secret or private half, its kid, its public JWK.
//! - `schedule`: which stored key stands where at a given instant (pure, time as input).
//! - `set`: the keys in force — the signer at an instant, the verifier, the JWKS.
//! - `lifecycle`: the database — first-start generation, rotation, loading the set.
//! - `sealing`: keys at rest — the key-encryption key and the seal of a stored key.
mod lifecycle;
mod material;
mod schedule;
mod sealing;
mod set;

use crate::store::StoreError;

pub(crate) use lifecycle::{load_or_generate, load_stored};
pub use lifecycle::{rewrap, rotate};
pub(crate) use material::SigningMaterial;
pub use schedule::{KeyState, activation, key_states, retire_grace};
pub use sealing::{KEK_SETTING, KeyEncryptionKey};
pub(crate) use set::KeySet;

/// The `algorithm` column of an Ed25519 key (its JWS name).
const EDDSA: &str = "EdDSA";
/// The `algorithm` column of a generated HS256 secret (kept by databases from before
/// Ed25519 keys).
const HS256: &str = "HS256";

/// Signing-key failures. None of them carries key material.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("stored signing key {kid} is unreadable: {reason}")]
    BadStoredKey { kid: String, reason: String },
    #[error("cannot use the signing key file {path}: {reason}")]
    BadKeyFile { path: String, reason: String },
    #[error("the database holds no signing key")]
    NoKey,
    #[error("cannot use the signing key: {0}")]
    Unusable(String),
    #[error("invalid setting {setting}: cannot use the key-encryption key file {path}: {reason}")]
    BadKeyEncryptionKey {
        setting: &'static str,
        path: String,
        reason: String,
    },
    #[error(
        "signing key {kid} is sealed with key-encryption key {kek_id}; \
         AUTHD_KEY_ENCRYPTION_KEY_FILE is not set"
    )]
    SealedWithoutKek { kid: String, kek_id: String },
    #[error(
        "signing key {kid} is sealed with key-encryption key {kek_id}; the key in \
         AUTHD_KEY_ENCRYPTION_KEY_FILE ({given}) does not match"
    )]
    WrongKek {
        kid: String,
        kek_id: String,
        given: String,
    },
    #[error("signing key {kid} does not unseal: its stored material was altered or is corrupt")]
    Tampered { kid: String },
    #[error(
        "the signing keys changed while being re-sealed (another authd keys command?); \
         nothing was changed, run it again"
    )]
    Concurrent,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Rows and instants shared by the tests of the files above.
#[cfg(test)]
mod fixtures {
    use chrono::{DateTime, Utc};

    use super::EDDSA;
    use crate::store::keys::SigningKeyRow;

    pub(super) fn at(secs: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000 + secs, 0).unwrap()
    }

    /// An Ed25519 row without material: enough for the schedule, unreadable as a key.
    pub(super) fn row(kid: &str, created: i64, activates: Option<i64>) -> SigningKeyRow {
        SigningKeyRow {
            kid: kid.into(),
            algorithm: EDDSA.into(),
            material: String::new(),
            created_at: at(created),
            activates_at: activates.map(at),
            kek_id: None,
        }
    }
}
