use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, Validation, decode, decode_header};

use crate::Claims;

/// Clock skew tolerated on `exp` and `nbf`, in seconds.
pub const LEEWAY_SECS: u64 = 30;
/// The `typ` header of an access token (RFC 9068); any other is refused.
pub const TOKEN_TYPE: &str = "at+jwt";

/// Why a token was refused. [`VerifyError::reason`] gives the stable code that authd also
/// sends in its `google.rpc.ErrorInfo` detail.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    #[error("the token is not a well-formed JWT")]
    Malformed,
    #[error("the token's signature does not verify")]
    BadSignature,
    #[error("the token has expired")]
    Expired,
    #[error("the token is not valid yet")]
    NotYetValid,
    #[error("the token was issued by another issuer")]
    WrongIssuer,
    #[error("the token is not meant for this audience")]
    WrongAudience,
    #[error("the token lacks the required claim `{0}`")]
    MissingClaim(String),
    #[error("the token's algorithm is not the one of its key")]
    WrongAlgorithm,
    #[error("the token is not an access token (typ must be at+jwt)")]
    WrongType,
    #[error("the token names a signing key this verifier does not know")]
    UnknownKey,
}

impl VerifyError {
    /// The stable, machine-readable reason (`TOKEN_EXPIRED`, `BAD_SIGNATURE`, ...).
    pub fn reason(&self) -> &'static str {
        match self {
            Self::Malformed => "TOKEN_MALFORMED",
            Self::BadSignature => "BAD_SIGNATURE",
            Self::Expired => "TOKEN_EXPIRED",
            Self::NotYetValid => "TOKEN_NOT_YET_VALID",
            Self::WrongIssuer => "WRONG_ISSUER",
            Self::WrongAudience => "WRONG_AUDIENCE",
            Self::MissingClaim(_) => "MISSING_CLAIM",
            Self::WrongAlgorithm => "WRONG_ALGORITHM",
            Self::WrongType => "WRONG_TOKEN_TYPE",
            Self::UnknownKey => "UNKNOWN_KEY",
        }
    }
}

impl From<jsonwebtoken::errors::Error> for VerifyError {
    fn from(e: jsonwebtoken::errors::Error) -> Self {
        match e.kind() {
            ErrorKind::InvalidSignature => Self::BadSignature,
            ErrorKind::ExpiredSignature => Self::Expired,
            ErrorKind::ImmatureSignature => Self::NotYetValid,
            ErrorKind::InvalidIssuer => Self::WrongIssuer,
            ErrorKind::InvalidAudience => Self::WrongAudience,
            ErrorKind::MissingRequiredClaim(c) => Self::MissingClaim(c.clone()),
            ErrorKind::InvalidAlgorithm
            | ErrorKind::MissingAlgorithm
            | ErrorKind::InvalidAlgorithmName
            | ErrorKind::UnsupportedAlgorithm => Self::WrongAlgorithm,
            _ => Self::Malformed,
        }
    }
}

/// A key that may have signed a token: its id, its algorithm (pinned: a token that names
/// another is refused) and the verification material.
#[derive(Clone)]
pub struct VerificationKey {
    kid: Option<String>,
    algorithm: Algorithm,
    key: DecodingKey,
}

impl std::fmt::Debug for VerificationKey {
    // The material of an HS256 key is the shared secret: never print it.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VerificationKey")
            .field("kid", &self.kid)
            .field("algorithm", &self.algorithm)
            .finish_non_exhaustive()
    }
}

impl VerificationKey {
    /// An HS256 shared secret. With no `kid`, it verifies any token of the right algorithm.
    pub fn hs256(kid: Option<String>, secret: &[u8]) -> Result<Self, VerifyError> {
        Ok(Self {
            kid,
            algorithm: Algorithm::HS256,
            key: DecodingKey::from_secret(secret).map_err(|_| VerifyError::UnknownKey)?,
        })
    }

