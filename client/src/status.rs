//! Refusals as gRPC statuses, the way authd sends them: UNAUTHENTICATED (or, for a missing
//! role, PERMISSION_DENIED) with a `google.rpc.ErrorInfo` detail (domain `authd`) that names
//! the reason.
use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

use crate::{VerifyError, reason};

/// The `domain` of the `google.rpc.ErrorInfo` detail, as authd sets it ([`reason::DOMAIN`]).
pub const ERROR_DOMAIN: &str = reason::DOMAIN;

/// Why a request was refused before it reached the service.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    /// No bearer token on the request (`TOKEN_MISSING`).
    #[error("the request carries no `authorization: Bearer <token>` header")]
    MissingToken,
    /// A token that fails verification; the reason is the verifier's.
    #[error(transparent)]
    Invalid(#[from] VerifyError),
}

impl Rejection {
    /// The stable reason: `TOKEN_MISSING`, or the [`VerifyError::reason`].
    pub fn reason(&self) -> &'static str {
        match self {
            Self::MissingToken => reason::TOKEN_MISSING,
            Self::Invalid(e) => e.reason(),
        }
    }
}

impl From<Rejection> for Status {
    fn from(r: Rejection) -> Self {
        refusal(Code::Unauthenticated, r.to_string(), r.reason(), [])
    }
}

/// A verified caller whose token does not grant a role the call requires.
///
/// As a [`Status`]: PERMISSION_DENIED, with an `ErrorInfo` whose reason is
/// [`reason::ROLE_REQUIRED`] and whose metadata names the role under `role`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("this call requires the role {role:?}")]
pub struct RoleRequired {
    /// The role the caller lacks.
    pub role: String,
}

impl From<RoleRequired> for Status {
    fn from(r: RoleRequired) -> Self {
        let message = r.to_string();
        refusal(
            Code::PermissionDenied,
            message,
            reason::ROLE_REQUIRED,
            [("role".to_owned(), r.role)],
        )
    }
}

/// The one shape of every refusal: `code`, a readable message, and an `ErrorInfo` in
/// domain `authd` naming `reason`.
fn refusal<const N: usize>(
    code: Code,
    message: String,
    reason: &'static str,
    metadata: [(String, String); N],
) -> Status {
    Status::with_error_details(
        code,
        message,
        ErrorDetails::with_error_info(reason, ERROR_DOMAIN, metadata),
    )
}

/// The token of an `authorization` header value: `Bearer <token>`, the scheme in any case
/// (RFC 7235).
pub(crate) fn bearer_token(value: Option<&str>) -> Result<&str, Rejection> {
    let (scheme, token) = value
        .and_then(|v| v.trim().split_once(' '))
        .ok_or(Rejection::MissingToken)?;
    let token = token.trim();
    if !scheme.eq_ignore_ascii_case("bearer") || token.is_empty() {
        return Err(Rejection::MissingToken);
    }
    Ok(token)
}

/// The reason authd (or this crate's interceptor and layer) gave for refusing a call: the
/// `reason` of its `google.rpc.ErrorInfo` detail in domain `authd`, such as
/// `TOKEN_EXPIRED` or `TOKEN_REVOKED`.
pub fn rejection_reason(status: &Status) -> Option<String> {
    status
        .get_details_error_info()
        .filter(|info| info.domain == ERROR_DOMAIN)
        .map(|info| info.reason)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_tokens_are_read_leniently_and_anything_else_is_missing() {
        assert_eq!(bearer_token(Some("Bearer abc")), Ok("abc"));
        assert_eq!(bearer_token(Some("bearer   abc ")), Ok("abc"));
        for bad in [
            None,
            Some(""),
            Some("Bearer"),
            Some("Bearer  "),
            Some("Basic abc"),
        ] {
            assert_eq!(bearer_token(bad), Err(Rejection::MissingToken), "{bad:?}");
        }
    }

    #[test]
    fn a_rejection_becomes_unauthenticated_with_its_reason() {
        let status = Status::from(Rejection::Invalid(VerifyError::Expired));
        assert_eq!(status.code(), Code::Unauthenticated);
        assert_eq!(status.message(), "the token has expired");
        assert_eq!(
            rejection_reason(&status).as_deref(),
            Some(reason::TOKEN_EXPIRED)
        );
        assert!(reason::ALL.contains(&Rejection::MissingToken.reason()));
        let other_domain = Status::with_error_details(
            Code::Unauthenticated,
            "no",
            ErrorDetails::with_error_info("X", "example.com", []),
        );
        assert_eq!(rejection_reason(&other_domain), None);
        assert_eq!(rejection_reason(&Status::unauthenticated("plain")), None);
    }

    #[test]
    fn a_missing_role_is_permission_denied_naming_the_role() {
        let status = Status::from(RoleRequired {
            role: "billing:read".into(),
        });
        assert_eq!(status.code(), Code::PermissionDenied);
        assert_eq!(
            status.message(),
            "this call requires the role \"billing:read\""
        );
        assert_eq!(
            rejection_reason(&status).as_deref(),
            Some(reason::ROLE_REQUIRED)
        );
        let info = status.get_details_error_info().unwrap();
        assert_eq!(info.domain, reason::DOMAIN);
        assert_eq!(
            info.metadata.get("role").map(String::as_str),
            Some("billing:read")
        );
    }
}
