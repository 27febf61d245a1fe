//! Login throttling: failed logins are counted per account (in the database, so every
//! instance sees the same count) and per source address (in memory, per instance). Past a
//! few free failures each further one doubles the wait before the next try, up to a cap.
//!
//! An attempt is counted *before* its password is checked and forgiven when it succeeds:
//! concurrent guesses, or guesses that hang up mid-check, cannot slip past the count.
//! The cap bounds how long an attacker can lock the real user out with wrong guesses.
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::Duration;

use chrono::{DateTime, Utc};

use super::{Auth, AuthError, chrono_dur};
use crate::store::throttle::AccountCount;

/// How failures turn into waits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// Failures that cost no wait.
    pub free: u32,
    /// The wait after the first failure past the free ones; each further one doubles it.
    pub base: Duration,
    /// The longest wait.
    pub max: Duration,
    /// A count is forgotten this long after its last failure.
    pub reset: Duration,
}

impl Backoff {
    /// The wait before the next try after `failures` failures.
    pub(crate) fn delay(&self, failures: u32) -> Duration {
        if failures < self.free {
            return Duration::ZERO;
        }
        let doublings = (failures - self.free).min(31);
        self.base.saturating_mul(1 << doublings).min(self.max)
    }

    /// The failures still counted at `now` after `failures` with the last at `last`.
    pub(crate) fn live_failures(
        &self,
        failures: u32,
        last: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> u32 {
        if now - last > chrono_dur(self.reset) {
            0
        } else {
            failures
        }
    }

    /// When the next try is allowed after the `failures`th failure at `now`.
    pub(crate) fn blocked_until(&self, failures: u32, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let d = self.delay(failures);
        (!d.is_zero()).then(|| now + chrono_dur(d))
    }
}

/// The throttle settings.
#[derive(Debug, Clone)]
pub struct ThrottlePolicy {
    pub account: Backoff,
    pub address: Backoff,
}

/// How long until `until`, at least a second (what RetryInfo tells the caller).
pub(crate) fn wait_until(until: DateTime<Utc>, now: DateTime<Utc>) -> Duration {
    (until - now)
        .to_std()
        .unwrap_or(Duration::ZERO)
        .max(Duration::from_secs(1))
}

#[derive(Debug, Clone, Copy)]
struct Count {
    failures: u32,
    last: DateTime<Utc>,
    blocked_until: Option<DateTime<Utc>>,
}

/// Per-address failure counts of this instance. Bounded: past `MAX_ADDRESSES` entries the
/// forgotten ones are dropped, and if none are, new addresses go uncounted (the per-account
/// count, in the database, still holds).
#[derive(Debug)]
pub struct AddressThrottle {
    backoff: Backoff,
    counts: Mutex<HashMap<IpAddr, Count>>,
}

const MAX_ADDRESSES: usize = 100_000;

/// The unit an address is counted in: IPv4 addresses one by one, IPv6 by /64 (what one
/// subscriber typically holds).
fn address_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let mut seg = v6.segments();
                seg[4..].fill(0);
                IpAddr::V6(seg.into())
            }
        },
    }
}

impl AddressThrottle {
    pub fn new(backoff: Backoff) -> Self {
        Self {
            backoff,
            counts: Mutex::new(HashMap::new()),
        }
    }

    /// Count an attempt from `ip`; `Err(wait)` when the address must wait first.
    pub(crate) fn begin(&self, ip: IpAddr, now: DateTime<Utc>) -> Result<(), Duration> {
        let key = address_key(ip);
        let Ok(mut counts) = self.counts.lock() else {
            return Ok(());
        };
        if counts.len() >= MAX_ADDRESSES && !counts.contains_key(&key) {
            let b = self.backoff;
            counts.retain(|_, c| {
                b.live_failures(c.failures, c.last, now) > 0
                    || c.blocked_until.is_some_and(|t| t > now)
            });
            if counts.len() >= MAX_ADDRESSES {
                return Ok(());
            }
        }
        let c = counts.entry(key).or_insert(Count {
            failures: 0,
            last: now,
            blocked_until: None,
        });
        if let Some(until) = c.blocked_until.filter(|t| *t > now) {
            return Err(wait_until(until, now));
        }
        let failures = self.backoff.live_failures(c.failures, c.last, now) + 1;
        *c = Count {
            failures,
            last: now,
            blocked_until: self.backoff.blocked_until(failures, now),
        };
        Ok(())
    }

    /// Forgive the attempt just counted: it was not a failure. Only that one: a success
    /// with one account must not wipe the guesses made at others from the same address.
    pub(crate) fn forgive(&self, ip: IpAddr) {
        let Ok(mut counts) = self.counts.lock() else {
            return;
        };
        if let Some(c) = counts.get_mut(&address_key(ip)) {
            c.failures = c.failures.saturating_sub(1);
            if self.backoff.delay(c.failures).is_zero() {
                c.blocked_until = None;
            }
        }
    }

    /// Drop counts that are forgotten anyway.
    pub(crate) fn prune(&self, now: DateTime<Utc>) {
        let b = self.backoff;
        if let Ok(mut counts) = self.counts.lock() {
            counts.retain(|_, c| {
                b.live_failures(c.failures, c.last, now) > 0
                    || c.blocked_until.is_some_and(|t| t > now)
            });
        }
    }
}

