//! gRPC-Web on authd's port, as a browser (or a proxy-less web client) reaches it: the token
//! API over HTTP/1.1 with tonic-web's client, answers identical to native gRPC's, CORS for
//! exactly the configured origins, and the admin API and reflection kept off gRPC-Web unless
//! a setting turns them on.
use std::net::SocketAddr;

use authd_client::proto as pb;
use authd_client::proto::auth_service_client::AuthServiceClient;
use bytes::Bytes;
use http::{HeaderMap, Method, Request, StatusCode, Version, header};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use prost::Message;
use tonic::Code;
use tonic_web::{GrpcWebCall, GrpcWebClientLayer, GrpcWebClientService};
use tower::Layer;

use crate::helpers::*;
use crate::on_both;

on_both!(the_whole_token_flow_works_over_grpc_web);

/// The page origin the CORS tests allow.
const APP: &str = "https://app.example.com";
/// Another site.
const OTHER: &str = "https://evil.example.com";

// ---- clients -------------------------------------------------------------------------

/// tonic over gRPC-Web over HTTP/1.1 (hyper-util's client speaks HTTP/1.1 only unless told
/// otherwise), as tonic-web's own client example builds it.
type WebChannel = GrpcWebClientService<Client<HttpConnector, GrpcWebCall<tonic::body::Body>>>;

fn web_channel() -> WebChannel {
    GrpcWebClientLayer::new().layer(Client::builder(TokioExecutor::new()).build_http())
}

fn web_origin(addr: SocketAddr) -> http::Uri {
    format!("http://{addr}").parse().unwrap()
}

/// The generated AuthService client of authd-client, over gRPC-Web.
fn web_auth(addr: SocketAddr) -> AuthServiceClient<WebChannel> {
    AuthServiceClient::with_origin(web_channel(), web_origin(addr))
}

fn web_admin(
    addr: SocketAddr,
) -> authd::proto::admin_service_client::AdminServiceClient<WebChannel> {
    authd::proto::admin_service_client::AdminServiceClient::with_origin(
        web_channel(),
        web_origin(addr),
    )
}

type Raw = Client<HttpConnector, Full<Bytes>>;

/// Hand-built HTTP/1.1 requests, as a browser's `fetch` sends them.
fn http1() -> Raw {
    Client::builder(TokioExecutor::new()).build_http()
}

/// Hand-built HTTP/2 requests (prior knowledge, plain text), as native gRPC sends them.
fn http2() -> Raw {
    Client::builder(TokioExecutor::new())
        .http2_only(true)
        .build_http()
}

/// A whole HTTP answer.
#[derive(Debug)]
struct Reply {
    status: StatusCode,
    version: Version,
    headers: HeaderMap,
    body: Bytes,
    trailers: Option<HeaderMap>,
}

