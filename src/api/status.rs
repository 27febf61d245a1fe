//! The one place domain errors become `tonic::Status`.
use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

use crate::auth::AuthError;

// The domain verifiers (authd-client's interceptor and layer) use too: one name for both.
pub use authd_client::ERROR_DOMAIN;

impl From<AuthError> for Status {
    fn from(e: AuthError) -> Self {
        let code = match &e {
            AuthError::InvalidInput(_) => Code::InvalidArgument,
            AuthError::UsernameTaken => Code::AlreadyExists,
            AuthError::RegistrationClosed => Code::PermissionDenied,
            AuthError::Busy => Code::ResourceExhausted,
            AuthError::BadCredentials
            | AuthError::UserDisabled
            | AuthError::Token(_)
            | AuthError::TokenRevoked
            | AuthError::RefreshMalformed
            | AuthError::RefreshUnknown
            | AuthError::RefreshExpired
            | AuthError::RefreshReused
            | AuthError::SessionRevoked => Code::Unauthenticated,
            AuthError::Unavailable(cause) => {
                tracing::error!(error = %cause, "database unavailable");
                return Status::unavailable("the service is temporarily unavailable; retry");
            }
            AuthError::Internal(cause) => {
                // The cause is for the operator's log; the caller learns nothing internal.
                tracing::error!(error = %cause, "internal error");
                return Status::internal("internal error");
            }
        };
        let message = e.to_string();
        match e.reason() {
            Some(reason) => Status::with_error_details(
                code,
                message,
                ErrorDetails::with_error_info(reason, ERROR_DOMAIN, []),
            ),
            None => Status::new(code, message),
        }
    }
}
