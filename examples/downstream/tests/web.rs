//! The Greeter over gRPC-Web (HTTP/1.1), as a browser page reaches it: a bearer token works
//! behind each guard as over native gRPC; CORS lets in exactly the configured origins, and
//! a call from any other origin is refused before the guard (or authd) sees it.
// Test and bench code may unwrap and panic: a failure there is a failed assertion.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::SocketAddr;

use authd_client::rejection_reason;
use authd_client::test_util::{FakeAuthd, TestKey, claims, jwks_json};
use bytes::Bytes;
use downstream::proto::admin_client::AdminClient;
use downstream::proto::greeter_client::GreeterClient;
use downstream::proto::{HelloReply, HelloRequest, ReportRequest};
use downstream::{Config, Guard, ServeError};
use http::{HeaderMap, Method, Request, StatusCode, header};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use prost::Message;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tonic::Code;
use tonic_web::{GrpcWebCall, GrpcWebClientLayer, GrpcWebClientService};
use tower_layer::Layer;

const SECRET: &str = "a-shared-secret-of-32-bytes-or-more!";
const APP: &str = "https://app.example.com";
const OTHER: &str = "https://evil.example.com";
const HELLO: &str = "/downstream.v1.Greeter/Hello";

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

    async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        self.server.await.unwrap().unwrap();
    }
}

type WebChannel = GrpcWebClientService<Client<HttpConnector, GrpcWebCall<tonic::body::Body>>>;

/// tonic over gRPC-Web over HTTP/1.1 (hyper-util's client without HTTP/2).
fn web_channel() -> WebChannel {
    GrpcWebClientLayer::new().layer(Client::builder(TokioExecutor::new()).build_http())
}

fn origin_of(addr: SocketAddr) -> http::Uri {
    format!("http://{addr}").parse().unwrap()
}

fn bearer<T>(message: T, token: Option<&str>) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    if let Some(token) = token {
        request
            .metadata_mut()
            .insert("authorization", format!("Bearer {token}").parse().unwrap());
    }
    request
}

/// Hello over gRPC-Web: the username greeted.
async fn web_hello(addr: SocketAddr, token: Option<&str>) -> Result<String, tonic::Status> {
    let mut greeter = GreeterClient::with_origin(web_channel(), origin_of(addr));
    let reply = greeter
        .hello(bearer(
            HelloRequest {
                topic: String::new(),
            },
            token,
        ))
        .await?
        .into_inner();
    assert!(reply.message.contains(&reply.username), "{}", reply.message);
    Ok(reply.username)
}

#[track_caller]
fn unauthenticated(result: Result<String, tonic::Status>) -> String {
    let status = result.unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated, "{status:?}");
    rejection_reason(&status).unwrap_or_else(|| panic!("no ErrorInfo reason: {status:?}"))
}

/// A whole HTTP/1.1 answer.
#[derive(Debug)]
struct Reply {
    status: StatusCode,
    headers: HeaderMap,
    body: Bytes,
}

impl Reply {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(|v| v.to_str().unwrap())
    }

    fn cors_headers(&self) -> Vec<String> {
        self.headers
            .keys()
            .map(|k| k.as_str().to_owned())
            .filter(|k| k.starts_with("access-control-"))
            .collect()
    }

    /// The grpc-status: a header (trailers-only) or in the trailer frame of the body.
    fn grpc_status(&self) -> Option<String> {
        if let Some(s) = self.header("grpc-status") {
            return Some(s.to_owned());
        }
        let mut rest = &self.body[..];
        while rest.len() >= 5 {
            let len = u32::from_be_bytes(rest[1..5].try_into().unwrap()) as usize;
            if rest[0] & 0x80 != 0 {
                let text = std::str::from_utf8(&rest[5..5 + len]).unwrap();
                for line in text.split("\r\n") {
                    if let Some((k, v)) = line.split_once(':')
                        && k.trim().eq_ignore_ascii_case("grpc-status")
                    {
                        return Some(v.trim().to_owned());
                    }
                }
            }
            rest = &rest[5 + len..];
        }
        None
    }

    /// The message of the first data frame.
    fn message(&self) -> &[u8] {
        assert!(self.body.len() >= 5 && self.body[0] == 0, "{self:?}");
        let len = u32::from_be_bytes(self.body[1..5].try_into().unwrap()) as usize;
        &self.body[5..5 + len]
    }
}

async fn send(request: Request<Full<Bytes>>) -> Reply {
    let client: Client<HttpConnector, Full<Bytes>> =
        Client::builder(TokioExecutor::new()).build_http();
    let response = client.request(request).await.unwrap();
    let (parts, body) = response.into_parts();
    Reply {
        status: parts.status,
        headers: parts.headers,
        body: body.collect().await.unwrap().to_bytes(),
    }
}

