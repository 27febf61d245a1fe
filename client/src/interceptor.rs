//! The synchronous way in: a tonic interceptor.
use tonic::service::Interceptor;
use tonic::{Request, Status};

use crate::status::{Rejection, bearer_token};
use crate::{KeySource, VerifyError};

/// A tonic [`Interceptor`] that verifies `authorization: Bearer <token>` against the key
/// set in force and puts the token's [`Claims`](crate::Claims) in the request's extensions;
/// anything else is refused with UNAUTHENTICATED and an `ErrorInfo` reason.
///
/// It cannot wait for the network: a token signed by a key the set does not hold yet is
/// refused, and a JWKS refetch is started in the background (within the floor) so the
/// calls after it pass. [`AuthLayer`](crate::AuthLayer) waits for that refetch instead.
#[derive(Debug, Clone)]
pub struct AuthInterceptor {
    keys: KeySource,
    audience: Option<String>,
}

impl AuthInterceptor {
    /// Verify with `keys`, for the audience the key source was built with.
    pub fn new(keys: KeySource) -> Self {
        Self {
            keys,
            audience: None,
        }
    }

    /// Require this audience instead of the key source's.
    pub fn with_audience(mut self, audience: impl Into<String>) -> Self {
        self.audience = Some(audience.into());
        self
    }

    /// Verify the request's bearer token; the claims on success.
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
        request.extensions_mut().insert(claims);
        Ok(request)
    }
}
