//! The one conversion between the domain [`Claims`] and the wire's [`proto::Claims`]: used
//! by authd's `Validate`, by [`AuthLayer`](crate::AuthLayer) reading its answer, and by the
//! stand-in authd of `test_util`.
use crate::{Claims, proto};

impl From<Claims> for proto::Claims {
    /// `nbf` is left out: the wire has no field for it (authd mints it equal to `iat`).
    fn from(c: Claims) -> Self {
        Self {
            sub: c.sub,
            username: c.username,
            roles: c.roles,
            client_id: c.client_id.unwrap_or_default(),
            exp: c.exp,
            iat: c.iat,
            jti: c.jti,
            sid: c.sid,
            iss: c.iss,
            aud: c.aud,
        }
    }
}

impl From<proto::Claims> for Claims {
    /// `Validate`'s claims do not carry `nbf`; authd sets it to `iat`, and so does this.
    fn from(c: proto::Claims) -> Self {
        Self {
            iss: c.iss,
            sub: c.sub,
            aud: c.aud,
            exp: c.exp,
            iat: c.iat,
            nbf: c.iat,
            jti: c.jti,
            sid: c.sid,
            username: c.username,
            roles: c.roles,
            client_id: Some(c.client_id).filter(|id| !id.is_empty()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn claims_survive_the_wire_with_nbf_read_as_iat() {
        let c = crate::test_util::claims("ada");
        assert_eq!(c.nbf, c.iat);
        let wire = proto::Claims::from(c.clone());
        assert_eq!(wire.username, "ada");
        assert_eq!(Claims::from(wire), c);
    }
}
