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
            | AuthError::AudienceNotAllowed
            | AuthError::InvalidRole(_)
            | AuthError::PageTokenInvalid => Code::InvalidArgument,
            AuthError::UsernameTaken | AuthError::ClientNameTaken => Code::AlreadyExists,
            AuthError::UserNotFound | AuthError::ClientNotFound => Code::NotFound,
            AuthError::RegistrationClosed | AuthError::RoleRequired(_) | AuthError::NotAUser => {
                Code::PermissionDenied
            }
            AuthError::Busy | AuthError::Throttled { .. } => Code::ResourceExhausted,
            AuthError::BadCredentials
            | AuthError::UserDisabled
            | AuthError::Token(_)
            | AuthError::TokenRevoked
            | AuthError::RefreshMalformed
            | AuthError::RefreshUnknown
            | AuthError::RefreshExpired
            | AuthError::RefreshReused
            | AuthError::SessionRevoked
            | AuthError::InvalidClient
            | AuthError::ClientDisabled
            | AuthError::TokenMissing => Code::Unauthenticated,
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
        // The role a refused call needs, as authd-client's own role checks name it.
        let metadata: std::collections::HashMap<String, String> = match &e {
            AuthError::RoleRequired(role) => [("role".to_owned(), role.clone())].into(),
            _ => Default::default(),
        };
        let mut details = ErrorDetails::with_error_info(reason, ERROR_DOMAIN, metadata);
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
