//! A service downstream of authd: `downstream.v1.Greeter` answers only callers with an authd
//! access token (a person's or a service account's), and greets them by the username in it;
//! `downstream.v1.Admin` answers only those whose token also grants a role
//! ([`Config::required_role`], default `downstream:admin`).
//!
//! The token is checked by `authd-client`, in one of three ways ([`Guard`]): the tonic
//! interceptor (local, synchronous), the tower layer (local, waits for a JWKS refetch when
//! authd has rotated its key), or the layer asking authd's `Validate` on every call (sees
//! revoked sessions at once). The role is checked in [`Admin`]'s handler with
//! `authd_client::require_role`, the same whichever guard is in front. Health and
//! reflection stay outside the guard.
//!
//! Every service is served over gRPC-Web as well as native gRPC, so a browser page can call
//! it; CORS lets in only the pages of [`Config::cors_allowed_origins`].
//!
//! [`serve`] takes a bound listener and a shutdown future, so a test can start it on
//! 127.0.0.1:0 next to a real authd:
//!
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
//! let addr = listener.local_addr()?;
//! let config = downstream::Config::with_authd("http://127.0.0.1:50051");
//! let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
//! let server = tokio::spawn(downstream::serve(listener, config, async {
//!     let _ = stopped.await;
//! }));
//! // ... call http://{addr} with `authorization: Bearer <token from authd's Issue>` ...
//! # let _ = addr;
//! let _ = stop.send(());
//! server.await??;
//! # Ok(())
//! # }
//! ```

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use authd_client::web::BrowserAccess;
use authd_client::{
    AuthInterceptor, AuthLayer, Claims, ConnectError, JwksOptions, KeySource, KeySourceError,
    TlsOptions, TlsPart, Verifier, VerifyError,
};
use secrecy::{ExposeSecret, SecretString};
use tokio::net::TcpListener;
use tonic::transport::server::TcpIncoming;
use tonic::transport::{Channel, Server};
use tonic::{Request, Response, Status};
use tonic_web::GrpcWebLayer;
use tower_layer::Layer as _;

use crate::proto::admin_server::{self, AdminServer};
use crate::proto::greeter_server::{Greeter, GreeterServer};
use crate::proto::{HelloReply, HelloRequest, ReportReply, ReportRequest};

/// Generated from `proto/downstream/v1/hello.proto`: messages, `GreeterServer`,
/// `GreeterClient`, `AdminServer` and `AdminClient`.
pub mod proto {
    #![allow(clippy::all, clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    tonic::include_proto!("downstream.v1");

    /// Descriptor set served by gRPC reflection.
    pub const FILE_DESCRIPTOR_SET: &[u8] =
        include_bytes!(concat!(env!("OUT_DIR"), "/downstream_descriptor.bin"));
}

/// Default listen address (`DOWNSTREAM_LISTEN`).
pub const DEFAULT_LISTEN: &str = "127.0.0.1:50061";

/// Default role [`Admin`] requires (`DOWNSTREAM_REQUIRED_ROLE`).
pub const DEFAULT_REQUIRED_ROLE: &str = "downstream:admin";

/// Where the keys that verify tokens come from.
#[derive(Debug, Clone)]
pub enum Keys {
    /// authd's HS256 shared secret (`AUTHD_JWT_SECRET`).
    SharedSecret(SecretString),
    /// authd itself (`AUTHD_URL`): its `GetJwks`, or its `Validate` with [`Guard::Validate`].
    /// With `tls` (`AUTHD_TLS_CA`, and `AUTHD_TLS_CLIENT_CERT` / `AUTHD_TLS_CLIENT_KEY` for
    /// mutual TLS) the URL is `https://`.
    Authd {
        url: String,
        tls: Option<TlsOptions>,
    },
}

/// How a call's token is checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Guard {
    /// `AuthInterceptor`: local and synchronous (the default).
    Interceptor,
    /// `AuthLayer::local`: local; on an unknown key id it waits for a JWKS refetch.
    Layer,
    /// `AuthLayer::validate_with_authd`: asks authd on every call.
    Validate,
}

