//! The Greeter served for real on 127.0.0.1:0, called by a tonic client: each guard lets a
//! good token through with the caller's name, and refuses the rest with UNAUTHENTICATED
//! and the reason in an ErrorInfo detail. Admin also needs the configured role, and says
//! PERMISSION_DENIED (ROLE_REQUIRED) to a valid token without it.
// Test and bench code may unwrap and panic: a failure there is a failed assertion.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use authd_client::test_util::{FakeAuthd, TestKey, claims, claims_json, jwks_json};
use authd_client::{Claims, rejection_reason};
use downstream::proto::admin_client::AdminClient;
use downstream::proto::greeter_client::GreeterClient;
use downstream::proto::{HelloRequest, ReportReply, ReportRequest};
use downstream::{Config, Guard, ServeError};
use tokio::net::{TcpListener, TcpSocket};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tonic::transport::Endpoint;
use tonic::{Code, Status};

const SECRET: &str = "a-shared-secret-of-32-bytes-or-more!";

struct Running {
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    server: JoinHandle<Result<(), ServeError>>,
}

impl Running {
    async fn start(config: Config) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let server = tokio::spawn(downstream::serve(listener, config, async {
            let _ = stopped.await;
        }));
        Self {
            addr,
            stop: Some(stop),
            server,
        }
    }

    async fn hello(&self, token: Option<&str>) -> Result<String, Status> {
        let channel = Endpoint::from_shared(format!("http://{}", self.addr))
            .unwrap()
            .connect()
            .await
            .unwrap();
        let mut request = tonic::Request::new(HelloRequest {
            topic: String::new(),
        });
        if let Some(token) = token {
            request
                .metadata_mut()
                .insert("authorization", format!("Bearer {token}").parse().unwrap());
        }
        let reply = GreeterClient::new(channel)
            .hello(request)
            .await?
            .into_inner();
        assert!(reply.message.contains(&reply.username), "{}", reply.message);
        Ok(reply.username)
    }

    async fn report(&self, token: Option<&str>) -> Result<ReportReply, Status> {
        let channel = Endpoint::from_shared(format!("http://{}", self.addr))
            .unwrap()
            .connect()
            .await
            .unwrap();
        let mut request = tonic::Request::new(ReportRequest {});
        if let Some(token) = token {
            request
                .metadata_mut()
                .insert("authorization", format!("Bearer {token}").parse().unwrap());
        }
        Ok(AdminClient::new(channel)
            .report(request)
            .await?
            .into_inner())
    }

    async fn stop(mut self) -> Result<(), ServeError> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        self.server.await.unwrap()
    }
}

/// Poll `done` until it holds (for the effects of background tasks), for at most 5 s.
async fn eventually(what: &str, mut done: impl FnMut() -> bool) {
    for _ in 0..250 {
        if done() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("timed out waiting for {what}");
}

/// What authd-client logs (at debug) when an unknown key id may not prompt a refetch yet.
const FLOOR_REFUSAL: &str = "unknown key id within the refetch floor";

/// The log of the test's thread, kept in memory. `#[tokio::test]` runs every task of the
/// test (the server's, and the refetches it spawns) on that thread.
#[derive(Clone, Default)]
struct Log(Arc<Mutex<Vec<u8>>>);

impl Log {
    fn capture() -> LogGuard {
        let log = Log::default();
        let sink = log.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::DEBUG)
            .with_ansi(false)
            .with_writer(move || sink.clone())
            .finish();
        LogGuard {
            _default: tracing::subscriber::set_default(subscriber),
            log,
        }
    }

    fn count(&self, message: &str) -> usize {
        let bytes = self.0.lock().unwrap();
        String::from_utf8_lossy(&bytes).matches(message).count()
    }
}

impl std::io::Write for Log {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The captured log, in force until dropped.
struct LogGuard {
    _default: tracing::subscriber::DefaultGuard,
    log: Log,
}

impl std::ops::Deref for LogGuard {
    type Target = Log;
    fn deref(&self) -> &Log {
        &self.log
    }
}

/// The reason of a refusal, after checking it is UNAUTHENTICATED.
fn reason(result: Result<String, Status>) -> String {
    let status = result.unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated, "{status:?}");
    rejection_reason(&status).unwrap_or_else(|| panic!("no ErrorInfo reason: {status:?}"))
}

