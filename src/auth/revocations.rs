//! An in-memory view of revoked sessions and disabled users, so `Validate` needs no
//! database round trip. Reloaded from the database every `AUTHD_REVOCATION_REFRESH`
//! (the bound on how long another instance's revocation goes unseen here); changes made
//! by this instance apply at once.
use std::collections::{HashMap, HashSet};
use std::sync::RwLock;
use std::time::{Duration, Instant};

use uuid::Uuid;

use crate::store::RevocationSnapshot;

#[derive(Debug, Default)]
struct View {
    sessions: HashSet<Uuid>,
    users: HashSet<Uuid>,
}

/// Revoked sessions and disabled users, as last seen.
#[derive(Debug, Default)]
pub struct Revocations {
    view: RwLock<View>,
    // Local revocations newer than any reload may have seen: kept across reloads for a
    // while, so a reload that read the database just before our write cannot drop them.
    recent: RwLock<HashMap<Uuid, Instant>>,
}

const KEEP_LOCAL: Duration = Duration::from_secs(30);

impl Revocations {
    pub(crate) fn is_refused(&self, session: &Uuid, user: &Uuid) -> bool {
        match self.view.read() {
            Ok(v) => v.sessions.contains(session) || v.users.contains(user),
            // A poisoned lock means a panic mid-update: refuse rather than trust it.
            Err(_) => true,
        }
    }

    /// A session this instance has just revoked.
    pub(crate) fn add_session(&self, session: Uuid) {
        if let Ok(mut v) = self.view.write() {
            v.sessions.insert(session);
        }
        if let Ok(mut r) = self.recent.write() {
            r.insert(session, Instant::now());
        }
    }

    /// Replace the view with a fresh snapshot (plus recent local revocations).
    pub fn replace(&self, snap: RevocationSnapshot) {
        let mut sessions: HashSet<Uuid> = snap.revoked_sessions.into_iter().collect();
        if let Ok(mut r) = self.recent.write() {
            r.retain(|_, at| at.elapsed() < KEEP_LOCAL);
            sessions.extend(r.keys().copied());
        }
        let users = snap.disabled_users.into_iter().collect();
        if let Ok(mut v) = self.view.write() {
            *v = View { sessions, users };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_revocations_survive_a_stale_reload() {
        let r = Revocations::default();
        let (s, u) = (Uuid::new_v4(), Uuid::new_v4());
        assert!(!r.is_refused(&s, &u));
        r.add_session(s);
        r.replace(RevocationSnapshot::default());
        assert!(r.is_refused(&s, &u));
        let other = Uuid::new_v4();
        r.replace(RevocationSnapshot {
            revoked_sessions: vec![],
            disabled_users: vec![u],
        });
        assert!(r.is_refused(&other, &u));
    }
}
