//! argon2id hashing on a blocking pool bounded to the core count, so a storm of logins
//! queues here instead of starving the async runtime (and with it `Validate`).
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher as _, PasswordVerifier as _};
use argon2::{Algorithm, Argon2, Params, Version};
use secrecy::{ExposeSecret, SecretString};
use tokio::sync::Semaphore;

/// A hashing failure. `Busy` means the queue is full: the caller should retry later.
#[derive(Debug, thiserror::Error)]
pub enum PasswordError {
    #[error("too many password checks are waiting")]
    Busy,
    #[error("password hashing failed: {0}")]
    Hash(String),
    #[error("the hashing task failed")]
    Join,
}

/// The outcome of a verification.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verified {
    /// Right password; `rehash` when the stored hash's parameters differ from policy.
    Match {
        rehash: bool,
    },
    Mismatch,
}

/// Hashes and verifies passwords under one parameter policy.
#[derive(Clone)]
pub struct Hasher {
    params: Params,
    permits: Arc<Semaphore>,
    waiting: Arc<AtomicUsize>,
    max_waiting: usize,
    // Verified against for unknown users, so they cost what a wrong password costs.
    dummy: Arc<str>,
}

impl std::fmt::Debug for Hasher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hasher")
            .field("params", &self.params)
            .finish_non_exhaustive()
    }
}

impl Hasher {
    /// `m_kib`, `t`, `p`: argon2id memory (KiB), iterations and lanes.
    pub fn new(m_kib: u32, t: u32, p: u32) -> Result<Self, PasswordError> {
        let params =
            Params::new(m_kib, t, p, None).map_err(|e| PasswordError::Hash(e.to_string()))?;
        let workers = std::thread::available_parallelism().map_or(1, |n| n.get());
        let dummy = argon2(&params)
            .hash_password(b"authd dummy password for unknown users")
            .map_err(|e| PasswordError::Hash(e.to_string()))?
            .to_string();
        Ok(Self {
            params,
            permits: Arc::new(Semaphore::new(workers)),
            waiting: Arc::new(AtomicUsize::new(0)),
            // Beyond this many queued checks a caller waits seconds: refuse instead.
            max_waiting: workers * 64,
            dummy: dummy.into(),
        })
    }

    /// Password checks queued or running right now.
    pub fn queue_depth(&self) -> usize {
        self.waiting.load(Ordering::Relaxed)
    }

    /// Hash a new password into a PHC string.
    pub async fn hash(&self, password: SecretString) -> Result<String, PasswordError> {
        let params = self.params.clone();
        self.run(move || {
            argon2(&params)
                .hash_password(password.expose_secret().as_bytes())
                .map(|h| h.to_string())
                .map_err(|e| PasswordError::Hash(e.to_string()))
        })
        .await
    }

    /// Verify against a stored PHC string, or against the dummy hash when there is no user.
    pub async fn verify(
        &self,
        password: SecretString,
        stored: Option<String>,
    ) -> Result<Verified, PasswordError> {
        let params = self.params.clone();
        let is_real = stored.is_some();
        let stored = stored.unwrap_or_else(|| self.dummy.to_string());
        self.run(move || {
            let parsed =
                PasswordHash::new(&stored).map_err(|e| PasswordError::Hash(e.to_string()))?;
            let ok = Argon2::default()
                .verify_password(password.expose_secret().as_bytes(), &parsed)
                .is_ok();
            Ok(match (ok, is_real) {
                (true, true) => Verified::Match {
                    rehash: needs_rehash(&parsed, &params),
                },
                _ => Verified::Mismatch,
            })
        })
        .await
    }

    async fn run<T, F>(&self, f: F) -> Result<T, PasswordError>
    where
        F: FnOnce() -> Result<T, PasswordError> + Send + 'static,
        T: Send + 'static,
    {
        let _queued = QueueSlot::take(&self.waiting, self.max_waiting)?;
        let _permit = self
            .permits
            .acquire()
            .await
            .map_err(|_| PasswordError::Join)?;
        let span = tracing::Span::current();
        tokio::task::spawn_blocking(move || span.in_scope(f))
            .await
            .map_err(|_| PasswordError::Join)?
    }
}

fn argon2(params: &Params) -> Argon2<'static> {
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone())
}

fn needs_rehash(stored: &PasswordHash, policy: &Params) -> bool {
    if stored.algorithm != Algorithm::Argon2id.ident() {
        return true;
    }
    match Params::try_from(stored) {
        Ok(p) => {
            p.m_cost() != policy.m_cost()
                || p.t_cost() != policy.t_cost()
                || p.p_cost() != policy.p_cost()
        }
        Err(_) => true,
    }
}

/// Counts a caller in the queue for as long as it lives.
struct QueueSlot<'a>(&'a AtomicUsize);

impl<'a> QueueSlot<'a> {
    fn take(counter: &'a AtomicUsize, max: usize) -> Result<Self, PasswordError> {
        let before = counter.fetch_add(1, Ordering::AcqRel);
        if before >= max {
            counter.fetch_sub(1, Ordering::AcqRel);
            return Err(PasswordError::Busy);
        }
        crate::metrics::password_queue(before + 1);
        Ok(Self(counter))
    }
}

impl Drop for QueueSlot<'_> {
    fn drop(&mut self) {
        let before = self.0.fetch_sub(1, Ordering::AcqRel);
        crate::metrics::password_queue(before.saturating_sub(1));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret(s: &str) -> SecretString {
        SecretString::from(s.to_owned())
    }

    #[tokio::test]
    async fn hash_verifies_and_wrong_password_does_not() {
        let h = Hasher::new(64, 1, 1).unwrap();
        let phc = h.hash(secret("correct horse")).await.unwrap();
        assert!(phc.starts_with("$argon2id$v=19$m=64,t=1,p=1$"));
        assert_eq!(
            h.verify(secret("correct horse"), Some(phc.clone()))
                .await
                .unwrap(),
            Verified::Match { rehash: false }
        );
        assert_eq!(
            h.verify(secret("wrong horse"), Some(phc)).await.unwrap(),
            Verified::Mismatch
        );
        assert_eq!(
            h.verify(secret("anything"), None).await.unwrap(),
            Verified::Mismatch
        );
    }

    #[tokio::test]
    async fn changed_policy_asks_for_a_rehash() {
        let old = Hasher::new(64, 1, 1).unwrap();
        let phc = old.hash(secret("correct horse")).await.unwrap();
        let new = Hasher::new(128, 1, 1).unwrap();
        assert_eq!(
            new.verify(secret("correct horse"), Some(phc))
                .await
                .unwrap(),
            Verified::Match { rehash: true }
        );
    }
}
