//! The database keys: generated at first start, added by `authd keys rotate`, read back as
//! the [`KeySet`] in force.
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chrono::{DateTime, Utc};
use ed25519_dalek::pkcs8::EncodePrivateKey;
use jsonwebtoken::Algorithm;
use rand::RngCore;
use secrecy::zeroize::Zeroizing;

use super::material::thumbprint;
use super::sealing::{KeyEncryptionKey, stored_material};
use super::set::KeySet;
use super::{EDDSA, KeyError};
use crate::store::keys::{MaterialChange, SigningKeyRow};
use crate::store::{Store, StoreError};

/// A new Ed25519 key as a row: the kid is its thumbprint, the material its PKCS#8 DER in
/// base64.
pub(super) fn generate_ed25519(
    created_at: DateTime<Utc>,
    activates_at: DateTime<Utc>,
) -> Result<SigningKeyRow, KeyError> {
    let mut seed = Zeroizing::new([0u8; 32]);
    // ThreadRng is a CSPRNG seeded from the OS.
    rand::rng().fill_bytes(seed.as_mut());
    let key = ed25519_dalek::SigningKey::from_bytes(&seed);
    let der = key
        .to_pkcs8_der()
        .map_err(|e| KeyError::Unusable(e.to_string()))?;
    Ok(SigningKeyRow {
        kid: thumbprint(&key.verifying_key().to_bytes()),
        algorithm: EDDSA.to_owned(),
        material: STANDARD.encode(der.as_bytes()),
        created_at,
        activates_at: Some(activates_at),
        kek_id: None,
    })
}

/// A new Ed25519 key as a row, sealed with `kek` when there is one: its private key never
/// reaches the database in the clear.
fn new_row(
    created_at: DateTime<Utc>,
    activates_at: DateTime<Utc>,
    kek: Option<&KeyEncryptionKey>,
) -> Result<SigningKeyRow, KeyError> {
    let mut row = generate_ed25519(created_at, activates_at)?;
    if let Some(kek) = kek {
        let plain = stored_material(&row, None)?;
        row.material = kek.seal(&row.kid, &row.algorithm, &plain)?;
        row.kek_id = Some(kek.id().to_owned());
    }
    Ok(row)
}

/// Check that every stored key opens with `kek` (or is in the clear): a key sealed with
/// another key-encryption key, or none given, or a tampered one, is an error naming it.
fn check_all_open(rows: &[SigningKeyRow], kek: Option<&KeyEncryptionKey>) -> Result<(), KeyError> {
    for row in rows {
        stored_material(row, kek)?;
    }
    Ok(())
}

/// The changes that seal every row with `to`, unsealing them with `from` first.
fn reseal(
    rows: &[SigningKeyRow],
    from: Option<&KeyEncryptionKey>,
    to: &KeyEncryptionKey,
    only_plain: bool,
) -> Result<Vec<MaterialChange>, KeyError> {
    let mut changes = Vec::new();
    for row in rows {
        if only_plain && row.kek_id.is_some() {
            continue;
        }
        let plain = stored_material(row, from)?;
        changes.push(MaterialChange {
            kid: row.kid.clone(),
            old_material: row.material.clone(),
            material: to.seal(&row.kid, &row.algorithm, &plain)?,
            kek_id: to.id().to_owned(),
        });
    }
    Ok(changes)
}

/// `authd keys rotate`: store a new Ed25519 key that signs from `activates_at` on. Running
/// instances publish it at their next key reload. Returns its kid.
///
/// With `kek` the new key is sealed with it. Every stored key must open with `kek` (or be
/// in the clear): a plaintext key is never added beside sealed ones.
pub async fn rotate(
    store: &Store,
    activates_at: DateTime<Utc>,
    kek: Option<&KeyEncryptionKey>,
) -> Result<String, KeyError> {
    check_all_open(&store.signing_keys().await?, kek)?;
    let row = new_row(Utc::now(), activates_at, kek)?;
    let kid = row.kid.clone();
    store.insert_signing_key(row).await?;
    tracing::info!(%kid, %activates_at, sealed = kek.is_some(), "signing key added");
    Ok(kid)
}