    /// An Ed25519 public key, as the 32 raw bytes.
    pub fn ed25519(kid: Option<String>, public_key: &[u8]) -> Result<Self, VerifyError> {
        let x = URL_SAFE_NO_PAD.encode(public_key);
        Ok(Self {
            kid,
            algorithm: Algorithm::EdDSA,
            key: DecodingKey::from_ed_components(&x).map_err(|_| VerifyError::UnknownKey)?,
        })
    }

    /// The key id, if the key has one.
    pub fn kid(&self) -> Option<&str> {
        self.kid.as_deref()
    }
}

/// Verifies authd access tokens locally. Cheap to clone? No: share it behind an `Arc`.
#[derive(Debug, Clone)]
pub struct Verifier {
    keys: Vec<(VerificationKey, Validation)>,
    audience: String,
}

impl Verifier {
    /// A verifier for the given keys, issuer and default audience.
    pub fn new(keys: Vec<VerificationKey>, issuer: &str, audience: &str) -> Self {
        let keys = keys
            .into_iter()
            .map(|k| {
                let v = validation(k.algorithm, issuer, audience);
                (k, v)
            })
            .collect();
        Self {
            keys,
            audience: audience.to_owned(),
        }
    }

    /// A verifier for the HS256 shared-secret model.
    pub fn hs256(secret: &[u8], issuer: &str, audience: &str) -> Result<Self, VerifyError> {
        Ok(Self::new(
            vec![VerificationKey::hs256(None, secret)?],
            issuer,
            audience,
        ))
    }

    /// Verify `token` and return its claims. `audience` overrides the default audience.
    pub fn verify(&self, token: &str, audience: Option<&str>) -> Result<Claims, VerifyError> {
        let header = decode_header(token).map_err(|e| header_error(token, e))?;
        if !header.typ.as_deref().is_some_and(|t| {
            t.eq_ignore_ascii_case(TOKEN_TYPE) || t.eq_ignore_ascii_case("application/at+jwt")
        }) {
            return Err(VerifyError::WrongType);
        }
        let (key, validation) = self.key_for(header.kid.as_deref())?;
        let data = match audience.filter(|a| !a.is_empty() && *a != self.audience) {
            None => decode::<Claims>(token, &key.key, validation)?,
            Some(aud) => {
                let mut v = validation.clone();
                v.set_audience(&[aud]);
                decode::<Claims>(token, &key.key, &v)?
            }
        };
        Ok(data.claims)
    }

    fn key_for(&self, kid: Option<&str>) -> Result<&(VerificationKey, Validation), VerifyError> {
        if let Some(kid) = kid
            && let Some(k) = self
                .keys
                .iter()
                .find(|(k, _)| k.kid.as_deref() == Some(kid))
        {
            return Ok(k);
        }
        // A verifier built from a bare shared secret has one key without an id.
        match self.keys.as_slice() {
            [only] if only.0.kid.is_none() => Ok(only),
            _ => Err(VerifyError::UnknownKey),
        }
    }

    /// Whether a key with this id is known.
    pub fn knows_kid(&self, kid: &str) -> bool {
        self.keys.iter().any(|(k, _)| k.kid() == Some(kid))
    }
}

fn validation(alg: Algorithm, issuer: &str, audience: &str) -> Validation {
    let mut v = Validation::new(alg);
    v.leeway = LEEWAY_SECS;
    v.validate_exp = true;
    v.validate_nbf = true;
    v.validate_aud = true;
    v.set_issuer(&[issuer]);
    v.set_audience(&[audience]);
    v.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
    v
}

/// jsonwebtoken refuses a header whose `alg` it does not know (`none`, say) as a JSON
/// error; tell that case apart so the caller hears "wrong algorithm", not "malformed".
fn header_error(token: &str, e: jsonwebtoken::errors::Error) -> VerifyError {
    #[derive(serde::Deserialize)]
    struct AlgOnly {
        alg: String,
    }
    let names_alg = token
        .split('.')
        .next()
        .and_then(|h| URL_SAFE_NO_PAD.decode(h).ok())
        .and_then(|b| serde_json::from_slice::<AlgOnly>(&b).ok())
        .is_some_and(|h| !h.alg.is_empty());
    if names_alg {
        VerifyError::WrongAlgorithm
    } else {
        VerifyError::from(e)
    }
}
