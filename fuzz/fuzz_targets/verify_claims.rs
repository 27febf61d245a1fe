//! Behind the signature: the harness signs a fuzzer-chosen header and payload, so the
//! fuzzer can explore the header, claims and time checks that `verify_token` reaches only
//! through its signed seeds. Input: one selector byte (low 2 bits: the audience argument;
//! the rest, modulo 6: who signs, including untrusted keys and HS256 "signed" with the
//! Ed25519 public key), then the header JSON, a 0xFF byte, and the payload JSON (raw bytes,
//! base64url-encoded as they are: invalid UTF-8 and non-JSON included).
//!
//! Every verifier's `Ok` must pass the same oracle as in `verify_token`: right key for the
//! kid, the header's algorithm is the key's, typ at+jwt, the claims are the payload's and
//! satisfy the issuer, audience and time rules.
#![no_main]

use std::sync::LazyLock;

use authd_fuzz::{SignWith, Subject, audience, mint_bytes, subjects, verify_everywhere};
use libfuzzer_sys::fuzz_target;

static SUBJECTS: LazyLock<Vec<Subject>> = LazyLock::new(subjects);

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    let signer = SignWith::ALL[usize::from(selector >> 2) % SignWith::ALL.len()];
    let (header, payload) = match rest.iter().position(|&b| b == 0xFF) {
        Some(i) => (&rest[..i], &rest[i + 1..]),
        None => (rest, &[][..]),
    };
    let token = mint_bytes(header, payload, signer);
    verify_everywhere(&SUBJECTS, &token, audience(selector));
});