/// `authd keys rewrap`: seal every stored key with `new`, unsealing it with `current`
/// (`None` when the keys are in the clear), in one transaction. The keys stay the same, so
/// every token stays valid. Returns the kids.
pub async fn rewrap(
    store: &Store,
    current: Option<&KeyEncryptionKey>,
    new: &KeyEncryptionKey,
) -> Result<Vec<String>, KeyError> {
    let rows = store.signing_keys().await?;
    let changes = reseal(&rows, current, new, false)?;
    let done = store.replace_signing_key_materials(&changes, true).await?;
    if done.len() != changes.len() {
        return Err(KeyError::Concurrent);
    }
    tracing::info!(kids = ?done, kek_id = new.id(), "signing keys re-sealed");
    Ok(done)
}

/// The database keys as they stand at `now`. `grace` as [`super::retire_grace`].
pub(crate) async fn load_stored(
    store: &Store,
    now: DateTime<Utc>,
    grace: Duration,
    issuer: &str,
    audience: &str,
    kek: Option<&KeyEncryptionKey>,
) -> Result<KeySet, KeyError> {
    let rows = store.signing_keys().await?;
    KeySet::from_rows(&rows, now, grace, issuer, audience, kek)
}

/// The database keys at start-up, generating an Ed25519 key when there is none.
///
/// Every stored key must open with `kek` (start is refused, naming the key, otherwise:
/// never a new key in its place); with `kek`, keys still in the clear are sealed now.
///
/// A database from before Ed25519 keys holds one generated HS256 key: it keeps signing with
/// it rather than switching on its own. Instances still on the old version verify only that
/// key, so an automatic switch during a rolling upgrade would make them refuse the new
/// tokens; `authd keys rotate`, once every instance is upgraded, moves to Ed25519 with the
/// HS256 key verifying until its tokens have expired.
pub(crate) async fn load_or_generate(
    store: &Store,
    grace: Duration,
    issuer: &str,
    audience: &str,
    kek: Option<&KeyEncryptionKey>,
) -> Result<KeySet, KeyError> {
    let mut rows = store.signing_keys().await?;
    check_all_open(&rows, kek)?;
    match kek {
        Some(kek) => {
            let changes = reseal(&rows, None, kek, true)?;
            if !changes.is_empty() {
                // Conditional on the plaintext: another instance sealing the same rows
                // at the same moment wins for those, and this one reads its result.
                let sealed = store.replace_signing_key_materials(&changes, false).await?;
                if !sealed.is_empty() {
                    tracing::info!(
                        kids = ?sealed,
                        kek_id = kek.id(),
                        "sealed the stored signing keys that were in the clear with the \
                         key-encryption key (earlier backups still hold them in the clear)"
                    );
                }
                rows = store.signing_keys().await?;
                check_all_open(&rows, Some(kek))?;
            }
        }
        None => tracing::warn!(
            "signing keys are stored unencrypted in the database: anyone with a copy of it \
             can mint tokens; set AUTHD_KEY_ENCRYPTION_KEY_FILE to seal them"
        ),
    }
    if rows.is_empty() {
        let now = Utc::now();
        let row = new_row(now, now, kek)?;
        tracing::warn!(
            kid = %row.kid,
            "no AUTHD_JWT_SECRET or AUTHD_SIGNING_KEY_FILE given: generated an Ed25519 signing \
             key and stored it in the database; verifiers get its public key from GetJwks"
        );
        // Another instance starting at the same moment may store a key of its own: then
        // both verify, and every instance signs with the same one (the latest activated)
        // from its next reload on.
        match store.insert_signing_key(row).await {
            Ok(()) | Err(StoreError::Duplicate { .. }) => {}
            Err(e) => return Err(e.into()),
        }
        rows = store.signing_keys().await?;
    }
    let now = Utc::now();
    let set = KeySet::from_rows(&rows, now, grace, issuer, audience, kek)?;
    if let Some(key) = set.signer(now)
        && key.algorithm() == Algorithm::HS256
    {
        tracing::warn!(
            kid = key.kid(),
            "signing with the HS256 key generated by an earlier authd: only authd can verify \
             its tokens; run `authd keys rotate` (once every instance runs this version) to \
             move to Ed25519 and publish the public key in GetJwks"
        );
    }
    Ok(set)
}