impl Reply {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(|v| v.to_str().unwrap())
    }

    /// The names of the `access-control-*` headers.
    fn cors_headers(&self) -> Vec<String> {
        self.headers
            .keys()
            .map(|k| k.as_str().to_owned())
            .filter(|k| k.starts_with("access-control-"))
            .collect()
    }

    /// The grpc-status of a gRPC-Web answer: in the headers (trailers-only) or in the
    /// trailer frame (flag 0x80) at the end of the body.
    fn web_grpc_status(&self) -> Option<String> {
        if let Some(s) = self.header("grpc-status") {
            return Some(s.to_owned());
        }
        let mut rest = &self.body[..];
        while rest.len() >= 5 {
            let len = u32::from_be_bytes(rest[1..5].try_into().unwrap()) as usize;
            let payload = &rest[5..5 + len];
            if rest[0] & 0x80 != 0 {
                let text = std::str::from_utf8(payload).unwrap();
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

    /// The message of the first data frame of a gRPC-Web answer.
    fn web_message(&self) -> &[u8] {
        assert!(self.body.len() >= 5 && self.body[0] == 0, "{self:?}");
        let len = u32::from_be_bytes(self.body[1..5].try_into().unwrap()) as usize;
        &self.body[5..5 + len]
    }

    /// The grpc-status of a native answer: in the headers (trailers-only) or the trailers.
    fn native_grpc_status(&self) -> Option<String> {
        self.header("grpc-status").map(str::to_owned).or_else(|| {
            self.trailers
                .as_ref()?
                .get("grpc-status")
                .map(|v| v.to_str().unwrap().to_owned())
        })
    }
}

async fn send(client: &Raw, request: Request<Full<Bytes>>) -> Reply {
    let response = client.request(request).await.unwrap();
    let (parts, body) = response.into_parts();
    let body = body.collect().await.unwrap();
    let trailers = body.trailers().cloned();
    Reply {
        status: parts.status,
        version: parts.version,
        headers: parts.headers,
        body: body.to_bytes(),
        trailers,
    }
}

/// A length-prefixed gRPC message (uncompressed).
fn frame(message: &[u8]) -> Bytes {
    let mut framed = vec![0u8];
    framed.extend_from_slice(&u32::try_from(message.len()).unwrap().to_be_bytes());
    framed.extend_from_slice(message);
    framed.into()
}

/// POST `message` to `path` as binary gRPC-Web over HTTP/1.1, from `origin` if given.
async fn web_post(addr: SocketAddr, path: &str, origin: Option<&str>, message: &[u8]) -> Reply {
    let mut request = Request::builder()
        .method(Method::POST)
        .uri(format!("http://{addr}{path}"))
        .header(header::CONTENT_TYPE, "application/grpc-web+proto")
        .header("x-grpc-web", "1");
    if let Some(origin) = origin {
        request = request.header(header::ORIGIN, origin);
    }
    let reply = send(&http1(), request.body(Full::new(frame(message))).unwrap()).await;
    assert_eq!(reply.version, Version::HTTP_11);
    reply
}

/// POST `message` to `path` as native gRPC over HTTP/2.
async fn native_post(addr: SocketAddr, path: &str, message: &[u8]) -> Reply {
    let request = Request::builder()
        .method(Method::POST)
        .uri(format!("http://{addr}{path}"))
        .header(header::CONTENT_TYPE, "application/grpc")
        .header(header::TE, "trailers")
        .body(Full::new(frame(message)))
        .unwrap();
    let reply = send(&http2(), request).await;
    assert_eq!(reply.version, Version::HTTP_2);
    reply
}

/// A CORS preflight for a gRPC-Web POST to `path`, from `origin`.
async fn preflight(addr: SocketAddr, path: &str, origin: &str) -> Reply {
    let request = Request::builder()
        .method(Method::OPTIONS)
        .uri(format!("http://{addr}{path}"))
        .header(header::ORIGIN, origin)
        .header(header::ACCESS_CONTROL_REQUEST_METHOD, "POST")
        .header(
            header::ACCESS_CONTROL_REQUEST_HEADERS,
            "authorization,content-type,x-grpc-web,x-user-agent",
        )
        .body(Full::new(Bytes::new()))
        .unwrap();
    send(&http1(), request).await
}

/// A comma-separated header as a sorted list of lower-case items.
fn list(value: Option<&str>) -> Vec<String> {
    let mut items: Vec<String> = value
        .unwrap_or_default()
        .split(',')
        .map(|s| s.trim().to_ascii_lowercase())
        .filter(|s| !s.is_empty())
        .collect();
    items.sort();
    items
}

fn sorted(items: &[&str]) -> Vec<String> {
    let mut items: Vec<String> = items.iter().map(|s| s.to_string()).collect();
    items.sort();
    items
}

const REGISTER: &str = "/authd.v1.AuthService/Register";
const GET_JWKS: &str = "/authd.v1.AuthService/GetJwks";
const VALIDATE: &str = "/authd.v1.AuthService/Validate";

fn register_message(username: &str) -> Vec<u8> {
    pb::RegisterRequest {
        username: username.into(),
        password: PASSWORD.into(),
    }
    .encode_to_vec()
}

// ---- 1. the token API over gRPC-Web ------------------------------------------------------

/// Register, Issue, Validate, Refresh, Revoke and GetJwks with a typed tonic client over
/// gRPC-Web (HTTP/1.1); its tokens are the server's tokens, and its refusals are the ones a
/// native client gets, ErrorInfo reason included.
async fn the_whole_token_flow_works_over_grpc_web(b: Backend) {
    let Some((db, app)) = start(b).await else {
        return;
    };
    let mut web = web_auth(app.addr);

    let user_id = web
        .register(pb::RegisterRequest {
            username: "wendy".into(),
            password: PASSWORD.into(),
        })
        .await
        .unwrap()
        .into_inner()
        .user_id;
    uuid::Uuid::parse_str(&user_id).unwrap();
    assert_eq!(count_rows(&db, "users").await, 1);

    let pair = web
        .issue(pb::IssueRequest {
            username: "wendy".into(),
            password: PASSWORD.into(),
            audience: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    let claims = web
        .validate(pb::ValidateRequest {
            token: pair.access_token.clone(),
            audience: String::new(),
        })
        .await
        .unwrap()
        .into_inner()
        .claims
        .unwrap();
    assert_eq!(claims.username, "wendy");
    assert_eq!(claims.sub, user_id);
    // The same token, checked natively: one server, one set of tokens.
    assert_eq!(
        app.validate(&pair.access_token, "").await.unwrap().sub,
        user_id
    );

    let next = web
        .refresh(pb::RefreshRequest {
            refresh_token: pair.refresh_token.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_ne!(next.refresh_token, pair.refresh_token);
    assert_eq!(
        web.validate(pb::ValidateRequest {
            token: next.access_token.clone(),
            audience: String::new(),
        })
        .await
        .unwrap()
        .into_inner()
        .claims
        .unwrap()
        .username,
        "wendy"
    );

    web.revoke(pb::RevokeRequest {
        refresh_token: next.refresh_token.clone(),
    })
    .await
    .unwrap();
    let over_web = web
        .refresh(pb::RefreshRequest {
            refresh_token: next.refresh_token.clone(),
        })
        .await
        .map(|r| r.into_inner());
    let over_web = assert_refused(over_web, Code::Unauthenticated, "SESSION_REVOKED");
    let native = app.refresh(&next.refresh_token).await.unwrap_err();
    assert_eq!(
        (native.code(), reason(&native)),
        (over_web.code(), reason(&over_web))
    );
    assert_eq!(native.message(), over_web.message());

    let jwks = web
        .get_jwks(pb::GetJwksRequest {})
        .await
        .unwrap()
        .into_inner()
        .jwks_json;
    assert_eq!(jwks, app.jwks().await);
    serde_json::from_str::<serde_json::Value>(&jwks).unwrap();
    app.stop().await;
}

// ---- 2. bad input ---------------------------------------------------------------------------

/// Bytes that are not a RegisterRequest: field 1 (username) claims 5 bytes and has 1.
const NOT_PROTOBUF: &[u8] = &[0x0a, 0x05, b'a'];

/// A body that does not decode gets the same grpc-status over gRPC-Web as over native
/// gRPC (INTERNAL, the spec's code for a request that does not parse), and stores nothing;
/// a well-formed Register sent the same way does store its user.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_malformed_body_gets_the_native_status_over_grpc_web_and_stores_nothing() {
    let db = TestDb::new(Backend::Sqlite).await.unwrap();
    let app = spawn(settings(&db)).await;
    pb::RegisterRequest::decode(NOT_PROTOBUF).unwrap_err();

    let native = native_post(app.addr, REGISTER, NOT_PROTOBUF).await;
    let web = web_post(app.addr, REGISTER, None, NOT_PROTOBUF).await;
    assert_eq!(native.status, StatusCode::OK, "{native:?}");
    assert_eq!(web.status, StatusCode::OK, "{web:?}");
    let native_status = native.native_grpc_status();
    assert_eq!(native_status.as_deref(), Some("13"), "{native:?}");
    assert_eq!(web.web_grpc_status(), native_status, "{web:?}");
    assert_eq!(count_rows(&db, "users").await, 0);

    // Over the 64 KiB request limit: refused alike (the limit holds for gRPC-Web too).
    let huge = pb::RegisterRequest {
        username: "a".repeat(100 * 1024),
        password: PASSWORD.into(),
    }
    .encode_to_vec();
    let native = native_post(app.addr, REGISTER, &huge).await;
    let web = web_post(app.addr, REGISTER, None, &huge).await;
    let native_status = native.native_grpc_status();
    assert!(
        native_status.as_deref().is_some_and(|s| s != "0"),
        "{native:?}"
    );
    assert_eq!(web.web_grpc_status(), native_status, "{web:?}");
    assert_eq!(count_rows(&db, "users").await, 0);

    // The same path and framing with a real message: the zero above is the garbage's.
    let ok = web_post(app.addr, REGISTER, None, &register_message("wendy")).await;
    assert_eq!(ok.web_grpc_status().as_deref(), Some("0"), "{ok:?}");
    assert_eq!(count_rows(&db, "users").await, 1);
    app.stop().await;
}

/// Validate with an empty token: the same code, reason and message over gRPC-Web as over
/// native gRPC.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_empty_token_is_refused_alike_over_grpc_web_and_native() {
    let db = TestDb::new(Backend::Sqlite).await.unwrap();
    let app = spawn(settings(&db)).await;
    let empty = || pb::ValidateRequest {
        token: String::new(),
        audience: String::new(),
    };
    let web = web_auth(app.addr).validate(empty()).await.unwrap_err();
    let native = app.client.clone().validate(empty()).await.unwrap_err();
    assert_ne!(reason(&native), "", "{native:?}");
    assert_eq!(
        (web.code(), reason(&web), web.message()),
        (native.code(), reason(&native), native.message())
    );
    app.stop().await;
}

// ---- 3. CORS ----------------------------------------------------------------------------------

async fn spawn_allowing(db: &TestDb, origins: &[&str]) -> TestApp {
    let mut s = settings(db);
    s.cors_allowed_origins = origins.iter().map(|o| o.to_string()).collect();
    spawn(s).await
}

/// A preflight from an allowed origin gets exactly what a gRPC-Web page needs, and never
/// permission to send credentials; one from another origin gets 403 and no CORS header.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn preflight_is_answered_for_the_listed_origin_only() {
    let db = TestDb::new(Backend::Sqlite).await.unwrap();
    let app = spawn_allowing(&db, &["http://127.0.0.1:5173", APP]).await;

    let ok = preflight(app.addr, REGISTER, APP).await;
    assert!(ok.status.is_success(), "{ok:?}");
    assert_eq!(ok.header("access-control-allow-origin"), Some(APP));
    assert_eq!(list(ok.header("access-control-allow-methods")), ["post"]);
    assert_eq!(
        list(ok.header("access-control-allow-headers")),
        sorted(&[
            "content-type",
            "authorization",
            "x-grpc-web",
            "x-user-agent",
            "grpc-timeout"
        ])
    );
    assert_eq!(ok.header("access-control-max-age"), Some("7200"));
    assert_eq!(
        ok.header("access-control-allow-credentials"),
        None,
        "{ok:?}"
    );
    // The answer depends on the origin: a shared cache must not hand it to another.
    assert!(
        list(ok.header("vary")).contains(&"origin".to_owned()),
        "{ok:?}"
    );

    // The second listed origin is allowed as well, and answered with itself.
    let local = preflight(app.addr, REGISTER, "http://127.0.0.1:5173").await;
    assert!(local.status.is_success(), "{local:?}");
    assert_eq!(
        local.header("access-control-allow-origin"),
        Some("http://127.0.0.1:5173")
    );

    for origin in [
        OTHER,
        // Near misses of an allowed origin: another scheme, port, host or a suffix.
        "http://app.example.com",
        "https://app.example.com:8443",
        "https://app.example.com.evil.example",
        "https://evil-app.example.com",
        "null",
    ] {
        let refused = preflight(app.addr, REGISTER, origin).await;
        assert_eq!(
            refused.status,
            StatusCode::FORBIDDEN,
            "{origin}: {refused:?}"
        );
        assert_eq!(refused.cors_headers(), Vec::<String>::new(), "{origin}");
    }
    app.stop().await;
}

/// An actual call from another origin is refused with 403 and no CORS header before it
/// reaches authd (no user is created); the same call from the allowed origin goes through.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_from_another_origin_is_refused_before_it_runs() {
    let db = TestDb::new(Backend::Sqlite).await.unwrap();
    let app = spawn_allowing(&db, &[APP]).await;

    let refused = web_post(
        app.addr,
        REGISTER,
        Some(OTHER),
        &register_message("mallory"),
    )
    .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN, "{refused:?}");
    assert_eq!(refused.cors_headers(), Vec::<String>::new());
    assert_eq!(refused.web_grpc_status(), None, "{refused:?}");
    assert_eq!(count_rows(&db, "users").await, 0);
    assert_refused(
        app.issue("mallory", PASSWORD).await,
        Code::Unauthenticated,
        "INVALID_CREDENTIALS",
    );

    let allowed = web_post(app.addr, REGISTER, Some(APP), &register_message("wendy")).await;
    assert_eq!(allowed.status, StatusCode::OK, "{allowed:?}");
    assert_eq!(
        allowed.web_grpc_status().as_deref(),
        Some("0"),
        "{allowed:?}"
    );
    assert_eq!(count_rows(&db, "users").await, 1);
    app.issue("wendy", PASSWORD).await.unwrap();
    app.stop().await;
}

/// A call from the allowed origin carries the origin back and exposes the grpc-status
/// headers, so the page can read a success (status in the trailer frame) and a refusal
/// (trailers-only: status in the headers); never permission for credentials.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_allowed_origin_can_read_the_grpc_status() {
    let db = TestDb::new(Backend::Sqlite).await.unwrap();
    let app = spawn_allowing(&db, &[APP]).await;
    let exposed = sorted(&["grpc-status", "grpc-message", "grpc-status-details-bin"]);

    let jwks = web_post(app.addr, GET_JWKS, Some(APP), &[]).await;
    assert_eq!(jwks.status, StatusCode::OK, "{jwks:?}");
    assert_eq!(jwks.header("access-control-allow-origin"), Some(APP));
    assert_eq!(list(jwks.header("access-control-expose-headers")), exposed);
    assert_eq!(jwks.header("access-control-allow-credentials"), None);
    assert_eq!(jwks.web_grpc_status().as_deref(), Some("0"), "{jwks:?}");
    let reply = pb::GetJwksResponse::decode(jwks.web_message()).unwrap();
    assert_eq!(reply.jwks_json, app.jwks().await);

    let empty = pb::ValidateRequest {
        token: String::new(),
        audience: String::new(),
    }
    .encode_to_vec();
    let refused = web_post(app.addr, VALIDATE, Some(APP), &empty).await;
    assert_eq!(refused.status, StatusCode::OK, "{refused:?}");
    assert_eq!(refused.header("access-control-allow-origin"), Some(APP));
    assert_eq!(
        list(refused.header("access-control-expose-headers")),
        exposed
    );
    // Trailers-only: the status and its details are headers, readable because exposed.
    let code = refused.header("grpc-status").unwrap();
    assert_eq!(
        code,
        (Code::Unauthenticated as i32).to_string(),
        "{refused:?}"
    );
    assert!(
        refused.header("grpc-status-details-bin").is_some(),
        "{refused:?}"
    );
    app.stop().await;
}