/// PERMISSION_DENIED with the reason ROLE_REQUIRED, naming `role`.
#[track_caller]
fn role_required<T: std::fmt::Debug>(result: Result<T, Status>, role: &str) {
    let status = result.unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied, "{status:?}");
    assert_eq!(
        rejection_reason(&status).as_deref(),
        Some(authd_client::reason::ROLE_REQUIRED),
        "{status:?}"
    );
    assert!(status.message().contains(role), "{status:?}");
}

/// A service account's claims, as authd mints them for client credentials: `sub` is the
/// client id, `client_id` too, and the account's roles.
fn service_account(name: &str, roles: &[&str]) -> Claims {
    let mut c = claims(name);
    c.sub = format!("svc-{name}");
    c.client_id = Some(c.sub.clone());
    c.roles = roles.iter().map(|r| r.to_string()).collect();
    c
}

/// What Admin must do behind every guard: the role passes, its absence is PERMISSION_DENIED,
/// no valid token is UNAUTHENTICATED as ever; and the Greeter asks for no role.
async fn check_admin(server: &Running, key: &TestKey, role: &str) {
    let admin = mint_with(key, |c| c.roles = vec!["reader".into(), role.into()]);
    let report = server.report(Some(&admin)).await.unwrap();
    assert_eq!(report.username, "ada");
    assert_eq!(report.roles, vec!["reader".to_string(), role.to_string()]);
    assert_eq!(report.client_id, "");

    let plain = key.mint(&claims("ada"));
    role_required(server.report(Some(&plain)).await, role);
    let shouted = mint_with(key, |c| c.roles = vec![role.to_uppercase()]);
    role_required(server.report(Some(&shouted)).await, role);
    assert_eq!(server.hello(Some(&plain)).await.unwrap(), "ada");

    for (token, why) in [
        (None, "TOKEN_MISSING"),
        (Some("garbage".to_owned()), "TOKEN_MALFORMED"),
        (Some(mint_with(key, |c| c.exp -= 3600)), "TOKEN_EXPIRED"),
    ] {
        let status = server.report(token.as_deref()).await.unwrap_err();
        assert_eq!(status.code(), Code::Unauthenticated, "{status:?}");
        assert_eq!(rejection_reason(&status).as_deref(), Some(why));
    }

    // A service account's token is a caller like a person's.
    let robot = key.mint(&service_account("nightly-export", &[role]));
    assert_eq!(server.hello(Some(&robot)).await.unwrap(), "nightly-export");
    let report = server.report(Some(&robot)).await.unwrap();
    assert_eq!(
        (report.username.as_str(), report.client_id.as_str()),
        ("nightly-export", "svc-nightly-export")
    );
    assert_eq!(report.user_id, "svc-nightly-export");
    let robot = key.mint(&service_account("nightly-export", &[]));
    assert_eq!(server.hello(Some(&robot)).await.unwrap(), "nightly-export");
    role_required(server.report(Some(&robot)).await, role);
    // One without a username is greeted by its client id.
    let mut nameless = service_account("x", &[]);
    nameless.username.clear();
    let nameless = key.mint(&nameless);
    assert_eq!(server.hello(Some(&nameless)).await.unwrap(), "svc-x");
}

fn mint_with(key: &TestKey, edit: impl FnOnce(&mut Claims)) -> String {
    let mut c = claims("ada");
    edit(&mut c);
    key.mint(&c)
}

