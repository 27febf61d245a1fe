//! The example downstream service accepts authd's tokens on its own — authd stopped — with
//! the HS256 secret or with the Ed25519 keys fetched from GetJwks, refuses unfit ones, and
//! follows a key rotation.
use std::time::Duration;

use authd_client::{Verifier, rejection_reason};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use downstream::proto::HelloRequest;
use downstream::proto::greeter_client::GreeterClient;
use downstream::{Config, Guard};
use jsonwebtoken::{Algorithm, EncodingKey, Header, encode};
use serde_json::json;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tonic::Code;

use crate::helpers::*;

/// The example on 127.0.0.1:0 (also used by tests/api/tls.rs and browser.rs).
pub(crate) struct Downstream {
    pub(crate) addr: std::net::SocketAddr,
    pub(crate) client: GreeterClient<tonic::transport::Channel>,
    stop: oneshot::Sender<()>,
    handle: tokio::task::JoinHandle<()>,
}

pub(crate) async fn spawn_downstream(config: Config) -> Downstream {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, rx) = oneshot::channel::<()>();
    let handle = tokio::spawn(async move {
        downstream::serve(listener, config, async {
            let _ = rx.await;
        })
        .await
        .unwrap();
    });
    let client = GreeterClient::connect(format!("http://{addr}"))
        .await
        .unwrap();
    Downstream {
        addr,
        client,
        stop,
        handle,
    }
}

impl Downstream {
    pub(crate) async fn hello(&self, token: &str) -> Result<String, tonic::Status> {
        let mut req = tonic::Request::new(HelloRequest {
            topic: String::new(),
        });
        req.metadata_mut()
            .insert("authorization", format!("Bearer {token}").parse().unwrap());
        self.client
            .clone()
            .hello(req)
            .await
            .map(|r| r.into_inner().username)
    }

    pub(crate) async fn stop(self) {
        let _ = self.stop.send(());
        self.handle.await.unwrap();
    }
}

#[track_caller]
pub(crate) fn refused(r: Result<String, tonic::Status>, why: &str) {
    let s = r.expect_err("expected a refusal");
    assert_eq!(s.code(), Code::Unauthenticated, "{s:?}");
    assert_eq!(rejection_reason(&s).as_deref(), Some(why), "{s:?}");
}

fn tamper(token: &str) -> String {
    // A character inside the payload: the signature no longer matches.
    let at = token.find('.').unwrap() + 5;
    let mut t = token.to_owned();
    let c = if &t[at..at + 1] == "A" { "B" } else { "A" };
    t.replace_range(at..at + 1, c);
    t
}

