//! Signing keys at rest: the key-encryption key (`AUTHD_KEY_ENCRYPTION_KEY_FILE`) and the
//! ChaCha20-Poly1305 seal of a stored key's material.
//!
//! A sealed `material` is base64 of a random 96-bit nonce followed by the ciphertext and
//! its tag; the associated data is the row's kid and algorithm, so a sealed value moved to
//! another row does not open. The row's `kek_id` names the key that sealed it.
use std::path::Path;

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
use chacha20poly1305::aead::{Aead, Payload};
use chacha20poly1305::{ChaCha20Poly1305, KeyInit, Nonce};
use rand::RngCore;
use secrecy::zeroize::Zeroizing;
use sha2::{Digest, Sha256};

use super::KeyError;
use crate::store::keys::SigningKeyRow;

/// The setting that names the key file.
pub const KEK_SETTING: &str = "AUTHD_KEY_ENCRYPTION_KEY_FILE";

const NONCE_LEN: usize = 12;

/// A 256-bit key-encryption key and its id. Debug shows the id only; the key is wiped
/// when dropped.
pub struct KeyEncryptionKey {
    key: Zeroizing<[u8; 32]>,
    id: String,
}

impl std::fmt::Debug for KeyEncryptionKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyEncryptionKey")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

impl KeyEncryptionKey {
    /// A key from its 32 bytes; its id is hex of the first 8 bytes of their SHA-256.
    pub fn from_bytes(key: [u8; 32]) -> Self {
        let key = Zeroizing::new(key);
        let digest = Sha256::digest(key.as_slice());
        let id = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
        Self { key, id }
    }

    /// Read a key file: 32 raw bytes (`head -c 32 /dev/urandom`), or their base64 or hex
    /// text, a trailing newline tolerated. `setting` names the file's setting in errors,
    /// which never quote the content.
    pub fn from_file(path: &Path, setting: &'static str) -> Result<Self, KeyError> {
        let bad = |reason: String| KeyError::BadKeyEncryptionKey {
            setting,
            path: path.display().to_string(),
            reason,
        };
        let content = Zeroizing::new(std::fs::read(path).map_err(|e| bad(e.to_string()))?);
        let key = parse_key(&content).ok_or_else(|| {
            bad(format!(
                "must hold 32 bytes, raw or as base64 or hex text (found {} bytes that are \
                 none of these); make one with `head -c 32 /dev/urandom`",
                content.len()
            ))
        })?;
        Ok(Self::from_bytes(*key))
    }

    /// The id stored beside what this key sealed.
    pub fn id(&self) -> &str {
        &self.id
    }

    fn cipher(&self) -> ChaCha20Poly1305 {
        ChaCha20Poly1305::new(&(*self.key).into())
    }

    /// Seal the material of the key `kid` of `algorithm`: base64 of nonce || ciphertext.
    pub fn seal(&self, kid: &str, algorithm: &str, plain: &[u8]) -> Result<String, KeyError> {
        let mut nonce = [0u8; NONCE_LEN];
        // ThreadRng is a CSPRNG seeded from the OS; a random nonce per seal.
        rand::rng().fill_bytes(&mut nonce);
        let aad = associated_data(kid, algorithm);
        let sealed = self
            .cipher()
            .encrypt(
                &Nonce::from(nonce),
                Payload {
                    msg: plain,
                    aad: &aad,
                },
            )
            .map_err(|_| KeyError::Unusable(format!("cannot seal signing key {kid}")))?;
        let mut out = Vec::with_capacity(NONCE_LEN + sealed.len());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&sealed);
        Ok(STANDARD.encode(out))
    }

    /// Open what [`Self::seal`] made for the same kid and algorithm.
    pub fn open(
        &self,
        kid: &str,
        algorithm: &str,
        sealed: &str,
    ) -> Result<Zeroizing<Vec<u8>>, KeyError> {
        let tampered = || KeyError::Tampered {
            kid: kid.to_owned(),
        };
        let raw = STANDARD.decode(sealed).map_err(|_| tampered())?;
        if raw.len() < NONCE_LEN {
            return Err(tampered());
        }
        let (nonce, body) = raw.split_at(NONCE_LEN);
        let nonce: [u8; NONCE_LEN] = nonce.try_into().map_err(|_| tampered())?;
        let aad = associated_data(kid, algorithm);
        self.cipher()
            .decrypt(
                &Nonce::from(nonce),
                Payload {
                    msg: body,
                    aad: &aad,
                },
            )
            .map(Zeroizing::new)
            .map_err(|_| tampered())
    }
}

