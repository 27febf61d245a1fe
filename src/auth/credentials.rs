//! Usernames and passwords parsed at the edge: past here, invalid values cannot exist.
use secrecy::SecretString;
use unicode_normalization::UnicodeNormalization;

use super::AuthError;

pub const USERNAME_MAX_CHARS: usize = 64;
pub const PASSWORD_MIN_BYTES: usize = 8;
pub const PASSWORD_MAX_BYTES: usize = 1024;

/// A valid username: trimmed, NFKC-normalised, 1..=64 characters, no control characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Username {
    display: String,
    key: String,
}

impl Username {
    pub fn parse(raw: &str) -> Result<Self, AuthError> {
        let display: String = raw.trim().nfkc().collect();
        let display = display.trim().to_owned();
        let chars = display.chars().count();
        if chars == 0 {
            return Err(AuthError::InvalidInput("username must not be empty".into()));
        }
        if chars > USERNAME_MAX_CHARS {
            return Err(AuthError::InvalidInput(format!(
                "username must be at most {USERNAME_MAX_CHARS} characters"
            )));
        }
        if display.chars().any(char::is_control) {
            return Err(AuthError::InvalidInput(
                "username must not contain control characters".into(),
            ));
        }
        // Uniqueness is decided on the lower-cased NFKC form, so `Alice`, `ALICE` and
        // `Ａｌｉｃｅ` (full-width) are one user.
        let key = display.to_lowercase().nfkc().collect();
        Ok(Self { display, key })
    }

    /// The name as the user wrote it, normalised.
    pub fn as_str(&self) -> &str {
        &self.display
    }

    /// The form uniqueness and look-ups use.
    pub fn key(&self) -> &str {
        &self.key
    }
}

/// A password within the length policy (8..=1024 bytes). Never printed.
#[derive(Debug)]
pub struct Password(SecretString);

impl Password {
    pub fn parse(raw: String) -> Result<Self, AuthError> {
        let len = raw.len();
        if len < PASSWORD_MIN_BYTES {
            return Err(AuthError::InvalidInput(format!(
                "password must be at least {PASSWORD_MIN_BYTES} bytes"
            )));
        }
        if len > PASSWORD_MAX_BYTES {
            return Err(AuthError::InvalidInput(format!(
                "password must be at most {PASSWORD_MAX_BYTES} bytes"
            )));
        }
        Ok(Self(SecretString::from(raw)))
    }

    pub fn into_secret(self) -> SecretString {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames_normalise_and_fold_case() {
        let a = Username::parse("  Alice ").unwrap();
        assert_eq!(a.as_str(), "Alice");
        assert_eq!(a.key(), "alice");
        assert_eq!(Username::parse("ＡＬＩＣＥ").unwrap().key(), "alice");
        // U+212B ANGSTROM SIGN and U+00C5 are one letter after NFKC.
        assert_eq!(
            Username::parse("\u{212B}ke").unwrap().key(),
            Username::parse("\u{00C5}KE").unwrap().key()
        );
    }

    #[test]
    fn username_rules_name_the_rule() {
        let msg = |r: Result<Username, AuthError>| r.unwrap_err().to_string();
        assert!(msg(Username::parse("   ")).contains("empty"));
        assert!(msg(Username::parse(&"x".repeat(65))).contains("at most 64"));
        assert!(Username::parse(&"é".repeat(64)).is_ok());
        assert!(msg(Username::parse("bob\u{0007}")).contains("control"));
    }

    #[test]
    fn password_length_is_in_bytes() {
        assert!(Password::parse("1234567".into()).is_err());
        assert!(Password::parse("12345678".into()).is_ok());
        assert!(Password::parse("x".repeat(1024)).is_ok());
        let err = Password::parse("x".repeat(1025)).unwrap_err().to_string();
        assert!(err.contains("at most 1024"), "{err}");
    }
}
