use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The claims of an authd access token (RFC 9068 profile).
///
/// `iss`, `sub`, `aud` and `exp` default when absent only so that the verifier, which
/// requires them, can name the missing one (`MissingClaim`) instead of saying "malformed".
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// Issuer.
    #[serde(default)]
    pub iss: String,
    /// The user id (a UUID).
    #[serde(default)]
    pub sub: String,
    /// Audiences; one string on the wire when there is one.
    #[serde(default, serialize_with = "ser_aud", deserialize_with = "de_aud")]
    pub aud: Vec<String>,
    /// Expiry, seconds since the Unix epoch.
    #[serde(default)]
    pub exp: i64,
    /// Issued at, seconds since the Unix epoch.
    pub iat: i64,
    /// Not before, seconds since the Unix epoch.
    pub nbf: i64,
    /// Unique token id.
    pub jti: String,
    /// Session id: every token of one login shares it; revoking the session refuses them all.
    pub sid: String,
    /// The user's name as registered (normalised).
    pub username: String,
    /// Roles granted to the user or service account (see [`Claims::has_role`]).
    #[serde(default)]
    pub roles: Vec<String>,
    /// Set on a service account's token (client credentials): its client id, which is
    /// also `sub`. Absent on a person's token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
}

impl Claims {
    /// Whether the token grants `role`: an exact, case-sensitive match against [`roles`]
    /// (`billing:read` is neither `Billing:Read` nor `billing`).
    ///
    /// [`roles`]: Claims::roles
    pub fn has_role(&self, role: &str) -> bool {
        self.roles.iter().any(|r| r == role)
    }

    /// Whether the token is a service account's (client credentials): it carries a
    /// [`client_id`](Claims::client_id). A person's token does not.
    pub fn is_service(&self) -> bool {
        self.client_id.is_some()
    }
}

fn ser_aud<S: Serializer>(aud: &[String], s: S) -> Result<S::Ok, S::Error> {
    match aud {
        [one] => s.serialize_str(one),
        many => many.serialize(s),
    }
}

/// `aud` for a claim set where it may be missing: absent is `None` (through
/// `#[serde(default)]`), present is one string or many.
pub(crate) fn de_opt_aud<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<String>>, D::Error> {
    de_aud(d).map(Some)
}

/// A JSON object decoded as `T`, and only an object: serde's derived structs also read a
/// JSON array in field order, so `["authd","sub",...]` would pass for a claims set. RFC 7515
/// and 7519 (header, claims) and RFC 7517 (JWK, JWK Set) all require objects.
pub(crate) struct Object<T>(pub T);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Object<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct ObjectVisitor<T>(std::marker::PhantomData<T>);

        impl<'de, T: Deserialize<'de>> serde::de::Visitor<'de> for ObjectVisitor<T> {
            type Value = T;

            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a JSON object")
            }

            fn visit_map<A: serde::de::MapAccess<'de>>(self, map: A) -> Result<T, A::Error> {
                T::deserialize(serde::de::value::MapAccessDeserializer::new(map))
            }
        }

        d.deserialize_map(ObjectVisitor(std::marker::PhantomData))
            .map(Object)
    }
}

fn de_aud<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(String),
        Many(Vec<String>),
    }
    Ok(match OneOrMany::deserialize(d)? {
        OneOrMany::One(s) => vec![s],
        OneOrMany::Many(v) => v,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn audience_is_a_string_when_single_and_accepted_as_either_form() {
        let c = Claims {
            iss: "i".into(),
            sub: "s".into(),
            aud: vec!["a".into()],
            exp: 2,
            iat: 1,
            nbf: 1,
            jti: "j".into(),
            sid: "d".into(),
            username: "u".into(),
            roles: vec![],
            client_id: None,
        };
        let json = serde_json::to_value(&c).unwrap();
        assert_eq!(json["aud"], "a");
        let mut arr = json.clone();
        arr["aud"] = serde_json::json!(["a", "b"]);
        let back: Claims = serde_json::from_value(arr).unwrap();
        assert_eq!(back.aud, vec!["a", "b"]);
    }

    #[test]
    fn roles_match_exactly_and_a_client_id_marks_a_service() {
        let mut c: Claims = serde_json::from_value(serde_json::json!({
            "iat": 1, "nbf": 1, "jti": "j", "sid": "d", "username": "u",
            "roles": ["billing:read", "ops"],
        }))
        .unwrap();
        assert!(c.has_role("billing:read") && c.has_role("ops"));
        for other in ["Billing:Read", "billing", "billing:read ", "", "op"] {
            assert!(!c.has_role(other), "{other:?}");
        }
        assert!(!c.is_service());
        c.client_id = Some("svc-reports".into());
        assert!(c.is_service());
        c.roles.clear();
        assert!(!c.has_role("ops"));
    }
}
