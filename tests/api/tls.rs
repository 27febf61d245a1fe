//! TLS and mutual TLS on the gRPC port, with certificates from `authd tls self-signed`.
use std::path::{Path, PathBuf};
use std::process::Command;

use authd::config::ServeArgs;
use authd::proto::RegisterRequest;
use authd::proto::auth_service_client::AuthServiceClient;
use authd::server::Application;
use tonic::transport::{Certificate, ClientTlsConfig, Identity};

use crate::helpers::*;

/// `authd tls self-signed --out <tempdir>`, run as a user would.
pub(crate) fn self_signed() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(AUTHD_BIN)
        .env_clear()
        .args(["tls", "self-signed", "--out"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    #[cfg(unix)]
    for key in ["server.key", "client.key"] {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.path().join(key))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "{key}");
    }
    dir
}

fn read(dir: &Path, file: &str) -> Vec<u8> {
    std::fs::read(dir.join(file)).unwrap()
}

pub(crate) fn tls_settings(db: &TestDb, certs: &Path, client_ca: bool) -> ServeArgs {
    let mut s = settings(db);
    s.tls_cert = Some(certs.join("server.pem"));
    s.tls_key = Some(certs.join("server.key"));
    if client_ca {
        s.tls_client_ca = Some(certs.join("ca.pem"));
    }
    s
}

/// Trusts the CA in `certs`; presents the client certificate of `identity` if given.
pub(crate) fn client_tls(certs: &Path, identity: Option<&Path>) -> ClientTlsConfig {
    let tls = ClientTlsConfig::new().ca_certificate(Certificate::from_pem(read(certs, "ca.pem")));
    match identity {
        Some(dir) => tls.identity(Identity::from_pem(
            read(dir, "client.pem"),
            read(dir, "client.key"),
        )),
        None => tls,
    }
}

/// Register: the first call of a client, which fails if the handshake was refused.
async fn register(
    client: Result<AuthServiceClient<tonic::transport::Channel>, tonic::transport::Error>,
    username: &str,
) -> Result<(), String> {
    let mut client = client.map_err(|e| format!("connect: {e:?}"))?;
    client
        .register(RegisterRequest {
            username: username.into(),
            password: PASSWORD.into(),
        })
        .await
        .map(|_| ())
        .map_err(|s| format!("register: {s:?}"))
}

