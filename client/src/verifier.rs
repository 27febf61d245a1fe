use std::borrow::Cow;
use std::time::{SystemTime, UNIX_EPOCH};

use base64::DecodeSliceError;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ed25519_dalek::{Signature, VerifyingKey};
use hmac::{Hmac, KeyInit, Mac};
use serde::Deserialize;
use serde::de::IgnoredAny;
use sha2::Sha256;

use crate::Claims;
use crate::claims::Object;

/// Clock skew tolerated on `exp` and `nbf`, in seconds.
pub const LEEWAY_SECS: u64 = 30;
/// The `typ` header of an access token (RFC 9068); any other is refused.
pub const TOKEN_TYPE: &str = "at+jwt";

/// Why a token was refused. [`VerifyError::reason`] gives the stable code that authd also
/// sends in its `google.rpc.ErrorInfo` detail.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    /// Not three base64url segments of JSON header and claims (`TOKEN_MALFORMED`).
    #[error("the token is not a well-formed JWT")]
    Malformed,
    /// The signature does not verify with the token's key (`BAD_SIGNATURE`).
    #[error("the token's signature does not verify")]
    BadSignature,
    /// `exp` is past, beyond the leeway (`TOKEN_EXPIRED`).
    #[error("the token has expired")]
    Expired,
    /// `nbf` is ahead, beyond the leeway (`TOKEN_NOT_YET_VALID`).
    #[error("the token is not valid yet")]
    NotYetValid,
    /// `iss` is not the expected issuer (`WRONG_ISSUER`).
    #[error("the token was issued by another issuer")]
    WrongIssuer,
    /// `aud` does not name the expected audience (`WRONG_AUDIENCE`).
    #[error("the token is not meant for this audience")]
    WrongAudience,
    /// A required claim is absent (`MISSING_CLAIM`); the claim's name.
    #[error("the token lacks the required claim `{0}`")]
    MissingClaim(String),
    /// The header's `alg` is not the algorithm of the key (`WRONG_ALGORITHM`).
    #[error("the token's algorithm is not the one of its key")]
    WrongAlgorithm,
    /// The header's `typ` is not `at+jwt` (`WRONG_TOKEN_TYPE`).
    #[error("the token is not an access token (typ must be at+jwt)")]
    WrongType,
    /// The header's `kid` names no key this verifier holds (`UNKNOWN_KEY`).
    #[error("the token names a signing key this verifier does not know")]
    UnknownKey,
}

impl VerifyError {
    /// The stable, machine-readable reason (`TOKEN_EXPIRED`, `BAD_SIGNATURE`, ...).
    pub fn reason(&self) -> &'static str {
        match self {
            Self::Malformed => crate::reason::TOKEN_MALFORMED,
            Self::BadSignature => crate::reason::BAD_SIGNATURE,
            Self::Expired => crate::reason::TOKEN_EXPIRED,
            Self::NotYetValid => crate::reason::TOKEN_NOT_YET_VALID,
            Self::WrongIssuer => crate::reason::WRONG_ISSUER,
            Self::WrongAudience => crate::reason::WRONG_AUDIENCE,
            Self::MissingClaim(_) => crate::reason::MISSING_CLAIM,
            Self::WrongAlgorithm => crate::reason::WRONG_ALGORITHM,
            Self::WrongType => crate::reason::WRONG_TOKEN_TYPE,
            Self::UnknownKey => crate::reason::UNKNOWN_KEY,
        }
    }
}

/// The algorithms authd signs with. Anything else in a header (`none`, `RS256`, `HS512`...)
/// is refused before a key is even looked at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Alg {
    Hs256,
    EdDsa,
}

impl Alg {
    fn from_header(alg: &str) -> Option<Self> {
        match alg {
            "HS256" => Some(Self::Hs256),
            "EdDSA" => Some(Self::EdDsa),
            _ => None,
        }
    }
}

/// Prepared verification material: the HMAC state is keyed once here, not per token.
#[derive(Clone)]
enum Material {
    Hs256(Hmac<Sha256>),
    Ed25519(VerifyingKey),
}

impl Material {
    fn alg(&self) -> Alg {
        match self {
            Self::Hs256(_) => Alg::Hs256,
            Self::Ed25519(_) => Alg::EdDsa,
        }
    }

