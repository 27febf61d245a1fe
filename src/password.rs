//! argon2id hashing on a pool of threads bounded to the core count, so a storm of logins
//! queues here instead of starving the async runtime (and with it `Validate`).
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, mpsc};

use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher as _, PasswordVerifier as _};
use argon2::{Algorithm, Argon2, Params, Version};
use secrecy::{ExposeSecret, SecretString};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, oneshot};

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
    pool: Arc<Pool>,
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

/// The hashing workers and their admission state: one OS thread per core runs the jobs
/// (threads of their own, so the async runtime and its blocking pool never hash, and a
/// thread's argon2 memory is reused by its next job); at most `workers` jobs hold a permit,
/// at most `max_waiting` are queued or running.
#[derive(Debug)]
struct Pool {
    permits: Arc<Semaphore>,
    queued: AtomicUsize,
    running: AtomicUsize,
    max_waiting: usize,
    jobs: mpsc::Sender<Job>,
}

type Job = Box<dyn FnOnce() + Send>;

/// Start `n` hashing threads fed by one queue. They end when the last sender (the last
/// clone of the `Hasher`) is gone.
fn start_workers(n: usize) -> Result<mpsc::Sender<Job>, PasswordError> {
    let (tx, rx) = mpsc::channel::<Job>();
    let rx = Arc::new(Mutex::new(rx));
    for i in 0..n {
        let rx = rx.clone();
        std::thread::Builder::new()
            .name(format!("authd-hash-{i}"))
            .spawn(move || {
                lower_priority();
                loop {
                    // The lock is held only while taking a job, not while running it.
                    let job = match rx.lock() {
                        Ok(rx) => rx.recv(),
                        Err(_) => return,
                    };
                    match job {
                        Ok(job) => job(),
                        Err(_) => return,
                    }
                }
            })
            .map_err(|e| PasswordError::Hash(format!("cannot start a hashing thread: {e}")))?;
    }
    Ok(tx)
}

/// Nice value of the hashing threads, for where `SCHED_IDLE` is refused.
#[cfg(target_os = "linux")]
const HASH_NICE: i32 = 10;

/// Put the calling thread under `SCHED_IDLE`: a login storm may use every idle cycle, but a
/// Validate call, which takes microseconds, must not wait behind a 10 ms hash. Nice 10
/// alone still gives a hashing thread a tenth of a core that other work wants (the kernel
/// weighs nice 0 at 1024 and nice 10 at 110) and lets it finish its slice before a woken
/// worker runs; an idle-class thread runs only when nothing else is runnable and is
/// preempted at once. Elsewhere a no-op.
fn lower_priority() {
    #[cfg(target_os = "linux")]
    {
        let param = libc::sched_param { sched_priority: 0 };
        // SAFETY: pid 0 is the calling thread; the kernel only reads `param`, which lives
        // until the call returns.
        let idle = unsafe { libc::sched_setscheduler(0, libc::SCHED_IDLE, &param) };
        // SAFETY: setpriority takes plain integers and touches no memory of ours.
        let nice = unsafe { libc::setpriority(libc::PRIO_PROCESS, 0, HASH_NICE) };
        if idle != 0 || nice != 0 {
            tracing::debug!(error = %std::io::Error::last_os_error(), "cannot lower the hashing threads' priority");
        }
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
            pool: Arc::new(Pool {
                permits: Arc::new(Semaphore::new(workers)),
                queued: AtomicUsize::new(0),
                running: AtomicUsize::new(0),
                // Beyond this many queued checks a caller waits seconds: refuse instead.
                max_waiting: workers * 64,
                jobs: start_workers(workers)?,
            }),
            dummy: dummy.into(),
        })
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

    /// Run `f` on a hashing thread once a worker permit is free. The permit and the
    /// queue slot belong to the job, not to the caller: a caller that goes away (deadline,
    /// reset) leaves a running job holding its permit to the end, so cancelled calls can
    /// never put more hashes on the CPU than the cap. A job whose caller left before it
    /// started is skipped.
    pub(crate) async fn run<T, F>(&self, f: F) -> Result<T, PasswordError>
    where
        F: FnOnce() -> Result<T, PasswordError> + Send + 'static,
        T: Send + 'static,
    {
        let ticket = Ticket::queue(self.pool.clone())?;
        let permit = self
            .pool
            .permits
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| PasswordError::Join)?;
        let running = ticket.start(permit);
        let (tx, rx) = oneshot::channel();
        let span = tracing::Span::current();
        let job: Job = Box::new(move || {
            let _running = running;
            if tx.is_closed() {
                return;
            }
            let _ = tx.send(span.in_scope(f));
        });
        // A permit is held, so a worker is free (or about to be): the job never waits long.
        self.pool.jobs.send(job).map_err(|_| PasswordError::Join)?;
        rx.await.map_err(|_| PasswordError::Join)?
    }
}

