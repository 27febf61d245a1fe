//! Secrets and private files (issue 10), on the real binary: the database and its `-wal`
//! and `-shm` are 0600 under a permissive umask; secrets come from `_FILE` settings; a secret
//! on the command line or a key file others can read draws a warning.
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

use authd::proto::{IssueRequest, RegisterRequest};

use crate::helpers::{AUTHD_BIN, PASSWORD, SECRET, ServerProcess};

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o777
}

fn write_with_mode(path: &Path, content: &str, mode: u32) {
    std::fs::write(path, content).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

fn sqlite_url(path: &Path) -> String {
    format!("sqlite://{}?mode=rwc", path.display())
}

/// Cheap hashing, JSON logs at info, port 0: the environment every server here starts with.
fn base_env(db_url: &str) -> Vec<(&'static str, String)> {
    [
        ("AUTHD_LISTEN", "127.0.0.1:0"),
        ("AUTHD_LOG_FORMAT", "json"),
        ("RUST_LOG", "info"),
        ("AUTHD_DATABASE_URL", db_url),
        ("AUTHD_ALLOW_REGISTRATION", "true"),
        ("AUTHD_ARGON2_M_KIB", "256"),
        ("AUTHD_ARGON2_T", "1"),
    ]
    .into_iter()
    .map(|(k, v)| (k, v.to_owned()))
    .collect()
}

fn pairs<'a>(env: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    env.iter().map(|(k, v)| (*k, v.as_str())).collect()
}

/// Register a user and log in: a write to the database, and a token.
async fn login(server: &ServerProcess) -> String {
    let mut client = server.client().await;
    client
        .register(RegisterRequest {
            username: "ada".into(),
            password: PASSWORD.into(),
        })
        .await
        .unwrap();
    client
        .issue(IssueRequest {
            username: "ada".into(),
            password: PASSWORD.into(),
            audience: String::new(),
        })
        .await
        .unwrap()
        .into_inner()
        .access_token
}

