//! Usernames and passwords parsed at the edge: past here, invalid values cannot exist.
//!
//! Usernames follow RFC 8265 (PRECIS): the UsernameCasePreserved form is what tokens show,
//! the UsernameCaseMapped form is what names are compared on, and uniqueness is decided on
//! the UTS #39 confusable skeleton of that form, so `alice` and a look-alike spelled with
//! Cyrillic letters are one name. Passwords follow NIST SP 800-63B: a minimum length, no
//! composition rules, and no common or context-specific passwords (zxcvbn).
use precis_profiles::precis_core::Error as PrecisError;
use precis_profiles::precis_core::profile::PrecisFastInvocation;
use precis_profiles::{UsernameCaseMapped, UsernameCasePreserved};
use secrecy::SecretString;
use unicode_normalization::UnicodeNormalization;
use unicode_security::mixed_script::AugmentedScriptSet;

use super::AuthError;
use crate::store::users::{USERNAME_KEY_VERSION, User};

pub const USERNAME_MAX_CHARS: usize = 64;
/// NIST SP 800-63B: never fewer than 8 characters; the setting may only raise it.
pub const PASSWORD_MIN_CHARS: usize = 8;
pub const PASSWORD_MAX_BYTES: usize = 1024;
/// The prefix of the key a pre-skeleton user keeps when its skeleton went to an older user
/// (see `Store::migrate`); no new name may produce it.
pub const LEGACY_KEY_PREFIX: &str = "legacy:";
/// A skeleton can be longer than its name (one character may become up to 7); keys are
/// stored in a 1024-character column.
const KEY_MAX_CHARS: usize = 1024;
/// Work bound before PRECIS runs: NFC may compose a few characters into one, so a name of
/// 64 characters may arrive as more, but never as this many.
const RAW_MAX_CHARS: usize = 4 * USERNAME_MAX_CHARS;

fn refuse(message: impl Into<String>) -> AuthError {
    AuthError::InvalidUsername(message.into())
}

fn too_long() -> AuthError {
    refuse(format!(
        "username must be at most {USERNAME_MAX_CHARS} characters"
    ))
}

/// A valid new username: RFC 8265 UsernameCasePreserved, 1..=64 characters, no invisible
/// or formatting characters, one script (or the Latin + Han/Kana/Hangul combinations of
/// UTS #39 "highly restrictive"). Its key is the confusable skeleton of the case-mapped
/// form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Username {
    display: String,
    key: String,
}

impl Username {
    /// Parse a name for a new user (Register, `authd user add`). Messages never echo the
    /// input.
    pub fn parse(raw: &str) -> Result<Self, AuthError> {
        let name = raw.trim();
        if name.is_empty() {
            return Err(refuse("username must not be empty"));
        }
        if name.chars().count() > RAW_MAX_CHARS {
            return Err(too_long());
        }
        if name.chars().any(char::is_control) {
            return Err(refuse("username must not contain control characters"));
        }
        if name.chars().any(is_invisible) {
            return Err(refuse(
                "username must not contain invisible or formatting characters \
                 (zero-width characters, soft hyphens, direction marks or overrides)",
            ));
        }
        if name.chars().any(char::is_whitespace) {
            return Err(refuse("username must not contain spaces"));
        }
        let display = UsernameCasePreserved::enforce(name).map_err(precis_refusal)?;
        if display.chars().count() > USERNAME_MAX_CHARS {
            return Err(too_long());
        }
        if !scripts_allowed(&display) {
            return Err(refuse(
                "username must not mix scripts (e.g. Latin and Cyrillic); \
                 Latin with Han, Kana or Hangul is allowed",
            ));
        }
        let mapped = UsernameCaseMapped::enforce(name).map_err(precis_refusal)?;
        let key = skeleton(&mapped);
        if key.starts_with(LEGACY_KEY_PREFIX) {
            return Err(refuse(format!(
                "username must not start with \"{LEGACY_KEY_PREFIX}\""
            )));
        }
        if key.chars().count() > KEY_MAX_CHARS {
            return Err(too_long());
        }
        Ok(Self {
            display: display.into_owned(),
            key,
        })
    }

    /// The name as the user wrote it, in its RFC 8265 case-preserved form (full-width
    /// letters narrowed, NFC): what tokens carry in the `username` claim.
    pub fn as_str(&self) -> &str {
        &self.display
    }

