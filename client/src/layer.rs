//! The asynchronous way in: a tower layer, which can wait for a JWKS refetch or ask authd.
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use tonic::server::NamedService;
use tonic::transport::Channel;
use tonic::{Code, Status};
use tower_layer::Layer;
use tower_service::Service;

use crate::proto::ValidateRequest;
use crate::proto::auth_service_client::AuthServiceClient;
use crate::roles::RoleRules;
use crate::status::{Rejection, bearer_token};
use crate::{Claims, KeySource};

/// A tower [`Layer`] for one tonic service: verifies `authorization: Bearer <token>`,
/// puts the token's [`Claims`] in the request's extensions, and refuses anything else
/// with UNAUTHENTICATED and an `ErrorInfo` reason, before the service sees the call.
///
/// Wrap the services that need a caller, not the whole server, so health checks and
/// reflection stay open:
///
/// ```
/// use authd_client::{AuthLayer, KeySource, Verifier};
/// use tower_layer::Layer as _;
/// # #[derive(Clone)]
/// # struct GreeterServer;
///
/// let secret = b"0123456789abcdef0123456789abcdef";
/// let keys = KeySource::fixed(Verifier::hs256(secret, "authd", "authd")?);
/// // GreeterServer: a tonic-generated server, wrapped alone.
/// let greeter = AuthLayer::local(keys).layer(GreeterServer);
/// // Server::builder().add_service(health).add_service(reflection).add_service(greeter)
/// # Ok::<(), authd_client::VerifyError>(())
/// ```
///
/// It can also require roles of the verified caller, of every call
/// ([`AuthLayer::require_role`]) or of one method's ([`AuthLayer::require_role_for`]); a
/// caller without one is refused with PERMISSION_DENIED and the reason `ROLE_REQUIRED`.
#[derive(Debug, Clone)]
pub struct AuthLayer {
    mode: Mode,
    roles: RoleRules,
}

#[derive(Debug, Clone)]
enum Mode {
    /// Verify here; on an unknown kid, wait for the (floored) JWKS refetch, retry once.
    Local {
        keys: KeySource,
        audience: Option<String>,
    },
    /// Ask authd's `Validate`, which also sees revoked sessions and disabled users.
    Remote {
        client: AuthServiceClient<Channel>,
        audience: String,
        timeout: Duration,
    },
}

impl AuthLayer {
    /// Verify tokens locally with `keys`, for the key source's audience.
    pub fn local(keys: KeySource) -> Self {
        Self {
            mode: Mode::Local {
                keys,
                audience: None,
            },
            roles: RoleRules::default(),
        }
    }

    /// Ask authd's `Validate` over `channel` for every call, expecting `audience` (empty
    /// means authd's default). One round trip per call, but a revoked session or a disabled
    /// user is refused at once instead of when the access token expires. authd's refusal
    /// (such as `TOKEN_REVOKED`) is passed on; authd being unreachable is UNAVAILABLE, never
    /// a pass.
    pub fn validate_with_authd(channel: Channel, audience: impl Into<String>) -> Self {
        Self {
            mode: Mode::Remote {
                client: AuthServiceClient::new(channel),
                audience: audience.into(),
                timeout: Duration::from_secs(5),
            },
            roles: RoleRules::default(),
        }
    }

    /// Require this audience instead of the key source's (local) or authd's default
    /// (remote).
    pub fn with_audience(mut self, new: impl Into<String>) -> Self {
        match &mut self.mode {
            Mode::Local { audience, .. } => *audience = Some(new.into()),
            Mode::Remote { audience, .. } => *audience = new.into(),
        }
        self
    }

    /// How long a `Validate` call may take (remote mode; default 5 s).
    pub fn with_timeout(mut self, new: Duration) -> Self {
        if let Mode::Remote { timeout, .. } = &mut self.mode {
            *timeout = new;
        }
        self
    }

