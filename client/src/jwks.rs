//! RFC 7517 JSON Web Key Sets, as authd's `GetJwks` publishes them.
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Deserialize;
use serde::de::IgnoredAny;

use crate::claims::Object;
use crate::{VerificationKey, Verifier};

/// Why a JWKS was refused as a whole. The key set in force, if any, stays.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JwksError {
    /// Not JSON, or not shaped as RFC 7517 says; the parser's message.
    #[error("the JWKS is not valid JSON of the RFC 7517 shape: {0}")]
    Json(String),
    /// A published key carries private (`d`) or symmetric (`k`) material: whoever serves
    /// it is leaking its signing key, so nothing from it is trusted.
    #[error("the JWKS carries private key material (kid {kid:?})")]
    PrivateKey {
        /// The key id of the leaking key, if it has one.
        kid: Option<String>,
    },
    /// An Ed25519 verification key that cannot be used (bad `x`, wrong length, ...).
    #[error("the JWKS key {kid:?} is unusable: {reason}")]
    BadKey {
        /// The key id of the unusable key, if it has one.
        kid: Option<String>,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// Two keys with one key id: a verifier could not tell which signed a token.
    #[error("the JWKS names key {0:?} twice")]
    DuplicateKid(String),
}

#[derive(Deserialize)]
struct RawJwks {
    keys: Vec<Object<RawJwk>>,
}

/// The members this verifier reads; unknown members are ignored, as RFC 7517 §4 asks.
#[derive(Deserialize)]
struct RawJwk {
    kty: String,
    #[serde(default)]
    crv: Option<String>,
    #[serde(default)]
    alg: Option<String>,
    #[serde(default, rename = "use")]
    use_: Option<String>,
    #[serde(default)]
    key_ops: Option<Vec<String>>,
    #[serde(default)]
    kid: Option<String>,
    #[serde(default)]
    x: Option<String>,
    // Private material is only detected, never read into memory.
    #[serde(default)]
    d: Option<IgnoredAny>,
    #[serde(default)]
    k: Option<IgnoredAny>,
}

impl RawJwk {
    /// An Ed25519 signature-verification key: anything else (RSA, EC, X25519, encryption
    /// keys, another algorithm) is skipped, not an error, so authd can publish more later.
    fn is_ed25519_verification_key(&self) -> bool {
        self.kty == "OKP"
            && self.crv.as_deref() == Some("Ed25519")
            // The curve pins the algorithm; `alg` is optional in RFC 7517.
            && self.alg.as_deref().is_none_or(|a| a == "EdDSA")
            && self.use_.as_deref().is_none_or(|u| u == "sig")
            && self
                .key_ops
                .as_ref()
                .is_none_or(|ops| ops.iter().any(|o| o == "verify"))
    }
}

/// Parse a JWKS into the Ed25519 verification keys it holds (authd in HS256 mode publishes
/// none: the result is then empty).
pub fn parse_jwks(json: &str) -> Result<Vec<VerificationKey>, JwksError> {
    let Object(set): Object<RawJwks> =
        serde_json::from_str(json).map_err(|e| JwksError::Json(e.to_string()))?;
    let set_keys: Vec<RawJwk> = set.keys.into_iter().map(|Object(k)| k).collect();
    // Refuse the whole set before using any of it: a leaked private key anywhere means the
    // publisher is broken.
    if let Some(leaky) = set_keys.iter().find(|k| k.d.is_some() || k.k.is_some()) {
        return Err(JwksError::PrivateKey {
            kid: leaky.kid.clone(),
        });
    }
    let mut keys: Vec<VerificationKey> = Vec::with_capacity(set_keys.len());
    for jwk in set_keys {
        if !jwk.is_ed25519_verification_key() {
            continue;
        }
        let bad = |reason| JwksError::BadKey {
            kid: jwk.kid.clone(),
            reason,
        };
        let x = jwk.x.as_deref().ok_or_else(|| bad("no `x` member"))?;
        let raw = URL_SAFE_NO_PAD
            .decode(x)
            .map_err(|_| bad("`x` is not base64url"))?;
        let key = VerificationKey::ed25519(jwk.kid.clone(), &raw)
            .map_err(|_| bad("`x` is not a usable Ed25519 public key"))?;
        if let Some(kid) = key.kid()
            && keys.iter().any(|k| k.kid() == Some(kid))
        {
            return Err(JwksError::DuplicateKid(kid.to_owned()));
        }
        keys.push(key);
    }
    Ok(keys)
}