/// With the default settings no browser origin is allowed, not even the server's own
/// address; a client that sends no Origin (curl, a proxy, tonic-web) is served.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn by_default_no_origin_is_allowed_and_no_origin_is_served() {
    let db = TestDb::new(Backend::Sqlite).await.unwrap();
    let s = settings(&db);
    assert!(
        s.cors_allowed_origins.is_empty(),
        "the default allows no origin"
    );
    let app = spawn(s).await;
    let own = format!("http://127.0.0.1:{}", app.addr.port());

    for origin in [own.as_str(), "http://localhost:5173", APP] {
        let pre = preflight(app.addr, GET_JWKS, origin).await;
        assert_eq!(pre.status, StatusCode::FORBIDDEN, "{origin}: {pre:?}");
        assert_eq!(pre.cors_headers(), Vec::<String>::new(), "{origin}");
        let call = web_post(app.addr, GET_JWKS, Some(origin), &[]).await;
        assert_eq!(call.status, StatusCode::FORBIDDEN, "{origin}: {call:?}");
        assert_eq!(call.cors_headers(), Vec::<String>::new(), "{origin}");
    }

    let plain = web_post(app.addr, GET_JWKS, None, &[]).await;
    assert_eq!(plain.status, StatusCode::OK, "{plain:?}");
    assert_eq!(plain.web_grpc_status().as_deref(), Some("0"), "{plain:?}");
    assert_eq!(plain.cors_headers(), Vec::<String>::new());
    let reply = pb::GetJwksResponse::decode(plain.web_message()).unwrap();
    assert_eq!(reply.jwks_json, app.jwks().await);

    // The text encoding too (`curl --data AAAAAAA=`: an empty message, base64).
    let request = Request::builder()
        .method(Method::POST)
        .uri(format!("http://{}{GET_JWKS}", app.addr))
        .header(header::CONTENT_TYPE, "application/grpc-web-text")
        .header(header::ACCEPT, "application/grpc-web-text")
        .body(Full::new(Bytes::from_static(b"AAAAAAA=")))
        .unwrap();
    let mut text = send(&http1(), request).await;
    assert_eq!(text.status, StatusCode::OK, "{text:?}");
    assert!(
        text.header("content-type")
            .is_some_and(|ct| ct.starts_with("application/grpc-web-text")),
        "{text:?}"
    );
    use base64::Engine;
    text.body = base64::engine::general_purpose::STANDARD
        .decode(&text.body)
        .unwrap()
        .into();
    assert_eq!(text.web_grpc_status().as_deref(), Some("0"), "{text:?}");
    let reply = pb::GetJwksResponse::decode(text.web_message()).unwrap();
    assert_eq!(reply.jwks_json, app.jwks().await);
    app.stop().await;
}