#[cfg(test)]
mod tests {
    use ed25519_dalek::pkcs8::DecodePrivateKey;
    use secrecy::SecretString;

    use super::*;
    use crate::keys::HS256;
    use crate::keys::fixtures::at;
    use crate::keys::retire_grace;

    fn grace() -> Duration {
        retire_grace(Duration::from_secs(900), Duration::from_secs(10))
    }

    async fn store(dir: &tempfile::TempDir) -> Store {
        let url = format!("sqlite://{}/x.db?mode=rwc", dir.path().display());
        Store::connect_and_migrate(&SecretString::from(url))
            .await
            .unwrap()
    }

    async fn first_start(store: &Store) -> KeySet {
        load_or_generate(store, grace(), "authd", "authd", None)
            .await
            .unwrap()
    }

    fn jwks_kids(set: &KeySet) -> Vec<String> {
        let doc: serde_json::Value = serde_json::from_str(set.jwks()).unwrap();
        doc["keys"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| k["kid"].as_str().unwrap().to_owned())
            .collect()
    }

    #[test]
    fn generated_key_is_ed25519_pkcs8_named_by_its_thumbprint() {
        let row = generate_ed25519(at(0), at(5)).unwrap();
        assert_eq!(row.algorithm, EDDSA);
        assert_eq!(row.activates_at, Some(at(5)));
        let der = STANDARD.decode(&row.material).unwrap();
        let key = ed25519_dalek::SigningKey::from_pkcs8_der(&der).unwrap();
        assert_eq!(row.kid, thumbprint(&key.verifying_key().to_bytes()));
        assert_ne!(row.kid, generate_ed25519(at(0), at(0)).unwrap().kid);
        // Debug shows no material.
        let shown = format!("{row:?}");
        assert!(!shown.contains(&row.material), "{shown}");
    }