/// Everything the service is configured with.
#[derive(Debug, Clone)]
pub struct Config {
    /// Only `main` binds it; [`serve`] takes a listener.
    pub listen: SocketAddr,
    pub keys: Keys,
    pub guard: Guard,
    /// The issuer tokens must name (`AUTHD_ISSUER`, default `authd`).
    pub issuer: String,
    /// The audience tokens must be for (`AUTHD_AUDIENCE`, default `authd`).
    pub audience: String,
    /// The floor between JWKS refetches prompted by unknown key ids.
    pub jwks_min_refetch: Duration,
    /// How often the JWKS is refreshed in the background.
    pub jwks_refresh: Duration,
    /// The role a token must grant to call `downstream.v1.Admin`
    /// (`DOWNSTREAM_REQUIRED_ROLE`, default [`DEFAULT_REQUIRED_ROLE`]); exact and
    /// case-sensitive.
    pub required_role: String,
    /// Browser origins whose pages may call this service over gRPC-Web
    /// (`DOWNSTREAM_CORS_ALLOWED_ORIGINS`, exact and comma-separated; default none).
    pub cors_allowed_origins: Vec<String>,
}

/// A setting that cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("{setting}: {reason}")]
pub struct ConfigError {
    pub setting: &'static str,
    pub reason: String,
}

