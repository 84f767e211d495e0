//! Standby claims: names a local process took while waiting for them (`Process::await_name`
//! in the `roster` crate) and has not confirmed yet.
//!
//! Such a claim may lose a conflict to a process of another node that took the freed name
//! at the same moment. A plain registration that loses ends its process (or tells it, see
//! `ApplyOutcome::lost`); a standby claim that loses is only removed, like any loser's
//! claim, with the same `Unregistered` event (reason `Conflict`), and its process is
//! neither ended nor listed in `ApplyOutcome::lost`: the waiting standby sees the event
//! and goes back to waiting. Once the standby confirms its claim (or gives up), the mark
//! is cleared and the name is an ordinary registration again.
//!
//! The marks live in the shard of their key, under the lock that conflict resolution
//! holds, so a conflict sees the mark or its absence, never half of it.

use super::ScopeStore;
use crate::vocab::key::Key;
use crate::vocab::pid::Pid;

impl ScopeStore {
    /// Marks `pid`'s claim on `key` (made or about to be made) as a standby claim: if it
    /// loses a conflict, it is removed without ending or reporting its process.
    pub fn mark_standby_claim(&self, key: &Key, pid: Pid) {
        let mut shard = self.lock_shard(self.shard_of(key));
        if !shard.standby.contains(&(key.clone(), pid)) {
            shard.standby.push((key.clone(), pid));
        }
    }

    /// Clears the mark of [`ScopeStore::mark_standby_claim`]; does nothing without one.
    pub fn clear_standby_claim(&self, key: &Key, pid: Pid) {
        let mut shard = self.lock_shard(self.shard_of(key));
        shard.standby.retain(|(k, p)| !(k == key && *p == pid));
    }

    /// Whether `pid`'s claim on `key` is a standby claim; the caller holds the key's shard.
    pub(super) fn is_standby_claim(standby: &[(Key, Pid)], key: &Key, pid: Pid) -> bool {
        standby.iter().any(|(k, p)| k == key && *p == pid)
    }
}
