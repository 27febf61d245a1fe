//! docker-compose.yml's story without a Docker engine: each service's command and
//! environment, as the compose file writes them, run against the release build — the
//! certificates made at first start and kept at the next, authd over TLS with its keys
//! sealed by the key-encryption secret, its HEALTHCHECK over TLS, and the downstream
//! example verifying a token with keys fetched over TLS.
use std::collections::HashMap;
use std::path::Path;

use downstream::Config;
use serde_json::Value;

use crate::deploy::run;
use crate::downstream::spawn_downstream;
use crate::helpers::*;

/// docker-compose.yml as JSON (PyYAML, which docker-compose itself brings), or None where
/// it is missing outside CI.
fn compose_file() -> Option<Value> {
    let out = std::process::Command::new("python3")
        .args([
            "-c",
            "import json, sys, yaml; print(json.dumps(yaml.safe_load(open(sys.argv[1]))))",
            concat!(env!("CARGO_MANIFEST_DIR"), "/docker-compose.yml"),
        ])
        .output()
        .ok()?;
    if !out.status.success() {
        assert!(
            !in_ci(),
            "python3 with PyYAML is needed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        return None;
    }
    Some(serde_json::from_slice(&out.stdout).unwrap())
}

/// A service's `environment`, with the container paths moved into `root` (a stand-in for
/// the volumes and secrets) and `${VAR}` references left for the test to replace.
fn environment(compose: &Value, service: &str, root: &Path) -> HashMap<String, String> {
    let map = compose["services"][service]["environment"]
        .as_object()
        .unwrap_or_else(|| panic!("{service} has an environment map"));
    map.iter()
        .map(|(k, v)| {
            let v = v
                .as_str()
                .unwrap()
                .replace("/run/secrets/", &format!("{}/secrets/", root.display()));
            (
                k.clone(),
                v.replace("/certs/", &format!("{}/certs/", root.display())),
            )
        })
        .collect()
}

fn pairs(env: &HashMap<String, String>) -> Vec<(&str, &str)> {
    env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compose_services_run_over_tls_with_sealed_keys() {
    let bin = std::env::var("AUTHD_RELEASE_BIN").unwrap_or_else(|_| AUTHD_BIN.to_owned());
    let Some(compose) = compose_file() else {
        return;
    };
    let root = tempfile::tempdir().unwrap();
    let certs = root.path().join("certs");

    // The `certs` service, twice: the second start keeps the first one's files.
    let command: Vec<String> = compose["services"]["certs"]["command"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            a.as_str()
                .unwrap()
                .replace("/certs", certs.to_str().unwrap())
        })
        .collect();
    let args: Vec<&str> = command.iter().map(String::as_str).collect();
    let first = run(&bin, &args, &[]).await;
    assert!(first.ok, "{}", first.stderr);
    let ca = std::fs::read(certs.join("ca.pem")).unwrap();
    let again = run(&bin, &args, &[]).await;
    assert!(again.ok, "{}", again.stderr);
    assert!(again.stdout.contains("kept"), "{}", again.stdout);
    assert_eq!(std::fs::read(certs.join("ca.pem")).unwrap(), ca);

    // The key-encryption key as the README makes it: 32 raw random bytes.
    let secret = &compose["secrets"]["authd_kek"]["file"];
    assert_eq!(secret.as_str(), Some("./secrets/authd_kek"));
    std::fs::create_dir(root.path().join("secrets")).unwrap();
    let kek = root.path().join("secrets/authd_kek");
    std::fs::write(&kek, rand::random::<[u8; 32]>()).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&kek, std::fs::Permissions::from_mode(0o600)).unwrap();
    }

    let mut env = environment(&compose, "authd", root.path());
    assert!(env.contains_key("AUTHD_TLS_CERT") && env.contains_key("AUTHD_TLS_KEY"));
    // PostgreSQL's container is not here: SQLite stands in for it. Sign-up is turned on
    // for the test's user only.
    let db = format!(
        "sqlite://{}?mode=rwc",
        root.path().join("authd.db").display()
    );
    env.insert("AUTHD_DATABASE_URL".into(), db);
    env.insert("AUTHD_ALLOW_REGISTRATION".into(), "true".into());
    env.insert("AUTHD_LISTEN".into(), "0.0.0.0:0".into());
    env.insert("AUTHD_METRICS_LISTEN".into(), "127.0.0.1:0".into());
    env.insert("AUTHD_LOG_FORMAT".into(), "json".into());
    env.insert("RUST_LOG".into(), "info".into());
    let server = ServerProcess::start_bin(&bin, &["serve"], &pairs(&env)).await;
    assert!(
        !server.log().contains("unencrypted"),
        "keys sealed with the secret: {}",
        server.log()
    );

    // The HEALTHCHECK, in the container's environment, speaks TLS.
    env.insert(
        "AUTHD_LISTEN".into(),
        format!("0.0.0.0:{}", server.addr.port()),
    );
    let health = run(&bin, &["healthcheck"], &pairs(&env)).await;
    assert!(
        health.ok && health.stdout.contains("SERVING"),
        "{}{}",
        health.stdout,
        health.stderr
    );
    assert!(health.stdout.starts_with("https://"), "{}", health.stdout);

    // A user and a token, over TLS.
    let tls = tonic::transport::ClientTlsConfig::new()
        .ca_certificate(tonic::transport::Certificate::from_pem(&ca));
    let mut client = tls_client(server.addr, tls).await.unwrap();
    client
        .register(authd::proto::RegisterRequest {
            username: "alice".into(),
            password: PASSWORD.into(),
        })
        .await
        .unwrap();
    let pair = client
        .issue(authd::proto::IssueRequest {
            username: "alice".into(),
            password: PASSWORD.into(),
            audience: String::new(),
        })
        .await
        .unwrap()
        .into_inner();

    // The downstream service: authd's keys fetched over TLS, the token accepted.
    let mut denv = environment(&compose, "downstream", root.path());
    let url = denv["AUTHD_URL"].replace("authd:", "localhost:");
    assert!(url.starts_with("https://"), "{url}");
    denv.insert(
        "AUTHD_URL".into(),
        url.replace(":50051", &format!(":{}", server.addr.port())),
    );
    let config = Config::from_vars(|k| denv.get(k).cloned()).unwrap();
    let downstream = spawn_downstream(config).await;
    assert_eq!(downstream.hello(&pair.access_token).await.unwrap(), "alice");
    downstream.stop().await;

    let (status, log) = server.terminate().await;
    assert!(status.success(), "{log}");
}
