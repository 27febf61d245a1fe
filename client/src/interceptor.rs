//! The synchronous way in: a tonic interceptor.
use tonic::service::Interceptor;
use tonic::{Request, Status};

use crate::roles::RoleRules;
use crate::status::{Rejection, bearer_token};
use crate::{KeySource, VerifyError};

/// A tonic [`Interceptor`] that verifies `authorization: Bearer <token>` against the key
/// set in force and puts the token's [`Claims`](crate::Claims) in the request's extensions;
/// anything else is refused with UNAUTHENTICATED and an `ErrorInfo` reason.
///
/// It cannot wait for the network: a token signed by a key the set does not hold yet is
/// refused, and a JWKS refetch is started in the background (within the floor) so the
/// calls after it pass. [`AuthLayer`](crate::AuthLayer) waits for that refetch instead.
///
/// It can require a role of every call ([`AuthInterceptor::require_role`]). It cannot see
/// which method is called (tonic gives an interceptor no path): for one method, check in
/// its handler with [`require_role`](crate::require_role), or use
/// [`AuthLayer::require_role_for`](crate::AuthLayer::require_role_for).
#[derive(Debug, Clone)]
pub struct AuthInterceptor {
    keys: KeySource,
    audience: Option<String>,
    roles: RoleRules,
}

impl AuthInterceptor {
    /// Verify with `keys`, for the audience the key source was built with.
    pub fn new(keys: KeySource) -> Self {
        Self {
            keys,
            audience: None,
            roles: RoleRules::default(),
        }
    }

    /// Require this audience instead of the key source's.
    pub fn with_audience(mut self, audience: impl Into<String>) -> Self {
        self.audience = Some(audience.into());
        self
    }

    /// Every call needs a token that grants `role`
    /// ([`Claims::has_role`](crate::Claims::has_role): exact and case-sensitive); a valid
    /// token without it is refused with PERMISSION_DENIED and the reason
    /// [`ROLE_REQUIRED`](crate::reason::ROLE_REQUIRED), naming the role. A call without a valid token is UNAUTHENTICATED, as ever. Call it
    /// again to require several roles: each one must be granted.
    pub fn require_role(mut self, role: impl Into<String>) -> Self {
        self.roles.require(role.into());
        self
    }

    /// Verify the request's bearer token; the claims on success. Roles are not checked
    /// here but in [`Interceptor::call`].
    pub fn authenticate<T>(&self, request: &Request<T>) -> Result<crate::Claims, Rejection> {
        let header = request
            .metadata()
            .get(http::header::AUTHORIZATION.as_str())
            .and_then(|v| v.to_str().ok());
        let token = bearer_token(header)?;
        match self.keys.verify(token, self.audience.as_deref()) {
            Err(VerifyError::UnknownKey) => {
                self.keys.refetch_in_background(token);
                Err(VerifyError::UnknownKey.into())
            }
            other => Ok(other?),
        }
    }
}

impl Interceptor for AuthInterceptor {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        let claims = self.authenticate(&request)?;
        self.roles.check(None, &claims)?;
        request.extensions_mut().insert(claims);
        Ok(request)
    }
}

#[cfg(test)]
mod tests {
    use tonic::Code;

    use super::*;
    use crate::test_util::{TestKey, claims};
    use crate::{Verifier, rejection_reason};

    fn request(token: Option<&str>) -> Request<()> {
        let mut request = Request::new(());
        if let Some(token) = token {
            request
                .metadata_mut()
                .insert("authorization", format!("Bearer {token}").parse().unwrap());
        }
        request
    }

    #[test]
    fn a_required_role_is_checked_after_the_token() {
        let key = TestKey::hs256("hs256-1", b"0123456789abcdef0123456789abcdef");
        let keys = KeySource::fixed(Verifier::new(
            vec![key.verification_key()],
            "authd",
            "authd",
        ));
        let mut open = AuthInterceptor::new(keys.clone());
        let mut guarded = AuthInterceptor::new(keys).require_role("billing:read");
        let mut reader = claims("ada");
        reader.roles = vec!["billing:read".into()];
        let reader = key.mint(&reader);
        let nobody = key.mint(&claims("bob"));

        let passed = guarded.call(request(Some(&reader))).unwrap();
        let caller = passed.extensions().get::<crate::Claims>().unwrap();
        assert!(caller.has_role("billing:read"));
        assert!(open.call(request(Some(&nobody))).is_ok());

        let refused = guarded.call(request(Some(&nobody))).unwrap_err();
        assert_eq!(refused.code(), Code::PermissionDenied);
        assert_eq!(rejection_reason(&refused).as_deref(), Some("ROLE_REQUIRED"));
        for (token, why) in [(None, "TOKEN_MISSING"), (Some("x.y.z"), "TOKEN_MALFORMED")] {
            let refused = guarded.call(request(token)).unwrap_err();
            assert_eq!(refused.code(), Code::Unauthenticated);
            assert_eq!(rejection_reason(&refused).as_deref(), Some(why));
        }
    }
}
