//! The container's entry point, as the Dockerfile writes it, run against the release build.
use std::collections::HashMap;

use crate::deploy::run;
use crate::helpers::*;

/// The Dockerfile's runtime stage: its ENV, ENTRYPOINT + CMD and HEALTHCHECK.
struct Container {
    env: HashMap<String, String>,
    command: Vec<String>,
    healthcheck: Vec<String>,
}

fn json_array(s: &str) -> Vec<String> {
    serde_json::from_str(s.trim()).unwrap()
}

fn parse_dockerfile() -> Container {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/Dockerfile")).unwrap();
    let text = text.replace("\\\n", " ");
    // The last stage is the authd image.
    let stage = text.rsplit("\nFROM ").next().unwrap();
    let mut env = HashMap::new();
    let (mut entrypoint, mut cmd, mut healthcheck) = (vec![], vec![], vec![]);
    for line in stage.lines().map(str::trim) {
        if let Some(rest) = line.strip_prefix("ENV ") {
            for kv in rest.split_whitespace() {
                let (k, v) = kv.split_once('=').unwrap();
                env.insert(k.to_owned(), v.to_owned());
            }
        } else if let Some(rest) = line.strip_prefix("ENTRYPOINT ") {
            entrypoint = json_array(rest);
        } else if let Some(rest) = line.strip_prefix("CMD ") {
            cmd = json_array(rest);
        } else if let Some(rest) = line.strip_prefix("HEALTHCHECK ") {
            healthcheck = json_array(rest.split_once("CMD ").unwrap().1);
        }
    }
    assert_eq!(entrypoint, ["/usr/local/bin/authd"]);
    Container {
        env,
        command: cmd,
        healthcheck,
    }
}

/// Starts the binary the way the container does — same arguments, same environment names
/// and values, only the port (0) and data path moved to fit a shared machine — and passes
/// the container's own HEALTHCHECK command against it. `.ci/run` points AUTHD_RELEASE_BIN
/// at the release build the Dockerfile makes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn container_entrypoint_serves_and_passes_its_healthcheck() {
    let bin = match std::env::var("AUTHD_RELEASE_BIN") {
        Ok(b) => b,
        Err(_) => {
            assert!(!in_ci(), "CI sets AUTHD_RELEASE_BIN");
            AUTHD_BIN.to_owned()
        }
    };
    let c = parse_dockerfile();
    assert_eq!(c.command, ["serve"]);
    assert_eq!(c.env["AUTHD_LISTEN"], "0.0.0.0:50051");
    assert_eq!(c.healthcheck[0], "/usr/local/bin/authd");

    let data = tempfile::tempdir().unwrap();
    let mut env = c.env.clone();
    // Port 0: the bound address is read from the log (the image logs JSON).
    env.insert("AUTHD_LISTEN".into(), "0.0.0.0:0".into());
    let url = env["AUTHD_DATABASE_URL"].replace("/data/", &format!("{}/", data.path().display()));
    env.insert("AUTHD_DATABASE_URL".into(), url);
    let env_pairs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let command: Vec<&str> = c.command.iter().map(String::as_str).collect();
    let server = ServerProcess::start_bin(&bin, &command, &env_pairs).await;

    // The HEALTHCHECK runs in the container's environment, where AUTHD_LISTEN names the
    // port authd listens on.
    env.insert(
        "AUTHD_LISTEN".into(),
        format!("0.0.0.0:{}", server.addr.port()),
    );
    let env_pairs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let health_args: Vec<&str> = c.healthcheck[1..].iter().map(String::as_str).collect();
    let h = run(&bin, &health_args, &env_pairs).await;
    assert!(
        h.ok && h.stdout.contains("SERVING"),
        "{}{}",
        h.stdout,
        h.stderr
    );
    assert!(
        data.path().join("authd.db").exists(),
        "SQLite in the data volume"
    );
}
