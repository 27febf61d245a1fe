//! Role names, as users and service accounts carry them and tokens list them.
use super::AuthError;

/// Most roles one user or service account may hold: a token carries them all.
pub const MAX_ROLES: usize = 32;
const MAX_ROLE_CHARS: usize = 64;

/// A role name: 1 to 64 ASCII letters, digits and `.` `_` `:` `-`, starting with a letter
/// or digit (`billing:read`, `authd:admin`). Case-sensitive, as services compare them.
pub fn check_role(name: &str) -> Result<(), AuthError> {
    if is_identifier(name, &['.', '_', ':', '-']) {
        Ok(())
    } else {
        Err(AuthError::InvalidRole(format!(
            "invalid role {:?}: 1 to {MAX_ROLE_CHARS} ASCII letters, digits and . _ : -, \
             starting with a letter or digit",
            truncate(name)
        )))
    }
}

/// 1 to 64 ASCII letters, digits and `extra`, starting with a letter or digit: the shape
/// of role names and service-account names.
pub(crate) fn is_identifier(name: &str, extra: &[char]) -> bool {
    !name.is_empty()
        && name.len() <= MAX_ROLE_CHARS
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || extra.contains(&c))
}

fn truncate(s: &str) -> String {
    s.chars().take(MAX_ROLE_CHARS + 1).collect()
}

/// A set of roles checked, sorted and without duplicates.
pub fn normalize(roles: impl IntoIterator<Item = String>) -> Result<Vec<String>, AuthError> {
    let mut out = Vec::new();
    for r in roles {
        check_role(&r)?;
        out.push(r);
    }
    out.sort();
    out.dedup();
    if out.len() > MAX_ROLES {
        return Err(AuthError::InvalidRole(format!(
            "at most {MAX_ROLES} roles per user or service account"
        )));
    }
    Ok(out)
}

/// The roles column (a JSON array) as a list. A value authd did not write is read as no
/// roles: a token never carries a role that was not granted through these checks.
pub fn from_stored(json: &str) -> Vec<String> {
    match serde_json::from_str::<Vec<String>>(json) {
        Ok(v) if v.iter().all(|r| check_role(r).is_ok()) => v,
        _ => {
            tracing::warn!("a stored roles value is not a JSON array of role names: ignored");
            Vec::new()
        }
    }
}

/// The roles column's value for `roles` (already normalised).
pub fn to_stored(roles: &[String]) -> String {
    serde_json::to_string(roles).unwrap_or_else(|_| "[]".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn role_syntax() {
        for ok in [
            "billing:read",
            "authd:admin",
            "a",
            "x.y_z-1",
            &"r".repeat(64),
        ] {
            check_role(ok).unwrap();
        }
        for bad in ["", ":x", "-x", "a b", "é", "a/b", &"r".repeat(65), "a\n"] {
            assert!(check_role(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn roles_are_sorted_deduplicated_and_bounded() {
        let r = normalize(["b".into(), "a".into(), "b".into()]).unwrap();
        assert_eq!(r, ["a", "b"]);
        assert!(normalize((0..33).map(|i| format!("r{i}"))).is_err());
        assert_eq!(from_stored(&to_stored(&r)), r);
        assert!(from_stored("not json").is_empty());
        assert!(from_stored(r#"["ok", "not ok"]"#).is_empty());
    }
}
