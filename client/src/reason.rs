//! Every stable reason authd and this crate give for a refusal, in one place.
//!
//! A refusal travels as a `google.rpc.ErrorInfo` detail whose `domain` is [`DOMAIN`] and
//! whose `reason` is one of these constants. authd's README lists them all; [`ALL`] is the
//! list its test compares against. Available without the `grpc` feature.

/// The `domain` of the `google.rpc.ErrorInfo` detail.
pub const DOMAIN: &str = "authd";

// The access token fails a check (`VerifyError::reason`).
/// The token is not a well-formed JWT.
pub const TOKEN_MALFORMED: &str = "TOKEN_MALFORMED";
/// The token's signature does not verify.
pub const BAD_SIGNATURE: &str = "BAD_SIGNATURE";
/// The token has expired.
pub const TOKEN_EXPIRED: &str = "TOKEN_EXPIRED";
/// The token is not valid yet (`nbf`).
pub const TOKEN_NOT_YET_VALID: &str = "TOKEN_NOT_YET_VALID";
/// The token was issued by another issuer.
pub const WRONG_ISSUER: &str = "WRONG_ISSUER";
/// The token is not meant for this audience.
pub const WRONG_AUDIENCE: &str = "WRONG_AUDIENCE";
/// The token lacks a required claim.
pub const MISSING_CLAIM: &str = "MISSING_CLAIM";
/// The token's algorithm is not the one of its key.
pub const WRONG_ALGORITHM: &str = "WRONG_ALGORITHM";
/// The token is not an access token (`typ` is not `at+jwt`).
pub const WRONG_TOKEN_TYPE: &str = "WRONG_TOKEN_TYPE";
/// The token names a signing key the verifier does not know.
pub const UNKNOWN_KEY: &str = "UNKNOWN_KEY";

/// The request carries no `authorization: Bearer <token>` header (this crate's interceptor
/// and layer; authd's admin API and `ChangePassword`).
pub const TOKEN_MISSING: &str = "TOKEN_MISSING";

/// The caller's token is valid but does not grant a role the call requires
/// (PERMISSION_DENIED). Given by authd's admin API without the admin role, and by this
/// crate's role checks (`AuthLayer::require_role`, `AuthInterceptor::require_role`,
/// `require_role`); the `ErrorInfo` metadata names the role under `role`.
pub const ROLE_REQUIRED: &str = "ROLE_REQUIRED";

// What only authd knows or decides.
/// The token's session was ended or its user disabled.
pub const TOKEN_REVOKED: &str = "TOKEN_REVOKED";
/// Unknown user or wrong password (one answer for both).
pub const INVALID_CREDENTIALS: &str = "INVALID_CREDENTIALS";
/// The user is disabled.
pub const USER_DISABLED: &str = "USER_DISABLED";
/// Not a refresh token.
pub const REFRESH_TOKEN_MALFORMED: &str = "REFRESH_TOKEN_MALFORMED";
/// A refresh token authd does not know.
pub const REFRESH_TOKEN_UNKNOWN: &str = "REFRESH_TOKEN_UNKNOWN";
/// A refresh token past its lifetime.
pub const REFRESH_TOKEN_EXPIRED: &str = "REFRESH_TOKEN_EXPIRED";
/// A spent refresh token came back; its session is now revoked.
pub const REFRESH_TOKEN_REUSED: &str = "REFRESH_TOKEN_REUSED";
/// The session has ended (logout, reuse, user disabled).
pub const SESSION_REVOKED: &str = "SESSION_REVOKED";
/// Too many failed logins, or too many logins in progress.
pub const THROTTLED: &str = "THROTTLED";
/// An audience the server does not allow.
pub const AUDIENCE_NOT_ALLOWED: &str = "AUDIENCE_NOT_ALLOWED";
/// A username the rules refuse.
pub const INVALID_USERNAME: &str = "INVALID_USERNAME";
/// A password the policy refuses.
pub const PASSWORD_TOO_WEAK: &str = "PASSWORD_TOO_WEAK";
/// Any other malformed field.
pub const INVALID_INPUT: &str = "INVALID_INPUT";
/// The username, or one that looks the same, is taken.
pub const USERNAME_TAKEN: &str = "USERNAME_TAKEN";
/// Self sign-up is off.
pub const REGISTRATION_CLOSED: &str = "REGISTRATION_CLOSED";
/// A role name the syntax refuses.
pub const INVALID_ROLE: &str = "INVALID_ROLE";
/// No such user (admin API, `authd user ...`).
pub const USER_NOT_FOUND: &str = "USER_NOT_FOUND";
/// No such service account.
pub const CLIENT_NOT_FOUND: &str = "CLIENT_NOT_FOUND";
/// Unknown client id or wrong client secret (one answer for both).
pub const INVALID_CLIENT: &str = "INVALID_CLIENT";
/// The service account is disabled.
pub const CLIENT_DISABLED: &str = "CLIENT_DISABLED";
/// A service account by that name exists.
pub const CLIENT_NAME_TAKEN: &str = "CLIENT_NAME_TAKEN";
/// A page token authd did not issue.
pub const PAGE_TOKEN_INVALID: &str = "PAGE_TOKEN_INVALID";
/// The call needs a person's token (ChangePassword), and a service account's came.
pub const NOT_A_USER: &str = "NOT_A_USER";

/// Every reason above, each once. authd's tests check that the server and the verifier give
/// no other, and that the README's table lists exactly these.
pub const ALL: &[&str] = &[
    TOKEN_MALFORMED,
    BAD_SIGNATURE,
    TOKEN_EXPIRED,
    TOKEN_NOT_YET_VALID,
    WRONG_ISSUER,
    WRONG_AUDIENCE,
    MISSING_CLAIM,
    WRONG_ALGORITHM,
    WRONG_TOKEN_TYPE,
    UNKNOWN_KEY,
    TOKEN_MISSING,
    ROLE_REQUIRED,
    TOKEN_REVOKED,
    INVALID_CREDENTIALS,
    USER_DISABLED,
    REFRESH_TOKEN_MALFORMED,
    REFRESH_TOKEN_UNKNOWN,
    REFRESH_TOKEN_EXPIRED,
    REFRESH_TOKEN_REUSED,
    SESSION_REVOKED,
    THROTTLED,
    AUDIENCE_NOT_ALLOWED,
    INVALID_USERNAME,
    PASSWORD_TOO_WEAK,
    INVALID_INPUT,
    USERNAME_TAKEN,
    REGISTRATION_CLOSED,
    INVALID_ROLE,
    USER_NOT_FOUND,
    CLIENT_NOT_FOUND,
    INVALID_CLIENT,
    CLIENT_DISABLED,
    CLIENT_NAME_TAKEN,
    PAGE_TOKEN_INVALID,
    NOT_A_USER,
];

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    #[test]
    fn reasons_are_distinct_upper_snake_case() {
        let set: HashSet<_> = ALL.iter().collect();
        assert_eq!(set.len(), ALL.len(), "a reason is listed twice");
        for r in ALL {
            assert!(
                !r.is_empty()
                    && r.chars().all(|c| c.is_ascii_uppercase() || c == '_')
                    && !r.starts_with('_')
                    && !r.ends_with('_'),
                "{r}"
            );
        }
    }
}