/// What binds a sealed value to its row.
fn associated_data(kid: &str, algorithm: &str) -> Vec<u8> {
    let mut aad = b"authd signing key v1\0".to_vec();
    aad.extend_from_slice(kid.as_bytes());
    aad.push(0);
    aad.extend_from_slice(algorithm.as_bytes());
    aad
}

/// 32 raw bytes, or 64 hex digits, or base64 (standard or URL-safe, padded or not) of 32
/// bytes, with trailing whitespace.
fn parse_key(content: &[u8]) -> Option<Zeroizing<[u8; 32]>> {
    let mut key = Zeroizing::new([0u8; 32]);
    if content.len() == 32 {
        key.copy_from_slice(content);
        return Some(key);
    }
    let text = content.trim_ascii_end();
    if text.len() == 64 {
        for (out, pair) in key.iter_mut().zip(text.chunks(2)) {
            let hi = hex_digit(pair[0])?;
            let lo = hex_digit(pair[1])?;
            *out = hi << 4 | lo;
        }
        return Some(key);
    }
    for engine in [&STANDARD, &STANDARD_NO_PAD, &URL_SAFE, &URL_SAFE_NO_PAD] {
        if let Ok(decoded) = engine.decode(text).map(Zeroizing::new)
            && decoded.len() == 32
        {
            key.copy_from_slice(&decoded);
            return Some(key);
        }
    }
    None
}

