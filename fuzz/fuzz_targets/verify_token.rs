//! The token string, as an attacker sends it, against an HS256, an Ed25519 and a mixed
//! verifier. Input: one byte choosing the audience argument, then the token.
//!
//! Never panics; an `Ok` must be backed by the oracle (`authd_fuzz::check_accepted`): the
//! signature is the trusted key's own over exactly `header.payload`, and the claims are the
//! payload's. The fuzzer holds no key, so it can only reach `Ok` by replaying a signed seed
//! verbatim; any other `Ok` is an accepted forgery.
#![no_main]

use std::sync::LazyLock;

use authd_fuzz::{Subject, audience, subjects, verify_everywhere};
use libfuzzer_sys::fuzz_target;

static SUBJECTS: LazyLock<Vec<Subject>> = LazyLock::new(subjects);

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    // Tokens arrive as `&str` (gRPC metadata, already UTF-8 checked).
    let Ok(token) = std::str::from_utf8(rest) else {
        return;
    };
    verify_everywhere(&SUBJECTS, token, audience(selector));
});