/// Why the service could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("cannot use the shared secret: {0}")]
    Secret(VerifyError),
    #[error("cannot get authd's keys: {0}")]
    Keys(#[from] KeySourceError),
    #[error("gRPC server failed: {0}")]
    Transport(#[from] tonic::transport::Error),
    #[error("cannot build the reflection service: {0}")]
    Reflection(String),
}

impl Config {
    fn defaults(keys: Keys) -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 50061)),
            keys,
            guard: Guard::Interceptor,
            issuer: "authd".into(),
            audience: "authd".into(),
            jwks_min_refetch: Duration::from_secs(10),
            jwks_refresh: Duration::from_secs(300),
            required_role: DEFAULT_REQUIRED_ROLE.into(),
            cors_allowed_origins: Vec::new(),
        }
    }

    /// Verify with authd's HS256 shared secret, through the interceptor.
    pub fn with_shared_secret(secret: impl Into<String>) -> Self {
        Self::defaults(Keys::SharedSecret(SecretString::from(secret.into())))
    }

    /// Verify with authd's published keys (`GetJwks` at `url`), through the interceptor.
    pub fn with_authd(url: impl Into<String>) -> Self {
        Self::defaults(Keys::Authd {
            url: url.into(),
            tls: None,
        })
    }

    /// [`Config::with_authd`] over TLS: `url` is `https://`, `tls` holds the CA that signed
    /// authd's certificate (and a client certificate if authd requires one).
    pub fn with_authd_tls(url: impl Into<String>, tls: TlsOptions) -> Self {
        Self::defaults(Keys::Authd {
            url: url.into(),
            tls: Some(tls),
        })
    }

    /// Read the settings from the environment (see [`Config::from_vars`]).
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_vars(|name| std::env::var(name).ok())
    }

    /// Read the settings through `var`:
    /// - `DOWNSTREAM_LISTEN` (default 127.0.0.1:50061);
    /// - exactly one of `AUTHD_JWT_SECRET` and `AUTHD_URL` (`http://host:port`, or
    ///   `https://host:port` with `AUTHD_TLS_CA`);
    /// - `AUTHD_TLS_CA`: the CA certificate (PEM file) that signed authd's certificate, for
    ///   TLS to `AUTHD_URL`; `AUTHD_TLS_CLIENT_CERT` and `AUTHD_TLS_CLIENT_KEY` (PEM files,
    ///   both or neither): the client certificate presented to an authd that requires one
    ///   (its `AUTHD_TLS_CLIENT_CA`). The files are read here: an unreadable one, or a URL
    ///   whose scheme does not match, is an error naming the setting;
    /// - `AUTHD_ISSUER` and `AUTHD_AUDIENCE` (default `authd`);
    /// - `DOWNSTREAM_GUARD` (`interceptor`, `layer` or `validate`; default `interceptor`);
    /// - `DOWNSTREAM_REQUIRED_ROLE`: the role `downstream.v1.Admin` requires (default
    ///   `downstream:admin`);
    /// - `DOWNSTREAM_CORS_ALLOWED_ORIGINS`: browser origins (exact, comma-separated) whose
    ///   pages may call over gRPC-Web; none by default.
    pub fn from_vars(var: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let var = |name: &str| var(name).filter(|v| !v.trim().is_empty());
        let tls = tls_from_vars(&var)?;
        let keys = match (var("AUTHD_JWT_SECRET"), var("AUTHD_URL")) {
            (Some(_), None) if tls.is_some() => {
                return Err(ConfigError {
                    setting: "AUTHD_TLS_CA",
                    reason: "TLS is for talking to authd: it needs AUTHD_URL, not \
                             AUTHD_JWT_SECRET"
                        .into(),
                });
            }
            (Some(secret), None) => Keys::SharedSecret(SecretString::from(secret)),
            (None, Some(url)) => {
                // The same checks as at start, now: the scheme must match the TLS settings
                // and the certificates must be usable.
                authd_client::authd_endpoint(&url, tls.as_ref())
                    .map_err(|e| connect_config_error(e, tls.as_ref()))?;
                Keys::Authd { url, tls }
            }
            (Some(_), Some(_)) => {
                return Err(ConfigError {
                    setting: "AUTHD_JWT_SECRET / AUTHD_URL",
                    reason: "set one, not both".into(),
                });
            }
            (None, None) => {
                return Err(ConfigError {
                    setting: "AUTHD_JWT_SECRET / AUTHD_URL",
                    reason: "set authd's shared secret, or authd's URL to fetch its keys".into(),
                });
            }
        };
        let mut config = Self::defaults(keys);
        let listen = var("DOWNSTREAM_LISTEN").unwrap_or_else(|| DEFAULT_LISTEN.into());
        config.listen = listen.parse().map_err(|e| ConfigError {
            setting: "DOWNSTREAM_LISTEN",
            reason: format!("{listen:?} is not an address: {e}"),
        })?;
        if let Some(issuer) = var("AUTHD_ISSUER") {
            config.issuer = issuer;
        }
        if let Some(audience) = var("AUTHD_AUDIENCE") {
            config.audience = audience;
        }
        if let Some(role) = var("DOWNSTREAM_REQUIRED_ROLE") {
            config.required_role = role;
        }
        if let Some(origins) = var("DOWNSTREAM_CORS_ALLOWED_ORIGINS") {
            config.cors_allowed_origins = origins.split(',').map(str::to_owned).collect();
        }
        if let Some(guard) = var("DOWNSTREAM_GUARD") {
            config.guard = match guard.as_str() {
                "interceptor" => Guard::Interceptor,
                "layer" => Guard::Layer,
                "validate" => Guard::Validate,
                other => {
                    return Err(ConfigError {
                        setting: "DOWNSTREAM_GUARD",
                        reason: format!("{other:?}: expected interceptor, layer or validate"),
                    });
                }
            };
        }
        config.check()?;
        Ok(config)
    }

    fn browser_access(&self) -> Result<BrowserAccess, ConfigError> {
        BrowserAccess::new(&self.cors_allowed_origins).map_err(|e| ConfigError {
            setting: "DOWNSTREAM_CORS_ALLOWED_ORIGINS",
            reason: e.to_string(),
        })
    }

    fn check(&self) -> Result<(), ConfigError> {
        self.browser_access()?;
        if self.guard == Guard::Validate && !matches!(self.keys, Keys::Authd { .. }) {
            return Err(ConfigError {
                setting: "DOWNSTREAM_GUARD",
                reason: "validate asks authd: it needs AUTHD_URL".into(),
            });
        }
        Ok(())
    }
}

/// The Greeter: the guard in front of it has put the caller's [`Claims`] in the request.
/// Any valid token will do, a person's or a service account's.
#[derive(Debug, Default, Clone)]
pub struct Hello;

#[tonic::async_trait]
impl Greeter for Hello {
    async fn hello(&self, request: Request<HelloRequest>) -> Result<Response<HelloReply>, Status> {
        // Without a guard there would be no claims: refuse rather than greet nobody.
        let caller = request
            .extensions()
            .get::<Claims>()
            .cloned()
            .ok_or_else(|| Status::unauthenticated("no verified caller"))?;
        let name = caller_name(&caller).to_owned();
        let topic = request.into_inner().topic;
        let message = match topic.trim() {
            "" => format!("Hello, {name}!"),
            topic => format!("Hello, {name}! Let's talk about {topic}."),
        };
        Ok(Response::new(HelloReply {
            message,
            username: name,
            user_id: caller.sub,
        }))
    }
}