/// Hello as a page's `fetch` sends it: binary gRPC-Web, from `origin` if given.
async fn raw_hello(addr: SocketAddr, origin: Option<&str>, token: &str) -> Reply {
    let message = HelloRequest {
        topic: String::new(),
    }
    .encode_to_vec();
    let mut framed = vec![0u8];
    framed.extend_from_slice(&u32::try_from(message.len()).unwrap().to_be_bytes());
    framed.extend_from_slice(&message);
    let mut request = Request::builder()
        .method(Method::POST)
        .uri(format!("http://{addr}{HELLO}"))
        .header(header::CONTENT_TYPE, "application/grpc-web+proto")
        .header("x-grpc-web", "1")
        .header(header::AUTHORIZATION, format!("Bearer {token}"));
    if let Some(origin) = origin {
        request = request.header(header::ORIGIN, origin);
    }
    send(request.body(Full::new(framed.into())).unwrap()).await
}

async fn preflight(addr: SocketAddr, origin: &str) -> Reply {
    let request = Request::builder()
        .method(Method::OPTIONS)
        .uri(format!("http://{addr}{HELLO}"))
        .header(header::ORIGIN, origin)
        .header(header::ACCESS_CONTROL_REQUEST_METHOD, "POST")
        .header(
            header::ACCESS_CONTROL_REQUEST_HEADERS,
            "authorization,content-type,x-grpc-web",
        )
        .body(Full::new(Bytes::new()))
        .unwrap();
    send(request).await
}

fn list(value: Option<&str>) -> Vec<String> {
    value
        .unwrap_or_default()
        .split(',')
        .map(|s| s.trim().to_ascii_lowercase())
        .filter(|s| !s.is_empty())
        .collect()
}

/// A stand-in authd that validates tokens of `key`, and downstream asking it on every call.
async fn validating(key: &TestKey, origins: &[&str]) -> (FakeAuthd, Running) {
    let authd = FakeAuthd::start(jwks_json(&[key])).await.unwrap();
    authd.validate_with(authd_client::Verifier::new(
        vec![key.verification_key()],
        "authd",
        "authd",
    ));
    let mut config = Config::with_authd(authd.url());
    config.guard = Guard::Validate;
    config.cors_allowed_origins = origins.iter().map(|o| o.to_string()).collect();
    let server = Running::start(config).await;
    (authd, server)
}

/// Behind each guard, a typed tonic client over gRPC-Web is greeted with its token's
/// username, refused without one or with an expired one (the reasons of native gRPC), and
/// reaches Admin with the role.
#[tokio::test]
async fn hello_over_grpc_web_behind_each_guard() {
    let hs = TestKey::hs256("hs256-any-kid", SECRET.as_bytes());
    let ed = TestKey::ed25519("ed-1", [1; 32]);
    for guard in [Guard::Interceptor, Guard::Layer, Guard::Validate] {
        let (key, _authd, server) = match guard {
            Guard::Validate => {
                let (authd, server) = validating(&ed, &[]).await;
                (&ed, Some(authd), server)
            }
            _ => {
                let mut config = Config::with_shared_secret(SECRET);
                config.guard = guard;
                (&hs, None, Running::start(config).await)
            }
        };
        let token = key.mint(&claims("ada"));
        assert_eq!(
            web_hello(server.addr, Some(&token)).await.unwrap(),
            "ada",
            "{guard:?}"
        );
        assert_eq!(
            unauthenticated(web_hello(server.addr, None).await),
            "TOKEN_MISSING",
            "{guard:?}"
        );
        let mut old = claims("ada");
        old.exp -= 3600;
        assert_eq!(
            unauthenticated(web_hello(server.addr, Some(&key.mint(&old))).await),
            "TOKEN_EXPIRED",
            "{guard:?}"
        );

        let mut admin = claims("ada");
        admin.roles = vec![downstream::DEFAULT_REQUIRED_ROLE.into()];
        let report = AdminClient::with_origin(web_channel(), origin_of(server.addr))
            .report(bearer(ReportRequest {}, Some(&key.mint(&admin))))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(report.username, "ada", "{guard:?}");
        server.stop().await;
    }
}

