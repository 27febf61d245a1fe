//! When a stored key signs and verifies: pure functions of the rows and an instant.
use std::time::Duration;

use authd_client::LEEWAY_SECS;
use chrono::{DateTime, Utc};

use crate::store::keys::SigningKeyRow;

/// Where a stored key stands at a given moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyState {
    /// Activates later: published and verifying already, not signing yet.
    Next,
    /// Signs new tokens.
    Active,
    /// A newer key signs; tokens this one signed may still be live, so it still verifies.
    Retiring,
    /// Every token it signed has expired: neither published nor accepted.
    Retired,
}

impl KeyState {
    fn as_str(self) -> &'static str {
        match self {
            Self::Next => "next",
            Self::Active => "active",
            Self::Retiring => "retiring",
            Self::Retired => "retired",
        }
    }

    pub(super) fn verifies(self) -> bool {
        self != Self::Retired
    }

    pub(super) fn signs_now_or_later(self) -> bool {
        matches!(self, Self::Next | Self::Active)
    }
}

impl std::fmt::Display for KeyState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How long after a newer key activates an older one keeps verifying: a token it signed
/// just before lives `access_ttl`, verifiers allow the leeway past `exp`, and an instance
/// that has not reloaded the keys yet may sign with the older key for `key_refresh` more.
pub fn retire_grace(access_ttl: Duration, key_refresh: Duration) -> Duration {
    access_ttl
        .saturating_add(Duration::from_secs(LEEWAY_SECS))
        .saturating_add(key_refresh)
}

/// When a stored key signs from; rows from before rotation existed have only `created_at`.
pub fn activation(row: &SigningKeyRow) -> DateTime<Utc> {
    row.activates_at.unwrap_or(row.created_at)
}

/// Indexes of `rows` by activation (ties: creation, then kid), so every instance agrees on
/// which key is the newest.
pub(super) fn by_activation(rows: &[SigningKeyRow]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..rows.len()).collect();
    order.sort_by(|&a, &b| {
        let (a, b) = (&rows[a], &rows[b]);
        (activation(a), a.created_at, &a.kid).cmp(&(activation(b), b.created_at, &b.kid))
    });
    order
}

/// The state of every row at `now`, in the order of `rows`. `grace` as [`retire_grace`].
pub fn key_states(rows: &[SigningKeyRow], now: DateTime<Utc>, grace: Duration) -> Vec<KeyState> {
    let grace = chrono::Duration::from_std(grace).unwrap_or(chrono::Duration::MAX);
    let order = by_activation(rows);
    let mut states = vec![KeyState::Retired; rows.len()];
    for (pos, &i) in order.iter().enumerate() {
        states[i] = if activation(&rows[i]) > now {
            KeyState::Next
        } else {
            // The key after this one in activation order replaced it, if it is active yet.
            let replaced_at = order
                .get(pos + 1)
                .map(|&j| activation(&rows[j]))
                .filter(|t| *t <= now);
            match replaced_at {
                None => KeyState::Active,
                Some(t) if t.checked_add_signed(grace).is_none_or(|end| now < end) => {
                    KeyState::Retiring
                }
                Some(_) => KeyState::Retired,
            }
        };
    }
    states
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::fixtures::{at, row};

    const MIN: Duration = Duration::from_secs(60);

    #[test]
    fn grace_is_access_ttl_plus_leeway_plus_reload_interval() {
        assert_eq!(
            retire_grace(15 * MIN, Duration::from_secs(10)),
            15 * MIN + Duration::from_secs(LEEWAY_SECS + 10)
        );
    }

    #[test]
    fn states_follow_activation_times_and_grace() {
        use KeyState::*;
        // a: legacy row (no activation: its creation); b rotated in at 100 s, activating at
        // 200 s; c rotated in at 300 s for 10_000 s.
        let rows = [
            row("a", 0, None),
            row("b", 100, Some(200)),
            row("c", 300, Some(10_000)),
        ];
        let grace = MIN;
        let states = |now| key_states(&rows, at(now), grace);
        assert_eq!(states(50), [Active, Next, Next]);
        assert_eq!(states(199), [Active, Next, Next]);
        assert_eq!(states(200), [Retiring, Active, Next]);
        assert_eq!(states(259), [Retiring, Active, Next]);
        assert_eq!(states(260), [Retired, Active, Next]);
        assert_eq!(states(10_000), [Retired, Retiring, Active]);
        assert_eq!(states(10_060), [Retired, Retired, Active]);
        // Row order does not matter, only the timestamps do.
        let reversed: Vec<_> = rows.iter().rev().cloned().collect();
        assert_eq!(
            key_states(&reversed, at(230), grace),
            [Next, Active, Retiring]
        );
    }

    #[test]
    fn equal_activations_are_ordered_by_creation_then_kid() {
        use KeyState::*;
        let rows = [row("y", 0, Some(10)), row("x", 0, Some(10))];
        assert_eq!(key_states(&rows, at(20), MIN), [Active, Retiring]);
        let rows = [row("late", 5, Some(10)), row("early", 0, Some(10))];
        assert_eq!(key_states(&rows, at(20), MIN), [Active, Retiring]);
    }

    #[test]
    fn a_future_grace_end_that_overflows_keeps_the_key() {
        let rows = [row("a", 0, None), row("b", 10, None)];
        assert_eq!(
            key_states(&rows, at(20), Duration::MAX),
            [KeyState::Retiring, KeyState::Active]
        );
    }
}