/// The caller's name: the username, or for a service account's token without one, its
/// client id.
fn caller_name(caller: &Claims) -> &str {
    match (caller.username.as_str(), &caller.client_id) {
        ("", Some(client_id)) => client_id,
        (username, _) => username,
    }
}

/// The Admin service: every call needs a token that grants the role it was made with
/// ([`Config::required_role`]), checked in the handler, so it holds behind any guard.
#[derive(Debug, Clone)]
pub struct Admin {
    required_role: String,
}

impl Admin {
    /// Admin for callers whose token grants `required_role`.
    pub fn new(required_role: impl Into<String>) -> Self {
        Self {
            required_role: required_role.into(),
        }
    }
}

#[tonic::async_trait]
impl admin_server::Admin for Admin {
    async fn report(
        &self,
        request: Request<ReportRequest>,
    ) -> Result<Response<ReportReply>, Status> {
        // PERMISSION_DENIED (ROLE_REQUIRED) without the role; UNAUTHENTICATED without claims.
        let caller = authd_client::require_role(&request, &self.required_role)?;
        Ok(Response::new(ReportReply {
            username: caller_name(caller).to_owned(),
            user_id: caller.sub.clone(),
            roles: caller.roles.clone(),
            client_id: caller.client_id.clone().unwrap_or_default(),
        }))
    }
}

/// The TLS settings for authd: `AUTHD_TLS_CA`, and the client certificate and key (both or
/// neither) that need it. Their files are read here.
fn tls_from_vars(var: &impl Fn(&str) -> Option<String>) -> Result<Option<TlsOptions>, ConfigError> {
    let identity = match (var("AUTHD_TLS_CLIENT_CERT"), var("AUTHD_TLS_CLIENT_KEY")) {
        (Some(cert), Some(key)) => Some((PathBuf::from(cert), PathBuf::from(key))),
        (None, None) => None,
        (Some(_), None) => {
            return Err(ConfigError {
                setting: "AUTHD_TLS_CLIENT_KEY",
                reason: "AUTHD_TLS_CLIENT_CERT is set: give its private key too".into(),
            });
        }
        (None, Some(_)) => {
            return Err(ConfigError {
                setting: "AUTHD_TLS_CLIENT_CERT",
                reason: "AUTHD_TLS_CLIENT_KEY is set: give its certificate too".into(),
            });
        }
    };
    let Some(ca) = var("AUTHD_TLS_CA").map(PathBuf::from) else {
        if identity.is_some() {
            return Err(ConfigError {
                setting: "AUTHD_TLS_CA",
                reason: "a client certificate is for TLS: give the CA certificate that signed \
                         authd's certificate too"
                    .into(),
            });
        }
        return Ok(None);
    };
    let identity = identity.as_ref().map(|(c, k)| (c.as_path(), k.as_path()));
    TlsOptions::from_files(&ca, identity)
        .map(Some)
        .map_err(|e| ConfigError {
            setting: tls_setting(e.part),
            reason: format!("{}: {}", e.path.display(), e.source),
        })
}

fn tls_setting(part: TlsPart) -> &'static str {
    match part {
        TlsPart::CaCert => "AUTHD_TLS_CA",
        TlsPart::ClientCert => "AUTHD_TLS_CLIENT_CERT",
        TlsPart::ClientKey => "AUTHD_TLS_CLIENT_KEY",
    }
}

/// Which setting a refused URL or TLS combination is about.
fn connect_config_error(e: ConnectError, tls: Option<&TlsOptions>) -> ConfigError {
    let setting = match &e {
        ConnectError::HttpsWithoutTls { .. } => "AUTHD_TLS_CA",
        ConnectError::NotPem { part } => tls_setting(*part),
        ConnectError::Tls(_) if tls.is_some_and(TlsOptions::has_identity) => {
            "AUTHD_TLS_CLIENT_CERT / AUTHD_TLS_CLIENT_KEY"
        }
        ConnectError::Tls(_) => "AUTHD_TLS_CA",
        // BadUrl, TlsWithoutHttps, and whatever a later authd-client adds.
        _ => "AUTHD_URL",
    };
    ConfigError {
        setting,
        reason: e.to_string(),
    }
}