    fn verify(&self, signing_input: &[u8], signature: &[u8]) -> Result<(), VerifyError> {
        match self {
            Self::Hs256(keyed) => {
                let mut mac = keyed.clone();
                mac.update(signing_input);
                // verify_slice compares in constant time and refuses a wrong length.
                mac.verify_slice(signature)
                    .map_err(|_| VerifyError::BadSignature)
            }
            Self::Ed25519(key) => {
                let sig =
                    Signature::from_slice(signature).map_err(|_| VerifyError::BadSignature)?;
                // Weak (small-order) keys are refused when the key is built, so the plain
                // RFC 8032 check is enough here; it already refuses a non-canonical `s`.
                ed25519_dalek::Verifier::verify(key, signing_input, &sig)
                    .map_err(|_| VerifyError::BadSignature)
            }
        }
    }
}

/// A key that may have signed a token: its id, its algorithm (pinned: a token that names
/// another is refused) and the verification material.
#[derive(Clone)]
pub struct VerificationKey {
    kid: Option<String>,
    material: Material,
}

impl std::fmt::Debug for VerificationKey {
    // The material of an HS256 key is the shared secret: never print it.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VerificationKey")
            .field("kid", &self.kid)
            .field("algorithm", &self.algorithm())
            .finish_non_exhaustive()
    }
}

impl VerificationKey {
    /// An HS256 shared secret. With no `kid`, it verifies any token of the right algorithm.
    pub fn hs256(kid: Option<String>, secret: &[u8]) -> Result<Self, VerifyError> {
        if secret.is_empty() {
            return Err(VerifyError::UnknownKey);
        }
        let keyed = Hmac::<Sha256>::new_from_slice(secret).map_err(|_| VerifyError::UnknownKey)?;
        Ok(Self {
            kid,
            material: Material::Hs256(keyed),
        })
    }

    /// An Ed25519 public key, as the 32 raw bytes. A key that is not a valid curve point, or
    /// a weak (small-order) one that would let anyone forge signatures, is refused.
    pub fn ed25519(kid: Option<String>, public_key: &[u8]) -> Result<Self, VerifyError> {
        let bytes: &[u8; 32] = public_key.try_into().map_err(|_| VerifyError::UnknownKey)?;
        let key = VerifyingKey::from_bytes(bytes).map_err(|_| VerifyError::UnknownKey)?;
        if key.is_weak() {
            return Err(VerifyError::UnknownKey);
        }
        Ok(Self {
            kid,
            material: Material::Ed25519(key),
        })
    }

    /// The key id, if the key has one.
    pub fn kid(&self) -> Option<&str> {
        self.kid.as_deref()
    }

    /// The JWS `alg` this key verifies: `HS256` or `EdDSA`.
    pub fn algorithm(&self) -> &'static str {
        match self.material.alg() {
            Alg::Hs256 => "HS256",
            Alg::EdDsa => "EdDSA",
        }
    }

    /// The raw Ed25519 public key; `None` for an HS256 secret.
    pub fn ed25519_public_key(&self) -> Option<[u8; 32]> {
        match &self.material {
            Material::Ed25519(k) => Some(k.to_bytes()),
            Material::Hs256(_) => None,
        }
    }
}

/// Verifies authd access tokens locally. Verification takes `&self` and allocates only the
/// decoded parts, so one `Verifier` (behind an `Arc`) serves every request.
#[derive(Debug, Clone)]
pub struct Verifier {
    keys: Vec<VerificationKey>,
    issuer: String,
    audience: String,
}

/// The JOSE header fields authd's tokens use. Borrowed where the JSON has no escapes.
#[derive(Deserialize)]
struct RawHeader<'a> {
    #[serde(borrow)]
    alg: Cow<'a, str>,
    #[serde(borrow, default)]
    typ: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    kid: Option<Cow<'a, str>>,
    /// RFC 7515 §4.1.11: a token that marks extensions critical must be refused by a
    /// verifier that does not implement them, and this one implements none.
    #[serde(default)]
    crit: Option<IgnoredAny>,
}

/// The claims as they come, every one optional, so a missing one is named in the error
/// instead of surfacing as a JSON error.
#[derive(Deserialize)]
struct RawClaims {
    iss: Option<String>,
    sub: Option<String>,
    #[serde(default, deserialize_with = "crate::claims::de_opt_aud")]
    aud: Option<Vec<String>>,
    exp: Option<i64>,
    iat: Option<i64>,
    nbf: Option<i64>,
    jti: Option<String>,
    sid: Option<String>,
    username: Option<String>,
    #[serde(default)]
    roles: Vec<String>,
    client_id: Option<String>,
}