// ---- 4. admin API and reflection --------------------------------------------------------------

const LIST_USERS: &str = "/authd.v1.AdminService/ListUsers";
const REFLECTION: [&str; 2] = [
    "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
    "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
];
/// A ServerReflectionRequest asking for the list of services (field 7, empty string).
const LIST_SERVICES: &[u8] = &[0x3a, 0x00];

/// A trailers-only UNIMPLEMENTED in gRPC-Web form, from authd (not the router's fallback
/// for an unknown path, which would not say gRPC-Web).
#[track_caller]
fn assert_web_unimplemented(reply: &Reply) {
    assert_eq!(reply.status, StatusCode::OK, "{reply:?}");
    assert_eq!(reply.header("grpc-status"), Some("12"), "{reply:?}");
    assert!(
        reply
            .header("content-type")
            .is_some_and(|ct| ct.starts_with("application/grpc-web")),
        "{reply:?}"
    );
    assert!(reply.body.is_empty(), "{reply:?}");
    assert!(
        reply
            .header("grpc-message")
            .is_some_and(|m| m.contains("gRPC-Web")),
        "{reply:?}"
    );
}

/// Whether a reflection answer lists authd's service.
fn lists_auth_service(body: &[u8]) -> bool {
    body.windows(b"authd.v1.AuthService".len())
        .any(|w| w == b"authd.v1.AuthService")
}

