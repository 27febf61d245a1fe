//! Property tests of the parsers that take attacker bytes on the server side: refresh-token
//! decoding, usernames and passwords. (The token verifier and the JWKS parser are fuzzed
//! with cargo-fuzz: fuzz/, docs/fuzzing.md.)
//!
//! The username properties hold for any sane rule, whatever the rule itself (PRECIS,
//! confusable skeletons...): no panic on any input, the length limit, a stable key, and
//! idempotence (the name an accepted name is shown as parses back to the same key).
//!
//! 512 cases per property (a few seconds in all). For a longer run:
//! `PROPTEST_CASES=100000 cargo test -p authd --lib auth::proptests`.
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use proptest::prelude::*;
use secrecy::ExposeSecret;
use sha2::{Digest, Sha256};

use super::credentials::{PASSWORD_MAX_BYTES, Password, USERNAME_MAX_CHARS, Username};
use super::sessions::refresh_hash;

/// 512 cases, or `PROPTEST_CASES` when set (an explicit `with_cases` would ignore it).
fn config(default_cases: u32) -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(default_cases);
    ProptestConfig {
        cases,
        ..ProptestConfig::default()
    }
}

/// Characters that have broken username rules elsewhere: case folding that changes
/// length (ß, İ, ﬃ), NFKC expansions (ﷺ is 18 characters, ㌀ is 5), full-width and
/// mathematical letters, confusables (Cyrillic а, Greek ο), combining marks, zero-width
/// and bidi controls, odd spaces, emoji sequences, Hangul jamo, noncharacters, and the
/// last code point.
fn odd_char() -> impl Strategy<Value = char> {
    prop_oneof![
        4 => prop::char::range('a', 'z'),
        1 => prop::char::range('A', 'Z'),
        1 => prop::char::range('0', '9'),
        2 => prop::sample::select(vec![
            'ß', 'İ', 'ı', 'ﬃ', 'ﷺ', '㌀', 'Ａ', 'ｚ', '𝐀', 'а', 'е', 'о', 'ο', 'Ω', 'Ω', 'Å', 'Å',
            '\u{0301}', '\u{0345}', '\u{200B}', '\u{200C}', '\u{200D}', '\u{00AD}', '\u{202E}',
            '\u{2066}', '\u{FEFF}', '\u{00A0}', '\u{3000}', '\u{2028}', '\u{0000}', '\u{007F}',
            '\u{1F469}', '\u{1F3FD}', '\u{FE0F}', '\u{1100}', '\u{1161}', '\u{FFFE}',
            '\u{10FFFF}', '_', '-', '.', '@', ' ', '\t', '\n', ':',
        ]),
        1 => prop::char::range('\u{0300}', '\u{036F}'),
        2 => any::<char>(),
    ]
}

/// Plausible names, 1..=70 characters (some over the limit) from one script's letters,
/// sometimes with an odd character or two inserted: the names a rule may accept, so the
/// properties about accepted names are not vacuous.
fn script_name() -> impl Strategy<Value = String> {
    let pools: Vec<Vec<char>> = vec![
        ('a'..='z')
            .chain('A'..='Z')
            .chain('0'..='9')
            .chain(['_', '-', '.'])
            .collect(),
        "àáâãäåçèéêëìíîïñòóôõöùúûüýÿßøæœĳŉǆ"
            .chars()
            .chain('a'..='z')
            .collect(),
        ('а'..='я')
            .chain('А'..='Я')
            .chain(['ё', 'і', 'ї'])
            .collect(),
        ('α'..='ω')
            .chain('Α'..='Ω')
            .chain(['ς', 'ά', 'ΐ'])
            .collect(),
        ('ぁ'..='ゖ')
            .chain('ァ'..='ヺ')
            .chain('一'..='鿿')
            .chain('a'..='z')
            .collect(),
        ('가'..='힣').chain('0'..='9').collect(),
        ('Ａ'..='Ｚ')
            .chain('ａ'..='ｚ')
            .chain('０'..='９')
            .collect(),
    ];
    (
        prop::sample::select(pools),
        prop::collection::vec(any::<prop::sample::Index>(), 1..=70),
        prop::collection::vec((any::<prop::sample::Index>(), odd_char()), 0..3),
        0..4u8,
    )
        .prop_map(|(pool, picks, odd, odd_chance)| {
            let mut name: Vec<char> = picks.iter().map(|i| *i.get(&pool)).collect();
            if odd_chance == 0 {
                for (at, c) in odd {
                    name.insert(at.index(name.len() + 1), c);
                }
            }
            String::from_iter(name)
        })
}

/// Plausible names, short names made of odd characters, arbitrary strings, and huge ones.
fn raw_name() -> impl Strategy<Value = String> {
    prop_oneof![
        5 => script_name(),
        3 => prop::collection::vec(odd_char(), 0..80).prop_map(String::from_iter),
        2 => any::<String>(),
        // Huge: a short odd string repeated (generating thousands of characters one by one
        // would cost more than the parsing under test).
        1 => (prop::collection::vec(odd_char(), 1..40), 10..300usize)
            .prop_map(|(chars, n)| String::from_iter(chars).repeat(n)),
    ]
}

