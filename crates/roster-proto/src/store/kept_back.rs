//! Remote registrations a shard keeps back until their node re-stamps them.
//!
//! A registration of a name the shard shows no owner of, arriving with a token below one
//! the node showed for the name before (see `token_floors`), is not shown: its owner's node
//! is asked for a fresh token (`ScopeStore::held_back` in `replica`). Until the re-stamped
//! registration arrives, the name is still held, by a registration nobody reads: a local
//! registration of it meets the kept-back one as a contender, decided by the conflict rule
//! as every node will once both reach it. Otherwise the node could confirm a local
//! registration that then loses the conflict.
//!
//! A local registration refused on account of a kept-back one (a standby waiting for the
//! name, say) has seen no event for it. If the kept-back registration goes without ever
//! being shown (its node released it or went down), the shard emits its `Unregistered`,
//! so that whoever waits on the key's events tries again; one that is shown emits its
//! `Registered` as any registration does.

use super::FastMap;
use crate::vocab::entry::Registration;
use crate::vocab::key::Key;
use crate::vocab::pid::Pid;

/// A registration kept back, and whether a local registration was refused for it.
#[derive(Debug, Clone)]
pub(super) struct Waiting {
    /// The registration, as it arrived.
    pub(super) registration: Registration,
    /// A local registration of its name was refused because of it: its going unseen must
    /// be told (see the module docs).
    pub(super) refused_local: bool,
}

/// The registrations one shard keeps back: at most one per name (the one the conflict
/// rule prefers among those that came).
#[derive(Debug, Default)]
pub(super) struct KeptBack(FastMap<Key, Waiting>);

impl KeptBack {
    /// The registration kept back for `key`, if any.
    pub(super) fn get(&self, key: &str) -> Option<&Registration> {
        self.0.get(key).map(|w| &w.registration)
    }

    /// Keeps `registration` back for `key`, in place of the one kept back before (whose
    /// refusal, if any, it inherits: a refused registration waits on the key, whichever
    /// contender holds it).
    pub(super) fn keep(&mut self, key: &Key, registration: Registration, refused_local: bool) {
        let refused_local =
            refused_local || self.0.get(key.as_str()).is_some_and(|w| w.refused_local);
        self.0.insert(
            key.clone(),
            Waiting {
                registration,
                refused_local,
            },
        );
    }

    /// Marks that a local registration of `key` was refused for the one kept back.
    pub(super) fn refused(&mut self, key: &str) {
        if let Some(waiting) = self.0.get_mut(key) {
            waiting.refused_local = true;
        }
    }

    /// Takes the registration kept back for `key` if `pid` owns it.
    pub(super) fn take(&mut self, key: &str, pid: Pid) -> Option<Waiting> {
        if self.0.get(key)?.registration.pid != pid {
            return None;
        }
        self.0.remove(key)
    }

    /// Takes every registration kept back that `doomed` picks.
    pub(super) fn take_where(
        &mut self,
        mut doomed: impl FnMut(&Key, &Registration) -> bool,
    ) -> Vec<(Key, Waiting)> {
        let keys: Vec<Key> = self
            .0
            .iter()
            .filter(|(key, w)| doomed(key, &w.registration))
            .map(|(key, _)| key.clone())
            .collect();
        keys.into_iter()
            .filter_map(|key| self.0.remove(key.as_str()).map(|w| (key, w)))
            .collect()
    }

    /// Forgets every registration kept back (the scope is closing).
    pub(super) fn clear(&mut self) {
        self.0.clear();
    }
}
