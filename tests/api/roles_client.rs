//! authd-client's role checks on authd's own tokens, through the example downstream
//! service: its Greeter answers any valid token, its Admin only one that grants the role
//! (PERMISSION_DENIED, `ROLE_REQUIRED`, otherwise), whether the token is verified locally or
//! by authd's `Validate`, which carries the roles back.
use authd_client::rejection_reason;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use downstream::proto::admin_client::AdminClient;
use downstream::proto::greeter_client::GreeterClient;
use downstream::proto::{HelloRequest, ReportRequest};
use downstream::{Config, Guard};
use jsonwebtoken::{Algorithm, EncodingKey, Header, encode};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tonic::transport::Channel;
use tonic::{Code, Request, Status};

use crate::helpers::*;

/// The example on 127.0.0.1:0; stops when `stop` is sent or dropped.
async fn start(config: Config) -> (Channel, oneshot::Sender<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(downstream::serve(listener, config, async {
        let _ = stopped.await;
    }));
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    (channel, stop)
}

fn bearer<T>(message: T, token: &str) -> Request<T> {
    let mut request = Request::new(message);
    request
        .metadata_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    request
}

async fn report(channel: &Channel, token: &str) -> Result<Vec<String>, Status> {
    let reply = AdminClient::new(channel.clone())
        .report(bearer(ReportRequest {}, token))
        .await?;
    Ok(reply.into_inner().roles)
}

async fn hello(channel: &Channel, token: &str) -> Result<String, Status> {
    let reply = GreeterClient::new(channel.clone())
        .hello(bearer(HelloRequest::default(), token))
        .await?;
    Ok(reply.into_inner().username)
}

/// authd's token with `roles` added, signed again with authd's HS256 secret (authd does not
/// put roles in its tokens yet).
fn with_roles(token: &str, roles: &[&str]) -> String {
    let header = jsonwebtoken::decode_header(token).unwrap();
    let payload = token.split('.').nth(1).unwrap();
    let mut claims: serde_json::Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap();
    claims["roles"] = serde_json::json!(roles);
    let mut h = Header::new(Algorithm::HS256);
    h.typ = header.typ;
    h.kid = header.kid;
    encode(
        &h,
        &claims,
        &EncodingKey::from_secret(SECRET.as_bytes()).unwrap(),
    )
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn downstream_admin_needs_the_role_in_authds_token_with_each_guard() {
    let Some(db) = TestDb::new(Backend::Sqlite).await else {
        return;
    };
    let app = spawn(settings(&db)).await;
    let plain = app.login("rosa").await.access_token;
    let admin = with_roles(&plain, &["reports", downstream::DEFAULT_REQUIRED_ROLE]);

    let local = Config::with_shared_secret(SECRET);
    let mut validate = Config::with_authd(format!("http://{}", app.addr));
    validate.guard = Guard::Validate;
    for config in [local, validate] {
        let guard = config.guard;
        let (channel, _stop) = start(config).await;
        assert_eq!(hello(&channel, &plain).await.unwrap(), "rosa", "{guard:?}");
        let refused = report(&channel, &plain).await.unwrap_err();
        assert_eq!(
            refused.code(),
            Code::PermissionDenied,
            "{guard:?}: {refused:?}"
        );
        assert_eq!(
            rejection_reason(&refused).as_deref(),
            Some("ROLE_REQUIRED"),
            "{guard:?}"
        );
        assert_eq!(
            report(&channel, &admin).await.unwrap(),
            vec!["reports".to_string(), "downstream:admin".to_string()],
            "{guard:?}"
        );
        let refused = report(&channel, "").await.unwrap_err();
        assert_eq!(refused.code(), Code::Unauthenticated, "{guard:?}");
    }
    app.stop().await;
}