impl Verifier {
    /// A verifier for the Ed25519 keys of an RFC 7517 JWKS (what authd's `GetJwks` returns).
    ///
    /// Only `OKP`/`Ed25519` keys meant for signatures are taken (`alg` `EdDSA` or absent,
    /// `use` `sig` or absent); other keys are ignored. A set that carries any private
    /// material (`d`, or an `oct` key's `k`) is refused whole.
    pub fn from_jwks_json(json: &str, issuer: &str, audience: &str) -> Result<Self, JwksError> {
        Ok(Self::new(parse_jwks(json)?, issuer, audience))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const X: &str = "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo";

    fn okp(extra: &str) -> String {
        format!(r#"{{"kty":"OKP","crv":"Ed25519","x":"{X}"{extra}}}"#)
    }

    fn set(keys: &[String]) -> String {
        format!(r#"{{"keys":[{}]}}"#, keys.join(","))
    }

    fn kids(json: &str) -> Vec<Option<String>> {
        parse_jwks(json)
            .unwrap()
            .iter()
            .map(|k| k.kid().map(str::to_owned))
            .collect()
    }

    #[test]
    fn authds_shape_is_accepted() {
        let json = set(&[okp(r#","kid":"k1","alg":"EdDSA","use":"sig""#)]);
        let keys = parse_jwks(&json).unwrap();
        assert_eq!(keys.len(), 1);
        assert_eq!(keys[0].kid(), Some("k1"));
        assert_eq!(keys[0].algorithm(), "EdDSA");
        assert_eq!(
            URL_SAFE_NO_PAD.encode(keys[0].ed25519_public_key().unwrap()),
            X
        );
    }

    #[test]
    fn an_empty_set_is_hs256_mode_and_verifies_nothing() {
        let v = Verifier::from_jwks_json(r#"{"keys":[]}"#, "authd", "authd").unwrap();
        assert!(v.keys().is_empty());
        assert_eq!(v.verify("a.b.c", None), Err(crate::VerifyError::Malformed));
    }

    #[test]
    fn alg_and_use_may_be_absent() {
        assert_eq!(kids(&set(&[okp(r#","kid":"k""#)])), [Some("k".into())]);
    }

    #[test]
    fn other_key_types_algorithms_and_uses_are_ignored() {
        let json = set(&[
            r#"{"kty":"RSA","kid":"rsa","n":"AQAB","e":"AQAB","alg":"RS256"}"#.into(),
            r#"{"kty":"EC","kid":"ec","crv":"P-256","x":"AA","y":"AA"}"#.into(),
            format!(r#"{{"kty":"OKP","crv":"X25519","kid":"x25519","x":"{X}"}}"#),
            format!(r#"{{"kty":"OKP","crv":"Ed448","kid":"ed448","x":"{X}"}}"#),
            okp(r#","kid":"enc","use":"enc""#),
            okp(r#","kid":"other-alg","alg":"ES256""#),
            okp(r#","kid":"sign-only","key_ops":["sign"]"#),
            okp(r#","kid":"good","key_ops":["verify"],"x5t":"whatever""#),
        ]);
        assert_eq!(kids(&json), [Some("good".into())]);
    }

    #[test]
    fn private_material_refuses_the_whole_set() {
        let json = set(&[
            okp(r#","kid":"pub""#),
            okp(r#","kid":"leak","d":"nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A""#),
        ]);
        assert_eq!(
            parse_jwks(&json).unwrap_err(),
            JwksError::PrivateKey {
                kid: Some("leak".into())
            }
        );
        // Even on a key type this verifier would otherwise ignore.
        let json = set(&[
            okp(r#","kid":"pub""#),
            r#"{"kty":"oct","kid":"hmac","k":"c2VjcmV0"}"#.into(),
        ]);
        assert!(matches!(
            parse_jwks(&json),
            Err(JwksError::PrivateKey { .. })
        ));
        let json = set(&[r#"{"kty":"RSA","kid":"r","n":"AQAB","e":"AQAB","d":"AQAB"}"#.into()]);
        assert!(matches!(
            parse_jwks(&json),
            Err(JwksError::PrivateKey { .. })
        ));
    }

    /// A JWK Set and its keys are JSON objects (RFC 7517 §4, §5): not arrays in field order,
    /// where a private `d` would not even be named.
    #[test]
    fn sets_and_keys_must_be_objects() {
        let positional = format!(r#"["OKP","Ed25519",null,null,null,"k","{X}","c2VjcmV0"]"#);
        assert!(matches!(
            parse_jwks(&set(&[positional])),
            Err(JwksError::Json(_))
        ));
        let array_set = format!("[[{}]]", okp(r#","kid":"k""#));
        assert!(matches!(parse_jwks(&array_set), Err(JwksError::Json(_))));
    }

    #[test]
    fn broken_ed25519_keys_and_documents_are_refused() {
        for (json, what) in [
            (set(&[r#"{"kty":"OKP","crv":"Ed25519","kid":"k"}"#.into()]), "no x"),
            (
                set(&[r#"{"kty":"OKP","crv":"Ed25519","kid":"k","x":"!!"}"#.into()]),
                "not base64url",
            ),
            (
                set(&[r#"{"kty":"OKP","crv":"Ed25519","kid":"k","x":"AAAA"}"#.into()]),
                "short",
            ),
            // The identity point: small order, so a "signature" by it proves nothing.
            (
                set(&[
                    r#"{"kty":"OKP","crv":"Ed25519","kid":"k","x":"AQAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}"#
                        .into(),
                ]),
                "weak",
            ),
        ] {
            assert!(
                matches!(parse_jwks(&json), Err(JwksError::BadKey { .. })),
                "{what}"
            );
        }
        assert!(matches!(parse_jwks("{"), Err(JwksError::Json(_))));
        assert!(matches!(
            parse_jwks(r#"{"kees":[]}"#),
            Err(JwksError::Json(_))
        ));
        assert!(matches!(
            parse_jwks(r#"{"keys":[{"crv":"Ed25519"}]}"#),
            Err(JwksError::Json(_))
        ));
        assert_eq!(
            parse_jwks(&set(&[okp(r#","kid":"k""#), okp(r#","kid":"k""#)])).unwrap_err(),
            JwksError::DuplicateKid("k".into())
        );
    }
}