    #[tokio::test]
    async fn the_generated_key_is_ed25519_and_survives_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let store = store(&dir).await;
        let first = first_start(&store).await;
        let rows = store.signing_keys().await.unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].algorithm, EDDSA);
        let der = STANDARD.decode(&rows[0].material).unwrap();
        ed25519_dalek::SigningKey::from_pkcs8_der(&der).unwrap();

        let signer = first.signer(Utc::now()).unwrap();
        assert_eq!(signer.algorithm(), Algorithm::EdDSA);
        assert_eq!(signer.kid(), rows[0].kid);
        assert_eq!(jwks_kids(&first), [rows[0].kid.clone()]);

        let again = first_start(&store).await;
        assert_eq!(
            store.signing_keys().await.unwrap().len(),
            1,
            "no second key"
        );
        // The same key: the same kid signs, and the same public key is published.
        assert_eq!(again.signer(Utc::now()).unwrap().kid(), rows[0].kid);
        assert_eq!(again.kids(), first.kids());
        assert_eq!(again.jwks(), first.jwks());
        assert!(!format!("{again:?}").contains(&rows[0].material));
    }

    #[tokio::test]
    async fn a_database_from_before_ed25519_keeps_its_hs256_key_until_rotated() {
        let dir = tempfile::tempdir().unwrap();
        let store = store(&dir).await;
        let legacy_secret = [9u8; 64];
        store
            .insert_signing_key(SigningKeyRow {
                kid: "hs256-legacy".into(),
                algorithm: HS256.into(),
                material: STANDARD.encode(legacy_secret),
                created_at: Utc::now() - chrono::Duration::days(30),
                activates_at: None,
                kek_id: None,
            })
            .await
            .unwrap();
        let set = first_start(&store).await;
        assert_eq!(store.signing_keys().await.unwrap().len(), 1, "no key added");
        let signer = set.signer(Utc::now()).unwrap();
        assert_eq!(signer.algorithm(), Algorithm::HS256);
        assert_eq!(signer.kid(), "hs256-legacy");
        assert_eq!(set.jwks(), r#"{"keys":[]}"#, "a secret is never published");

        let new_kid = rotate(&store, Utc::now(), None).await.unwrap();
        let now = Utc::now();
        let set = load_stored(&store, now, grace(), "authd", "authd", None)
            .await
            .unwrap();
        let signer = set.signer(now).unwrap();
        assert_eq!(signer.algorithm(), Algorithm::EdDSA);
        assert_eq!(signer.kid(), new_kid);
        // The legacy key still verifies, and is still not published.
        assert_eq!(set.kids(), ["hs256-legacy".to_owned(), new_kid.clone()]);
        assert_eq!(jwks_kids(&set), [new_kid]);
        assert!(!set.jwks().contains(&STANDARD.encode(legacy_secret)));
    }

    #[tokio::test]
    async fn sealed_keys_open_only_with_their_key_and_rewrap_moves_them() {
        let dir = tempfile::tempdir().unwrap();
        let store = store(&dir).await;
        let (a, b) = (
            KeyEncryptionKey::from_bytes([1; 32]),
            KeyEncryptionKey::from_bytes([2; 32]),
        );
        let load = |kek| load_or_generate(&store, grace(), "authd", "authd", kek);
        let first = load(Some(&a)).await.unwrap();
        let rows = store.signing_keys().await.unwrap();
        assert_eq!(rows[0].kek_id.as_deref(), Some(a.id()));
        assert!(STANDARD.decode(&rows[0].material).is_ok());
        assert!(
            ed25519_dalek::SigningKey::from_pkcs8_der(&STANDARD.decode(&rows[0].material).unwrap())
                .is_err(),
            "not the DER in the clear"
        );

        assert!(matches!(
            load(None).await,
            Err(KeyError::SealedWithoutKek { .. })
        ));
        assert!(matches!(
            load(Some(&b)).await,
            Err(KeyError::WrongKek { .. })
        ));
        assert!(matches!(
            rotate(&store, Utc::now(), None).await,
            Err(KeyError::SealedWithoutKek { .. })
        ));
        assert_eq!(
            store.signing_keys().await.unwrap().len(),
            1,
            "nothing added"
        );

        let second = rotate(&store, Utc::now(), Some(&a)).await.unwrap();
        let kids = rewrap(&store, Some(&a), &b).await.unwrap();
        assert_eq!(kids.len(), 2);
        assert!(
            rewrap(&store, Some(&a), &b).await.is_err(),
            "a is no longer the key"
        );
        let set = load(Some(&b)).await.unwrap();
        assert_eq!(set.signer(Utc::now()).unwrap().kid(), second);
        assert_eq!(set.kids()[0], first.kids()[0]);
        assert!(matches!(
            load(Some(&a)).await,
            Err(KeyError::WrongKek { .. })
        ));
    }

    #[tokio::test]
    async fn a_first_start_with_a_key_file_seals_the_keys_in_the_clear() {
        let dir = tempfile::tempdir().unwrap();
        let store = store(&dir).await;
        let plain = first_start(&store).await;
        let before = store.signing_keys().await.unwrap();
        assert_eq!(before[0].kek_id, None);
        let k = KeyEncryptionKey::from_bytes([3; 32]);
        let sealed = load_or_generate(&store, grace(), "authd", "authd", Some(&k))
            .await
            .unwrap();
        let after = store.signing_keys().await.unwrap();
        assert_eq!(after.len(), 1);
        assert_eq!(after[0].kek_id.as_deref(), Some(k.id()));
        assert_eq!(sealed.jwks(), plain.jwks(), "the same key");
        assert_eq!(
            *k.open(&after[0].kid, &after[0].algorithm, &after[0].material)
                .unwrap(),
            STANDARD.decode(&before[0].material).unwrap()
        );
    }
}