    /// The form uniqueness and look-ups use: the UTS #39 skeleton of the case-mapped form.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// The key a user stored under the first rule (trim, NFKC, lower case) has under the
    /// current one: the skeleton of its case-mapped form, or of the old key itself where
    /// RFC 8265 refuses it (spaces, symbols, compatibility characters). `None` when that
    /// key is unusable (too long, or in the reserved legacy namespace): such a user keeps
    /// its legacy key.
    pub fn migrated_key(old_key: &str) -> Option<String> {
        let key = match UsernameCaseMapped::enforce(old_key) {
            Ok(mapped) => skeleton(&mapped),
            Err(_) => skeleton(old_key),
        };
        (key.chars().count() <= KEY_MAX_CHARS && !key.starts_with(LEGACY_KEY_PREFIX)).then_some(key)
    }

    /// The key of a first-rule user whose migrated key went to an older user.
    pub(crate) fn legacy_key(old_key: &str) -> String {
        format!("{LEGACY_KEY_PREFIX}{old_key}")
    }
}

/// A name typed at login (or given to `authd user ...`): every key a user who registered
/// it, under the current rule or the first one, may be stored under, most specific first.
/// No creation rule is applied here, so existing users keep logging in.
#[derive(Debug, Clone)]
pub struct LoginName {
    candidates: Vec<Candidate>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Candidate {
    key: String,
    /// Matches only a row not yet re-keyed (written by an older authd meanwhile).
    unmigrated_only: bool,
}

impl LoginName {
    pub fn parse(raw: &str) -> Result<Self, AuthError> {
        if raw.trim().chars().count() > RAW_MAX_CHARS {
            return Err(too_long());
        }
        let current = current_key(raw);
        let old = first_rule_key(raw);
        let mut candidates = Vec::with_capacity(4);
        let mut push = |key: String, unmigrated_only: bool| {
            if !candidates.iter().any(|c: &Candidate| c.key == key) {
                candidates.push(Candidate {
                    key,
                    unmigrated_only,
                });
            }
        };
        // A legacy key names exactly one first-rule user, the one who typed this: it wins
        // over a skeleton that an older look-alike holds.
        if let Some(old) = &old {
            push(Username::legacy_key(old), false);
        }
        if let Some(key) = current {
            push(key, false);
        }
        if let Some(old) = &old {
            if let Some(key) = Username::migrated_key(old) {
                push(key, false);
            }
            push(old.clone(), true);
        }
        if candidates.is_empty() {
            // Neither rule accepts the name: say why as the current rule would.
            return Err(match Username::parse(raw) {
                Err(e) => e,
                Ok(_) => refuse("username is not valid"),
            });
        }
        Ok(Self { candidates })
    }

    /// The key the name has under the current rule (the first candidate that is not a
    /// legacy key): one account, whichever form of its name is typed.
    pub fn key(&self) -> &str {
        self.candidates
            .iter()
            .find(|c| !c.key.starts_with(LEGACY_KEY_PREFIX))
            .or(self.candidates.first())
            .map_or("", |c| c.key.as_str())
    }

    /// Every key to look up, in one query.
    pub(crate) fn lookup_keys(&self) -> Vec<String> {
        self.candidates.iter().map(|c| c.key.clone()).collect()
    }

