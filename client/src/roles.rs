//! Requiring roles: of every call of a service, of one method's calls, or in a handler.
use tonic::{Request, Status};

use crate::Claims;
use crate::status::{Rejection, RoleRequired};

/// The caller's verified [`Claims`], if their token grants `role`: for a handler behind
/// [`AuthInterceptor`](crate::AuthInterceptor) or [`AuthLayer`](crate::AuthLayer) that
/// guards one method (or decides from the request which role it needs).
///
/// A caller without `role` is refused with PERMISSION_DENIED and the reason
/// [`ROLE_REQUIRED`](crate::reason::ROLE_REQUIRED) ([`RoleRequired`]). A request without
/// verified claims — the service has no guard in front — is refused with UNAUTHENTICATED
/// (`TOKEN_MISSING`), never passed.
///
/// ```
/// use authd_client::{Claims, require_role};
/// use tonic::{Code, Request, Response, Status};
///
/// // The body of a handler (a generated service trait's `async fn report(&self, request)`).
/// fn report(request: Request<()>) -> Result<Response<String>, Status> {
///     let caller = require_role(&request, "billing:read")?;
///     Ok(Response::new(format!("the report, for {}", caller.username)))
/// }
/// # let claims = |roles: &[&str]| Claims {
/// #     iss: "authd".into(), sub: "s".into(), aud: vec!["authd".into()], exp: 2, iat: 1,
/// #     nbf: 1, jti: "j".into(), sid: "d".into(), username: "ada".into(),
/// #     roles: roles.iter().map(|r| r.to_string()).collect(), client_id: None,
/// # };
/// // The guard in front has verified the token and put its claims in the extensions.
/// let mut request = Request::new(());
/// request.extensions_mut().insert(claims(&["billing:read"]));
/// assert_eq!(report(request)?.into_inner(), "the report, for ada");
///
/// let mut request = Request::new(());
/// request.extensions_mut().insert(claims(&["billing:write"]));
/// let refused = report(request).unwrap_err();
/// assert_eq!(refused.code(), Code::PermissionDenied);
/// let reason = authd_client::rejection_reason(&refused);
/// assert_eq!(reason.as_deref(), Some(authd_client::reason::ROLE_REQUIRED));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn require_role<'r, T>(request: &'r Request<T>, role: &str) -> Result<&'r Claims, Status> {
    let claims = request
        .extensions()
        .get::<Claims>()
        .ok_or(Rejection::MissingToken)?;
    if !claims.has_role(role) {
        return Err(RoleRequired {
            role: role.to_owned(),
        }
        .into());
    }
    Ok(claims)
}

/// The roles a guard requires: of every call, or of the calls of one method. Every rule
/// that applies must hold.
#[derive(Debug, Clone, Default)]
pub(crate) struct RoleRules(Vec<Rule>);

#[derive(Debug, Clone)]
struct Rule {
    method: Option<Method>,
    role: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Method {
    /// `/package.Service/Method`: that path only.
    Path(String),
    /// `Method`: that method of whichever service the guard wraps.
    Name(String),
}

impl Method {
    fn parse(method: &str) -> Self {
        let method = method.trim();
        match method {
            m if m.starts_with('/') => Self::Path(m.to_owned()),
            m if m.contains('/') => Self::Path(format!("/{m}")),
            m => Self::Name(m.to_owned()),
        }
    }

    fn matches(&self, path: &str) -> bool {
        match self {
            Self::Path(p) => p == path,
            Self::Name(n) => path.rsplit_once('/').is_some_and(|(_, m)| m == n),
        }
    }
}

impl RoleRules {
    /// Every call needs `role`.
    pub(crate) fn require(&mut self, role: String) {
        self.0.push(Rule { method: None, role });
    }

    /// The calls of `method` (a path, `/package.Service/Method`, or a bare method name)
    /// need `role`.
    pub(crate) fn require_for(&mut self, method: &str, role: String) {
        self.0.push(Rule {
            method: Some(Method::parse(method)),
            role,
        });
    }