fn expired_claims(sub: &str, sid: &str) -> serde_json::Value {
    let now = chrono::Utc::now().timestamp();
    json!({
        "iss": "authd", "sub": sub, "aud": "authd", "exp": now - 3600, "iat": now - 4500,
        "nbf": now - 4500, "jti": "j", "sid": sid, "username": "late",
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn example_accepts_hs256_tokens_while_authd_is_stopped() {
    let Some(db) = TestDb::new(Backend::Sqlite).await else {
        return;
    };
    let mut s = settings(&db);
    s.audiences = vec!["billing".into()];
    let app = spawn(s).await;
    let pair = app.login("ursula").await;
    let billing = app.issue_for("ursula", PASSWORD, "billing").await.unwrap();
    let claims = app.validate(&pair.access_token, "").await.unwrap();
    let kid = jsonwebtoken::decode_header(&pair.access_token).unwrap().kid;
    app.stop().await;

    let svc = spawn_downstream(Config::with_shared_secret(SECRET)).await;
    assert_eq!(svc.hello(&pair.access_token).await.unwrap(), "ursula");
    refused(
        svc.hello(&tamper(&pair.access_token)).await,
        "BAD_SIGNATURE",
    );
    refused(svc.hello(&billing.access_token).await, "WRONG_AUDIENCE");
    let mut h = Header::new(Algorithm::HS256);
    h.typ = Some("at+jwt".into());
    h.kid = kid;
    let expired = encode(
        &h,
        &expired_claims(&claims.sub, &claims.sid),
        &EncodingKey::from_secret(SECRET.as_bytes()).unwrap(),
    )
    .unwrap();
    refused(svc.hello(&expired).await, "TOKEN_EXPIRED");
    refused(svc.hello("").await, "TOKEN_MISSING");
    svc.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn example_accepts_eddsa_tokens_from_the_jwks_while_authd_is_stopped() {
    let Some(db) = TestDb::new(Backend::Sqlite).await else {
        return;
    };
    let mut s = settings(&db);
    s.jwt_secret = None;
    s.audiences = vec!["billing".into()];
    let app = spawn(s).await;
    let pair = app.login("victor").await;
    let billing = app.issue_for("victor", PASSWORD, "billing").await.unwrap();
    let claims = app.validate(&pair.access_token, "").await.unwrap();
    let header = jsonwebtoken::decode_header(&pair.access_token).unwrap();
    assert_eq!(header.alg, Algorithm::EdDSA);

    // The example fetches authd's JWKS at start; then authd goes away.
    let svc = spawn_downstream(Config::with_authd(format!("http://{}", app.addr))).await;
    // Its first answer means it has the keys (it serves only after fetching them).
    assert_eq!(svc.hello(&pair.access_token).await.unwrap(), "victor");
    app.stop().await;

    assert_eq!(svc.hello(&pair.access_token).await.unwrap(), "victor");
    refused(
        svc.hello(&tamper(&pair.access_token)).await,
        "BAD_SIGNATURE",
    );
    refused(svc.hello(&billing.access_token).await, "WRONG_AUDIENCE");
    // An expired token signed with authd's real private key, read from its database.
    let row = db.store().await.signing_keys().await.unwrap().remove(0);
    let der = STANDARD.decode(&row.material).unwrap();
    let mut h = Header::new(Algorithm::EdDSA);
    h.typ = Some("at+jwt".into());
    h.kid = header.kid.clone();
    let expired = encode(
        &h,
        &expired_claims(&claims.sub, &claims.sid),
        &EncodingKey::from_ed_der(&der),
    )
    .unwrap();
    refused(svc.hello(&expired).await, "TOKEN_EXPIRED");
    // Proof the forging is faithful: the same key and claims, unexpired, pass.
    let mut fresh = expired_claims(&claims.sub, &claims.sid);
    fresh["exp"] = json!(chrono::Utc::now().timestamp() + 600);
    let fresh = encode(&h, &fresh, &EncodingKey::from_ed_der(&der)).unwrap();
    assert_eq!(svc.hello(&fresh).await.unwrap(), "late");
    svc.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotation_keeps_old_tokens_valid_and_signs_new_ones_with_the_new_key() {
    let Some(db) = TestDb::new(Backend::Sqlite).await else {
        return;
    };
    let mut s = settings(&db);
    s.jwt_secret = None;
    s.key_refresh = Duration::from_millis(100);
    let app = spawn(s).await;
    let before = app.login("wendy").await;
    let old_kid = jsonwebtoken::decode_header(&before.access_token)
        .unwrap()
        .kid
        .unwrap();

    let mut config = Config::with_authd(format!("http://{}", app.addr));
    config.guard = Guard::Layer;
    config.jwks_min_refetch = Duration::from_millis(50);
    let svc = spawn_downstream(config).await;
    assert_eq!(svc.hello(&before.access_token).await.unwrap(), "wendy");

    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_authd"))
        .args(["keys", "rotate"])
        .env_clear()
        .env("AUTHD_DATABASE_URL", &db.url)
        .output()
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // Within AUTHD_KEY_REFRESH the running authd signs with the new key.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let after = loop {
        let p = app.issue("wendy", PASSWORD).await.unwrap();
        let kid = jsonwebtoken::decode_header(&p.access_token)
            .unwrap()
            .kid
            .unwrap();
        if kid != old_kid {
            break p;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no new key within 10 s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };

    // Both pass Validate...
    app.validate(&before.access_token, "").await.unwrap();
    app.validate(&after.access_token, "").await.unwrap();
    // ...and local verification from the JWKS, which now lists both keys.
    let jwks = app.jwks().await;
    let local = Verifier::from_jwks_json(&jwks, "authd", "authd").unwrap();
    assert_eq!(local.keys().len(), 2);
    local.verify(&before.access_token, None).unwrap();
    local.verify(&after.access_token, None).unwrap();
    // The example, which fetched the JWKS before the rotation, refetches on the new kid.
    assert_eq!(svc.hello(&after.access_token).await.unwrap(), "wendy");
    assert_eq!(svc.hello(&before.access_token).await.unwrap(), "wendy");
    svc.stop().await;
    app.stop().await;
}

/// The README's example walk-through (its second shell block), run as written against a
/// real authd and the example, only the addresses differ.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readme_example_walkthrough_runs_as_written() {
    if !have_grpcurl() {
        return;
    }
    let script = readme_sh_block("## Verify tokens in your own service", 1);

    let Some(db) = TestDb::new(Backend::Sqlite).await else {
        return;
    };
    let mut s = settings(&db);
    s.jwt_secret = None;
    let app = spawn(s).await;
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let ds_addr = listener.local_addr().unwrap();
    let (stop, rx) = oneshot::channel::<()>();
    let config = Config::with_authd(format!("http://{}", app.addr));
    let handle = tokio::spawn(async move {
        downstream::serve(listener, config, async {
            let _ = rx.await;
        })
        .await
        .unwrap();
    });
    let script = script
        .replace("127.0.0.1:50051", &app.addr.to_string())
        .replace("127.0.0.1:50061", &ds_addr.to_string());
    let stdout = run_script(&script).await;
    assert!(stdout.contains("Hello, bob!"), "{stdout}");
    let _ = stop.send(());
    handle.await.unwrap();
    app.stop().await;
}
