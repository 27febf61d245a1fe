use authd_client::VerifyError;

use crate::password::PasswordError;
use crate::store::StoreError;
use crate::token::KeyError;

/// Everything a use case can refuse or fail with. `api::status` maps it to gRPC, in one
/// place. Messages are for people and never carry a password, token or secret.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("{0}")]
    InvalidInput(String),
    /// A username the rules refuse (RFC 8265, invisible or mixed-script characters).
    #[error("{0}")]
    InvalidUsername(String),
    /// A password the policy refuses; the message says why, never what it was.
    #[error("{0}")]
    WeakPassword(String),
    #[error("this audience is not allowed on this server")]
    AudienceNotAllowed,
    /// Too many failed logins for this account or from this address.
    #[error("too many failed logins; retry in {}s", retry_after.as_secs().max(1))]
    Throttled { retry_after: std::time::Duration },
    #[error("this username is taken")]
    UsernameTaken,
    #[error("registration is disabled on this server")]
    RegistrationClosed,
    #[error("invalid username or password")]
    BadCredentials,
    #[error("this user is disabled")]
    UserDisabled,
    #[error("too many logins are in progress; retry shortly")]
    Busy,
    #[error("{0}")]
    Token(#[from] VerifyError),
    #[error("the token's session has been revoked or its user disabled")]
    TokenRevoked,
    #[error("the refresh token is malformed")]
    RefreshMalformed,
    #[error("the refresh token is unknown")]
    RefreshUnknown,
    #[error("the refresh token has expired")]
    RefreshExpired,
    #[error("the refresh token was already used; its session has been revoked")]
    RefreshReused,
    #[error("the session has ended")]
    SessionRevoked,
    #[error("internal error: {0}")]
    Internal(String),
    #[error("the database is unavailable: {0}")]
    Unavailable(String),
}

impl AuthError {
    /// The stable reason sent in `google.rpc.ErrorInfo`, where there is one.
    pub fn reason(&self) -> Option<&'static str> {
        Some(match self {
            Self::Token(e) => e.reason(),
            Self::TokenRevoked => "TOKEN_REVOKED",
            Self::BadCredentials => "INVALID_CREDENTIALS",
            Self::UserDisabled => "USER_DISABLED",
            Self::RefreshMalformed => "REFRESH_TOKEN_MALFORMED",
            Self::RefreshUnknown => "REFRESH_TOKEN_UNKNOWN",
            Self::RefreshExpired => "REFRESH_TOKEN_EXPIRED",
            Self::RefreshReused => "REFRESH_TOKEN_REUSED",
            Self::SessionRevoked => "SESSION_REVOKED",
            Self::InvalidInput(_) => "INVALID_INPUT",
            Self::InvalidUsername(_) => "INVALID_USERNAME",
            Self::WeakPassword(_) => "PASSWORD_TOO_WEAK",
            Self::AudienceNotAllowed => "AUDIENCE_NOT_ALLOWED",
            Self::Throttled { .. } => "THROTTLED",
            Self::UsernameTaken => "USERNAME_TAKEN",
            Self::RegistrationClosed => "REGISTRATION_CLOSED",
            Self::Busy => "THROTTLED",
            Self::Internal(_) | Self::Unavailable(_) => return None,
        })
    }
}

impl From<StoreError> for AuthError {
    fn from(e: StoreError) -> Self {
        if !matches!(e, StoreError::Duplicate) {
            crate::metrics::db_error();
        }
        match e {
            StoreError::Duplicate => Self::UsernameTaken,
            StoreError::Db(sea_orm::DbErr::Conn(_) | sea_orm::DbErr::ConnectionAcquire(_)) => {
                Self::Unavailable(e.to_string())
            }
            other => Self::Internal(other.to_string()),
        }
    }
}

impl From<PasswordError> for AuthError {
    fn from(e: PasswordError) -> Self {
        match e {
            PasswordError::Busy => Self::Busy,
            other => Self::Internal(other.to_string()),
        }
    }
}

impl From<KeyError> for AuthError {
    fn from(e: KeyError) -> Self {
        Self::Internal(e.to_string())
    }
}