fn authd_channel(url: &str, tls: Option<&TlsOptions>) -> Result<Channel, ConfigError> {
    authd_client::authd_channel(url, tls).map_err(|e| connect_config_error(e, tls))
}

/// Serve Greeter and Admin (guarded), health and reflection on `listener` until `shutdown`
/// completes; then finish in-flight calls and return.
///
/// With [`Keys::Authd`] and a local guard, authd's JWKS is fetched before serving (an
/// error if authd cannot be reached) and refreshed in the background.
pub async fn serve(
    listener: TcpListener,
    config: Config,
    shutdown: impl Future<Output = ()>,
) -> Result<(), ServeError> {
    config.check()?;
    let (reporter, health) = tonic_health::server::health_reporter();
    reporter.set_serving::<GreeterServer<Hello>>().await;
    reporter.set_serving::<AdminServer<Admin>>().await;
    let admin = Admin::new(&config.required_role);
    let reflection = || {
        tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(proto::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_types::pb::FILE_DESCRIPTOR_SET)
    };
    let reflection_v1 = reflection()
        .build_v1()
        .map_err(|e| ServeError::Reflection(e.to_string()))?;
    // grpcurl 1.8 speaks only v1alpha.
    let reflection_v1alpha = reflection()
        .build_v1alpha()
        .map_err(|e| ServeError::Reflection(e.to_string()))?;
    // Health and reflection are added as they are: only Greeter and Admin are behind the
    // guard. Browsers call over gRPC-Web (HTTP/1.1), from the allowed origins only.
    let router = Server::builder()
        .accept_http1(true)
        .layer(config.browser_access()?)
        .layer(GrpcWebLayer::new())
        .add_service(health)
        .add_service(reflection_v1)
        .add_service(reflection_v1alpha);
    let incoming = TcpIncoming::from(listener).with_nodelay(Some(true));

    let (keys, _refresh) = match (&config.keys, config.guard) {
        (Keys::Authd { url, tls }, Guard::Validate) => {
            let channel = authd_channel(url, tls.as_ref())?;
            let layer = AuthLayer::validate_with_authd(channel, &config.audience);
            tracing::info!(authd = %url, "checking every call with authd's Validate");
            return Ok(router
                .add_service(layer.layer(GreeterServer::new(Hello)))
                .add_service(layer.layer(AdminServer::new(admin)))
                .serve_with_incoming_shutdown(incoming, shutdown)
                .await?);
        }
        (Keys::SharedSecret(secret), _) => {
            let verifier = Verifier::hs256(
                secret.expose_secret().as_bytes(),
                &config.issuer,
                &config.audience,
            )
            .map_err(ServeError::Secret)?;
            (KeySource::fixed(verifier), None)
        }
        (Keys::Authd { url, tls }, _) => {
            let mut options = JwksOptions::new(&config.issuer, &config.audience);
            options.min_refetch_interval = config.jwks_min_refetch;
            options.refresh_interval = config.jwks_refresh;
            let keys = KeySource::connect_jwks(authd_channel(url, tls.as_ref())?, options).await?;
            tracing::info!(authd = %url, keys = keys.verifier().keys().len(), "fetched authd's keys");
            let refresh = keys.spawn_refresh();
            (keys, Some(refresh))
        }
    };
    let served = match config.guard {
        Guard::Interceptor => {
            let interceptor = AuthInterceptor::new(keys);
            router
                .add_service(GreeterServer::with_interceptor(Hello, interceptor.clone()))
                .add_service(AdminServer::with_interceptor(admin, interceptor))
                .serve_with_incoming_shutdown(incoming, shutdown)
                .await
        }
        Guard::Layer | Guard::Validate => {
            let layer = AuthLayer::local(keys);
            router
                .add_service(layer.layer(GreeterServer::new(Hello)))
                .add_service(layer.layer(AdminServer::new(admin)))
                .serve_with_incoming_shutdown(incoming, shutdown)
                .await
        }
    };
    Ok(served?)
}