    /// Every call needs a token that grants `role` ([`Claims::has_role`]: exact and
    /// case-sensitive); a valid token without it is refused with PERMISSION_DENIED and the
    /// reason [`ROLE_REQUIRED`](crate::reason::ROLE_REQUIRED), naming the role. A call
    /// without a valid token is UNAUTHENTICATED, as ever. Call it again to require several
    /// roles: each one must be granted.
    ///
    /// ```
    /// use authd_client::{AuthLayer, KeySource, Verifier};
    /// use tower_layer::Layer as _;
    /// # #[derive(Clone)]
    /// # struct AdminServer;
    ///
    /// let secret = b"0123456789abcdef0123456789abcdef";
    /// let keys = KeySource::fixed(Verifier::hs256(secret, "authd", "authd")?);
    /// let admin = AuthLayer::local(keys).require_role("billing:admin").layer(AdminServer);
    /// # Ok::<(), authd_client::VerifyError>(())
    /// ```
    pub fn require_role(mut self, role: impl Into<String>) -> Self {
        self.roles.require(role.into());
        self
    }

    /// The calls of one method need a token that grants `role`; the other methods do not.
    /// `method` is the gRPC path, `/package.Service/Method` (the leading slash may be left
    /// out), or a bare method name, which matches that method of whichever service the
    /// layer wraps. Names are case-sensitive, as in gRPC: a misspelt one guards nothing,
    /// so test that the method is refused without the role. Refusals as
    /// [`AuthLayer::require_role`]; rules add up.
    ///
    /// ```
    /// use authd_client::{AuthLayer, KeySource, Verifier};
    /// use tower_layer::Layer as _;
    /// # #[derive(Clone)]
    /// # struct BillingServer;
    ///
    /// let secret = b"0123456789abcdef0123456789abcdef";
    /// let keys = KeySource::fixed(Verifier::hs256(secret, "authd", "authd")?);
    /// // Any valid token may call the other methods; Refund needs `billing:refund` too.
    /// let billing = AuthLayer::local(keys)
    ///     .require_role_for("/billing.v1.Billing/Refund", "billing:refund")
    ///     .layer(BillingServer);
    /// # Ok::<(), authd_client::VerifyError>(())
    /// ```
    pub fn require_role_for(mut self, method: &str, role: impl Into<String>) -> Self {
        self.roles.require_for(method, role.into());
        self
    }
}

impl<S> Layer<S> for AuthLayer {
    type Service = Authenticated<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Authenticated {
            inner,
            guard: Arc::new(Guard {
                mode: self.mode.clone(),
                roles: self.roles.clone(),
            }),
        }
    }
}

/// What an [`Authenticated`] service checks.
#[derive(Debug)]
struct Guard {
    mode: Mode,
    roles: RoleRules,
}

impl Mode {
    async fn authenticate(&self, header: Option<&str>) -> Result<Claims, Status> {
        let token = bearer_token(header)?;
        match self {
            Mode::Local { keys, audience } => keys
                .verify_or_refetch(token, audience.as_deref())
                .await
                .map_err(|e| Rejection::Invalid(e).into()),
            Mode::Remote {
                client,
                audience,
                timeout,
            } => validate(client.clone(), token, audience, *timeout).await,
        }
    }
}

async fn validate(
    mut client: AuthServiceClient<Channel>,
    token: &str,
    audience: &str,
    timeout: Duration,
) -> Result<Claims, Status> {
    let mut request = tonic::Request::new(ValidateRequest {
        token: token.to_owned(),
        audience: audience.to_owned(),
    });
    request.set_timeout(timeout);
    let unavailable = || Status::unavailable("cannot validate the token with authd; retry");
    let response = match tokio::time::timeout(timeout, client.validate(request)).await {
        Ok(Ok(response)) => response.into_inner(),
        // authd's refusal carries its reason: pass it on as it is.
        Ok(Err(status)) if status.code() == Code::Unauthenticated => return Err(status),
        Ok(Err(status)) => {
            tracing::warn!(code = ?status.code(), message = status.message(), "authd Validate failed");
            return Err(unavailable());
        }
        Err(_) => {
            tracing::warn!(?timeout, "authd Validate timed out");
            return Err(unavailable());
        }
    };
    let claims = response.claims.ok_or_else(|| {
        tracing::warn!("authd Validate answered without claims");
        unavailable()
    })?;
    Ok(claims.into())
}

