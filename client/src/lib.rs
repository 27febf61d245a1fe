//! Verify authd access tokens where they are used.
//!
//! A [`Verifier`] holds the keys that may have signed a token (the HS256 shared secret, or
//! Ed25519 public keys, for instance from authd's JWKS through
//! [`Verifier::from_jwks_json`]) and applies the same rules as the authd server: the
//! algorithm is pinned by the key and never taken from the token (`alg: none` and
//! HS256-with-a-public-key are refused), `exp` is required, `iss` and `aud` are checked
//! with a 30 s leeway, and the header must say `typ: at+jwt`. A refusal is a
//! [`VerifyError`] that names its reason, the same reason authd's `Validate` gives.
//!
//! With the `grpc` feature (on by default), for tonic services:
//! - [`KeySource`]: fixed keys, or authd's `GetJwks` cached behind an `ArcSwap`, refreshed
//!   by a background task and refetched when a token names an unknown key id (at most once
//!   per [`JwksOptions::min_refetch_interval`], so garbage kids cannot hammer authd);
//! - [`AuthInterceptor`]: synchronous, verifies against the key set in force;
//! - [`AuthLayer`]: a tower layer that can wait for a refetch, or ask authd's `Validate`
//!   for services that must see revoked sessions at once;
//! - [`authd_channel`]: the channel to authd those two talk over, in plain text or over TLS
//!   ([`TlsOptions`]: the CA to trust and, for mutual TLS, a client certificate).
//!
//! Both put the token's [`Claims`] in the request extensions and refuse everything else
//! with `UNAUTHENTICATED` and a `google.rpc.ErrorInfo` detail (domain `authd`) naming the
//! reason; [`rejection_reason`] reads it back on the calling side. Both can also require a
//! role ([`Claims::has_role`]) of every call, the layer of one method's calls too, and
//! [`require_role`] checks one in a handler; a valid token without the role is refused
//! with `PERMISSION_DENIED` and the reason `ROLE_REQUIRED`.
//!
//! With the `web` feature, [`web::BrowserAccess`] lets browser pages on listed origins call
//! a gRPC-Web service (CORS without credentials: the token travels in a header).
//!
//! ```
//! use authd_client::{AuthInterceptor, Claims, KeySource, Verifier, VerifyError, rejection_reason};
//! use tonic::service::Interceptor;
//!
//! // The shared secret authd signs with (its AUTHD_JWT_SECRET), issuer and audience.
//! let secret = b"0123456789abcdef0123456789abcdef";
//! let verifier = Verifier::hs256(secret, "authd", "authd")?;
//! # let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_secs() as i64;
//! # let claims = Claims {
//! #     iss: "authd".into(), sub: "6f1c2a9e-4b3d-4e5f-8a7b-9c0d1e2f3a4b".into(),
//! #     aud: vec!["authd".into()], exp: now + 900, iat: now, nbf: now,
//! #     jti: "j".into(), sid: "s".into(), username: "ada".into(), roles: vec![], client_id: None,
//! # };
//! # let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
//! # header.typ = Some(authd_client::TOKEN_TYPE.into());
//! # header.kid = Some("hs256-1".into());
//! # let key = jsonwebtoken::EncodingKey::from_secret(secret)?;
//! // An access token from authd's Issue (minted here with jsonwebtoken, as authd does).
//! let token: String = jsonwebtoken::encode(&header, &claims, &key)?;
//!
//! // Verify it directly...
//! assert_eq!(verifier.verify(&token, None)?.username, "ada");
//! assert_eq!(verifier.verify("not-a-token", None), Err(VerifyError::Malformed));
//!
//! // ...or in front of a tonic service: GreeterServer::with_interceptor(greeter, interceptor).
//! let mut interceptor = AuthInterceptor::new(KeySource::fixed(verifier));
//! let mut request = tonic::Request::new(());
//! request
//!     .metadata_mut()
//!     .insert("authorization", format!("Bearer {token}").parse()?);
//! let request = interceptor.call(request)?;
//! // The handler reads the caller from the extensions.
//! let caller = request.extensions().get::<Claims>().map(|c| c.username.as_str());
//! assert_eq!(caller, Some("ada"));
//!
//! let refused = interceptor.call(tonic::Request::new(())).unwrap_err();
//! assert_eq!(refused.code(), tonic::Code::Unauthenticated);
//! let reason = rejection_reason(&refused);
//! assert_eq!(reason.as_deref(), Some(authd_client::reason::TOKEN_MISSING));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! With authd signing with Ed25519, fetch its keys instead, and keep them fresh:
//!
//! ```no_run
//! use authd_client::{AuthLayer, JwksOptions, KeySource};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let authd = tonic::transport::Endpoint::from_static("http://127.0.0.1:50051").connect_lazy();
//! let keys = KeySource::connect_jwks(authd.clone(), JwksOptions::new("authd", "authd")).await?;
//! let _refresh = keys.spawn_refresh(); // stops when dropped
//! let layer = AuthLayer::local(keys);
//! // Or, to see revoked sessions at once, one Validate round trip per call:
//! let strict = AuthLayer::validate_with_authd(authd, "authd");
//! // Server::builder()
//! //     .add_service(health)                                   // outside: stays open
//! //     .add_service(tower::Layer::layer(&layer, GreeterServer::new(greeter)))
//! # let _ = (layer, strict);
//! # Ok(())
//! # }
//! ```
//!
//! When authd serves TLS (`AUTHD_TLS_CERT`, `AUTHD_TLS_KEY`), trust the CA that signed its
//! certificate and use an `https://` URL naming a host the certificate names; when it also
//! requires client certificates (`AUTHD_TLS_CLIENT_CA`), present one signed by that CA.
//! The channel connects lazily; a refused handshake is the first call's error.
//!
//! ```no_run
//! use std::path::Path;
//!
//! use authd_client::{AuthLayer, JwksOptions, KeySource, TlsOptions, authd_channel};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! // The files `authd tls self-signed --out certs` writes.
//! let tls = TlsOptions::from_files(
//!     Path::new("certs/ca.pem"),
//!     Some((Path::new("certs/client.pem"), Path::new("certs/client.key"))),
//! )?;
//! let authd = authd_channel("https://localhost:50051", Some(&tls))?;
//! let keys = KeySource::connect_jwks(authd.clone(), JwksOptions::new("authd", "authd")).await?;
//! let strict = AuthLayer::validate_with_authd(authd, "authd");
//! // An http:// URL with TLS options, or an https:// one without, is a ConnectError.
//! assert!(authd_channel("http://localhost:50051", Some(&tls)).is_err());
//! # let _ = (keys, strict);
//! # Ok(())
//! # }
//! ```
#![warn(missing_docs)]

