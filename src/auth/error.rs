use authd_client::{VerifyError, reason};

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
    #[error("{0}")]
    InvalidRole(String),
    #[error("no such user")]
    UserNotFound,
    #[error("no such service account")]
    ClientNotFound,
    #[error("invalid client id or secret")]
    InvalidClient,
    #[error("this service account is disabled")]
    ClientDisabled,
    #[error("a service account by this name exists")]
    ClientNameTaken,
    #[error("the page token was not issued by this server")]
    PageTokenInvalid,
    #[error("this call needs an access token")]
    TokenMissing,
    /// The caller's token lacks the role the call needs.
    #[error("this call needs the role {0}")]
    RoleRequired(String),
    #[error("a service account has no password")]
    NotAUser,
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
            Self::TokenRevoked => reason::TOKEN_REVOKED,
            Self::BadCredentials => reason::INVALID_CREDENTIALS,
            Self::UserDisabled => reason::USER_DISABLED,
            Self::RefreshMalformed => reason::REFRESH_TOKEN_MALFORMED,
            Self::RefreshUnknown => reason::REFRESH_TOKEN_UNKNOWN,
            Self::RefreshExpired => reason::REFRESH_TOKEN_EXPIRED,
            Self::RefreshReused => reason::REFRESH_TOKEN_REUSED,
            Self::SessionRevoked => reason::SESSION_REVOKED,
            Self::InvalidInput(_) => reason::INVALID_INPUT,
            Self::InvalidUsername(_) => reason::INVALID_USERNAME,
            Self::WeakPassword(_) => reason::PASSWORD_TOO_WEAK,
            Self::AudienceNotAllowed => reason::AUDIENCE_NOT_ALLOWED,
            Self::Throttled { .. } => reason::THROTTLED,
            Self::UsernameTaken => reason::USERNAME_TAKEN,
            Self::RegistrationClosed => reason::REGISTRATION_CLOSED,
            Self::Busy => reason::THROTTLED,
            Self::InvalidRole(_) => reason::INVALID_ROLE,
            Self::UserNotFound => reason::USER_NOT_FOUND,
            Self::ClientNotFound => reason::CLIENT_NOT_FOUND,
            Self::InvalidClient => reason::INVALID_CLIENT,
            Self::ClientDisabled => reason::CLIENT_DISABLED,
            Self::ClientNameTaken => reason::CLIENT_NAME_TAKEN,
            Self::PageTokenInvalid => reason::PAGE_TOKEN_INVALID,
            Self::TokenMissing => reason::TOKEN_MISSING,
            Self::RoleRequired(_) => reason::ROLE_REQUIRED,
            Self::NotAUser => reason::NOT_A_USER,
            Self::Internal(_) | Self::Unavailable(_) => return None,
        })
    }
}

/// Database failures a use case did not handle itself (each use case maps the `Duplicate`
/// it expects, e.g. a taken username, before this).
impl From<StoreError> for AuthError {
    fn from(e: StoreError) -> Self {
        crate::metrics::db_error();
        match e {
            StoreError::Unavailable(_) => Self::Unavailable(e.to_string()),
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

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;
    use std::time::Duration;

    use super::*;

    /// One value of every variant, and of every `VerifyError` behind `Token`. Each arm names
    /// the next value, so a new variant does not compile until it joins the walk.
    fn every_error() -> Vec<AuthError> {
        use AuthError as A;
        use VerifyError as V;
        let mut all = Vec::new();
        let mut next = Some(A::InvalidInput("x".into()));
        while let Some(e) = next {
            next = match &e {
                A::InvalidInput(_) => Some(A::InvalidUsername("x".into())),
                A::InvalidUsername(_) => Some(A::WeakPassword("x".into())),
                A::WeakPassword(_) => Some(A::AudienceNotAllowed),
                A::AudienceNotAllowed => Some(A::Throttled {
                    retry_after: Duration::from_secs(1),
                }),
                A::Throttled { .. } => Some(A::UsernameTaken),
                A::UsernameTaken => Some(A::RegistrationClosed),
                A::RegistrationClosed => Some(A::BadCredentials),
                A::BadCredentials => Some(A::UserDisabled),
                A::UserDisabled => Some(A::Busy),
                A::Busy => Some(A::Token(V::Malformed)),
                A::Token(V::Malformed) => Some(A::Token(V::BadSignature)),
                A::Token(V::BadSignature) => Some(A::Token(V::Expired)),
                A::Token(V::Expired) => Some(A::Token(V::NotYetValid)),
                A::Token(V::NotYetValid) => Some(A::Token(V::WrongIssuer)),
                A::Token(V::WrongIssuer) => Some(A::Token(V::WrongAudience)),
                A::Token(V::WrongAudience) => Some(A::Token(V::MissingClaim("exp".into()))),
                A::Token(V::MissingClaim(_)) => Some(A::Token(V::WrongAlgorithm)),
                A::Token(V::WrongAlgorithm) => Some(A::Token(V::WrongType)),
                A::Token(V::WrongType) => Some(A::Token(V::UnknownKey)),
                A::Token(V::UnknownKey) => Some(A::TokenRevoked),
                A::TokenRevoked => Some(A::RefreshMalformed),
                A::RefreshMalformed => Some(A::RefreshUnknown),
                A::RefreshUnknown => Some(A::RefreshExpired),
                A::RefreshExpired => Some(A::RefreshReused),
                A::RefreshReused => Some(A::SessionRevoked),
                A::SessionRevoked => Some(A::InvalidRole("x".into())),
                A::InvalidRole(_) => Some(A::UserNotFound),
                A::UserNotFound => Some(A::ClientNotFound),
                A::ClientNotFound => Some(A::InvalidClient),
                A::InvalidClient => Some(A::ClientDisabled),
                A::ClientDisabled => Some(A::ClientNameTaken),
                A::ClientNameTaken => Some(A::PageTokenInvalid),
                A::PageTokenInvalid => Some(A::TokenMissing),
                A::TokenMissing => Some(A::RoleRequired("x".into())),
                A::RoleRequired(_) => Some(A::NotAUser),
                A::NotAUser => Some(A::Internal("x".into())),
                A::Internal(_) => Some(A::Unavailable("x".into())),
                A::Unavailable(_) => None,
            };
            all.push(e);
        }
        all
    }

    #[test]
    fn every_reason_given_is_listed_and_every_listed_one_is_given() {
        let mut given = BTreeSet::new();
        for e in every_error() {
            match e.reason() {
                Some(r) => {
                    assert!(reason::ALL.contains(&r), "{e:?} gives unlisted {r}");
                    given.insert(r);
                }
                None => assert!(
                    matches!(e, AuthError::Internal(_) | AuthError::Unavailable(_)),
                    "{e:?} has no reason"
                ),
            }
        }
        let listed: BTreeSet<_> = reason::ALL.iter().copied().collect();
        assert_eq!(given, listed);
    }
}