const WARNED_ARGV: &str = "process list shows it to every local user";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn database_files_are_private_under_a_permissive_umask() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("authd.db");
    let marker = dir.path().join("umask-marker");
    let url = sqlite_url(&db);
    let mut env = base_env(&url);
    env.push(("AUTHD_JWT_SECRET", SECRET.to_owned()));
    // The marker, made by the same shell, shows the umask really is 022.
    let script = r#"umask 022 && : > "$1" && exec "$0" serve"#;
    let server = ServerProcess::start_bin(
        "/bin/sh",
        &["-c", script, AUTHD_BIN, marker.to_str().unwrap()],
        &pairs(&env),
    )
    .await;
    login(&server).await;
    assert_eq!(mode(&marker), 0o644, "the umask is permissive");
    for file in ["authd.db", "authd.db-wal", "authd.db-shm"] {
        assert_eq!(mode(&dir.path().join(file)), 0o600, "{file}");
    }
    let (status, _) = server.terminate().await;
    assert!(status.success());

    // The CLI creates its database as privately.
    let db = dir.path().join("cli.db");
    let out = Command::new("/bin/sh")
        .args(["-c", r#"umask 022 && exec "$0" migrate"#, AUTHD_BIN])
        .env_clear()
        .env("AUTHD_DATABASE_URL", sqlite_url(&db))
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert_eq!(mode(&db), 0o600);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_come_from_files_and_not_with_their_value_too() {
    let dir = tempfile::tempdir().unwrap();
    let secret_file = dir.path().join("jwt_secret");
    let url_file = dir.path().join("database_url");
    // Docker secrets end with a newline, which is not part of the secret.
    write_with_mode(&secret_file, &format!("{SECRET}\n"), 0o600);
    write_with_mode(
        &url_file,
        &format!("{}\n", sqlite_url(&dir.path().join("authd.db"))),
        0o600,
    );
    let mut env: Vec<_> = base_env("")
        .into_iter()
        .filter(|(k, _)| *k != "AUTHD_DATABASE_URL")
        .collect();
    env.push(("AUTHD_JWT_SECRET_FILE", secret_file.display().to_string()));
    env.push(("AUTHD_DATABASE_URL_FILE", url_file.display().to_string()));
    let server = ServerProcess::start_bin(AUTHD_BIN, &["serve"], &pairs(&env)).await;
    let token = login(&server).await;
    let (status, log) = server.terminate().await;
    assert!(status.success());
    assert!(
        !log.contains("AUTHD_JWT_SECRET_FILE") && !log.contains("AUTHD_DATABASE_URL_FILE"),
        "files of mode 0600 draw no warning:\n{log}"
    );
    assert!(
        dir.path().join("authd.db").exists(),
        "the URL from its file was used"
    );

    // The token verifies with the secret from the file, and not with another one.
    let verify = |secret: &str| {
        let mut v = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::HS256);
        v.set_issuer(&["authd"]);
        v.set_audience(&["authd"]);
        jsonwebtoken::decode::<serde_json::Value>(
            &token,
            &jsonwebtoken::DecodingKey::from_secret(secret.as_bytes()).unwrap(),
            &v,
        )
    };
    verify(SECRET).unwrap();
    assert!(verify(&format!("{SECRET}\n")).is_err());

    // A secret and its file together: refused, in one line naming both.
    for (setting, value) in [
        ("AUTHD_JWT_SECRET", SECRET.to_owned()),
        (
            "AUTHD_DATABASE_URL",
            "sqlite://other.db?mode=rwc".to_owned(),
        ),
    ] {
        let mut both = env.clone();
        both.push((setting, value));
        let run = tokio::process::Command::new(AUTHD_BIN)
            .arg("serve")
            .env_clear()
            .envs(pairs(&both))
            .kill_on_drop(true)
            .output();
        let out = tokio::time::timeout(std::time::Duration::from_secs(30), run)
            .await
            .unwrap_or_else(|_| panic!("authd started with {setting} and its file"))
            .unwrap();
        assert!(!out.status.success());
        let stderr = String::from_utf8(out.stderr).unwrap();
        assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
        assert!(
            stderr.contains(&format!("{setting}_FILE")) && stderr.contains(&format!("{setting}:")),
            "{stderr}"
        );
        assert!(!stderr.contains(SECRET), "{stderr}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_secret_on_the_command_line_draws_a_warning_and_its_env_var_does_not() {
    let dir = tempfile::tempdir().unwrap();
    let env = base_env(&sqlite_url(&dir.path().join("authd.db")));
    let server =
        ServerProcess::start_bin(AUTHD_BIN, &["serve", "--jwt-secret", SECRET], &pairs(&env)).await;
    let (_, log) = server.terminate().await;
    let warning = log
        .lines()
        .find(|l| l.contains(WARNED_ARGV))
        .unwrap_or_else(|| panic!("no warning about --jwt-secret:\n{log}"));
    assert!(warning.contains("--jwt-secret") && warning.contains("AUTHD_JWT_SECRET_FILE"));
    assert!(warning.contains("WARN"), "{warning}");
    assert!(!log.contains(SECRET), "the secret itself is never logged");

    let mut env = env;
    env.push(("AUTHD_JWT_SECRET", SECRET.to_owned()));
    let server = ServerProcess::start_bin(AUTHD_BIN, &["serve"], &pairs(&env)).await;
    let (_, log) = server.terminate().await;
    assert!(!log.contains(WARNED_ARGV), "{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signing_key_file_others_can_read_draws_a_warning() {
    use ed25519_dalek::pkcs8::EncodePrivateKey;
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("signing.pem");
    let pem = ed25519_dalek::SigningKey::from_bytes(&[5u8; 32])
        .to_pkcs8_pem(ed25519_dalek::pkcs8::spki::der::pem::LineEnding::LF)
        .unwrap();
    write_with_mode(&key, &pem, 0o640);
    let mut env = base_env(&sqlite_url(&dir.path().join("authd.db")));
    env.push(("AUTHD_SIGNING_KEY_FILE", key.display().to_string()));
    let server = ServerProcess::start_bin(AUTHD_BIN, &["serve"], &pairs(&env)).await;
    let (_, log) = server.terminate().await;
    let warning = log
        .lines()
        .find(|l| l.contains("AUTHD_SIGNING_KEY_FILE"))
        .unwrap_or_else(|| panic!("no warning about the key file:\n{log}"));
    assert!(warning.contains("WARN"), "{warning}");
    assert!(warning.contains(&key.display().to_string()), "{warning}");
    assert!(
        warning.contains(&format!("chmod 600 {}", key.display())),
        "{warning}"
    );

    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
    let server = ServerProcess::start_bin(AUTHD_BIN, &["serve"], &pairs(&env)).await;
    let (_, log) = server.terminate().await;
    assert!(!log.contains("AUTHD_SIGNING_KEY_FILE"), "{log}");
}
