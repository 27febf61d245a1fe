//! A certificate rotated on disk is served without a restart (on a file change and on
//! SIGHUP); a bad new pair is logged and the old one kept; an expired one stops start-up.
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use authd::server::Application;
use tonic::transport::Endpoint;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_client::HealthClient;

use crate::helpers::*;
use crate::tls::{client_tls, self_signed, tls_settings};

/// Does the server at `addr` now present a certificate from the CA in `ca_dir`? A new
/// connection each time, so it sees what a new client would.
async fn served_by(addr: SocketAddr, ca_dir: &Path) -> bool {
    let Ok(endpoint) = Endpoint::from_shared(format!("https://localhost:{}", addr.port())) else {
        return false;
    };
    let Ok(endpoint) = endpoint.tls_config(client_tls(ca_dir, None)) else {
        return false;
    };
    let Ok(channel) = endpoint.connect().await else {
        return false;
    };
    HealthClient::new(channel)
        .check(HealthCheckRequest::default())
        .await
        .is_ok()
}

/// Copy `file` of the certificate directory `from` over the one in `to`, as a rotation
/// would (written in place, not renamed: the harder case for a reader).
fn install(from: &Path, to: &Path, file: &str) {
    std::fs::write(to.join(file), std::fs::read(from.join(file)).unwrap()).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_certificate_changed_on_disk_is_served_without_a_restart() {
    let (old, new) = (self_signed(), self_signed());
    let live = tempfile::tempdir().unwrap();
    for f in ["server.pem", "server.key", "ca.pem"] {
        install(old.path(), live.path(), f);
    }
    let Some(db) = TestDb::new(Backend::Sqlite).await else {
        return;
    };
    let mut s = tls_settings(&db, live.path(), false);
    s.tls_reload_interval = Duration::from_millis(100);
    let app = spawn_tls(s, client_tls(old.path(), None)).await;
    app.register("alice", PASSWORD).await.unwrap();
    assert!(served_by(app.addr, old.path()).await);
    assert!(!served_by(app.addr, new.path()).await);

    install(new.path(), live.path(), "server.pem");
    install(new.path(), live.path(), "server.key");
    eventually(Duration::from_secs(10), || served_by(app.addr, new.path())).await;
    assert!(!served_by(app.addr, old.path()).await);
    // The connection made before the rotation still works.
    app.issue("alice", PASSWORD).await.unwrap();
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_reloads_the_certificate_and_a_bad_pair_keeps_the_old_one() {
    let (old, new) = (self_signed(), self_signed());
    let live = tempfile::tempdir().unwrap();
    for f in ["server.pem", "server.key"] {
        install(old.path(), live.path(), f);
    }
    let db = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}?mode=rwc", db.path().join("authd.db").display());
    let cert = live.path().join("server.pem");
    let key = live.path().join("server.key");
    let server = ServerProcess::start(&[
        ("AUTHD_DATABASE_URL", &url),
        ("AUTHD_TLS_CERT", cert.to_str().unwrap()),
        ("AUTHD_TLS_KEY", key.to_str().unwrap()),
        // Only SIGHUP can make it look within this test.
        ("AUTHD_TLS_RELOAD_INTERVAL", "1h"),
    ])
    .await;
    let hangup = || {
        let pid = server.child.id().unwrap().to_string();
        let sent = std::process::Command::new("kill")
            .args(["-HUP", &pid])
            .status()
            .unwrap();
        assert!(sent.success());
    };
    assert!(served_by(server.addr, old.path()).await);

    // Half a rotation: the new certificate with the old key.
    install(new.path(), live.path(), "server.pem");
    hangup();
    eventually(Duration::from_secs(10), || async {
        server.log().contains("keeping the current TLS certificate")
    })
    .await;
    let log = server.log();
    let line = log
        .lines()
        .find(|l| l.contains("keeping the current TLS certificate"))
        .unwrap();
    assert!(line.contains("AUTHD_TLS_KEY"), "{line}");
    assert!(line.contains("does not fit"), "{line}");
    assert!(served_by(server.addr, old.path()).await, "old pair dropped");
    assert!(!served_by(server.addr, new.path()).await);

    install(new.path(), live.path(), "server.key");
    hangup();
    eventually(Duration::from_secs(10), || {
        served_by(server.addr, new.path())
    })
    .await;
    assert!(!served_by(server.addr, old.path()).await);
    let (status, log) = server.terminate().await;
    assert!(status.success(), "{log}");
    assert!(log.contains("serving a new TLS certificate"), "{log}");
    // The key never reaches the log.
    let key_text =
        String::from_utf8(std::fs::read(new.path().join("server.key")).unwrap()).unwrap();
    let body = key_text.lines().nth(1).unwrap();
    assert!(!log.contains(body), "{log}");
}

/// A certificate whose validity ended yesterday, with its key.
fn expired_pair(dir: &Path) {
    let mut params = rcgen::CertificateParams::new(vec!["localhost".to_owned()]).unwrap();
    params.not_before = rcgen::date_time_ymd(2020, 1, 1);
    params.not_after = rcgen::date_time_ymd(2021, 1, 1);
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = params.self_signed(&key).unwrap();
    std::fs::write(dir.join("server.pem"), cert.pem()).unwrap();
    std::fs::write(dir.join("server.key"), key.serialize_pem()).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_certificate_stops_start_up_and_is_not_rotated_in() {
    let expired = tempfile::tempdir().unwrap();
    expired_pair(expired.path());
    let Some(db) = TestDb::new(Backend::Sqlite).await else {
        return;
    };
    let e = match Application::build(tls_settings(&db, expired.path(), false)).await {
        Ok(_) => panic!("started with an expired certificate"),
        Err(e) => e.to_string(),
    };
    assert!(e.contains("AUTHD_TLS_CERT"), "{e}");
    assert!(e.contains("expired"), "{e}");
    assert!(e.contains(expired.path().to_str().unwrap()), "{e}");

    // Rotated in while serving: refused, the good pair stays.
    let good = self_signed();
    let live = tempfile::tempdir().unwrap();
    for f in ["server.pem", "server.key"] {
        install(good.path(), live.path(), f);
    }
    let tls = authd::tls::ServerTls::load(
        &live.path().join("server.pem"),
        &live.path().join("server.key"),
        None,
    )
    .unwrap();
    assert!(!tls.reload().unwrap(), "nothing changed");
    install(expired.path(), live.path(), "server.pem");
    install(expired.path(), live.path(), "server.key");
    let e = tls.reload().unwrap_err().to_string();
    assert!(e.contains("expired"), "{e}");
    // Reported once: the same bad files are not an error again until they change.
    assert!(!tls.reload().unwrap());
}