/// From the allowed origin the preflight and the call get their CORS headers and the call
/// is answered; from another origin both get 403 with no CORS header, and the call never
/// reaches the guard (authd is not asked); without an Origin the call is served.
#[tokio::test]
async fn only_the_listed_origin_gets_through_and_another_never_reaches_the_guard() {
    let key = TestKey::ed25519("ed-1", [1; 32]);
    let (authd, server) = validating(&key, &[APP]).await;
    let token = key.mint(&claims("ada"));

    let pre = preflight(server.addr, APP).await;
    assert!(pre.status.is_success(), "{pre:?}");
    assert_eq!(pre.header("access-control-allow-origin"), Some(APP));
    assert!(
        list(pre.header("access-control-allow-headers")).contains(&"authorization".to_owned()),
        "{pre:?}"
    );
    assert_eq!(pre.header("access-control-allow-credentials"), None);

    let ok = raw_hello(server.addr, Some(APP), &token).await;
    assert_eq!(ok.status, StatusCode::OK, "{ok:?}");
    assert_eq!(ok.header("access-control-allow-origin"), Some(APP));
    let exposed = list(ok.header("access-control-expose-headers"));
    for name in ["grpc-status", "grpc-message", "grpc-status-details-bin"] {
        assert!(exposed.contains(&name.to_owned()), "{name}: {ok:?}");
    }
    assert_eq!(ok.grpc_status().as_deref(), Some("0"), "{ok:?}");
    assert_eq!(HelloReply::decode(ok.message()).unwrap().username, "ada");
    assert_eq!(authd.validate_calls(), 1);

    let pre = preflight(server.addr, OTHER).await;
    assert_eq!(pre.status, StatusCode::FORBIDDEN, "{pre:?}");
    assert_eq!(pre.cors_headers(), Vec::<String>::new());
    let refused = raw_hello(server.addr, Some(OTHER), &token).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN, "{refused:?}");
    assert_eq!(refused.cors_headers(), Vec::<String>::new());
    assert_eq!(refused.grpc_status(), None, "{refused:?}");
    assert_eq!(
        authd.validate_calls(),
        1,
        "the refused call reached the guard"
    );

    let plain = raw_hello(server.addr, None, &token).await;
    assert_eq!(plain.grpc_status().as_deref(), Some("0"), "{plain:?}");
    assert_eq!(plain.cors_headers(), Vec::<String>::new());
    assert_eq!(authd.validate_calls(), 2);
    server.stop().await;
}

/// By default no origin is allowed, not even the service's own address.
#[tokio::test]
async fn by_default_no_origin_is_allowed() {
    let key = TestKey::hs256("hs256-any-kid", SECRET.as_bytes());
    let config = Config::with_shared_secret(SECRET);
    assert!(config.cors_allowed_origins.is_empty());
    let server = Running::start(config).await;
    let own = format!("http://{}", server.addr);
    let token = key.mint(&claims("ada"));
    assert_eq!(
        preflight(server.addr, &own).await.status,
        StatusCode::FORBIDDEN
    );
    let refused = raw_hello(server.addr, Some(&own), &token).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN, "{refused:?}");
    assert_eq!(refused.cors_headers(), Vec::<String>::new());
    assert_eq!(
        raw_hello(server.addr, None, &token)
            .await
            .grpc_status()
            .as_deref(),
        Some("0")
    );
    server.stop().await;
}

/// DOWNSTREAM_CORS_ALLOWED_ORIGINS is read comma-separated; an origin a browser never sends
/// is an error naming it, from the environment and at start.
#[tokio::test]
async fn an_inexact_origin_is_refused_naming_the_setting() {
    let vars = |origins: &'static str| {
        move |name: &str| match name {
            "AUTHD_JWT_SECRET" => Some(SECRET.to_owned()),
            "DOWNSTREAM_CORS_ALLOWED_ORIGINS" => Some(origins.to_owned()),
            _ => None,
        }
    };
    let good = Config::from_vars(vars("https://app.example.com,http://127.0.0.1:5173")).unwrap();
    assert_eq!(
        good.cors_allowed_origins,
        ["https://app.example.com", "http://127.0.0.1:5173"]
    );
    for bad in ["*", "https://app.example.com/", "app.example.com"] {
        let e = Config::from_vars(vars(bad)).unwrap_err();
        assert_eq!(e.setting, "DOWNSTREAM_CORS_ALLOWED_ORIGINS", "{bad:?}: {e}");

        let mut config = Config::with_shared_secret(SECRET);
        config.cors_allowed_origins = vec![bad.to_owned()];
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        // Shut down at once if it does start: the error must come before serving.
        let served = downstream::serve(listener, config, std::future::ready(())).await;
        match served {
            Err(ServeError::Config(e)) => {
                assert_eq!(e.setting, "DOWNSTREAM_CORS_ALLOWED_ORIGINS", "{bad:?}: {e}");
            }
            other => panic!("{bad:?}: {other:?}"),
        }
    }
}
