//! Verify authd access tokens where they are used, with no call to authd.
//!
//! A [`Verifier`] holds the keys that may have signed a token (the HS256 shared secret, or
//! Ed25519 public keys) and applies the same rules as the authd server: the algorithm is
//! pinned by the key and never taken from the token, `exp` is required, `iss` and `aud` are
//! checked with a 30 s leeway, and the header must say `typ: at+jwt`. A refusal comes back
//! as a [`VerifyError`] that names its reason.
//!
//! ```
//! use authd_client::{Verifier, VerifyError};
//!
//! let secret = b"0123456789abcdef0123456789abcdef";
//! let verifier = Verifier::hs256(secret, "authd", "authd").unwrap();
//! let err = verifier.verify("not-a-token", None).unwrap_err();
//! assert_eq!(err, VerifyError::Malformed);
//! assert_eq!(err.reason(), "TOKEN_MALFORMED");
//! ```

mod claims;
mod verifier;

pub use claims::Claims;
pub use verifier::{LEEWAY_SECS, TOKEN_TYPE, VerificationKey, Verifier, VerifyError};