    /// Of the rows found under `lookup_keys`, the user this name refers to.
    pub fn pick(&self, rows: Vec<User>) -> Option<User> {
        let i = self.candidates.iter().find_map(|c| {
            rows.iter().position(|u| {
                u.username_key == c.key
                    && (!c.unmigrated_only || u.key_version < USERNAME_KEY_VERSION)
            })
        })?;
        rows.into_iter().nth(i)
    }
}

/// The current-rule key of a name as typed, with no creation rule applied (invisible
/// characters and mixed scripts are creation rules; PRECIS itself still refuses the
/// former).
fn current_key(raw: &str) -> Option<String> {
    let name = raw.trim();
    let display = UsernameCasePreserved::enforce(name).ok()?;
    if display.chars().count() > USERNAME_MAX_CHARS {
        return None;
    }
    let key = skeleton(&UsernameCaseMapped::enforce(name).ok()?);
    (key.chars().count() <= KEY_MAX_CHARS && !key.starts_with(LEGACY_KEY_PREFIX)).then_some(key)
}

/// The key of the first rule (before migration 000004): trimmed, NFKC, 1..=64 characters,
/// no control characters, lower-cased and NFKC again.
fn first_rule_key(raw: &str) -> Option<String> {
    let display: String = raw.trim().nfkc().collect();
    let display = display.trim();
    let chars = display.chars().count();
    if chars == 0 || chars > USERNAME_MAX_CHARS || display.chars().any(char::is_control) {
        return None;
    }
    Some(display.to_lowercase().nfkc().collect())
}

fn skeleton(s: &str) -> String {
    unicode_security::skeleton(s).collect()
}

fn precis_refusal(e: PrecisError) -> AuthError {
    match e {
        // Empty input is refused before PRECIS runs, so `Invalid` is the Bidi Rule.
        PrecisError::Invalid => refuse(
            "username mixes left-to-right and right-to-left characters in a way that \
             displays misleadingly (RFC 5893)",
        ),
        PrecisError::BadCodepoint(_) | PrecisError::Unexpected(_) => refuse(
            "username may contain only letters, digits and ASCII punctuation (RFC 8265): \
             no spaces, symbols or compatibility forms such as ligatures",
        ),
    }
}

/// Characters that render as nothing or change how the text around them is shown:
/// Default_Ignorable_Code_Point (Unicode DerivedCoreProperties, which holds every bidi
/// control) and the other format characters. RFC 8265 refuses them too; this gives the
/// refusal a message a person understands.
fn is_invisible(c: char) -> bool {
    matches!(
        c,
        '\u{00AD}'
            | '\u{034F}'
            | '\u{061C}'
            | '\u{115F}'..='\u{1160}'
            | '\u{17B4}'..='\u{17B5}'
            | '\u{180B}'..='\u{180F}'
            | '\u{200B}'..='\u{200F}'
            | '\u{202A}'..='\u{202E}'
            | '\u{2060}'..='\u{206F}'
            | '\u{3164}'
            | '\u{FE00}'..='\u{FE0F}'
            | '\u{FEFF}'
            | '\u{FFA0}'
            | '\u{FFF0}'..='\u{FFFB}'
            | '\u{1BCA0}'..='\u{1BCA3}'
            | '\u{1D173}'..='\u{1D17A}'
            | '\u{E0000}'..='\u{E0FFF}'
            // Format characters that are not default-ignorable but still steer display.
            | '\u{0600}'..='\u{0605}'
            | '\u{06DD}'
            | '\u{070F}'
            | '\u{0890}'..='\u{0891}'
            | '\u{08E2}'
            | '\u{110BD}'
            | '\u{110CD}'
            | '\u{13430}'..='\u{1343F}'
    )
}

/// UTS #39 restriction levels ASCII-only, single-script and highly restrictive (Latin
/// with Han and Kana, Han and Bopomofo, or Han and Hangul). Unlike the unicode-security
/// crate's own detection this does not also require UTS #39 identifier characters: RFC
/// 8265 already decides which characters a name may hold (it allows `@`, `.`, `'`).
fn scripts_allowed(name: &str) -> bool {
    if name.is_ascii() {
        return true;
    }
    let latin = AugmentedScriptSet::for_char('a');
    let mut resolved = AugmentedScriptSet::default();
    let mut beside_latin = AugmentedScriptSet::default();
    for c in name.chars() {
        let set = AugmentedScriptSet::for_char(c);
        resolved.intersect_with(set);
        let mut overlap = set;
        overlap.intersect_with(latin);
        // Characters of no particular script (digits, punctuation) overlap Latin too and
        // restrict nothing.
        if overlap.is_empty() {
            beside_latin.intersect_with(set);
        }
    }
    !resolved.is_empty() || beside_latin.hanb || beside_latin.jpan || beside_latin.kore
}

/// A password within the size limits (non-empty, at most 1024 bytes). Never printed. The
/// strength rules are `PasswordPolicy`'s, applied only to new passwords.
#[derive(Debug)]
pub struct Password(SecretString);

impl Password {
    pub fn parse(raw: String) -> Result<Self, AuthError> {
        if raw.is_empty() {
            return Err(AuthError::InvalidInput("password must not be empty".into()));
        }
        if raw.len() > PASSWORD_MAX_BYTES {
            return Err(AuthError::InvalidInput(format!(
                "password must be at most {PASSWORD_MAX_BYTES} bytes"
            )));
        }
        Ok(Self(SecretString::from(raw)))
    }