/// By default the admin API and reflection answer gRPC-Web with UNIMPLEMENTED, while native
/// gRPC still reaches them; health stays on gRPC-Web.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_and_reflection_are_off_grpc_web_by_default() {
    let db = TestDb::new(Backend::Sqlite).await.unwrap();
    let app = spawn(settings(&db)).await;
    let list = authd::proto::ListUsersRequest {
        page_size: 0,
        page_token: String::new(),
    };

    assert_web_unimplemented(&web_post(app.addr, LIST_USERS, None, &list.encode_to_vec()).await);
    let typed = web_admin(app.addr).list_users(list.clone()).await;
    assert_eq!(typed.unwrap_err().code(), Code::Unimplemented);
    // Natively the admin API is served: it asks for a token.
    assert_refused(
        app.admin_client().await.list_users(list).await,
        Code::Unauthenticated,
        "TOKEN_MISSING",
    );

    for path in REFLECTION {
        assert_web_unimplemented(&web_post(app.addr, path, None, LIST_SERVICES).await);
        let native = native_post(app.addr, path, LIST_SERVICES).await;
        assert_eq!(
            native.native_grpc_status().as_deref(),
            Some("0"),
            "{native:?}"
        );
        assert!(lists_auth_service(&native.body), "{path}: {native:?}");
    }

    // Health is always on gRPC-Web.
    let mut health = tonic_health::pb::health_client::HealthClient::with_origin(
        web_channel(),
        web_origin(app.addr),
    );
    let status = health
        .check(tonic_health::pb::HealthCheckRequest {
            service: "authd.v1.AuthService".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .status();
    assert_eq!(
        status,
        tonic_health::pb::health_check_response::ServingStatus::Serving
    );
    app.stop().await;
}

/// `grpc_web_admin = true`: an admin's token works over gRPC-Web, and the gate refuses a
/// call without one there as natively; reflection stays off (a setting of its own).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admin_api_is_on_grpc_web_when_the_setting_says_so() {
    let (_db, app, admin) = start_admin(Backend::Sqlite, |s| s.grpc_web_admin = true)
        .await
        .unwrap();
    let mut web = web_admin(app.addr);
    let user = web
        .get_user(admin.req(by_name(ADMIN)))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(user.username, ADMIN);
    let created = web
        .create_user(admin.req(authd::proto::CreateUserRequest {
            username: "walter".into(),
            password: PASSWORD.into(),
            roles: vec![],
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        admin.get_user(by_name("walter")).await.unwrap().user_id,
        created.user_id
    );

    let over_web = web.get_user(by_name(ADMIN)).await;
    let over_web = assert_refused(over_web, Code::Unauthenticated, "TOKEN_MISSING");
    let native = admin.api().get_user(by_name(ADMIN)).await.unwrap_err();
    assert_eq!(native.message(), over_web.message());

    for path in REFLECTION {
        assert_web_unimplemented(&web_post(app.addr, path, None, LIST_SERVICES).await);
    }
    app.stop().await;
}

/// `grpc_web_reflection = true`: reflection answers over gRPC-Web; the admin API stays off.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reflection_is_on_grpc_web_when_the_setting_says_so() {
    let db = TestDb::new(Backend::Sqlite).await.unwrap();
    let mut s = settings(&db);
    s.grpc_web_reflection = true;
    let app = spawn(s).await;
    for path in REFLECTION {
        let reply = web_post(app.addr, path, None, LIST_SERVICES).await;
        assert_eq!(
            reply.web_grpc_status().as_deref(),
            Some("0"),
            "{path}: {reply:?}"
        );
        assert!(lists_auth_service(&reply.body), "{path}: {reply:?}");
    }
    let list = authd::proto::ListUsersRequest {
        page_size: 0,
        page_token: String::new(),
    };
    assert_web_unimplemented(&web_post(app.addr, LIST_USERS, None, &list.encode_to_vec()).await);
    app.stop().await;
}

// ---- 5. settings ------------------------------------------------------------------------------

const BAD_ORIGINS: [&str; 3] = ["*", "https://app.example.com/", "app.example.com"];

/// An origin a browser never sends stops start-up, naming the setting.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_inexact_origin_stops_start_up_naming_the_setting() {
    let db = TestDb::new(Backend::Sqlite).await.unwrap();
    for bad in BAD_ORIGINS {
        let mut s = settings(&db);
        // A good origin beside it does not save it.
        s.cors_allowed_origins = vec![APP.to_owned(), bad.to_owned()];
        match authd::server::Application::build(s).await {
            Ok(_) => panic!("{bad:?}: started"),
            Err(e) => {
                let e = e.to_string();
                assert!(e.contains("AUTHD_CORS_ALLOWED_ORIGINS"), "{bad:?}: {e}");
                assert!(e.contains(bad), "{bad:?}: {e}");
            }
        }
    }
}

