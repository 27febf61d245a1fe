//! authd-client's remote mode (`AuthLayer::validate_with_authd`, the example's
//! `Guard::Validate`) against the real authd: a token whose session was revoked, or whose
//! user was disabled, is refused at once with authd's reason, while local verification,
//! which sees only the signature and the claims, still accepts it until it expires.
use std::net::SocketAddr;
use std::time::Duration;

use authd_client::{Verifier, rejection_reason};
use downstream::proto::HelloRequest;
use downstream::proto::greeter_client::GreeterClient;
use downstream::{Config, Guard};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tonic::Code;

use crate::helpers::*;

crate::on_both!(revoked_sessions_and_disabled_users_are_refused_through_the_layer);

/// The example Greeter on 127.0.0.1:0.
struct Greeter {
    addr: SocketAddr,
    stop: oneshot::Sender<()>,
    handle: JoinHandle<()>,
}

impl Greeter {
    async fn start(config: Config) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let handle = tokio::spawn(async move {
            downstream::serve(listener, config, async {
                let _ = stopped.await;
            })
            .await
            .unwrap();
        });
        Self { addr, stop, handle }
    }

    /// The caller's username as the Greeter saw it.
    async fn hello(&self, token: &str) -> Result<String, tonic::Status> {
        let mut client = GreeterClient::connect(format!("http://{}", self.addr))
            .await
            .unwrap();
        let mut request = tonic::Request::new(HelloRequest {
            topic: String::new(),
        });
        request
            .metadata_mut()
            .insert("authorization", format!("Bearer {token}").parse().unwrap());
        client.hello(request).await.map(|r| r.into_inner().username)
    }

    async fn stop(self) {
        let _ = self.stop.send(());
        self.handle.await.unwrap();
    }
}

#[track_caller]
fn refused_with(r: Result<String, tonic::Status>, why: &str) {
    let s = r.expect_err("expected a refusal");
    assert_eq!(s.code(), Code::Unauthenticated, "{s:?}");
    assert_eq!(rejection_reason(&s).as_deref(), Some(why), "{s:?}");
}

async fn revoked_sessions_and_disabled_users_are_refused_through_the_layer(b: Backend) {
    let Some(db) = TestDb::new(b).await else {
        return;
    };
    let mut s = settings(&db);
    // A disabling done in the database (by the CLI, another instance) reaches authd's
    // Validate at its next revocation reload.
    s.revocation_refresh = Duration::from_millis(100);
    let app = spawn(s).await;
    let mut config = Config::with_authd(format!("http://{}", app.addr));
    config.guard = Guard::Validate;
    let remote = Greeter::start(config).await;
    // The same service verifying locally with the shared secret, and the bare verifier.
    let mut config = Config::with_shared_secret(SECRET);
    config.guard = Guard::Layer;
    let local = Greeter::start(config).await;
    let verifier = Verifier::hs256(SECRET.as_bytes(), "authd", "authd").unwrap();

    // A session ended by Revoke (a logout): authd knows at once.
    let olga = app.login("olga").await;
    assert_eq!(remote.hello(&olga.access_token).await.unwrap(), "olga");
    app.revoke(&olga.refresh_token).await.unwrap();
    refused_with(remote.hello(&olga.access_token).await, "TOKEN_REVOKED");
    assert_eq!(local.hello(&olga.access_token).await.unwrap(), "olga");
    verifier.verify(&olga.access_token, None).unwrap();

    // A user disabled in the database.
    let pete = app.login("pete").await;
    assert_eq!(remote.hello(&pete.access_token).await.unwrap(), "pete");
    let sub = app.validate(&pete.access_token, "").await.unwrap().sub;
    let user_id = uuid::Uuid::parse_str(&sub).unwrap();
    let ended = db
        .store()
        .await
        .set_user_disabled(user_id, true, chrono::Utc::now())
        .await
        .unwrap();
    assert_eq!(ended, Some(1), "disabling ends the user's session");
    eventually(Duration::from_secs(10), || async {
        remote.hello(&pete.access_token).await.is_err()
    })
    .await;
    refused_with(remote.hello(&pete.access_token).await, "TOKEN_REVOKED");
    assert_eq!(local.hello(&pete.access_token).await.unwrap(), "pete");
    verifier.verify(&pete.access_token, None).unwrap();

    // Olga's new session is unaffected by either.
    let again = app.issue("olga", PASSWORD).await.unwrap();
    assert_eq!(remote.hello(&again.access_token).await.unwrap(), "olga");

    remote.stop().await;
    local.stop().await;
    app.stop().await;
}