    /// The first role a call to `path` needs and `claims` lacks. Without a path (an
    /// interceptor cannot see it), only the rules for every call apply.
    pub(crate) fn check(&self, path: Option<&str>, claims: &Claims) -> Result<(), RoleRequired> {
        let applies = |rule: &&Rule| match (&rule.method, path) {
            (None, _) => true,
            (Some(method), Some(path)) => method.matches(path),
            (Some(_), None) => false,
        };
        match self
            .0
            .iter()
            .filter(applies)
            .find(|rule| !claims.has_role(&rule.role))
        {
            Some(rule) => Err(RoleRequired {
                role: rule.role.clone(),
            }),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use tonic::Code;

    use super::*;
    use crate::rejection_reason;
    use crate::test_util::claims;

    fn with_roles(roles: &[&str]) -> Claims {
        let mut c = claims("ada");
        c.roles = roles.iter().map(|r| r.to_string()).collect();
        c
    }

    #[test]
    fn rules_apply_to_every_call_or_to_their_method_only() {
        let mut rules = RoleRules::default();
        assert_eq!(rules.check(Some("/a.v1.S/M"), &with_roles(&[])), Ok(()));
        rules.require_for("/a.v1.S/Admin", "admin".into());
        rules.require_for("b.v1.T/Admin", "t-admin".into());
        rules.require_for("Report", "reports".into());
        let denied = |role: &str| {
            Err(RoleRequired {
                role: role.to_owned(),
            })
        };
        let nobody = with_roles(&[]);
        assert_eq!(rules.check(Some("/a.v1.S/Hello"), &nobody), Ok(()));
        assert_eq!(rules.check(Some("/a.v1.S/Admin"), &nobody), denied("admin"));
        assert_eq!(rules.check(Some("/a.v1.S/admin"), &nobody), Ok(()));
        assert_eq!(rules.check(Some("/a.v1.Other/Admin"), &nobody), Ok(()));
        assert_eq!(
            rules.check(Some("/b.v1.T/Admin"), &nobody),
            denied("t-admin")
        );
        assert_eq!(
            rules.check(Some("/a.v1.S/Report"), &nobody),
            denied("reports")
        );
        assert_eq!(
            rules.check(Some("/b.v1.T/Report"), &nobody),
            denied("reports")
        );
        assert_eq!(rules.check(Some("/a.v1.S/Reports"), &nobody), Ok(()));
        let admin = with_roles(&["admin"]);
        assert_eq!(rules.check(Some("/a.v1.S/Admin"), &admin), Ok(()));
        assert_eq!(
            rules.check(None, &nobody),
            Ok(()),
            "no path, no method rule"
        );

        rules.require("user".into());
        assert_eq!(rules.check(None, &nobody), denied("user"));
        assert_eq!(rules.check(Some("/a.v1.S/Hello"), &nobody), denied("user"));
        assert_eq!(
            rules.check(Some("/a.v1.S/Admin"), &with_roles(&["user"])),
            denied("admin"),
            "every rule that applies must hold"
        );
        assert_eq!(
            rules.check(Some("/a.v1.S/Admin"), &with_roles(&["user", "admin"])),
            Ok(())
        );
    }

    #[test]
    fn a_handler_requires_a_role_of_the_verified_caller() {
        let mut request = Request::new(());
        request
            .extensions_mut()
            .insert(with_roles(&["billing:read"]));
        assert_eq!(
            require_role(&request, "billing:read").unwrap().username,
            "ada"
        );
        let refused = require_role(&request, "Billing:Read").unwrap_err();
        assert_eq!(refused.code(), Code::PermissionDenied);
        assert_eq!(rejection_reason(&refused).as_deref(), Some("ROLE_REQUIRED"));

        let unguarded = Request::new(());
        let refused = require_role(&unguarded, "billing:read").unwrap_err();
        assert_eq!(refused.code(), Code::Unauthenticated);
        assert_eq!(rejection_reason(&refused).as_deref(), Some("TOKEN_MISSING"));
    }
}