/// A hashing job's place in the pool: queued until it holds a worker permit, then running
/// until dropped (by the job itself, when it ends).
struct Ticket {
    pool: Arc<Pool>,
    permit: Option<OwnedSemaphorePermit>,
}

impl Ticket {
    fn queue(pool: Arc<Pool>) -> Result<Self, PasswordError> {
        let queued = pool.queued.fetch_add(1, Ordering::AcqRel);
        let running = pool.running.load(Ordering::Acquire);
        if queued + running >= pool.max_waiting {
            pool.queued.fetch_sub(1, Ordering::AcqRel);
            return Err(PasswordError::Busy);
        }
        crate::metrics::password_hashes(queued + 1, running);
        Ok(Self { pool, permit: None })
    }

    fn start(mut self, permit: OwnedSemaphorePermit) -> Self {
        let queued = self.pool.queued.fetch_sub(1, Ordering::AcqRel) - 1;
        let running = self.pool.running.fetch_add(1, Ordering::AcqRel) + 1;
        crate::metrics::password_hashes(queued, running);
        self.permit = Some(permit);
        self
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        let counter = match self.permit {
            Some(_) => &self.pool.running,
            None => &self.pool.queued,
        };
        counter.fetch_sub(1, Ordering::AcqRel);
        crate::metrics::password_hashes(
            self.pool.queued.load(Ordering::Acquire),
            self.pool.running.load(Ordering::Acquire),
        );
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

#[cfg(test)]
mod tests {
    use super::*;

    fn secret(s: &str) -> SecretString {
        SecretString::from(s.to_owned())
    }

    /// (nice, scheduling policy) of every live thread of this process named `authd-hash-*`.
    #[cfg(target_os = "linux")]
    fn hashing_thread_priorities() -> Vec<(i64, i64)> {
        let mut out = Vec::new();
        for task in std::fs::read_dir("/proc/self/task").unwrap().flatten() {
            let comm = std::fs::read_to_string(task.path().join("comm")).unwrap_or_default();
            if !comm.starts_with("authd-hash-") {
                continue;
            }
            let stat = std::fs::read_to_string(task.path().join("stat")).unwrap();
            // Fields after the parenthesised name; nice is field 19 of stat(5), policy 41.
            let rest: Vec<&str> = stat[stat.rfind(')').unwrap() + 2..].split(' ').collect();
            out.push((rest[16].parse().unwrap(), rest[38].parse().unwrap()));
        }
        out
    }

    #[cfg(target_os = "linux")]
    #[tokio::test]
    async fn hashing_threads_run_at_a_lower_priority() {
        let h = Hasher::new(64, 1, 1).unwrap();
        h.hash(secret("correct horse")).await.unwrap();
        // A worker lowers its own priority as it starts: wait for the last to get there.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        let want = (i64::from(HASH_NICE), i64::from(libc::SCHED_IDLE));
        loop {
            let seen = hashing_thread_priorities();
            if !seen.is_empty() && seen.iter().all(|p| *p == want) {
                break;
            }
            assert!(std::time::Instant::now() < deadline, "{seen:?}");
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
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