fn healthcheck(addr: std::net::SocketAddr, args: &[&str]) -> (bool, String) {
    let out = Command::new(AUTHD_BIN)
        .env_clear()
        .args([
            "healthcheck",
            "--addr",
            &format!("localhost:{}", addr.port()),
        ])
        .args(args)
        .output()
        .unwrap();
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_serves_the_api_and_refuses_plain_text() {
    let certs = self_signed();
    let Some(db) = TestDb::new(Backend::Sqlite).await else {
        return;
    };
    let app = spawn_tls(
        tls_settings(&db, certs.path(), false),
        client_tls(certs.path(), None),
    )
    .await;

    app.register("alice", PASSWORD).await.unwrap();
    let pair = app.issue("alice", PASSWORD).await.unwrap();
    let claims = app.validate(&pair.access_token, "").await.unwrap();
    assert_eq!(claims.username, "alice");

    let plain = AuthServiceClient::connect(format!("http://{}", app.addr)).await;
    assert!(
        register(plain, "bob").await.is_err(),
        "plain text on the TLS port"
    );

    let ca = certs.path().join("ca.pem");
    let addr = app.addr;
    let ca_arg = ca.to_str().unwrap().to_owned();
    let (ok, out) = tokio::task::spawn_blocking(move || healthcheck(addr, &["--tls-ca", &ca_arg]))
        .await
        .unwrap();
    assert!(ok && out.contains("SERVING"), "{out}");
    assert!(out.starts_with("https://"), "{out}");
    let (ok, out) = tokio::task::spawn_blocking(move || healthcheck(addr, &[]))
        .await
        .unwrap();
    assert!(!ok, "plain-text healthcheck of a TLS port: {out}");

    if have_grpcurl() {
        let target = format!("localhost:{}", app.addr.port());
        let out = tokio::task::spawn_blocking(move || {
            Command::new("grpcurl")
                .arg("-cacert")
                .arg(&ca)
                .args([target.as_str(), "list"])
                .output()
                .unwrap()
        })
        .await
        .unwrap();
        let list = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(list.contains("authd.v1.AuthService"), "{list}");
    }
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutual_tls_needs_a_client_certificate_from_the_ca() {
    let certs = self_signed();
    let other = self_signed();
    let Some(db) = TestDb::new(Backend::Sqlite).await else {
        return;
    };
    let app = spawn_tls(
        tls_settings(&db, certs.path(), true),
        client_tls(certs.path(), Some(certs.path())),
    )
    .await;
    app.register("alice", PASSWORD).await.unwrap();

    let anonymous = tls_client(app.addr, client_tls(certs.path(), None)).await;
    assert!(
        register(anonymous, "bob").await.is_err(),
        "no client certificate"
    );
    let stranger = tls_client(app.addr, client_tls(certs.path(), Some(other.path()))).await;
    assert!(
        register(stranger, "carol").await.is_err(),
        "a client certificate from another CA"
    );

    // Still serving, to a fresh connection with the right certificate.
    let good = tls_client(app.addr, client_tls(certs.path(), Some(certs.path()))).await;
    register(good, "dave").await.unwrap();
    let pair = app.issue("dave", PASSWORD).await.unwrap();
    app.validate(&pair.access_token, "").await.unwrap();

    let addr = app.addr;
    let dir = certs.path().to_owned();
    let (ok, out) = tokio::task::spawn_blocking(move || {
        let arg = |f: &str| dir.join(f).to_str().unwrap().to_owned();
        let args = [
            "--tls-ca".to_owned(),
            arg("ca.pem"),
            "--tls-cert".to_owned(),
            arg("client.pem"),
            "--tls-key".to_owned(),
            arg("client.key"),
        ];
        healthcheck(addr, &args.iter().map(String::as_str).collect::<Vec<_>>())
    })
    .await
    .unwrap();
    assert!(ok && out.contains("SERVING"), "{out}");

    if have_grpcurl() {
        let target = format!("localhost:{}", app.addr.port());
        let dir = certs.path().to_owned();
        let out = tokio::task::spawn_blocking(move || {
            Command::new("grpcurl")
                .arg("-cacert")
                .arg(dir.join("ca.pem"))
                .arg("-cert")
                .arg(dir.join("client.pem"))
                .arg("-key")
                .arg(dir.join("client.key"))
                .args([target.as_str(), "list"])
                .output()
                .unwrap()
        })
        .await
        .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    app.stop().await;
}

async fn start_error(settings: ServeArgs) -> String {
    match Application::build(settings).await {
        Ok(_) => panic!("started with bad TLS settings"),
        Err(e) => e.to_string(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_tls_files_stop_start_up_naming_the_file() {
    let certs = self_signed();
    let other = self_signed();
    let Some(db) = TestDb::new(Backend::Sqlite).await else {
        return;
    };
    let missing: PathBuf = certs.path().join("nope.pem");
    let mut s = tls_settings(&db, certs.path(), false);
    s.tls_cert = Some(missing.clone());
    let e = start_error(s).await;
    assert!(e.contains(missing.to_str().unwrap()), "{e}");

    let mut s = tls_settings(&db, certs.path(), false);
    s.tls_key = Some(other.path().join("server.key"));
    let e = start_error(s).await;
    assert!(e.contains("AUTHD_TLS_KEY"), "{e}");
    assert!(e.contains(other.path().to_str().unwrap()), "{e}");

    let mut s = tls_settings(&db, certs.path(), true);
    s.tls_client_ca = Some(certs.path().join("server.key"));
    let e = start_error(s).await;
    assert!(e.contains("AUTHD_TLS_CLIENT_CA"), "{e}");

    let mut s = settings(&db);
    s.tls_cert = Some(certs.path().join("server.pem"));
    let e = start_error(s).await;
    assert!(e.contains("AUTHD_TLS_KEY"), "{e}");
}

/// Services talking to a TLS authd through authd-client's `authd_channel`: the example
/// configured from the environment, the remote-mode layer, and a client authd refuses.
mod clients {
    use std::collections::HashMap;
    use std::time::Duration;

    use authd_client::{
        AuthLayer, JwksOptions, KeySource, KeySourceError, TlsOptions, authd_channel,
        rejection_reason,
    };
    use downstream::proto::HelloRequest;
    use downstream::proto::greeter_client::GreeterClient;
    use downstream::proto::greeter_server::GreeterServer;
    use downstream::{Config, Guard, Hello, ServeError};
    use tokio::net::TcpListener;
    use tonic::Code;
    use tonic::transport::Server;
    use tonic::transport::server::TcpIncoming;
    use tower::Layer as _;

    use super::*;
    use crate::downstream::{refused, spawn_downstream};

    fn path(dir: &Path, file: &str) -> String {
        dir.join(file).to_str().unwrap().to_owned()
    }

    /// The example's settings, read as its `main` reads the environment.
    fn from_vars(vars: &[(&str, String)]) -> Result<Config, downstream::ConfigError> {
        let vars: HashMap<&str, String> = vars.iter().cloned().collect();
        Config::from_vars(|name| vars.get(name).cloned())
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn downstream_verifies_with_the_jwks_fetched_over_mutual_tls() {
        let certs = self_signed();
        let Some(db) = TestDb::new(Backend::Sqlite).await else {
            return;
        };
        // Ed25519 (no shared secret): the example can only verify with authd's JWKS.
        let mut s = tls_settings(&db, certs.path(), true);
        s.jwt_secret = None;
        let app = spawn_tls(s, client_tls(certs.path(), Some(certs.path()))).await;
        let pair = app.login("erin").await;

        // 127.0.0.1: the server certificate names the address too.
        let url = format!("https://127.0.0.1:{}", app.addr.port());
        let config = from_vars(&[
            ("AUTHD_URL", url.clone()),
            ("AUTHD_TLS_CA", path(certs.path(), "ca.pem")),
            ("AUTHD_TLS_CLIENT_CERT", path(certs.path(), "client.pem")),
            ("AUTHD_TLS_CLIENT_KEY", path(certs.path(), "client.key")),
        ])
        .unwrap();
        assert_eq!(config.guard, Guard::Interceptor);
        let printed = format!("{config:?}");
        assert!(!printed.contains("PRIVATE KEY"), "{printed}");
        // It serves only once it holds the keys: authd accepted its certificate.
        let svc = spawn_downstream(config).await;
        assert_eq!(svc.hello(&pair.access_token).await.unwrap(), "erin");
        let anonymous = svc
            .client
            .clone()
            .hello(HelloRequest::default())
            .await
            .unwrap_err();
        assert_eq!(anonymous.code(), Code::Unauthenticated, "{anonymous:?}");
        assert_eq!(
            rejection_reason(&anonymous).as_deref(),
            Some("TOKEN_MISSING")
        );
        svc.stop().await;

        // The same URL without the client certificate: authd refuses the handshake, so the
        // example cannot get the keys and does not start.
        let config = from_vars(&[
            ("AUTHD_URL", url.clone()),
            ("AUTHD_TLS_CA", path(certs.path(), "ca.pem")),
        ])
        .unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let err = downstream::serve(listener, config, std::future::pending())
            .await
            .unwrap_err();
        assert!(matches!(err, ServeError::Keys(_)), "{err}");

        // Settings that disagree, with real files, each named.
        for (vars, setting) in [
            (
                vec![
                    ("AUTHD_URL", format!("http://127.0.0.1:{}", app.addr.port())),
                    ("AUTHD_TLS_CA", path(certs.path(), "ca.pem")),
                ],
                "AUTHD_URL",
            ),
            (
                vec![
                    ("AUTHD_JWT_SECRET", SECRET.to_owned()),
                    ("AUTHD_TLS_CA", path(certs.path(), "ca.pem")),
                ],
                "AUTHD_TLS_CA",
            ),
            (
                vec![
                    ("AUTHD_URL", url.clone()),
                    ("AUTHD_TLS_CA", path(certs.path(), "ca.pem")),
                    ("AUTHD_TLS_CLIENT_CERT", path(certs.path(), "client.pem")),
                    ("AUTHD_TLS_CLIENT_KEY", path(certs.path(), "server.key")),
                ],
                "AUTHD_TLS_CLIENT_CERT / AUTHD_TLS_CLIENT_KEY",
            ),
            (
                vec![
                    ("AUTHD_URL", url.clone()),
                    ("AUTHD_TLS_CA", path(certs.path(), "ca.pem")),
                    ("AUTHD_TLS_CLIENT_CERT", path(certs.path(), "client.key")),
                    ("AUTHD_TLS_CLIENT_KEY", path(certs.path(), "client.key")),
                ],
                "AUTHD_TLS_CLIENT_CERT",
            ),
        ] {
            let e = from_vars(&vars).unwrap_err();
            assert_eq!(e.setting, setting, "{vars:?}: {e}");
        }
        app.stop().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn remote_layer_validates_over_tls() {
        let certs = self_signed();
        let Some(db) = TestDb::new(Backend::Sqlite).await else {
            return;
        };
        let app = spawn_tls(
            tls_settings(&db, certs.path(), false),
            client_tls(certs.path(), None),
        )
        .await;
        let tls = TlsOptions::from_files(&certs.path().join("ca.pem"), None).unwrap();
        let authd = authd_channel(
            &format!("https://localhost:{}", app.addr.port()),
            Some(&tls),
        )
        .unwrap();

        // A Greeter behind the layer, which asks authd's Validate on every call.
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let greeter = AuthLayer::validate_with_authd(authd, "").layer(GreeterServer::new(Hello));
        let server = tokio::spawn(
            Server::builder()
                .add_service(greeter)
                .serve_with_incoming_shutdown(TcpIncoming::from(listener), async {
                    let _ = stopped.await;
                }),
        );
        let client = GreeterClient::connect(format!("http://{addr}"))
            .await
            .unwrap();
        let hello = |token: &str| {
            let mut client = client.clone();
            let mut request = tonic::Request::new(HelloRequest::default());
            request
                .metadata_mut()
                .insert("authorization", format!("Bearer {token}").parse().unwrap());
            async move { client.hello(request).await.map(|r| r.into_inner().username) }
        };

        let pair = app.login("frank").await;
        assert_eq!(hello(&pair.access_token).await.unwrap(), "frank");
        // authd's answer, not a local check: a revoked session is refused at once.
        app.revoke(&pair.refresh_token).await.unwrap();
        refused(hello(&pair.access_token).await, "TOKEN_REVOKED");
        refused(hello("").await, "TOKEN_MISSING");

        let _ = stop.send(());
        server.await.unwrap().unwrap();
        app.stop().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn jwks_fetch_fails_without_a_client_certificate_or_with_a_foreign_ca() {
        let certs = self_signed();
        let other = self_signed();
        let Some(db) = TestDb::new(Backend::Sqlite).await else {
            return;
        };
        let mut s = tls_settings(&db, certs.path(), true);
        s.jwt_secret = None;
        let app = spawn_tls(s, client_tls(certs.path(), Some(certs.path()))).await;
        let url = format!("https://localhost:{}", app.addr.port());
        let options = || {
            let mut o = JwksOptions::new("authd", "authd");
            o.fetch_timeout = Duration::from_secs(10);
            o
        };
        let dir = certs.path();
        let anonymous = TlsOptions::from_files(&dir.join("ca.pem"), None).unwrap();
        let foreign_ca = TlsOptions::from_files(
            &other.path().join("ca.pem"),
            Some((&dir.join("client.pem"), &dir.join("client.key"))),
        )
        .unwrap();
        for (why, tls) in [
            ("no client certificate", anonymous),
            ("authd's certificate from an untrusted CA", foreign_ca),
        ] {
            let keys = KeySource::jwks(authd_channel(&url, Some(&tls)).unwrap(), options());
            let e = keys.refresh().await.unwrap_err();
            assert!(matches!(e, KeySourceError::Fetch(_)), "{why}: {e}");
            assert!(keys.verifier().keys().is_empty(), "{why}");
            let e = KeySource::connect_jwks(authd_channel(&url, Some(&tls)).unwrap(), options())
                .await
                .unwrap_err();
            assert!(matches!(e, KeySourceError::Fetch(_)), "{why}: {e}");
        }

        // With the certificate: the keys come.
        let tls = TlsOptions::from_files(
            &dir.join("ca.pem"),
            Some((&dir.join("client.pem"), &dir.join("client.key"))),
        )
        .unwrap();
        let keys = KeySource::connect_jwks(authd_channel(&url, Some(&tls)).unwrap(), options())
            .await
            .unwrap();
        let pair = app.login("gina").await;
        assert_eq!(
            keys.verify(&pair.access_token, None).unwrap().username,
            "gina"
        );
        app.stop().await;
    }
}