mod claims;
mod jwks;
pub mod reason;
mod verifier;

#[cfg(feature = "grpc")]
mod connect;
#[cfg(feature = "grpc")]
mod interceptor;
#[cfg(feature = "grpc")]
mod keys;
#[cfg(feature = "grpc")]
mod layer;
#[cfg(feature = "grpc")]
mod proto_claims;
#[cfg(feature = "grpc")]
mod roles;
#[cfg(feature = "grpc")]
mod status;
#[cfg(any(test, feature = "test-util"))]
pub mod test_util;
#[cfg(feature = "web")]
pub mod web;

pub use claims::Claims;
pub use jwks::{JwksError, parse_jwks};
pub use verifier::{LEEWAY_SECS, TOKEN_TYPE, VerificationKey, Verifier, VerifyError, token_kid};

#[cfg(feature = "grpc")]
pub use connect::{ConnectError, TlsFileError, TlsOptions, TlsPart, authd_channel, authd_endpoint};
#[cfg(feature = "grpc")]
pub use interceptor::AuthInterceptor;
#[cfg(feature = "grpc")]
pub use keys::{JwksOptions, KeySource, KeySourceError, RefreshTask};
#[cfg(feature = "grpc")]
pub use layer::{AuthLayer, Authenticated};
#[cfg(feature = "grpc")]
pub use roles::require_role;
#[cfg(feature = "grpc")]
pub use status::{ERROR_DOMAIN, Rejection, RoleRequired, rejection_reason};

/// Generated from authd's `proto/authd/v1/auth.proto`: the messages and the
/// `AuthServiceClient`. The only generated copy of the messages: authd's server code uses
/// these too (its build generates just the service trait, pointing here), and
/// `From` converts between [`proto::Claims`] and the domain [`Claims`].
#[cfg(feature = "grpc")]
pub mod proto {
    #![allow(
        clippy::all,
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        missing_docs
    )]
    tonic::include_proto!("authd.v1");
}

/// The server half of the same contract, for the stand-in authd of tests only.
#[cfg(all(feature = "grpc", any(test, feature = "test-util")))]
mod proto_server {
    #![allow(
        clippy::all,
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        missing_docs
    )]
    include!(concat!(env!("OUT_DIR"), "/server/authd.v1.rs"));
}
