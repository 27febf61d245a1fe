//! Signing keys encrypted at rest (AUTHD_KEY_ENCRYPTION_KEY_FILE): sealed in the database,
//! sealed on the first start with a key file, refused with the wrong key or none, and
//! moved to a new key by `authd keys rewrap`; tokens survive all of it.
use std::path::{Path, PathBuf};

use authd::config::ServeArgs;
use authd::keys::KeyEncryptionKey;
use authd::server::Application;
use authd::store::keys::SigningKeyRow;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use ed25519_dalek::pkcs8::DecodePrivateKey;
use sea_orm::ConnectionTrait;

use crate::helpers::*;
use crate::on_both;

on_both!(
    a_key_file_keeps_the_private_key_out_of_the_database,
    plaintext_keys_are_sealed_on_the_first_start_with_a_key_file,
    the_wrong_key_file_or_none_refuses_to_start,
    a_tampered_sealed_key_refuses_to_start,
    rewrap_moves_the_keys_to_a_new_key_file,
);

/// A key file of 32 random bytes, written as `head -c 32 /dev/urandom` would.
fn kek_file(dir: &tempfile::TempDir, name: &str, bytes: &[u8]) -> PathBuf {
    let path = dir.path().join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

fn random_key() -> [u8; 32] {
    std::array::from_fn(|_| rand::random())
}

/// Settings that sign with database keys, sealed with `kek` when given.
fn db_keys(db: &TestDb, kek: Option<&Path>) -> ServeArgs {
    let mut s = settings(db);
    s.jwt_secret = None;
    s.key_encryption.key_encryption_key_file = kek.map(Path::to_path_buf);
    s
}

/// Why authd refused to start.
async fn refusal(s: ServeArgs) -> String {
    match Application::build(s).await {
        Ok(_) => panic!("authd started"),
        Err(e) => e.to_string(),
    }
}

async fn rows(db: &TestDb) -> Vec<SigningKeyRow> {
    db.store().await.signing_keys().await.unwrap()
}

fn kek(path: &Path) -> KeyEncryptionKey {
    KeyEncryptionKey::from_file(path, "test").unwrap()
}

/// The bytes of the SQLite database and its WAL.
fn sqlite_files(db: &TestDb) -> Vec<(String, Vec<u8>)> {
    let path = db
        .url
        .strip_prefix("sqlite://")
        .and_then(|p| p.split('?').next())
        .unwrap();
    ["", "-wal", "-shm"]
        .iter()
        .filter_map(|suffix| {
            let p = format!("{path}{suffix}");
            std::fs::read(&p).ok().map(|b| (p, b))
        })
        .collect()
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

async fn a_key_file_keeps_the_private_key_out_of_the_database(b: Backend) {
    let Some(db) = TestDb::new(b).await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let path = kek_file(&dir, "kek", &random_key());
    let app = spawn(db_keys(&db, Some(&path))).await;
    let pair = app.login("ada").await;
    app.validate(&pair.access_token, "").await.unwrap();
    app.stop().await;

    let stored = rows(&db).await;
    assert_eq!(stored.len(), 1);
    let row = &stored[0];
    let kek = kek(&path);
    assert_eq!(row.kek_id.as_deref(), Some(kek.id()));
    // Unsealed in the test, it is the Ed25519 key that signed the token.
    let der = kek.open(&row.kid, &row.algorithm, &row.material).unwrap();
    let key = ed25519_dalek::SigningKey::from_pkcs8_der(&der).unwrap();
    let seed = key.to_bytes();
    let der_b64 = STANDARD.encode(&*der);
    let seed_b64 = STANDARD.encode(seed);
    let secrets: [(&str, &[u8]); 4] = [
        ("PKCS#8 DER", &der),
        ("base64 DER", der_b64.as_bytes()),
        ("seed", &seed),
        ("base64 seed", seed_b64.as_bytes()),
    ];
    match b {
        Backend::Sqlite => {
            let files = sqlite_files(&db);
            assert!(!files.is_empty());
            for (name, bytes) in &files {
                for (what, secret) in secrets {
                    assert!(!contains(bytes, secret), "{name} holds the {what}");
                }
            }
        }
        Backend::Postgres => {
            assert!(!row.material.contains(&der_b64));
            let raw = STANDARD.decode(&row.material).unwrap();
            for (what, secret) in secrets {
                assert!(!contains(&raw, secret), "material holds the {what}");
            }
        }
    }

    // A restart with the same key file: the same key, the old token still valid.
    let app = spawn(db_keys(&db, Some(&path))).await;
    app.validate(&pair.access_token, "").await.unwrap();
    let again = app.issue("ada", PASSWORD).await.unwrap();
    app.validate(&again.access_token, "").await.unwrap();
    app.stop().await;
    assert_eq!(rows(&db).await.len(), 1, "no second key");
}

async fn plaintext_keys_are_sealed_on_the_first_start_with_a_key_file(b: Backend) {
    let Some(db) = TestDb::new(b).await else {
        return;
    };
    let app = spawn(db_keys(&db, None)).await;
    let pair = app.login("bea").await;
    app.stop().await;
    let before = rows(&db).await;
    assert_eq!(before.len(), 1);
    assert_eq!(before[0].kek_id, None, "no key file: stored in the clear");
    if b == Backend::Sqlite {
        // The search of test 1 finds a key in the clear.
        let found = sqlite_files(&db)
            .iter()
            .any(|(_, bytes)| contains(bytes, before[0].material.as_bytes()));
        assert!(found, "the plaintext key is in the SQLite files");
    }

    let dir = tempfile::tempdir().unwrap();
    let path = kek_file(&dir, "kek", &random_key());
    let app = spawn(db_keys(&db, Some(&path))).await;
    app.validate(&pair.access_token, "").await.unwrap();
    let after = rows(&db).await;
    assert_eq!(after.len(), 1, "the same key, sealed");
    assert_eq!(after[0].kid, before[0].kid);
    assert_eq!(after[0].kek_id.as_deref(), Some(kek(&path).id()));
    assert_ne!(after[0].material, before[0].material);
    assert_eq!(
        *kek(&path)
            .open(&after[0].kid, &after[0].algorithm, &after[0].material)
            .unwrap(),
        STANDARD.decode(&before[0].material).unwrap()
    );
    let fresh = app.issue("bea", PASSWORD).await.unwrap();
    app.stop().await;

    // And again: nothing left to seal, both tokens valid.
    let app = spawn(db_keys(&db, Some(&path))).await;
    app.validate(&pair.access_token, "").await.unwrap();
    app.validate(&fresh.access_token, "").await.unwrap();
    app.stop().await;
    assert_eq!(rows(&db).await[0].material, after[0].material);
}

async fn the_wrong_key_file_or_none_refuses_to_start(b: Backend) {
    let Some(db) = TestDb::new(b).await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let right = kek_file(&dir, "right", &random_key());
    let wrong = kek_file(&dir, "wrong", &random_key());
    let app = spawn(db_keys(&db, Some(&right))).await;
    let pair = app.login("cai").await;
    app.stop().await;
    let kid = rows(&db).await[0].kid.clone();
    let kek_id = kek(&right).id().to_owned();

    let msg = refusal(db_keys(&db, None)).await;
    assert_eq!(
        msg,
        format!(
            "signing key {kid} is sealed with key-encryption key {kek_id}; \
             AUTHD_KEY_ENCRYPTION_KEY_FILE is not set"
        )
    );
    let msg = refusal(db_keys(&db, Some(&wrong))).await;
    assert!(
        msg.contains(&kid) && msg.contains("does not match"),
        "{msg}"
    );
    assert!(msg.contains(&kek_id), "{msg}");
    assert_eq!(count_rows(&db, "signing_keys").await, 1, "no new key");

    // The binary: one line naming the kid, and a failure exit.
    let out = tokio::process::Command::new(AUTHD_BIN)
        .arg("serve")
        .env_clear()
        .env("AUTHD_DATABASE_URL", &db.url)
        .env("AUTHD_LISTEN", "127.0.0.1:0")
        .env("AUTHD_LOG_FORMAT", "json")
        .output()
        .await
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    let last = stderr.lines().last().unwrap_or_default();
    assert!(last.starts_with("authd: "), "{stderr}");
    assert!(
        last.contains(&kid) && last.contains("is not set"),
        "{stderr}"
    );
    assert_eq!(count_rows(&db, "signing_keys").await, 1, "no new key");

    let app = spawn(db_keys(&db, Some(&right))).await;
    app.validate(&pair.access_token, "").await.unwrap();
    app.stop().await;
}

async fn a_tampered_sealed_key_refuses_to_start(b: Backend) {
    let Some(db) = TestDb::new(b).await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let path = kek_file(&dir, "kek", &random_key());
    spawn(db_keys(&db, Some(&path))).await.stop().await;
    let row = rows(&db).await.remove(0);
    let mut raw = STANDARD.decode(&row.material).unwrap();
    raw[20] ^= 0x01;
    let conn = sea_orm::Database::connect(&db.url).await.unwrap();
    conn.execute_unprepared(&format!(
        "UPDATE signing_keys SET material = '{}' WHERE kid = '{}'",
        STANDARD.encode(raw),
        row.kid
    ))
    .await
    .unwrap();
    conn.close().await.unwrap();

    let msg = refusal(db_keys(&db, Some(&path))).await;
    assert!(
        msg.contains(&row.kid) && msg.contains("does not unseal"),
        "{msg}"
    );
    assert_eq!(count_rows(&db, "signing_keys").await, 1, "no new key");
}

/// `authd keys ...` with exactly `env` and the test database.
async fn keys_cmd(db: &TestDb, args: &[&str], env: &[(&str, &Path)]) -> (bool, String) {
    let out = tokio::process::Command::new(AUTHD_BIN)
        .arg("keys")
        .args(args)
        .env_clear()
        .env("AUTHD_DATABASE_URL", &db.url)
        .envs(env.iter().map(|(k, v)| (*k, *v)))
        .output()
        .await
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

async fn rewrap_moves_the_keys_to_a_new_key_file(b: Backend) {
    let Some(db) = TestDb::new(b).await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let old = kek_file(&dir, "old", &random_key());
    let new = kek_file(&dir, "new", &random_key());
    let app = spawn(db_keys(&db, Some(&old))).await;
    let pair = app.login("dan").await;
    app.stop().await;

    // Rotation seals the key it adds, and will not add a plaintext one beside sealed keys.
    let (ok, out) = keys_cmd(&db, &["rotate"], &[]).await;
    assert!(!ok, "{out}");
    assert!(
        out.contains("AUTHD_KEY_ENCRYPTION_KEY_FILE is not set"),
        "{out}"
    );
    let (ok, out) = keys_cmd(
        &db,
        &["rotate", "--activate-after", "1h"],
        &[("AUTHD_KEY_ENCRYPTION_KEY_FILE", &old)],
    )
    .await;
    assert!(ok, "{out}");
    let stored = rows(&db).await;
    assert_eq!(stored.len(), 2);
    assert!(
        stored
            .iter()
            .all(|r| r.kek_id.as_deref() == Some(kek(&old).id()))
    );

    // Without the current key, rewrap refuses and changes nothing.
    let new_flag = new.to_str().unwrap();
    let (ok, out) = keys_cmd(
        &db,
        &["rewrap", "--new-key-encryption-key-file", new_flag],
        &[],
    )
    .await;
    assert!(!ok && out.contains("is not set"), "{out}");
    assert_eq!(rows(&db).await, stored);

    let (ok, out) = keys_cmd(
        &db,
        &["rewrap", "--new-key-encryption-key-file", new_flag],
        &[("AUTHD_KEY_ENCRYPTION_KEY_FILE", &old)],
    )
    .await;
    assert!(ok, "{out}");
    assert!(out.contains("sealed 2 signing key(s)"), "{out}");
    let rewrapped = rows(&db).await;
    assert!(
        rewrapped
            .iter()
            .all(|r| r.kek_id.as_deref() == Some(kek(&new).id()))
    );
    for (a, b) in stored.iter().zip(&rewrapped) {
        assert_eq!(a.kid, b.kid);
        assert_eq!(
            kek(&old).open(&a.kid, &a.algorithm, &a.material).unwrap(),
            kek(&new).open(&b.kid, &b.algorithm, &b.material).unwrap(),
            "the same key"
        );
    }

    let (ok, out) = keys_cmd(&db, &["list"], &[]).await;
    assert!(ok && out.matches(kek(&new).id()).count() == 2, "{out}");
    let msg = refusal(db_keys(&db, Some(&old))).await;
    assert!(msg.contains("does not match"), "{msg}");
    let app = spawn(db_keys(&db, Some(&new))).await;
    app.validate(&pair.access_token, "").await.unwrap();
    app.stop().await;

    // From the clear: a database without a key file rewraps with no current key.
    let Some(plain_db) = TestDb::new(b).await else {
        return;
    };
    spawn(db_keys(&plain_db, None)).await.stop().await;
    let (ok, out) = keys_cmd(
        &plain_db,
        &["rewrap", "--new-key-encryption-key-file", new_flag],
        &[],
    )
    .await;
    assert!(ok, "{out}");
    assert_eq!(
        rows(&plain_db).await[0].kek_id.as_deref(),
        Some(kek(&new).id())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn key_files_raw_base64_or_hex_work_and_a_short_one_is_refused() {
    let db = TestDb::new(Backend::Sqlite).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let key = random_key();
    let hex: String = key.iter().map(|b| format!("{b:02x}")).collect();
    let raw = kek_file(&dir, "raw", &key);
    let b64 = kek_file(
        &dir,
        "b64",
        format!("{}\n", STANDARD.encode(key)).as_bytes(),
    );
    let hexf = kek_file(&dir, "hex", format!("{hex}\n").as_bytes());

    let app = spawn(db_keys(&db, Some(&raw))).await;
    let pair = app.login("eve").await;
    app.stop().await;
    for file in [&b64, &hexf, &raw] {
        let app = spawn(db_keys(&db, Some(file))).await;
        app.validate(&pair.access_token, "").await.unwrap();
        app.stop().await;
    }

    let short = kek_file(&dir, "short", &key[..31]);
    let msg = refusal(db_keys(&db, Some(&short))).await;
    assert!(msg.contains("AUTHD_KEY_ENCRYPTION_KEY_FILE"), "{msg}");
    assert!(!msg.contains(&hex[..16]), "{msg}");
}