fn hex_digit(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// The plain material of a stored row: unsealed with `kek` when the row is sealed. Fails,
/// naming the kid, when the row is sealed and `kek` is missing or another key, or when
/// the sealed value does not authenticate.
pub(super) fn stored_material(
    row: &SigningKeyRow,
    kek: Option<&KeyEncryptionKey>,
) -> Result<Zeroizing<Vec<u8>>, KeyError> {
    match (&row.kek_id, kek) {
        (None, _) => STANDARD
            .decode(&row.material)
            .map(Zeroizing::new)
            .map_err(|e| KeyError::BadStoredKey {
                kid: row.kid.clone(),
                reason: e.to_string(),
            }),
        (Some(sealed_with), None) => Err(KeyError::SealedWithoutKek {
            kid: row.kid.clone(),
            kek_id: sealed_with.clone(),
        }),
        (Some(sealed_with), Some(kek)) if *sealed_with != kek.id => Err(KeyError::WrongKek {
            kid: row.kid.clone(),
            kek_id: sealed_with.clone(),
            given: kek.id.clone(),
        }),
        (Some(_), Some(kek)) => kek.open(&row.kid, &row.algorithm, &row.material),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::fixtures::row;

    fn kek(byte: u8) -> KeyEncryptionKey {
        KeyEncryptionKey::from_bytes([byte; 32])
    }

    #[test]
    fn seal_and_open_round_trip_with_a_fresh_nonce_each_time() {
        let k = kek(1);
        let a = k.seal("kid-a", "EdDSA", b"private").unwrap();
        let b = k.seal("kid-a", "EdDSA", b"private").unwrap();
        assert_ne!(a, b, "random nonce per seal");
        assert_eq!(&*k.open("kid-a", "EdDSA", &a).unwrap(), b"private");
        assert_eq!(&*k.open("kid-a", "EdDSA", &b).unwrap(), b"private");
        assert!(
            !STANDARD
                .decode(&a)
                .unwrap()
                .windows(7)
                .any(|w| w == b"private")
        );
    }

    #[test]
    fn the_seal_is_bound_to_its_kid_algorithm_and_key() {
        let k = kek(1);
        let sealed = k.seal("kid-a", "EdDSA", b"private").unwrap();
        for (kid, alg) in [("kid-b", "EdDSA"), ("kid-a", "HS256"), ("kid-aE", "dDSA")] {
            let err = k.open(kid, alg, &sealed).unwrap_err();
            assert!(
                matches!(&err, KeyError::Tampered { kid: k } if k == kid),
                "{err}"
            );
        }
        assert!(kek(2).open("kid-a", "EdDSA", &sealed).is_err());
        let mut raw = STANDARD.decode(&sealed).unwrap();
        let last = raw.len() - 1;
        raw[last] ^= 1;
        let err = k.open("kid-a", "EdDSA", &STANDARD.encode(raw)).unwrap_err();
        assert!(err.to_string().contains("kid-a"), "{err}");
        assert!(k.open("kid-a", "EdDSA", "AAAA").is_err());
        assert!(k.open("kid-a", "EdDSA", "not base64!").is_err());
    }

    #[test]
    fn stored_material_names_the_kid_and_the_key_that_is_missing_or_wrong() {
        let k = kek(1);
        let mut r = row("kid-a", 0, None);
        r.material = k.seal("kid-a", "EdDSA", b"private").unwrap();
        r.kek_id = Some(k.id().to_owned());
        assert_eq!(&*stored_material(&r, Some(&k)).unwrap(), b"private");
        let msg = stored_material(&r, None).unwrap_err().to_string();
        assert!(msg.contains("kid-a") && msg.contains(k.id()), "{msg}");
        assert!(
            msg.contains(KEK_SETTING) && msg.contains("not set"),
            "{msg}"
        );
        let msg = stored_material(&r, Some(&kek(2))).unwrap_err().to_string();
        assert!(
            msg.contains("kid-a") && msg.contains("does not match"),
            "{msg}"
        );
        // A plaintext row reads with or without a key.
        let mut plain = row("kid-p", 0, None);
        plain.material = STANDARD.encode(b"clear");
        assert_eq!(&*stored_material(&plain, Some(&k)).unwrap(), b"clear");
        assert_eq!(&*stored_material(&plain, None).unwrap(), b"clear");
    }

    #[test]
    fn key_files_raw_base64_or_hex_and_nothing_else() {
        let bytes: [u8; 32] = std::array::from_fn(|i| i as u8 * 7 + 10);
        let id = KeyEncryptionKey::from_bytes(bytes).id().to_owned();
        assert_eq!(id.len(), 16);
        let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("kek");
        let mut raw_newline_end = bytes;
        raw_newline_end[31] = b'\n';
        for content in [
            bytes.to_vec(),
            format!("{}\n", STANDARD.encode(bytes)).into_bytes(),
            URL_SAFE_NO_PAD.encode(bytes).into_bytes(),
            format!("{hex}\n").into_bytes(),
            hex.to_uppercase().into_bytes(),
        ] {
            std::fs::write(&path, &content).unwrap();
            let k = KeyEncryptionKey::from_file(&path, KEK_SETTING).unwrap();
            assert_eq!(k.id(), id);
            assert!(!format!("{k:?}").contains(&hex[..8]));
        }
        // Raw bytes that end in a newline byte are still the raw key.
        std::fs::write(&path, raw_newline_end).unwrap();
        let k = KeyEncryptionKey::from_file(&path, KEK_SETTING).unwrap();
        assert_eq!(k.id(), KeyEncryptionKey::from_bytes(raw_newline_end).id());
        for content in [&bytes[..31], &[b'a'; 63][..], b"", b"short\n"] {
            std::fs::write(&path, content).unwrap();
            let msg = KeyEncryptionKey::from_file(&path, KEK_SETTING)
                .unwrap_err()
                .to_string();
            assert!(msg.contains(KEK_SETTING), "{msg}");
        }
        let missing = KeyEncryptionKey::from_file(&dir.path().join("nope"), "--x").unwrap_err();
        assert!(missing.to_string().contains("--x"));
    }
}