/// The same through the environment of the real binary: a bad value ends `authd serve`
/// with an error naming AUTHD_CORS_ALLOWED_ORIGINS; a good comma-separated list serves each
/// origin on it and no other.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_origins_setting_is_read_from_the_environment() {
    let db = TestDb::new(Backend::Sqlite).await.unwrap();
    for bad in BAD_ORIGINS {
        let run = tokio::process::Command::new(AUTHD_BIN)
            .arg("serve")
            .env_clear()
            .env("AUTHD_LISTEN", "127.0.0.1:0")
            .env("AUTHD_DATABASE_URL", &db.url)
            .env("AUTHD_JWT_SECRET", SECRET)
            .env("AUTHD_CORS_ALLOWED_ORIGINS", bad)
            .kill_on_drop(true)
            .output();
        let out = tokio::time::timeout(std::time::Duration::from_secs(30), run)
            .await
            .unwrap_or_else(|_| panic!("{bad:?}: authd kept running"))
            .unwrap();
        let said = String::from_utf8_lossy(&out.stdout).into_owned()
            + &*String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{bad:?}: {said}");
        assert!(
            said.contains("AUTHD_CORS_ALLOWED_ORIGINS"),
            "{bad:?}: {said}"
        );
    }

    let server = ServerProcess::start(&[
        ("AUTHD_DATABASE_URL", &db.url),
        ("AUTHD_JWT_SECRET", SECRET),
        (
            "AUTHD_CORS_ALLOWED_ORIGINS",
            "https://app.example.com,http://127.0.0.1:5173",
        ),
    ])
    .await;
    for origin in [APP, "http://127.0.0.1:5173"] {
        let ok = preflight(server.addr, GET_JWKS, origin).await;
        assert!(ok.status.is_success(), "{origin}: {ok:?}");
        assert_eq!(ok.header("access-control-allow-origin"), Some(origin));
    }
    let refused = preflight(server.addr, GET_JWKS, OTHER).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN, "{refused:?}");
    let (status, log) = server.terminate().await;
    assert!(status.success(), "{log}");
}