fn hex_sha256(s: &str) -> String {
    Sha256::digest(s.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Strings near the refresh-token shape: valid tokens with one edit (a character changed,
/// inserted or removed, `=` padding, the standard alphabet's `+` and `/`), runs over the
/// base64 alphabets, and anything at all.
fn raw_refresh() -> impl Strategy<Value = String> {
    let edited = (
        any::<[u8; 32]>(),
        any::<prop::sample::Index>(),
        prop::sample::select(vec!['A', 'Q', 'g', 'w', '_', '-', '+', '/', '=', '.', 'é']),
        0..3u8,
    )
        .prop_map(|(bytes, at, c, op)| {
            let mut t: Vec<char> = URL_SAFE_NO_PAD.encode(bytes).chars().collect();
            let i = at.index(t.len());
            match op {
                0 => t[i] = c,
                1 => t.insert(i, c),
                _ => drop(t.remove(i)),
            }
            t.into_iter().collect::<String>()
        });
    prop_oneof![
        3 => edited,
        2 => "[A-Za-z0-9_+/=-]{40,46}",
        1 => any::<String>(),
    ]
}

proptest! {
    #![proptest_config(config(512))]

    /// Every 32-byte value's base64url-no-pad form is accepted, and hashes to the hex
    /// SHA-256 of the token text.
    #[test]
    fn refresh_tokens_of_32_bytes_are_accepted(bytes in any::<[u8; 32]>()) {
        let token = URL_SAFE_NO_PAD.encode(bytes);
        prop_assert_eq!(refresh_hash(&token).ok(), Some(hex_sha256(&token)));
    }

    /// Anything else is refused without a panic: what is accepted decodes to 32 bytes
    /// and re-encodes to itself (no padding, no other alphabet, no non-canonical last
    /// character), and the same input always gives the same hash.
    #[test]
    fn refresh_hash_accepts_exactly_canonical_32_byte_base64url(raw in raw_refresh()) {
        let first = refresh_hash(&raw).ok();
        prop_assert_eq!(&first, &refresh_hash(&raw).ok());
        let canonical = URL_SAFE_NO_PAD
            .decode(&raw)
            .ok()
            .filter(|b| b.len() == 32)
            .is_some_and(|b| URL_SAFE_NO_PAD.encode(b) == raw);
        prop_assert_eq!(first.is_some(), canonical, "{:?}", raw);
        if let Some(hash) = first {
            prop_assert_eq!(raw.len(), 43);
            prop_assert_eq!(hash, hex_sha256(&raw));
        }
    }

    #[test]
    fn usernames_never_panic_and_keep_the_limits(raw in raw_name()) {
        let Ok(name) = Username::parse(&raw) else {
            return Ok(());
        };
        let display = name.as_str();
        prop_assert!(!display.is_empty());
        prop_assert!(display.chars().count() <= USERNAME_MAX_CHARS, "{:?}", display);
        prop_assert!(!display.chars().any(char::is_control), "{:?}", display);
        prop_assert_eq!(display, display.trim());
        prop_assert!(!name.key().is_empty());
        // Deterministic: the same input, the same name and key.
        prop_assert_eq!(Username::parse(&raw).ok(), Some(name.clone()));
        // Idempotent: the name as shown (in tokens, in listings) is the same user.
        let again = match Username::parse(display) {
            Ok(again) => again,
            Err(e) => return Err(TestCaseError::fail(format!(
                "{raw:?}, shown as {display:?}, is refused: {e}"
            ))),
        };
        prop_assert_eq!(again.key(), name.key(), "{:?}", raw);
        prop_assert_eq!(again.as_str(), display);
    }

    /// A name that differs only by surrounding whitespace is the same name.
    #[test]
    fn surrounding_whitespace_does_not_change_the_key(raw in raw_name(), pad in "[ \t\n]{0,3}") {
        if let Ok(name) = Username::parse(&raw) {
            let padded = Username::parse(&format!("{pad}{raw}{pad}")).ok();
            let padded_key = padded.as_ref().map(Username::key);
            prop_assert_eq!(padded_key, Some(name.key()));
        }
    }

    /// Passwords are taken verbatim (never trimmed or normalised: the hash is of what the
    /// user typed) and never beyond the byte limit.
    #[test]
    fn passwords_never_panic_and_keep_the_limits(
        raw in prop_oneof![
            4 => any::<String>(),
            2 => prop::collection::vec(odd_char(), 0..40).prop_map(String::from_iter),
            1 => (prop::collection::vec(odd_char(), 1..40), 10..100usize)
                .prop_map(|(chars, n)| String::from_iter(chars).repeat(n)),
        ]
    ) {
        if let Ok(p) = Password::parse(raw.clone()) {
            prop_assert!(!raw.is_empty() && raw.len() <= PASSWORD_MAX_BYTES);
            let secret = p.into_secret();
            prop_assert_eq!(secret.expose_secret(), raw.as_str());
        }
        if raw.len() > PASSWORD_MAX_BYTES {
            prop_assert!(Password::parse(raw).is_err());
        }
    }
}

#[test]
fn passwords_at_the_byte_limit() {
    // 1024 bytes of 4-byte characters is 256 characters; one more byte is refused.
    let at_limit = "🔑".repeat(PASSWORD_MAX_BYTES / 4);
    assert!(Password::parse(at_limit.clone()).is_ok());
    assert!(Password::parse(format!("{at_limit}x")).is_err());
}

/// The username properties only mean something if the names generated are often valid.
#[test]
fn generated_names_are_often_accepted() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;

    let mut runner = TestRunner::deterministic();
    let strategy = raw_name();
    let total = 2000;
    let accepted = (0..total)
        .filter(|_| {
            let raw = strategy.new_tree(&mut runner).unwrap().current();
            Username::parse(&raw).is_ok()
        })
        .count();
    assert!(
        accepted * 4 > total,
        "only {accepted} of {total} names accepted"
    );
}