    pub(crate) fn into_secret(self) -> SecretString {
        self.0
    }
}

/// zxcvbn's cost grows steeply with length and with the number of distinct "l33t"
/// characters (it tries every substitution set). Measured in release on the 2-core dev
/// machine: 0.04-0.5 ms for ordinary passwords, but 11 ms for 16 characters made of its
/// substitution symbols, 90-130 ms for 32, and 1.1 s at zxcvbn's own 100-character cap
/// (so a 256-byte prefix would bound nothing). Only this many leading characters are
/// estimated (a password whose first 32 characters are hard to guess is hard to guess;
/// length and context rules still see all of it), and the estimate runs on the bounded
/// hashing pool, never on the async runtime.
pub const PASSWORD_ESTIMATE_CHARS: usize = 32;

/// The NIST SP 800-63B rules a new password must meet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PasswordPolicy {
    min_chars: usize,
    min_score: u8,
    /// Lower-cased names of the service a password must not be built from.
    service_names: Vec<String>,
}

impl PasswordPolicy {
    /// `min_chars` is raised to 8 if lower (the setting is validated at start), `min_score`
    /// is zxcvbn's 0..=4; `service_names` are "authd" plus e.g. the issuer.
    pub fn new(min_chars: usize, min_score: u8, service_names: &[&str]) -> Self {
        let mut names: Vec<String> = Vec::new();
        for name in service_names {
            let name = name.trim().to_lowercase();
            // An issuer such as https://auth.example.com also counts by its words.
            let words = name
                .split(|c: char| !c.is_alphanumeric())
                .filter(|w| w.chars().count() >= 4)
                .map(str::to_owned);
            for n in std::iter::once(name.clone()).chain(words) {
                if !n.is_empty() && !names.contains(&n) {
                    names.push(n);
                }
            }
        }
        Self {
            min_chars: min_chars.max(PASSWORD_MIN_CHARS),
            min_score: min_score.min(4),
            service_names: names,
        }
    }

    #[cfg(test)]
    fn min_chars(&self) -> usize {
        self.min_chars
    }

    /// Check a new password for `username`. CPU-bound (zxcvbn): run it off the async
    /// runtime. The refusal says why, never what the password was.
    pub fn check(&self, password: &str, username: &Username) -> Result<(), AuthError> {
        // NIST counts each Unicode code point as one character.
        if password.chars().count() < self.min_chars {
            return Err(AuthError::WeakPassword(format!(
                "password must be at least {} characters",
                self.min_chars
            )));
        }
        let mut context: Vec<String> = self.service_names.clone();
        for name in [username.as_str().to_lowercase(), username.key().to_owned()] {
            if !context.contains(&name) {
                context.push(name);
            }
        }
        if built_from(password, &context) {
            return Err(AuthError::WeakPassword(
                "password is too easy to guess: it is made of the username or the service \
                 name (with only digits or symbols added)"
                    .into(),
            ));
        }
        if self.min_score == 0 {
            return Ok(());
        }
        let prefix: String = password.chars().take(PASSWORD_ESTIMATE_CHARS).collect();
        let inputs: Vec<&str> = context.iter().map(String::as_str).collect();
        let estimate = zxcvbn::zxcvbn(&prefix, &inputs);
        if u8::from(estimate.score()) >= self.min_score {
            return Ok(());
        }
        let feedback = estimate.feedback();
        let why = feedback
            .and_then(|f| f.warning())
            .map(|w| w.to_string())
            .or_else(|| {
                feedback
                    .and_then(|f| f.suggestions().first())
                    .map(|s| s.to_string())
            })
            .unwrap_or_else(|| "Add another word or two. Uncommon words are better.".into());
        Err(AuthError::WeakPassword(format!(
            "password is too easy to guess: {why}"
        )))
    }
}