/// What every guard must do, whatever its key source.
async fn check_guard(server: &Running, key: &TestKey) {
    assert_eq!(
        server.hello(Some(&key.mint(&claims("ada")))).await.unwrap(),
        "ada"
    );

    assert_eq!(reason(server.hello(None).await), "TOKEN_MISSING");
    let expired = mint_with(key, |c| c.exp -= 3600);
    assert_eq!(reason(server.hello(Some(&expired)).await), "TOKEN_EXPIRED");
    let good = key.mint(&claims("ada"));
    let (input, sig) = good.rsplit_once('.').unwrap();
    let (header, _) = input.split_once('.').unwrap();
    let as_admin = mint_with(key, |c| c.username = "admin".into());
    let (_, admin_payload) = as_admin
        .rsplit_once('.')
        .unwrap()
        .0
        .split_once('.')
        .unwrap();
    let tampered = format!("{header}.{admin_payload}.{sig}");
    assert_eq!(reason(server.hello(Some(&tampered)).await), "BAD_SIGNATURE");
    let elsewhere = mint_with(key, |c| c.aud = vec!["billing".into()]);
    assert_eq!(
        reason(server.hello(Some(&elsewhere)).await),
        "WRONG_AUDIENCE"
    );
    let mut id_token_header = key.header();
    id_token_header["typ"] = "JWT".into();
    let id_token = key.mint_raw(&id_token_header, &claims_json(&claims("ada")));
    assert_eq!(
        reason(server.hello(Some(&id_token)).await),
        "WRONG_TOKEN_TYPE"
    );
    assert_eq!(
        reason(server.hello(Some("garbage")).await),
        "TOKEN_MALFORMED"
    );
}

async fn health_is_open(addr: SocketAddr) {
    let channel = Endpoint::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect_lazy();
    let mut health = tonic_health::pb::health_client::HealthClient::new(channel);
    let reply = health
        .check(tonic_health::pb::HealthCheckRequest {
            service: "downstream.v1.Greeter".into(),
        })
        .await
        .expect("health answers without a token")
        .into_inner();
    assert_eq!(
        reply.status(),
        tonic_health::pb::health_check_response::ServingStatus::Serving
    );
}

#[tokio::test]
async fn shared_secret_with_each_local_guard() {
    let key = TestKey::hs256("hs256-any-kid", SECRET.as_bytes());
    for guard in [Guard::Interceptor, Guard::Layer] {
        let mut config = Config::with_shared_secret(SECRET);
        config.guard = guard;
        let server = Running::start(config).await;
        check_guard(&server, &key).await;
        health_is_open(server.addr).await;
        // Another secret, an EdDSA token: neither passes.
        let other = TestKey::hs256("hs256-any-kid", b"not the shared secret, but long enough");
        assert_eq!(
            reason(server.hello(Some(&other.mint(&claims("ada")))).await),
            "BAD_SIGNATURE"
        );
        let ed = TestKey::ed25519("ed-1", [1; 32]);
        assert_eq!(
            reason(server.hello(Some(&ed.mint(&claims("ada")))).await),
            "WRONG_ALGORITHM"
        );
        server.stop().await.unwrap();
    }
}