/// A service behind [`AuthLayer`].
#[derive(Debug, Clone)]
pub struct Authenticated<S> {
    inner: S,
    guard: Arc<Guard>,
}

impl<S, B, ResBody> Service<http::Request<B>> for Authenticated<S>
where
    S: Service<http::Request<B>, Response = http::Response<ResBody>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    B: Send + 'static,
    ResBody: Default + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: http::Request<B>) -> Self::Future {
        // The clone that was polled ready is the one to call (tower's usual swap).
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let guard = self.guard.clone();
        Box::pin(async move {
            let header = request
                .headers()
                .get(http::header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok());
            // Who the caller is first (UNAUTHENTICATED), then what they may do.
            let checked = guard.mode.authenticate(header).await.and_then(|claims| {
                guard.roles.check(Some(request.uri().path()), &claims)?;
                Ok(claims)
            });
            match checked {
                Ok(claims) => {
                    request.extensions_mut().insert(claims);
                    inner.call(request).await
                }
                Err(status) => Ok(status.into_http()),
            }
        })
    }
}

impl<S: NamedService> NamedService for Authenticated<S> {
    const NAME: &'static str = S::NAME;
}

#[cfg(test)]
mod tests {
    use std::convert::Infallible;

    use tower::{ServiceExt, service_fn};

    use super::*;
    use crate::test_util::{FakeAuthd, TestKey, claims, jwks_json};
    use crate::{JwksOptions, Verifier, rejection_reason};

    fn key(n: u8) -> TestKey {
        TestKey::ed25519(&format!("ed-{n}"), [n; 32])
    }

    /// The layer around a service that answers with the caller's username.
    async fn call(layer: &AuthLayer, token: Option<&str>) -> Result<String, Status> {
        call_at(layer, "/", token).await
    }

    /// [`call`] for the gRPC method at `path`.
    async fn call_at(layer: &AuthLayer, path: &str, token: Option<&str>) -> Result<String, Status> {
        let echo = service_fn(|request: http::Request<()>| async move {
            let who = request
                .extensions()
                .get::<Claims>()
                .map(|c| c.username.clone())
                .unwrap_or_default();
            Ok::<_, Infallible>(http::Response::new(who))
        });
        let mut request = http::Request::new(());
        *request.uri_mut() = path.parse().unwrap();
        if let Some(token) = token {
            request.headers_mut().insert(
                http::header::AUTHORIZATION,
                format!("Bearer {token}").parse().unwrap(),
            );
        }
        let response = layer.layer(echo).oneshot(request).await.unwrap();
        match Status::from_header_map(response.headers()) {
            Some(status) => Err(status),
            None => Ok(response.into_body()),
        }
    }

    fn reason(r: Result<String, Status>) -> String {
        rejection_reason(&r.unwrap_err()).unwrap_or_default()
    }

    #[tokio::test]
    async fn local_mode_passes_good_tokens_and_names_the_reason_of_bad_ones() {
        let verifier = Verifier::new(vec![key(1).verification_key()], "authd", "authd");
        let layer = AuthLayer::local(KeySource::fixed(verifier));
        assert_eq!(
            call(&layer, Some(&key(1).mint(&claims("ada"))))
                .await
                .unwrap(),
            "ada"
        );
        assert_eq!(reason(call(&layer, None).await), "TOKEN_MISSING");
        assert_eq!(reason(call(&layer, Some("x.y.z")).await), "TOKEN_MALFORMED");
        let mut old = claims("ada");
        old.exp -= 3600;
        assert_eq!(
            reason(call(&layer, Some(&key(1).mint(&old))).await),
            "TOKEN_EXPIRED"
        );
        let mut elsewhere = claims("ada");
        elsewhere.aud = vec!["billing".into()];
        let elsewhere = key(1).mint(&elsewhere);
        assert_eq!(
            reason(call(&layer, Some(&elsewhere)).await),
            "WRONG_AUDIENCE"
        );
        let billing = layer.clone().with_audience("billing");
        assert_eq!(call(&billing, Some(&elsewhere)).await.unwrap(), "ada");
    }

