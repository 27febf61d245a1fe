//! The one place domain errors become `tonic::Status`.
use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

use crate::auth::AuthError;

// The domain verifiers (authd-client's interceptor and layer) use too: one name for both.
pub use authd_client::ERROR_DOMAIN;

/// What a caller refused because the hashing queue is full is told to wait.
const BUSY_RETRY: std::time::Duration = std::time::Duration::from_secs(1);

impl From<AuthError> for Status {
    fn from(e: AuthError) -> Self {
        let code = match &e {
            AuthError::InvalidInput(_)
            | AuthError::InvalidUsername(_)
            | AuthError::WeakPassword(_)
            | AuthError::AudienceNotAllowed => Code::InvalidArgument,
            AuthError::UsernameTaken => Code::AlreadyExists,
            AuthError::RegistrationClosed => Code::PermissionDenied,
            AuthError::Busy | AuthError::Throttled { .. } => Code::ResourceExhausted,
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
        let Some(reason) = e.reason() else {
            return Status::new(code, message);
        };
        let mut details = ErrorDetails::with_error_info(reason, ERROR_DOMAIN, []);
        // A throttled caller is told how long to wait (google.rpc.RetryInfo).
        match &e {
            AuthError::Throttled { retry_after } => {
                details.set_retry_info(Some(*retry_after));
            }
            AuthError::Busy => {
                details.set_retry_info(Some(BUSY_RETRY));
            }
            _ => {}
        }
        Status::with_error_details(code, message, details)
    }
}