#[tokio::test]
async fn jwks_from_authd_with_each_local_guard_follows_a_rotation() {
    let log = Log::capture();
    let (old, new) = (
        TestKey::ed25519("ed-1", [1; 32]),
        TestKey::ed25519("ed-2", [2; 32]),
    );
    for guard in [Guard::Interceptor, Guard::Layer] {
        let authd = FakeAuthd::start(jwks_json(&[&old])).await.unwrap();
        let mut config = Config::with_authd(authd.url());
        config.guard = guard;
        let server = Running::start(config).await;
        check_guard(&server, &old).await;
        assert_eq!(
            authd.get_jwks_calls(),
            1,
            "{guard:?}: fetched once at start"
        );

        authd.set_jwks(jwks_json(&[&old, &new]));
        let rotated = new.mint(&claims("ada"));
        match guard {
            // The layer waits for the refetch: the first call passes.
            Guard::Layer => assert_eq!(server.hello(Some(&rotated)).await.unwrap(), "ada"),
            // The interceptor cannot wait: the first call is refused and starts the refetch.
            _ => {
                assert_eq!(reason(server.hello(Some(&rotated)).await), "UNKNOWN_KEY");
                let mut passed = false;
                for _ in 0..100 {
                    if server.hello(Some(&rotated)).await.is_ok() {
                        passed = true;
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                assert!(passed, "the background refetch brought the new key in");
            }
        }
        assert_eq!(authd.get_jwks_calls(), 2, "{guard:?}");
        // Garbage kids inside the floor cost authd nothing. Each refusal's refetch attempt
        // (awaited by the layer, in the background behind the interceptor) is seen to end
        // at the floor before the count is read.
        let garbage = TestKey::ed25519("ed-9", [9; 32]);
        let floored = log.count(FLOOR_REFUSAL);
        for n in 1..=5 {
            assert_eq!(
                reason(server.hello(Some(&garbage.mint(&claims("eve")))).await),
                "UNKNOWN_KEY"
            );
            eventually("the refetch attempt to stop at the floor", || {
                log.count(FLOOR_REFUSAL) == floored + n
            })
            .await;
        }
        assert_eq!(authd.get_jwks_calls(), 2, "{guard:?}");
        server.stop().await.unwrap();
    }
}

#[tokio::test]
async fn validate_guard_sees_a_revoked_session_at_once() {
    let key = TestKey::ed25519("ed-1", [1; 32]);
    let authd = FakeAuthd::start(jwks_json(&[&key])).await.unwrap();
    authd.validate_with(authd_client::Verifier::new(
        vec![key.verification_key()],
        "authd",
        "authd",
    ));
    let mut config = Config::with_authd(authd.url());
    config.guard = Guard::Validate;
    let server = Running::start(config).await;
    check_guard(&server, &key).await;
    health_is_open(server.addr).await;

    let c = claims("ada");
    let token = key.mint(&c);
    assert_eq!(server.hello(Some(&token)).await.unwrap(), "ada");
    authd.revoke_session(&c.sid);
    assert_eq!(reason(server.hello(Some(&token)).await), "TOKEN_REVOKED");
    assert_eq!(
        authd.get_jwks_calls(),
        0,
        "validate mode never fetches keys"
    );
    server.stop().await.unwrap();
}

#[tokio::test]
async fn admin_requires_the_role_behind_each_guard() {
    let hs = TestKey::hs256("hs256-any-kid", SECRET.as_bytes());
    for guard in [Guard::Interceptor, Guard::Layer] {
        let mut config = Config::with_shared_secret(SECRET);
        config.guard = guard;
        let server = Running::start(config).await;
        check_admin(&server, &hs, downstream::DEFAULT_REQUIRED_ROLE).await;
        server.stop().await.unwrap();
    }

    let ed = TestKey::ed25519("ed-1", [1; 32]);
    let authd = FakeAuthd::start(jwks_json(&[&ed])).await.unwrap();
    authd.validate_with(authd_client::Verifier::new(
        vec![ed.verification_key()],
        "authd",
        "authd",
    ));
    for guard in [Guard::Layer, Guard::Validate] {
        let mut config = Config::with_authd(authd.url());
        config.guard = guard;
        config.required_role = "billing:read".into();
        let server = Running::start(config).await;
        check_admin(&server, &ed, "billing:read").await;
        let default_role = mint_with(&ed, |c| {
            c.roles = vec![downstream::DEFAULT_REQUIRED_ROLE.into()]
        });
        role_required(server.report(Some(&default_role)).await, "billing:read");
        server.stop().await.unwrap();
    }
}

#[tokio::test]
async fn an_unreachable_authd_stops_the_start_with_an_error() {
    // A port that refuses connections while `_held` lives: bound without SO_REUSEADDR, so
    // no one else can take it, and never listening.
    let _held = TcpSocket::new_v4().unwrap();
    _held.bind(([127, 0, 0, 1], 0).into()).unwrap();
    let port = _held.local_addr().unwrap();
    let server = Running::start(Config::with_authd(format!("http://{port}"))).await;
    let err = server.server.await.unwrap().unwrap_err();
    assert!(matches!(err, ServeError::Keys(_)), "{err}");
}

#[test]
fn configuration_from_the_environment() {
    let from = |vars: &[(&str, &str)]| {
        let vars: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::from_vars(|name| vars.get(name).cloned())
    };
    let c = from(&[("AUTHD_JWT_SECRET", SECRET)]).unwrap();
    assert_eq!(c.listen.to_string(), "127.0.0.1:50061");
    assert_eq!((c.issuer.as_str(), c.audience.as_str()), ("authd", "authd"));
    assert_eq!(c.guard, Guard::Interceptor);
    assert_eq!(c.required_role, "downstream:admin");
    assert!(
        !format!("{c:?}").contains(SECRET),
        "the secret is never printed"
    );

    let c = from(&[
        ("AUTHD_URL", "http://authd:50051"),
        ("AUTHD_ISSUER", "https://auth.example"),
        ("AUTHD_AUDIENCE", "greeter"),
        ("DOWNSTREAM_LISTEN", "0.0.0.0:7000"),
        ("DOWNSTREAM_GUARD", "validate"),
        ("DOWNSTREAM_REQUIRED_ROLE", "greeter:ops"),
    ])
    .unwrap();
    assert_eq!(c.required_role, "greeter:ops");
    assert_eq!(c.listen.to_string(), "0.0.0.0:7000");
    assert_eq!(c.audience, "greeter");
    assert_eq!(c.guard, Guard::Validate);

    for (vars, setting) in [
        (vec![], "AUTHD_JWT_SECRET / AUTHD_URL"),
        (
            vec![("AUTHD_JWT_SECRET", SECRET), ("AUTHD_URL", "http://a")],
            "AUTHD_JWT_SECRET / AUTHD_URL",
        ),
        (
            vec![
                ("AUTHD_JWT_SECRET", SECRET),
                ("DOWNSTREAM_GUARD", "validate"),
            ],
            "DOWNSTREAM_GUARD",
        ),
        (
            vec![("AUTHD_URL", "http://a"), ("DOWNSTREAM_GUARD", "nope")],
            "DOWNSTREAM_GUARD",
        ),
        (
            vec![("AUTHD_URL", "http://a"), ("DOWNSTREAM_LISTEN", "nowhere")],
            "DOWNSTREAM_LISTEN",
        ),
        (vec![("AUTHD_URL", "not a url")], "AUTHD_URL"),
    ] {
        assert_eq!(from(&vars).unwrap_err().setting, setting, "{vars:?}");
    }
}

/// The TLS settings' combinations and files are checked at start, each error naming its
/// setting. (Working certificates: tests/api/tls.rs, against a real authd.)
#[test]
fn tls_settings_from_the_environment() {
    let from = |vars: &[(&str, &str)]| {
        let vars: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::from_vars(|name| vars.get(name).cloned())
    };
    let missing = "/nonexistent/authd-ca.pem";
    let not_pem = concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml");
    for (vars, setting, says) in [
        (
            vec![("AUTHD_URL", "https://authd:50051")],
            "AUTHD_TLS_CA",
            "https://",
        ),
        (
            vec![
                ("AUTHD_URL", "https://authd:50051"),
                ("AUTHD_TLS_CA", missing),
            ],
            "AUTHD_TLS_CA",
            missing,
        ),
        (
            vec![
                ("AUTHD_URL", "https://authd:50051"),
                ("AUTHD_TLS_CA", not_pem),
            ],
            "AUTHD_TLS_CA",
            "no PEM CERTIFICATE block",
        ),
        (
            vec![
                ("AUTHD_URL", "https://authd:50051"),
                ("AUTHD_TLS_CLIENT_CERT", "client.pem"),
            ],
            "AUTHD_TLS_CLIENT_KEY",
            "AUTHD_TLS_CLIENT_CERT",
        ),
        (
            vec![
                ("AUTHD_URL", "https://authd:50051"),
                ("AUTHD_TLS_CLIENT_KEY", "client.key"),
            ],
            "AUTHD_TLS_CLIENT_CERT",
            "AUTHD_TLS_CLIENT_KEY",
        ),
        (
            vec![
                ("AUTHD_URL", "https://authd:50051"),
                ("AUTHD_TLS_CLIENT_CERT", "client.pem"),
                ("AUTHD_TLS_CLIENT_KEY", "client.key"),
            ],
            "AUTHD_TLS_CA",
            "CA certificate",
        ),
    ] {
        let e = from(&vars).unwrap_err();
        assert_eq!(e.setting, setting, "{vars:?}: {e}");
        assert!(e.reason.contains(says), "{vars:?}: {e}");
    }
}