    fn with_roles(username: &str, roles: &[&str]) -> Claims {
        let mut c = claims(username);
        c.roles = roles.iter().map(|r| r.to_string()).collect();
        c
    }

    /// PERMISSION_DENIED naming `role`.
    #[track_caller]
    fn denied(r: Result<String, Status>, role: &str) {
        let status = r.unwrap_err();
        assert_eq!(status.code(), Code::PermissionDenied, "{status:?}");
        assert_eq!(rejection_reason(&status).as_deref(), Some("ROLE_REQUIRED"));
        let info = tonic_types::StatusExt::get_details_error_info(&status).unwrap();
        assert_eq!(info.metadata.get("role").map(String::as_str), Some(role));
    }

    #[track_caller]
    fn unauthenticated(r: Result<String, Status>, why: &str) {
        let status = r.unwrap_err();
        assert_eq!(status.code(), Code::Unauthenticated, "{status:?}");
        assert_eq!(rejection_reason(&status).as_deref(), Some(why));
    }

    #[tokio::test]
    async fn a_role_for_the_whole_service_is_checked_after_the_token() {
        let verifier = Verifier::new(vec![key(1).verification_key()], "authd", "authd");
        let layer = AuthLayer::local(KeySource::fixed(verifier)).require_role("billing:read");
        let reader = key(1).mint(&with_roles("ada", &["billing:read"]));
        let other = key(1).mint(&with_roles("bob", &["billing:write", "Billing:Read"]));
        for path in ["/billing.v1.Invoices/List", "/billing.v1.Invoices/Get"] {
            assert_eq!(call_at(&layer, path, Some(&reader)).await.unwrap(), "ada");
            denied(call_at(&layer, path, Some(&other)).await, "billing:read");
            unauthenticated(call_at(&layer, path, None).await, "TOKEN_MISSING");
            unauthenticated(
                call_at(&layer, path, Some("x.y.z")).await,
                "TOKEN_MALFORMED",
            );
        }
        let mut expired = with_roles("ada", &["billing:read"]);
        expired.exp -= 3600;
        let expired = key(1).mint(&expired);
        unauthenticated(call(&layer, Some(&expired)).await, "TOKEN_EXPIRED");

        // Several roles: each one must be granted.
        let both = layer.clone().require_role("billing:export");
        denied(call(&both, Some(&reader)).await, "billing:export");
        let exporter = key(1).mint(&with_roles("cy", &["billing:export", "billing:read"]));
        assert_eq!(call(&both, Some(&exporter)).await.unwrap(), "cy");
    }

    #[tokio::test]
    async fn a_role_for_one_method_leaves_the_others_open_to_any_valid_token() {
        let verifier = Verifier::new(vec![key(1).verification_key()], "authd", "authd");
        let layer = AuthLayer::local(KeySource::fixed(verifier))
            .require_role_for("/downstream.v1.Greeter/Admin", "downstream:admin")
            .require_role_for("Purge", "downstream:purge");
        let user = key(1).mint(&claims("ada"));
        let admin = key(1).mint(&with_roles("root", &["downstream:admin"]));
        let hello = "/downstream.v1.Greeter/Hello";
        let admin_path = "/downstream.v1.Greeter/Admin";
        let purge = "/downstream.v1.Greeter/Purge";

        assert_eq!(call_at(&layer, hello, Some(&user)).await.unwrap(), "ada");
        unauthenticated(call_at(&layer, hello, None).await, "TOKEN_MISSING");
        denied(
            call_at(&layer, admin_path, Some(&user)).await,
            "downstream:admin",
        );
        unauthenticated(call_at(&layer, admin_path, None).await, "TOKEN_MISSING");
        assert_eq!(
            call_at(&layer, admin_path, Some(&admin)).await.unwrap(),
            "root"
        );
        denied(
            call_at(&layer, purge, Some(&admin)).await,
            "downstream:purge",
        );
        // The same method name on another service is another method.
        assert_eq!(
            call_at(&layer, "/other.v1.Greeter/Admin", Some(&user))
                .await
                .unwrap(),
            "ada"
        );
    }

