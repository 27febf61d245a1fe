//! Browser callers: CORS for gRPC-Web requests that carry an access token in a header.
//!
//! [`BrowserAccess`] answers a CORS preflight only for an origin on its list, lets such an
//! origin read the gRPC-Web status headers, and never allows credentials: the token travels
//! in `authorization`, never in a cookie, so there is nothing for another site to ride on.
//! A request from any other origin is refused with `403` and carries no CORS header at all;
//! a request without an `Origin` (native gRPC, curl) passes untouched.
//!
//! ```
//! use authd_client::web::BrowserAccess;
//! use tower_layer::Layer;
//!
//! let origins = ["https://app.example.com".to_owned()];
//! let access = BrowserAccess::new(&origins)?;
//! // Server::builder().accept_http1(true).layer(access).layer(tonic_web::GrpcWebLayer::new())
//! # let _ = access;
//! # Ok::<(), authd_client::web::OriginError>(())
//! ```
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use futures_util::future::{Either, Ready, ready};
use http::{HeaderName, HeaderValue, Method, Request, Response, StatusCode, header};
use tower_http::cors::{AllowOrigin, Cors, CorsLayer};
use tower_layer::Layer;
use tower_service::Service;

/// Request headers a gRPC-Web client sends besides the CORS-safelisted ones.
pub const REQUEST_HEADERS: [&str; 5] = [
    "content-type",
    "authorization",
    "x-grpc-web",
    "x-user-agent",
    "grpc-timeout",
];

/// Response headers a gRPC-Web client must read: the status of a trailers-only reply comes
/// in the headers, and the browser hides any header not listed here.
pub const EXPOSED_HEADERS: [&str; 3] = ["grpc-status", "grpc-message", "grpc-status-details-bin"];

/// How long a browser may cache a preflight answer (Chromium caps it at 2 h).
pub const PREFLIGHT_MAX_AGE: Duration = Duration::from_secs(2 * 60 * 60);

/// An origin that a browser never sends, so it could never match.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{origin:?} is not an origin: {reason}")]
pub struct OriginError {
    /// The setting's value as given.
    pub origin: String,
    /// What is wrong with it.
    pub reason: &'static str,
}

/// Check that `s` is an origin exactly as a browser sends it: `http` or `https`, a host, an
/// optional port, nothing else (no path, no trailing `/`, no `*`).
pub fn parse_origin(s: &str) -> Result<HeaderValue, OriginError> {
    let refuse = |reason| OriginError {
        origin: s.to_owned(),
        reason,
    };
    let rest = s
        .strip_prefix("https://")
        .or_else(|| s.strip_prefix("http://"))
        .ok_or_else(|| refuse("it must start with http:// or https://"))?;
    if rest.is_empty() {
        return Err(refuse("it has no host"));
    }
    if rest.contains('/') {
        return Err(refuse(
            "a browser sends no path and no trailing slash: give scheme://host[:port]",
        ));
    }
    if rest.contains(['*', '@', '?', '#']) || rest.chars().any(|c| c.is_ascii_whitespace()) {
        return Err(refuse(
            "exact origins only: no wildcard, user, query or spaces",
        ));
    }
    if rest.chars().any(|c| c.is_ascii_uppercase()) {
        return Err(refuse("a browser sends the host in lower case"));
    }
    let uri: http::Uri = s
        .parse()
        .map_err(|_| refuse("it does not parse as a URL"))?;
    let default_port = if s.starts_with("https://") { 443 } else { 80 };
    if uri.port_u16() == Some(default_port) {
        return Err(refuse("a browser leaves out the default port: drop it"));
    }
    HeaderValue::from_str(s).map_err(|_| refuse("it is not a valid header value"))
}

/// A tower layer: CORS for the listed origins, `403` for every other origin.
#[derive(Clone, Debug)]
pub struct BrowserAccess {
    origins: Arc<[HeaderValue]>,
    cors: CorsLayer,
}

impl BrowserAccess {
    /// Allow browsers on `origins` (exact, as [`parse_origin`] checks, surrounding spaces
    /// ignored). An empty list lets no browser in.
    pub fn new(origins: &[String]) -> Result<Self, OriginError> {
        let origins: Arc<[HeaderValue]> = origins
            .iter()
            .map(|o| o.trim())
            .filter(|o| !o.is_empty())
            .map(parse_origin)
            .collect::<Result<_, _>>()?;
        let cors = CorsLayer::new()
            .allow_origin(AllowOrigin::list(origins.iter().cloned()))
            .allow_methods([Method::POST])
            .allow_headers(REQUEST_HEADERS.map(HeaderName::from_static))
            .expose_headers(EXPOSED_HEADERS.map(HeaderName::from_static))
            .max_age(PREFLIGHT_MAX_AGE);
        Ok(Self { origins, cors })
    }

    /// Whether any browser origin is allowed.
    pub fn allows_any(&self) -> bool {
        !self.origins.is_empty()
    }
}

impl<S> Layer<S> for BrowserAccess {
    type Service = BrowserAccessService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        BrowserAccessService {
            origins: self.origins.clone(),
            cors: self.cors.layer(inner),
        }
    }
}

/// The service [`BrowserAccess`] wraps around another.
#[derive(Clone, Debug)]
pub struct BrowserAccessService<S> {
    origins: Arc<[HeaderValue]>,
    cors: Cors<S>,
}

type Refusal<T, E> = Ready<Result<T, E>>;

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for BrowserAccessService<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
    ResBody: Default,
{
    type Response = Response<ResBody>;
    type Error = S::Error;
    type Future = Either<
        <Cors<S> as Service<Request<ReqBody>>>::Future,
        Either<S::Future, Refusal<Self::Response, S::Error>>,
    >;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.cors.poll_ready(cx)
    }

    fn call(&mut self, req: Request<ReqBody>) -> Self::Future {
        match req.headers().get(header::ORIGIN) {
            // Not a browser (or a same-origin GET, which gRPC never is).
            None => Either::Right(Either::Left(self.cors.get_mut().call(req))),
            Some(origin) if self.origins.contains(origin) => Either::Left(self.cors.call(req)),
            // Neither a preflight nor the call itself gets any CORS header: the browser
            // refuses the call, and the service never sees it.
            Some(_) => {
                let mut refused = Response::new(ResBody::default());
                *refused.status_mut() = StatusCode::FORBIDDEN;
                Either::Right(Either::Right(ready(Ok(refused))))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_must_be_exact() {
        for good in [
            "http://127.0.0.1:5173",
            "https://app.example.com",
            "http://localhost:8080",
            "https://[::1]:8443",
        ] {
            assert!(parse_origin(good).is_ok(), "{good}");
        }
        for (bad, why) in [
            ("*", "http"),
            ("app.example.com", "http"),
            ("ftp://x", "http"),
            ("https://", "no host"),
            ("https://app.example.com/", "trailing slash"),
            ("https://app.example.com/login", "no path"),
            ("https://*.example.com", "wildcard"),
            ("https://App.example.com", "lower case"),
            ("https://app.example.com:443", "default port"),
            ("http://app.example.com:80", "default port"),
            ("https://user@app.example.com", "user"),
            ("null", "http"),
        ] {
            let e = parse_origin(bad).unwrap_err();
            assert!(e.to_string().contains(why), "{bad}: {e}");
        }
    }
}