fn required<T>(value: Option<T>, name: &str) -> Result<T, VerifyError> {
    value.ok_or_else(|| VerifyError::MissingClaim(name.to_owned()))
}

/// Largest header decoded; authd's are under 100 bytes.
const MAX_HEADER_BYTES: usize = 1024;
/// Largest signature: Ed25519's 64 bytes (HS256's is 32).
const MAX_SIGNATURE_BYTES: usize = 64;

/// Decode into a stack buffer: the header and the signature need no allocation.
fn b64_into<'b>(
    part: &str,
    buf: &'b mut [u8],
    too_long: VerifyError,
) -> Result<&'b [u8], VerifyError> {
    match URL_SAFE_NO_PAD.decode_slice(part, buf) {
        Ok(n) => Ok(&buf[..n]),
        Err(DecodeSliceError::OutputSliceTooSmall) => Err(too_long),
        Err(DecodeSliceError::DecodeError(_)) => Err(VerifyError::Malformed),
    }
}

fn b64(part: &str) -> Result<Vec<u8>, VerifyError> {
    URL_SAFE_NO_PAD
        .decode(part)
        .map_err(|_| VerifyError::Malformed)
}

/// JSON text is UTF-8 (RFC 8259 §8.1). `serde_json::from_slice` checks that only in the
/// strings it keeps: an unknown member's value could hold any bytes. Check it all.
fn utf8(json: &[u8]) -> Result<&str, VerifyError> {
    std::str::from_utf8(json).map_err(|_| VerifyError::Malformed)
}

fn check_time(exp: i64, nbf: i64, now: i64) -> Result<(), VerifyError> {
    let leeway = LEEWAY_SECS as i64;
    if exp.saturating_add(leeway) < now {
        return Err(VerifyError::Expired);
    }
    if nbf.saturating_sub(leeway) > now {
        return Err(VerifyError::NotYetValid);
    }
    Ok(())
}

fn now_secs() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        // A clock before 1970 makes every token look not yet valid: refused, not accepted.
        .unwrap_or(0)
}

fn is_access_token_type(typ: Option<&str>) -> bool {
    typ.is_some_and(|t| {
        t.eq_ignore_ascii_case(TOKEN_TYPE) || t.eq_ignore_ascii_case("application/at+jwt")
    })
}