    #[tokio::test]
    async fn remote_mode_checks_roles_in_the_claims_authd_returns() {
        let authd = FakeAuthd::start(jwks_json(&[])).await.unwrap();
        authd.validate_with(Verifier::new(
            vec![key(1).verification_key()],
            "authd",
            "authd",
        ));
        let layer = AuthLayer::validate_with_authd(authd.channel(), "").require_role("reports");
        let mut service = with_roles("nightly-export", &["reports"]);
        service.sub = "svc-1".into();
        service.client_id = Some("svc-1".into());
        assert_eq!(
            call(&layer, Some(&key(1).mint(&service))).await.unwrap(),
            "nightly-export"
        );
        denied(
            call(&layer, Some(&key(1).mint(&claims("ada")))).await,
            "reports",
        );
        unauthenticated(call(&layer, None).await, "TOKEN_MISSING");
    }

    #[tokio::test]
    async fn local_mode_waits_for_the_refetch_of_a_rotated_key_within_the_floor() {
        let authd = FakeAuthd::start(jwks_json(&[&key(1)])).await.unwrap();
        let keys = KeySource::connect_jwks(authd.channel(), JwksOptions::new("authd", "authd"))
            .await
            .unwrap();
        let layer = AuthLayer::local(keys);
        authd.set_jwks(jwks_json(&[&key(1), &key(2)]));
        assert_eq!(
            call(&layer, Some(&key(2).mint(&claims("ada"))))
                .await
                .unwrap(),
            "ada"
        );
        assert_eq!(authd.get_jwks_calls(), 2);
        for _ in 0..10 {
            let garbage = key(3).mint(&claims("mallory"));
            assert_eq!(reason(call(&layer, Some(&garbage)).await), "UNKNOWN_KEY");
        }
        assert_eq!(authd.get_jwks_calls(), 2, "the 10 s floor holds");
    }

    #[tokio::test]
    async fn remote_mode_asks_authd_and_passes_its_refusals_on() {
        let authd = FakeAuthd::start(jwks_json(&[])).await.unwrap();
        authd.validate_with(Verifier::new(
            vec![key(1).verification_key()],
            "authd",
            "authd",
        ));
        let layer = AuthLayer::validate_with_authd(authd.channel(), "");
        let good = claims("ada");
        let token = key(1).mint(&good);
        assert_eq!(call(&layer, Some(&token)).await.unwrap(), "ada");
        assert_eq!(authd.validate_calls(), 1);

        authd.revoke_session(&good.sid);
        assert_eq!(reason(call(&layer, Some(&token)).await), "TOKEN_REVOKED");
        let tampered = format!("{}AAAA", &token[..token.len() - 4]);
        assert_eq!(reason(call(&layer, Some(&tampered)).await), "BAD_SIGNATURE");
        assert_eq!(reason(call(&layer, None).await), "TOKEN_MISSING");
        assert_eq!(
            authd.validate_calls(),
            3,
            "a missing token never reaches authd"
        );
    }

    #[tokio::test]
    async fn remote_mode_fails_closed_when_authd_cannot_answer() {
        let port = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .unwrap()
            .local_addr()
            .unwrap();
        let nowhere = tonic::transport::Endpoint::from_shared(format!("http://{port}"))
            .unwrap()
            .connect_lazy();
        let layer = AuthLayer::validate_with_authd(nowhere, "authd");
        let refused = call(&layer, Some(&key(1).mint(&claims("ada"))))
            .await
            .unwrap_err();
        assert_eq!(refused.code(), Code::Unavailable);

        // An authd without Validate (UNIMPLEMENTED) is no pass either.
        let authd = FakeAuthd::start(jwks_json(&[])).await.unwrap();
        let layer = AuthLayer::validate_with_authd(authd.channel(), "authd");
        let refused = call(&layer, Some(&key(1).mint(&claims("ada"))))
            .await
            .unwrap_err();
        assert_eq!(refused.code(), Code::Unavailable);
    }
}