impl Auth {
    /// Count a login attempt for the account `key` and the address `from`, or refuse it
    /// with `Throttled` when either must wait.
    pub(super) async fn begin_attempt(
        &self,
        key: &str,
        from: Option<IpAddr>,
        user_id: Option<uuid::Uuid>,
    ) -> Result<(), AuthError> {
        let refused = |scope: &'static str, wait: Duration| {
            tracing::info!(
                event = "login_throttled",
                scope,
                user_id = %user_id.map(|u| u.to_string()).unwrap_or_default(),
                retry_after_secs = wait.as_secs(),
                "login refused: too many failures"
            );
            crate::metrics::login_throttled(scope);
            AuthError::Throttled { retry_after: wait }
        };
        if let Some(ip) = from
            && let Err(wait) = self.addresses.begin(ip, Utc::now())
        {
            return Err(refused("address", wait));
        }
        match self.begin_account_attempt(key).await {
            Ok(()) => Ok(()),
            Err(e) => {
                self.forgive_address(from);
                match e {
                    AuthError::Throttled { retry_after } => Err(refused("account", retry_after)),
                    other => Err(other),
                }
            }
        }
    }

    /// A login succeeded: the account's count is cleared, the address's attempt forgiven.
    pub(super) async fn end_attempt_ok(&self, key: &str, from: Option<IpAddr>) {
        self.forgive_address(from);
        if let Err(e) = self.store.clear_account_count(key).await {
            tracing::warn!(error = %e, "cannot clear the failed-login count");
        }
    }

    pub(super) fn forgive_address(&self, from: Option<IpAddr>) {
        if let Some(ip) = from {
            self.addresses.forgive(ip);
        }
    }

    async fn begin_account_attempt(&self, key: &str) -> Result<(), AuthError> {
        let b = self.policy.throttle.account;
        // A compare-and-swap on the count: each attempt, on any instance, takes its own
        // number, so concurrent guesses cannot all read "not yet blocked".
        for _ in 0..16 {
            let now = Utc::now();
            let seen = self.store.account_count(key).await?;
            if let Some(until) = seen.and_then(|c| c.blocked_until).filter(|t| *t > now) {
                return Err(AuthError::Throttled {
                    retry_after: wait_until(until, now),
                });
            }
            let failures = seen.map_or(0, |c| b.live_failures(c.failures, c.last_failure_at, now));
            let n = failures.saturating_add(1);
            let next = AccountCount {
                failures: n,
                last_failure_at: now,
                blocked_until: b.blocked_until(n, now),
            };
            if self.store.swap_account_count(key, seen, next).await? {
                return Ok(());
            }
        }
        // Contended beyond reason: a guessing storm at this very account.
        Err(AuthError::Throttled {
            retry_after: b.base,
        })
    }

    /// Drop per-address counts that are forgotten, and stale per-account rows.
    pub(super) async fn prune_throttle(&self) -> Result<u64, AuthError> {
        let now = Utc::now();
        self.addresses.prune(now);
        let before = now - chrono_dur(self.policy.throttle.account.reset);
        Ok(self.store.delete_stale_counts(before, now).await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn backoff() -> Backoff {
        Backoff {
            free: 3,
            base: Duration::from_secs(1),
            max: Duration::from_secs(60),
            reset: Duration::from_secs(3600),
        }
    }

    #[test]
    fn waits_double_after_the_free_failures_up_to_the_cap() {
        let b = backoff();
        let waits: Vec<u64> = (0..12).map(|n| b.delay(n).as_secs()).collect();
        assert_eq!(waits, [0, 0, 0, 1, 2, 4, 8, 16, 32, 60, 60, 60]);
        assert_eq!(b.delay(u32::MAX), Duration::from_secs(60));
    }

    #[test]
    fn counts_are_forgotten_after_the_reset_time() {
        let b = backoff();
        let now = Utc::now();
        assert_eq!(
            b.live_failures(7, now - chrono::Duration::minutes(59), now),
            7
        );
        assert_eq!(
            b.live_failures(7, now - chrono::Duration::minutes(61), now),
            0
        );
    }

    #[test]
    fn an_address_waits_after_its_free_failures_and_a_success_forgives_one() {
        let t = AddressThrottle::new(backoff());
        let ip: IpAddr = "203.0.113.7".parse().unwrap();
        let now = Utc::now();
        for _ in 0..3 {
            t.begin(ip, now).unwrap();
        }
        // The third failure started the wait: the fourth try must wait a second.
        assert_eq!(t.begin(ip, now), Err(Duration::from_secs(1)));
        // Another address is not affected.
        t.begin("203.0.113.8".parse().unwrap(), now).unwrap();
        t.forgive(ip);
        t.begin(ip, now).unwrap();
        let later = now + chrono::Duration::seconds(2);
        t.begin(ip, later).unwrap();
        assert!(t.begin(ip, later).is_err());
    }

    #[test]
    fn ipv6_is_counted_per_64_and_mapped_ipv4_as_ipv4() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:bbbb::2".parse().unwrap();
        assert_eq!(address_key(a), address_key(b));
        let mapped: IpAddr = "::ffff:203.0.113.7".parse().unwrap();
        assert_eq!(
            address_key(mapped),
            "203.0.113.7".parse::<IpAddr>().unwrap()
        );
    }
}