impl Verifier {
    /// A verifier for the given keys, issuer and default audience.
    pub fn new(keys: Vec<VerificationKey>, issuer: &str, audience: &str) -> Self {
        Self {
            keys,
            issuer: issuer.to_owned(),
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
    ///
    /// The checks, in order: three base64url parts; the header's `typ` is `at+jwt`; its
    /// `alg` is HS256 or EdDSA; a key is known for its `kid`; that key's algorithm is the
    /// header's; the signature; then `exp` (required), `nbf`, `iss`, `aud` and the presence
    /// of the other claims authd always sets.
    pub fn verify(&self, token: &str, audience: Option<&str>) -> Result<Claims, VerifyError> {
        self.verify_at(token, audience, now_secs())
    }

    fn verify_at(
        &self,
        token: &str,
        audience: Option<&str>,
        now: i64,
    ) -> Result<Claims, VerifyError> {
        let mut parts = token.split('.');
        let (Some(header_b64), Some(payload_b64), Some(signature_b64), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(VerifyError::Malformed);
        };

        let mut header_buf = [0u8; MAX_HEADER_BYTES];
        let header_json = b64_into(header_b64, &mut header_buf, VerifyError::Malformed)?;
        let Object(header): Object<RawHeader<'_>> =
            serde_json::from_str(utf8(header_json)?).map_err(|_| VerifyError::Malformed)?;
        if header.crit.is_some() {
            return Err(VerifyError::Malformed);
        }
        if !is_access_token_type(header.typ.as_deref()) {
            return Err(VerifyError::WrongType);
        }
        let alg = Alg::from_header(&header.alg).ok_or(VerifyError::WrongAlgorithm)?;
        let key = self.key_for(header.kid.as_deref())?;
        // The key pins the algorithm: an HS256 token is never checked against an Ed25519
        // key's bytes used as an HMAC secret, nor the reverse.
        if key.material.alg() != alg {
            return Err(VerifyError::WrongAlgorithm);
        }

        let mut signature_buf = [0u8; MAX_SIGNATURE_BYTES];
        let signature = b64_into(signature_b64, &mut signature_buf, VerifyError::BadSignature)?;
        let signing_input = &token[..header_b64.len() + 1 + payload_b64.len()];
        key.material.verify(signing_input.as_bytes(), signature)?;

        let payload = b64(payload_b64)?;
        let Object(raw): Object<RawClaims> =
            serde_json::from_str(utf8(&payload)?).map_err(|_| VerifyError::Malformed)?;
        self.check_claims(raw, audience, now)
    }

    fn check_claims(
        &self,
        raw: RawClaims,
        audience: Option<&str>,
        now: i64,
    ) -> Result<Claims, VerifyError> {
        let exp = required(raw.exp, "exp")?;
        let nbf = required(raw.nbf, "nbf")?;
        check_time(exp, nbf, now)?;
        let iss = required(raw.iss, "iss")?;
        if iss != self.issuer {
            return Err(VerifyError::WrongIssuer);
        }
        let aud = required(raw.aud, "aud")?;
        self.check_audience(&aud, audience)?;
        Ok(Claims {
            iss,
            sub: required(raw.sub, "sub")?,
            aud,
            exp,
            iat: required(raw.iat, "iat")?,
            nbf,
            jti: required(raw.jti, "jti")?,
            sid: required(raw.sid, "sid")?,
            username: required(raw.username, "username")?,
            roles: raw.roles,
            // Empty is absent, as in `Validate`'s proto claims: one answer to `is_service`.
            client_id: raw.client_id.filter(|id| !id.is_empty()),
        })
    }

    /// The rules that change with time and with the caller, applied again to claims this
    /// verifier accepted earlier (a cache of verified tokens): not expired at `now` (Unix
    /// seconds, with the same leeway), and for `audience`. Signature and issuer do not
    /// change, so they are not checked again.
    pub fn recheck(
        &self,
        claims: &Claims,
        audience: Option<&str>,
        now: i64,
    ) -> Result<(), VerifyError> {
        check_time(claims.exp, claims.nbf, now)?;
        self.check_audience(&claims.aud, audience)
    }

    fn check_audience(&self, aud: &[String], audience: Option<&str>) -> Result<(), VerifyError> {
        let expected = audience.filter(|a| !a.is_empty()).unwrap_or(&self.audience);
        if !aud.iter().any(|a| a == expected) {
            return Err(VerifyError::WrongAudience);
        }
        Ok(())
    }

    fn key_for(&self, kid: Option<&str>) -> Result<&VerificationKey, VerifyError> {
        if let Some(kid) = kid
            && let Some(k) = self.keys.iter().find(|k| k.kid.as_deref() == Some(kid))
        {
            return Ok(k);
        }
        // A verifier built from a bare shared secret has one key without an id.
        match self.keys.as_slice() {
            [only] if only.kid.is_none() => Ok(only),
            _ => Err(VerifyError::UnknownKey),
        }
    }

    /// Whether a key with this id is known.
    pub fn knows_kid(&self, kid: &str) -> bool {
        self.keys.iter().any(|k| k.kid() == Some(kid))
    }

    /// The keys this verifier trusts.
    pub fn keys(&self) -> &[VerificationKey] {
        &self.keys
    }

    /// The issuer every token must name.
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// The audience a token must name when [`Verifier::verify`] is given none.
    pub fn audience(&self) -> &str {
        &self.audience
    }
}

/// The `kid` a token's header names, read without verifying anything: for deciding whether
/// an unknown key is worth a JWKS refetch. `None` for a malformed token or one without kid.
pub fn token_kid(token: &str) -> Option<String> {
    let header_b64 = token.split('.').next()?;
    let mut buf = [0u8; MAX_HEADER_BYTES];
    let json = b64_into(header_b64, &mut buf, VerifyError::Malformed).ok()?;
    let Object(header): Object<RawHeader<'_>> = serde_json::from_str(utf8(json).ok()?).ok()?;
    header.kid.map(Cow::into_owned)
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;
    use crate::test_util::{TestKey, claims, claims_json, hmac_sha256, now};

    const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";

    fn hs() -> TestKey {
        TestKey::hs256("hs256-1", SECRET)
    }

    fn ed() -> TestKey {
        TestKey::ed25519("ed-1", [1; 32])
    }

    fn hs_verifier() -> Verifier {
        Verifier::hs256(SECRET, "authd", "authd").unwrap()
    }

    fn ed_verifier(keys: &[&TestKey]) -> Verifier {
        Verifier::new(
            keys.iter().map(|k| k.verification_key()).collect(),
            "authd",
            "authd",
        )
    }

    /// `claims("ada")` as JSON, edited.
    fn with(edit: impl FnOnce(&mut serde_json::Map<String, Value>)) -> Value {
        let mut c = claims_json(&claims("ada"));
        if let Value::Object(map) = &mut c {
            edit(map);
        }
        c
    }

    fn b64(v: impl AsRef<[u8]>) -> String {
        URL_SAFE_NO_PAD.encode(v)
    }

    #[test]
    fn authd_shaped_tokens_verify_with_either_key_kind() {
        let c = claims("ada");
        assert_eq!(hs_verifier().verify(&hs().mint(&c), None), Ok(c.clone()));
        assert_eq!(ed_verifier(&[&ed()]).verify(&ed().mint(&c), None), Ok(c));
    }

    /// Tokens minted the way authd mints them (jsonwebtoken, src/token.rs) verify here, and
    /// this crate's test minter agrees with jsonwebtoken.
    #[test]
    fn tokens_from_jsonwebtoken_verify_and_test_tokens_verify_with_jsonwebtoken() {
        use ed25519_dalek::pkcs8::EncodePrivateKey;
        use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};

        let c = claims("ada");
        let header = |alg, kid: &str| {
            let mut h = Header::new(alg);
            h.kid = Some(kid.into());
            h.typ = Some(TOKEN_TYPE.into());
            h
        };
        let token = jsonwebtoken::encode(
            &header(Algorithm::HS256, "hs256-1"),
            &c,
            &EncodingKey::from_secret(SECRET).unwrap(),
        )
        .unwrap();
        assert_eq!(hs_verifier().verify(&token, None), Ok(c.clone()));

        let signing = ed25519_dalek::SigningKey::from_bytes(&[1; 32]);
        let der = signing.to_pkcs8_der().unwrap();
        let token = jsonwebtoken::encode(
            &header(Algorithm::EdDSA, "ed-1"),
            &c,
            &EncodingKey::from_ed_der(der.as_bytes()),
        )
        .unwrap();
        assert_eq!(ed_verifier(&[&ed()]).verify(&token, None), Ok(c.clone()));

        let mut v = Validation::new(Algorithm::EdDSA);
        v.set_audience(&["authd"]);
        let x = b64(ed().public_key().unwrap());
        let decoded = jsonwebtoken::decode::<Claims>(
            ed().mint(&c),
            &DecodingKey::from_ed_components(&x).unwrap(),
            &v,
        )
        .unwrap();
        assert_eq!(decoded.claims, c);
    }

    #[test]
    fn malformed_tokens() {
        let v = hs_verifier();
        let good = hs().mint(&claims("ada"));
        let (input, sig) = good.rsplit_once('.').unwrap();
        let (header, payload) = input.split_once('.').unwrap();
        let signed = |h: &str, p: &str| {
            let input = format!("{h}.{p}");
            format!("{input}.{}", b64(hmac_sha256(SECRET, input.as_bytes())))
        };
        for (token, what) in [
            (String::new(), "empty"),
            ("not-a-token".into(), "no dots"),
            (format!("{header}.{payload}"), "two parts"),
            (format!("{good}.x"), "four parts"),
            (format!("{header}=.{payload}.{sig}"), "padded base64"),
            (format!("!{header}.{payload}.{sig}"), "header not base64url"),
            (signed(&b64("not json"), payload), "header not JSON"),
            (
                signed(&b64(r#"{"typ":"at+jwt","kid":"k"}"#), payload),
                "header without alg",
            ),
            (
                format!("{header}.{payload}.{sig}!"),
                "signature not base64url",
            ),
            (signed(header, &b64("not json")), "claims not JSON"),
            (signed(header, "!!"), "claims not base64url"),
            (
                signed(header, &b64(r#"{"exp":1.5e12}"#)),
                "exp not an integer",
            ),
        ] {
            assert_eq!(
                v.verify(&token, None),
                Err(VerifyError::Malformed),
                "{what}"
            );
        }
        let crit = hs().mint_raw(
            &json!({"alg":"HS256","typ":"at+jwt","crit":["exp"],"exp":1}),
            &claims_json(&claims("ada")),
        );
        assert_eq!(v.verify(&crit, None), Err(VerifyError::Malformed), "crit");
    }

    /// serde reads a struct from a JSON array too, in field order; a JWT's header and claims
    /// are JSON objects (RFC 7515 §4, RFC 7519 §7.2) and nothing else passes for one.
    #[test]
    fn header_and_claims_must_be_objects() {
        let c = claims("ada");
        let positional = json!([
            c.iss, c.sub, c.aud, c.exp, c.iat, c.nbf, c.jti, c.sid, c.username
        ]);
        let token = hs().mint_raw(&hs().header(), &positional);
        assert_eq!(
            hs_verifier().verify(&token, None),
            Err(VerifyError::Malformed)
        );
        let array_header = hs().mint_raw(&json!(["HS256", "at+jwt", "hs256-1"]), &claims_json(&c));
        assert_eq!(
            hs_verifier().verify(&array_header, None),
            Err(VerifyError::Malformed)
        );
        assert_eq!(token_kid(&array_header), None);
    }

    /// JSON is UTF-8: other bytes, even in a member the verifier ignores (which
    /// `serde_json::from_slice` skips unchecked), make the token malformed.
    #[test]
    fn header_and_claims_must_be_utf8() {
        let v = hs_verifier();
        let signed = |header: &[u8], payload: &[u8]| {
            let input = format!("{}.{}", b64(header), b64(payload));
            format!("{input}.{}", b64(hmac_sha256(SECRET, input.as_bytes())))
        };
        let with_junk = |json: &str| {
            let mut bytes = json.as_bytes()[..json.len() - 1].to_vec();
            bytes.extend_from_slice(b",\"x\":\"\xff\xfe\"}");
            bytes
        };
        let header = hs().header().to_string();
        let claims = claims_json(&claims("ada")).to_string();
        assert!(
            v.verify(&signed(header.as_bytes(), claims.as_bytes()), None)
                .is_ok()
        );
        assert_eq!(
            v.verify(&signed(header.as_bytes(), &with_junk(&claims)), None),
            Err(VerifyError::Malformed)
        );
        let junk_header = signed(&with_junk(&header), claims.as_bytes());
        assert_eq!(v.verify(&junk_header, None), Err(VerifyError::Malformed));
        assert_eq!(token_kid(&junk_header), None);
    }

    #[test]
    fn bad_signatures() {
        let c = claims("ada");
        for (key, verifier) in [(hs(), hs_verifier()), (ed(), ed_verifier(&[&ed()]))] {
            let good = key.mint(&c);
            let (input, sig) = good.rsplit_once('.').unwrap();
            let (header, _) = input.split_once('.').unwrap();
            let mut admin = c.clone();
            admin.username = "admin".into();
            let tampered = format!(
                "{header}.{}.{sig}",
                b64(serde_json::to_vec(&admin).unwrap())
            );
            // Cut at the front: the tail keeps its canonical padding bits.
            let truncated = format!("{input}.{}", &sig[4..]);
            let empty = format!("{input}.");
            for token in [tampered, truncated, empty] {
                assert_eq!(
                    verifier.verify(&token, None),
                    Err(VerifyError::BadSignature),
                    "{}",
                    key.alg()
                );
            }
        }
        // Signed by another key that claims the same kid.
        let impostor = TestKey::ed25519("ed-1", [2; 32]).mint(&c);
        assert_eq!(
            ed_verifier(&[&ed()]).verify(&impostor, None),
            Err(VerifyError::BadSignature)
        );
        let other_secret =
            TestKey::hs256("hs256-1", b"another secret, as long as the first!").mint(&c);
        assert_eq!(
            hs_verifier().verify(&other_secret, None),
            Err(VerifyError::BadSignature)
        );
    }

    #[test]
    fn expiry_and_not_before_allow_the_leeway_and_no_more() {
        let v = hs_verifier();
        let t = now();
        let check = |exp: i64, nbf: i64| {
            let mut c = claims("ada");
            (c.exp, c.nbf) = (exp, nbf);
            v.verify(&hs().mint(&c), None).map(|_| ())
        };
        assert_eq!(check(t - 60, t - 900), Err(VerifyError::Expired));
        assert_eq!(check(t - 10, t - 900), Ok(()), "within the leeway");
        assert_eq!(check(t + 900, t + 120), Err(VerifyError::NotYetValid));
        assert_eq!(check(t + 900, t + 10), Ok(()), "within the leeway");
        // Exactly at the edge of the leeway, with the clock pinned.
        let mut c = claims("ada");
        (c.exp, c.nbf) = (1_000, 0);
        let token = hs().mint(&c);
        assert!(v.verify_at(&token, None, 1_030).is_ok());
        assert_eq!(v.verify_at(&token, None, 1_031), Err(VerifyError::Expired));
        (c.exp, c.nbf) = (i64::MAX, 1_000);
        let token = hs().mint(&c);
        assert!(
            v.verify_at(&token, None, 970).is_ok(),
            "no overflow on a huge exp"
        );
        assert_eq!(
            v.verify_at(&token, None, 969),
            Err(VerifyError::NotYetValid)
        );
    }

    #[test]
    fn issuer_and_audience() {
        let v = hs_verifier();
        let mint = |edit: fn(&mut Claims)| {
            let mut c = claims("ada");
            edit(&mut c);
            hs().mint(&c)
        };
        assert_eq!(
            v.verify(&mint(|c| c.iss = "evil".into()), None),
            Err(VerifyError::WrongIssuer)
        );
        let for_billing = mint(|c| c.aud = vec!["billing".into()]);
        assert_eq!(
            v.verify(&for_billing, None),
            Err(VerifyError::WrongAudience)
        );
        assert!(
            v.verify(&for_billing, Some("billing")).is_ok(),
            "audience override"
        );
        assert!(
            v.verify(&for_billing, Some("")).is_err(),
            "empty means the default"
        );
        let both = mint(|c| c.aud = vec!["billing".into(), "authd".into()]);
        assert!(v.verify(&both, None).is_ok());
        assert!(v.verify(&both, Some("billing")).is_ok());
        assert_eq!(
            v.verify(&both, Some("mail")),
            Err(VerifyError::WrongAudience)
        );
    }

    #[test]
    fn required_claims_are_named_when_missing() {
        let v = hs_verifier();
        for claim in [
            "exp", "iss", "aud", "sub", "nbf", "iat", "jti", "sid", "username",
        ] {
            let token = hs().mint_raw(&hs().header(), &with(|c| drop(c.remove(claim))));
            assert_eq!(
                v.verify(&token, None),
                Err(VerifyError::MissingClaim(claim.into())),
                "{claim}"
            );
        }
        let no_roles = hs().mint_raw(&hs().header(), &with(|c| drop(c.remove("roles"))));
        assert_eq!(
            v.verify(&no_roles, None).unwrap().roles,
            Vec::<String>::new()
        );
    }

    #[test]
    fn service_tokens_keep_their_client_id_and_roles() {
        let mut c = claims("reports");
        c.sub = "svc-reports".into();
        c.client_id = Some("svc-reports".into());
        c.roles = vec!["billing:read".into()];
        let verified = hs_verifier().verify(&hs().mint(&c), None).unwrap();
        assert!(verified.is_service() && verified.has_role("billing:read"));
        assert_eq!(verified, c);
        let empty = hs().mint_raw(
            &hs().header(),
            &with(|c| drop(c.insert("client_id".into(), "".into()))),
        );
        assert_eq!(hs_verifier().verify(&empty, None).unwrap().client_id, None);
    }

    #[test]
    fn the_algorithm_is_pinned_by_the_key() {
        let c = claims_json(&claims("ada"));
        // alg none, with and without a signature, with and without a known kid.
        for header in [
            json!({"alg":"none","typ":"at+jwt"}),
            json!({"alg":"none","typ":"at+jwt","kid":"hs256-1"}),
        ] {
            let unsigned = format!("{}.{}.", b64(header.to_string()), b64(c.to_string()));
            assert_eq!(
                hs_verifier().verify(&unsigned, None),
                Err(VerifyError::WrongAlgorithm)
            );
            let signed = hs().mint_raw(&header, &c);
            assert_eq!(
                hs_verifier().verify(&signed, None),
                Err(VerifyError::WrongAlgorithm)
            );
        }
        for alg in ["HS384", "HS512", "RS256", "ES256", "PS256", "hs256", ""] {
            let token = hs().mint_raw(&json!({"alg":alg,"typ":"at+jwt"}), &c);
            assert_eq!(
                hs_verifier().verify(&token, None),
                Err(VerifyError::WrongAlgorithm),
                "{alg}"
            );
        }
        // HS256 "signed" with the Ed25519 public key as the HMAC secret: the classic
        // confusion. The EdDSA key must not be used as a secret.
        let public = ed().public_key().unwrap();
        let confused = TestKey::hs256("ed-1", &public).mint(&claims("ada"));
        assert_eq!(
            ed_verifier(&[&ed()]).verify(&confused, None),
            Err(VerifyError::WrongAlgorithm)
        );
        let x_as_secret = TestKey::hs256("ed-1", b64(public).as_bytes()).mint(&claims("ada"));
        assert_eq!(
            ed_verifier(&[&ed()]).verify(&x_as_secret, None),
            Err(VerifyError::WrongAlgorithm)
        );
        // And an EdDSA token against an HS256 key.
        assert_eq!(
            hs_verifier().verify(&ed().mint(&claims("ada")), None),
            Err(VerifyError::WrongAlgorithm)
        );
    }

    #[test]
    fn only_access_tokens_are_accepted() {
        let c = claims_json(&claims("ada"));
        for typ in [json!("JWT"), json!("jwt"), json!("at+jwt2"), json!(null)] {
            let token = hs().mint_raw(&json!({"alg":"HS256","typ":typ}), &c);
            assert_eq!(
                hs_verifier().verify(&token, None),
                Err(VerifyError::WrongType),
                "{typ}"
            );
        }
        let untyped = hs().mint_raw(&json!({"alg":"HS256"}), &c);
        assert_eq!(
            hs_verifier().verify(&untyped, None),
            Err(VerifyError::WrongType)
        );
        for typ in ["AT+JWT", "application/at+jwt"] {
            let token = hs().mint_raw(&json!({"alg":"HS256","typ":typ}), &c);
            assert!(hs_verifier().verify(&token, None).is_ok(), "{typ}");
        }
    }

    #[test]
    fn keys_are_chosen_by_kid() {
        let (k1, k2) = (ed(), TestKey::ed25519("ed-2", [2; 32]));
        let c = claims("ada");
        let both = ed_verifier(&[&k1, &k2]);
        assert!(both.verify(&k1.mint(&c), None).is_ok());
        assert!(both.verify(&k2.mint(&c), None).is_ok());
        assert!(both.knows_kid("ed-2") && !both.knows_kid("ed-3"));
        let only_k1 = ed_verifier(&[&k1]);
        assert_eq!(
            only_k1.verify(&k2.mint(&c), None),
            Err(VerifyError::UnknownKey)
        );
        let no_kid = k1.mint_raw(&json!({"alg":"EdDSA","typ":"at+jwt"}), &claims_json(&c));
        assert_eq!(both.verify(&no_kid, None), Err(VerifyError::UnknownKey));
        assert_eq!(
            Verifier::new(vec![], "authd", "authd").verify(&k1.mint(&c), None),
            Err(VerifyError::UnknownKey),
            "an empty set (authd in HS256 mode) knows no key"
        );
        // A bare shared secret has no kid and verifies whatever kid authd gave its tokens.
        assert!(hs_verifier().verify(&hs().mint(&c), None).is_ok());
        assert_eq!(token_kid(&k2.mint(&c)).as_deref(), Some("ed-2"));
        assert_eq!(token_kid("garbage"), None);
    }

    #[test]
    fn unusable_keys_are_refused() {
        assert!(VerificationKey::hs256(None, b"").is_err());
        assert!(VerificationKey::ed25519(None, &[9; 31]).is_err());
        // The identity point: every "signature" by a small-order key is forgeable.
        let mut identity = [0u8; 32];
        identity[0] = 1;
        assert!(VerificationKey::ed25519(None, &identity).is_err());
        let debug = format!("{:?}", VerificationKey::hs256(None, SECRET).unwrap());
        assert!(!debug.contains("0123456789"), "{debug}");
    }

    #[test]
    fn every_reason_is_distinct_and_stable() {
        let all = [
            VerifyError::Malformed,
            VerifyError::BadSignature,
            VerifyError::Expired,
            VerifyError::NotYetValid,
            VerifyError::WrongIssuer,
            VerifyError::WrongAudience,
            VerifyError::MissingClaim("exp".into()),
            VerifyError::WrongAlgorithm,
            VerifyError::WrongType,
            VerifyError::UnknownKey,
        ];
        let reasons: std::collections::HashSet<_> = all.iter().map(VerifyError::reason).collect();
        assert_eq!(reasons.len(), all.len());
        assert_eq!(VerifyError::Expired.reason(), "TOKEN_EXPIRED");
    }
}