/// Whether nothing but digits, punctuation and spaces is left of `password` once every
/// context word is taken out (case-insensitively): `alice2024!`, `authd-authd`.
fn built_from(password: &str, context: &[String]) -> bool {
    let mut rest = password.to_lowercase();
    let mut found = false;
    let mut words: Vec<&str> = context
        .iter()
        .map(String::as_str)
        .filter(|w| w.chars().count() >= 3)
        .collect();
    words.sort_by_key(|w| std::cmp::Reverse(w.len()));
    for w in words {
        if rest.contains(w) {
            found = true;
            rest = rest.replace(w, " ");
        }
    }
    found && !rest.chars().any(char::is_alphabetic)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(raw: &str) -> String {
        Username::parse(raw).unwrap().key().to_owned()
    }

    fn refusal(raw: &str) -> String {
        match Username::parse(raw) {
            Err(AuthError::InvalidUsername(m)) => m,
            other => panic!("{raw:?}: expected InvalidUsername, got {other:?}"),
        }
    }

    #[test]
    fn usernames_keep_their_case_and_compare_without_it() {
        let a = Username::parse("  Alice ").unwrap();
        assert_eq!(a.as_str(), "Alice");
        assert_eq!(a.key(), "alice");
        // PRECIS width mapping: full-width letters are the ASCII ones.
        let wide = Username::parse("Ａｌｉｃｅ").unwrap();
        assert_eq!(wide.as_str(), "Alice");
        assert_eq!(wide.key(), "alice");
        assert_eq!(key("ＡＬＩＣＥ"), "alice");
        // Canonically equivalent spellings are one name (NFC).
        assert_eq!(key("A\u{030A}sa"), key("\u{00C5}SA"));
        // RFC 8265 allows ASCII punctuation, so e-mail addresses are names.
        assert!(Username::parse("juliet@example.com").is_ok());
        assert!(Username::parse("o'brien.smith_1-x").is_ok());
    }

    #[test]
    fn look_alikes_share_a_key() {
        // All-Cyrillic (U+0430 U+04CF U+0456 U+0441 U+0435): one script, allowed by
        // itself, but its skeleton is Latin `alice`.
        let cyrillic = Username::parse("\u{0430}\u{04CF}\u{0456}\u{0441}\u{0435}").unwrap();
        assert_eq!(cyrillic.key(), key("alice"));
        assert_eq!(key("\u{0441}\u{0430}\u{0440}"), key("cap"));
        // The digit 1 and the letter l.
        assert_eq!(key("al1ce"), key("allce"));
    }

    #[test]
    fn invisible_formatting_and_control_characters_are_refused() {
        for raw in [
            "alice\u{200B}",
            "alice\u{00AD}",
            "\u{202E}ecila",
            "al\u{200D}ice",
            "\u{FEFF}alice",
            "alice\u{2066}",
            "ali\u{061C}ce",
        ] {
            assert!(refusal(raw).contains("invisible or formatting"), "{raw:?}");
        }
        assert!(refusal("bob\u{0007}").contains("control"));
        assert!(refusal("bob\nsmith").contains("control"));
        assert!(refusal("bob smith").contains("spaces"));
        assert!(refusal("bob\u{3000}smith").contains("spaces"));
    }

    #[test]
    fn scripts_are_not_mixed_beyond_uts39_highly_restrictive() {
        for raw in ["\u{0430}lice", "\u{0430}l\u{0456}ce", "p\u{03B1}ypal"] {
            assert!(refusal(raw).contains("mix scripts"), "{raw:?}");
        }
        for raw in [
            "山田",
            "山田たろう",
            "Taroやまだ",
            "김철수",
            "Kim김철수",
            "Ἀθηνᾶ",
            "Москва",
        ] {
            assert!(Username::parse(raw).is_ok(), "{raw:?}");
        }
    }

    #[test]
    fn rfc8265_refusals_and_limits_name_the_rule_without_echoing() {
        assert!(refusal("   ").contains("empty"));
        assert!(refusal(&"x".repeat(65)).contains("at most 64"));
        assert!(refusal(&"x".repeat(10_000)).contains("at most 64"));
        assert!(Username::parse(&"é".repeat(64)).is_ok());
        // Compatibility characters and symbols: RFC 8265 refuses them (no NFKC).
        for raw in ["\u{FB01}le", "\u{212B}sa", "alice\u{2665}"] {
            let m = refusal(raw);
            assert!(
                m.contains("letters, digits and ASCII punctuation"),
                "{raw:?}: {m}"
            );
            assert!(!m.contains(raw), "{m}");
        }
        // A right-to-left name that ends in a left-to-right digit run is fine, one that
        // starts with a digit then Hebrew is not (Bidi Rule).
        assert!(Username::parse("שלום").is_ok());
        assert!(refusal("1שלום").contains("right-to-left"));
        assert!(refusal("legacy:alice").contains("legacy:"));
    }

    #[test]
    fn login_names_reach_users_of_both_rules() {
        let l = LoginName::parse("Alice").unwrap();
        assert_eq!(l.key(), "alice");
        assert_eq!(
            l.lookup_keys(),
            vec!["legacy:alice".to_owned(), "alice".to_owned()]
        );
        // Names the first rule accepted but RFC 8265 refuses still map to a key: the
        // skeleton of the first-rule key, which is what the migration gives such a user.
        let spaced = LoginName::parse("John Smith").unwrap();
        assert_eq!(
            spaced.lookup_keys(),
            vec![
                "legacy:john smith".to_owned(),
                Username::migrated_key("john smith").unwrap(),
                "john smith".to_owned()
            ]
        );
        let lig = LoginName::parse("\u{FB01}le").unwrap();
        assert_eq!(lig.key(), Username::migrated_key("file").unwrap());
        // Neither rule: the current rule's message.
        let e = LoginName::parse("bob\u{0}").unwrap_err();
        assert!(e.to_string().contains("control"), "{e}");
        assert!(LoginName::parse("").is_err());
        assert!(LoginName::parse(&"x".repeat(65)).is_err());
    }

    #[test]
    fn migrated_keys_agree_with_new_keys() {
        for raw in [
            "alice",
            "Ａｌｉｃｅ",
            "\u{00C5}sa",
            "Juliet@Example.com",
            "山田",
        ] {
            let old = first_rule_key(raw).unwrap();
            assert_eq!(Username::migrated_key(&old).unwrap(), key(raw), "{raw:?}");
        }
        assert_eq!(Username::migrated_key("\u{0430}lice").unwrap(), "alice");
        assert_eq!(Username::migrated_key("legacy:bob"), None);
        assert_eq!(Username::legacy_key("\u{0430}lice"), "legacy:\u{0430}lice");
    }

    fn policy() -> PasswordPolicy {
        PasswordPolicy::new(8, 3, &["authd", "https://login.example.com"])
    }

    fn weak(password: &str, user: &str) -> String {
        match policy().check(password, &Username::parse(user).unwrap()) {
            Err(AuthError::WeakPassword(m)) => {
                assert!(password == "password" || !m.contains(password), "{m}");
                m
            }
            other => panic!("{password:?}: expected WeakPassword, got {other:?}"),
        }
    }

    #[test]
    fn common_and_context_passwords_are_refused() {
        assert!(weak("password", "bob").contains("top-10 common password"));
        assert!(weak("12345678", "bob").contains("too easy to guess"));
        assert!(weak("aaaaaaaa", "bob").contains("too easy to guess"));
        for (p, u) in [
            ("alicealice", "alice"),
            ("Alice2024!", "alice"),
            ("authd-authd", "bob"),
            ("authd2024!!", "bob"),
            ("example-login-2024", "bob"),
        ] {
            assert!(weak(p, u).contains("username or the service"), "{p:?}");
        }
        assert!(weak("short", "bob").contains("at least 8 characters"));
        // Eight characters, counted as code points, not bytes.
        assert!(weak("ééééééé", "bob").contains("at least 8"));
    }

    #[test]
    fn strong_passwords_pass_and_the_bounds_are_settings() {
        let bob = Username::parse("bob").unwrap();
        for p in [
            "correct horse battery staple",
            "zebra lantern quietly 42",
            "Tr0ub4dor&3x",
            &"correct horse battery staple ".repeat(36)[..1024],
        ] {
            policy().check(p, &bob).unwrap();
        }
        let long = PasswordPolicy::new(30, 3, &["authd"]);
        let m = long
            .check("correct horse battery staple", &bob)
            .unwrap_err();
        assert!(m.to_string().contains("at least 30 characters"), "{m}");
        // Never below 8; score 0 keeps only the length and context rules.
        assert_eq!(PasswordPolicy::new(4, 3, &[]).min_chars(), 8);
        let lax = PasswordPolicy::new(8, 0, &["authd"]);
        lax.check("password", &bob).unwrap();
        assert!(lax.check("authdauthd", &bob).is_err());
    }

    #[test]
    fn password_size_is_checked_in_bytes() {
        assert!(Password::parse(String::new()).is_err());
        assert!(Password::parse("x".into()).is_ok());
        assert!(Password::parse("x".repeat(1024)).is_ok());
        let err = Password::parse("x".repeat(1025)).unwrap_err().to_string();
        assert!(err.contains("at most 1024"), "{err}");
    }
}
