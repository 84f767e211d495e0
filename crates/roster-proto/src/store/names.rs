//! Unique names: `key -> (pid, meta)`, one live owner per key.

use std::sync::Arc;

use super::change_log::ChangeKind;
use super::kept_back::Waiting;
use super::{
    Cause, ScopeStore, Shard, StoredKey, digest, keys_with_prefix, keys_with_prefix_after, put,
};
use super::{HeldKind, LocalProcess};
use crate::vocab::conflict::Winner;
use crate::vocab::entry::{Entry, Registration};
use crate::vocab::error::RegistryError;
use crate::vocab::event::{Event, EventKind, Reason};
use crate::vocab::key::Key;
use crate::vocab::meta::Meta;
use crate::vocab::op::Op;
use crate::vocab::pid::Pid;

/// Every this many new names in a shard, the writer flushes its thread's batch of retired
/// map tables and entries (a multiple of the batch itself is flushed anyway): rare enough to
/// cost nothing measurable in `roster-bench --only L3,L4`, often enough that a growing map
/// leaves no more than a few old tables behind.
const FLUSH_EVERY: u32 = 256;

impl ScopeStore {
    /// Registers `key` for a local process, updates its meta, or refuses with `Taken`.
    pub fn register(
        self: &Arc<Self>,
        cell: &LocalProcess,
        key: Key,
        meta: Meta,
    ) -> Result<Registration, RegistryError> {
        let Some(log) = self.config.locals.changes.active() else {
            return self.register_locked(cell, key, meta);
        };
        let logged = key.clone();
        let result = self.register_locked(cell, key, meta);
        if result.is_ok() {
            self.tell(log, ChangeKind::Register, &logged, cell.pid);
        }
        result
    }

    /// [`ScopeStore::register`], under the key's shard lock.
    fn register_locked(
        self: &Arc<Self>,
        cell: &LocalProcess,
        key: Key,
        meta: Meta,
    ) -> Result<Registration, RegistryError> {
        let mut shard = self.write_lock(&key)?;
        let names = self.names.pin();
        if let Some(existing) = names.get(key.as_str()) {
            let current = existing;
            if current.pid == cell.pid {
                if !cell.is_alive() {
                    return Err(RegistryError::ProcessDead { pid: cell.pid });
                }
                if current.meta == meta {
                    return Ok(current.clone());
                }
                let registration = Registration {
                    meta,
                    ..current.clone()
                };
                let previous = current.meta.clone();
                self.replace_live(&mut shard, &key, existing, registration.clone());
                self.subscribers.emit(|| {
                    self.event(
                        EventKind::Registered,
                        &key,
                        cell.pid,
                        registration.meta.clone(),
                        Some(previous),
                        Reason::Requested,
                    )
                });
                return Ok(registration);
            }
            if self.is_live(existing.pid) {
                return Err(RegistryError::Taken {
                    key,
                    owner: current.pid,
                    meta: current.meta.clone(),
                });
            }
            // The owner died and its cleanup has not reached this key yet: the name is
            // free. Remove the dead entry now, as its cleanup would (a shadowed contender
            // may take over, and then the name is taken after all).
            let reason = self.config.locals.exit_reason(existing.pid);
            let mut events = Vec::new();
            self.remove_name(
                &mut shard,
                &key,
                current.pid,
                Cause::Exit(&reason),
                &mut events,
            );
            for event in events {
                self.subscribers.emit(|| event);
            }
            if let Some(owner) = names.get(key.as_str()) {
                return Err(RegistryError::Taken {
                    key,
                    owner: owner.pid,
                    meta: owner.meta.clone(),
                });
            }
        }
        if !self.local_only {
            self.config
                .fence
                .check()
                .map_err(|fenced| RegistryError::Fenced {
                    reason: fenced.reason,
                    since_ms: fenced.since_ms,
                })?;
        }
        let now = shard.hlc.tick(&*self.config.clock);
        let registration = Registration {
            pid: cell.pid,
            meta,
            registered_at: now,
            token: now,
        };
        if let Some(waiting) = shard.kept_back.get(key.as_str()) {
            // A remote owner this node keeps back until its node re-stamps it (see
            // `held_back`) holds the name as much as a shown one: the conflict rule decides
            // now, as every node will once both registrations reach it.
            if self.resolve(&key, waiting, &registration).0 == Winner::First {
                let (owner, meta) = (waiting.pid, waiting.meta.clone());
                shard.kept_back.refused(key.as_str());
                return Err(RegistryError::Taken { owner, meta, key });
            }
            let loser = waiting.pid;
            shard.kept_back.take(key.as_str(), loser);
        }
        self.hold(cell, || {
            self.insert_live(&mut shard, &key, registration.clone())
        })?;
        self.subscribers.emit(|| {
            self.event(
                EventKind::Registered,
                &key,
                cell.pid,
                registration.meta.clone(),
                None,
                Reason::Requested,
            )
        });
        Ok(registration)
    }

    /// Unregisters a name owned by a local process.
    pub fn unregister(&self, cell: &LocalProcess, key: &Key) -> Result<(), RegistryError> {
        self.unregister_locked(cell, key)?;
        if let Some(log) = self.config.locals.changes.active() {
            self.tell(log, ChangeKind::Unregister, key, cell.pid);
        }
        Ok(())
    }

    /// [`ScopeStore::unregister`], under the key's shard lock.
    fn unregister_locked(&self, cell: &LocalProcess, key: &Key) -> Result<(), RegistryError> {
        let mut shard = self.write_lock(key)?;
        match self.names.pin().get(key.as_str()) {
            Some(e) if self.is_live(e.pid) && e.pid != cell.pid => {
                return Err(RegistryError::NotOwner {
                    key: key.clone(),
                    owner: e.pid,
                });
            }
            Some(e) if e.pid == cell.pid => {}
            _ => return Err(RegistryError::NotRegistered { key: key.clone() }),
        }
        let mut events = Vec::new();
        self.remove_name(&mut shard, key, cell.pid, Cause::Requested, &mut events);
        self.forget_holding(cell, HeldKind::Name, key);
        for event in events {
            self.subscribers.emit(|| event);
        }
        Ok(())
    }

    /// Inserts a live entry for a key that has none and returns its stored key. The caller
    /// holds the shard lock.
    pub(super) fn insert_live(
        &self,
        shard: &mut Shard,
        key: &Key,
        entry: Registration,
    ) -> StoredKey {
        self.note_live(shard, key, &entry);
        let stored = StoredKey::new(HeldKind::Name, key);
        if self.names.pin().insert(stored.clone(), entry).is_none() {
            self.index_new_name(shard, stored.clone());
        }
        stored
    }

    /// Accounts for a new live entry of `key`: its digest and claim, and for a local one the
    /// count and the op that ships it. The caller holds the shard lock.
    pub(super) fn note_live(&self, shard: &mut Shard, key: &Key, r: &Registration) {
        shard.toggle_digest(r.pid.incarnation().get(), || digest::name(key, r));
        self.note_claim(shard, r.pid, HeldKind::Name, key, true);
        if self.is_local(r.pid) {
            self.bump(shard, |c| &c.local_names, 1);
            self.ship(Op::Register {
                key: key.clone(),
                pid: r.pid,
                meta: r.meta.clone(),
                registered_at: r.registered_at,
                token: r.token,
            });
        }
    }

    /// Adds a key just inserted in the names map to the ordered index. The caller holds the
    /// shard lock.
    pub(super) fn index_new_name(&self, shard: &mut Shard, stored: StoredKey) {
        self.name_index.insert(stored);
        shard.name_inserts = shard.name_inserts.wrapping_add(1);
        if shard.name_inserts.is_multiple_of(FLUSH_EVERY) {
            // A map that grows retires each outgrown table into this thread's batch of
            // garbage, which is only reclaimed once the batch holds 32 objects: names
            // that are only ever added would keep every old table (about 19 bytes per
            // name at 1 M, measured with `roster-bench --only M1`). Flushing starts
            // their reclamation; it costs nothing when the batch is empty.
            papaya::Guard::flush(&self.names.guard());
        }
    }

    /// Replaces the live entry of a key by a new registration of the same owner (meta or
    /// token update). The caller holds the shard lock.
    pub(super) fn replace_live(
        &self,
        shard: &mut Shard,
        key: &Key,
        old: &Registration,
        registration: Registration,
    ) {
        let pid = registration.pid;
        shard.toggle_digest(pid.incarnation().get(), || digest::name(key, old));
        shard.toggle_digest(pid.incarnation().get(), || digest::name(key, &registration));
        if self.is_local(pid) {
            self.ship(Op::Register {
                key: key.clone(),
                pid,
                meta: registration.meta.clone(),
                registered_at: registration.registered_at,
                token: registration.token,
            });
        }
        put(&self.names, HeldKind::Name, key, registration);
    }

    /// Removes `pid`'s claim on `key`: the live entry (then the best shadowed contender, if
    /// any, takes over) or a shadowed one. Pushes the events; the caller holds the shard
    /// lock and emits them.
    pub(super) fn remove_name(
        &self,
        shard: &mut Shard,
        key: &Key,
        pid: Pid,
        cause: Cause<'_>,
        events: &mut Vec<Event>,
    ) {
        let names = self.names.pin();
        let Some(entry) = names.get(key.as_str()).filter(|e| e.pid == pid) else {
            if !self.remove_shadow(shard, key, pid)
                && let Some(waiting) = shard.kept_back.take(key.as_str(), pid)
            {
                self.kept_back_gone(key, waiting, cause, events);
            }
            return;
        };
        let r = entry.clone();
        shard.toggle_digest(pid.incarnation().get(), || digest::name(key, &r));
        self.note_claim(shard, pid, HeldKind::Name, key, false);
        if shard.keep_digests {
            shard.floors.raise(key, r.token);
        }
        if self.is_local(pid) {
            self.bump(shard, |c| &c.local_names, -1);
            self.ship(Op::Unregister {
                key: key.clone(),
                pid,
                reason: cause.reason(),
            });
        }
        self.push_event(events, || {
            self.event(
                EventKind::Unregistered,
                key,
                pid,
                r.meta.clone(),
                None,
                cause.reason(),
            )
        });
        match self.take_best_shadow(shard, key) {
            Some(best) if shard.keep_digests && best.token < r.token => {
                // The contender that would take over has a smaller token than the one shown
                // here: it is not shown, and neither is any other. They are forgotten (their
                // digests with them): each one's node removes it too, having lost, or, if
                // it never learned that it lost, sends it again when the digests differ, and
                // it is then kept back until its node re-stamps it above this token.
                self.forget_shadow(shard, key, &best);
                for other in shard.shadows.remove(key.as_str()).unwrap_or_default() {
                    self.forget_shadow(shard, key, &other);
                }
                names.remove(key.as_str());
                self.name_index.remove(key.as_str());
            }
            Some(promoted) => {
                self.push_event(events, || {
                    self.event(
                        EventKind::Registered,
                        key,
                        promoted.pid,
                        promoted.meta.clone(),
                        None,
                        Reason::Requested,
                    )
                });
                put(&self.names, HeldKind::Name, key, promoted);
            }
            None => {
                names.remove(key.as_str());
                self.name_index.remove(key.as_str());
            }
        }
    }

    /// A registration kept back for `key` went without being shown (`cause`): if a local
    /// registration was refused for it, its `Unregistered` tells whoever waits on the key
    /// (see `kept_back`).
    pub(super) fn kept_back_gone(
        &self,
        key: &Key,
        waiting: Waiting,
        cause: Cause<'_>,
        events: &mut Vec<Event>,
    ) {
        if !waiting.refused_local {
            return;
        }
        let r = waiting.registration;
        self.push_event(events, || {
            self.event(
                EventKind::Unregistered,
                key,
                r.pid,
                r.meta.clone(),
                None,
                cause.reason(),
            )
        });
    }

    /// Drops what a shadowed contender of `key`, already out of the shadow list, counts
    /// for: its share of its origin's digest and its claim.
    fn forget_shadow(&self, shard: &mut Shard, key: &Key, entry: &Registration) {
        let origin = entry.pid.incarnation().get();
        shard.toggle_digest(origin, || digest::name(key, entry));
        self.note_claim(shard, entry.pid, HeldKind::Name, key, false);
    }

    /// Removes a shadowed contender of `key` owned by `pid`, if there is one.
    pub(super) fn remove_shadow(&self, shard: &mut Shard, key: &Key, pid: Pid) -> bool {
        let Some(list) = shard.shadows.get_mut(key.as_str()) else {
            return false;
        };
        let Some(i) = list.iter().position(|e| e.pid == pid) else {
            return false;
        };
        let removed = list.swap_remove(i);
        if list.is_empty() {
            shard.shadows.remove(key.as_str());
        }
        self.forget_shadow(shard, key, &removed);
        true
    }

    /// Takes the contender that the conflict rule prefers among the shadows of `key`. Its
    /// digest contribution stays (it remains an entry of its origin, now live). Called in
    /// the middle of a removal, which is sound because `resolve` never unwinds (it catches
    /// a custom resolver's panic).
    fn take_best_shadow(&self, shard: &mut Shard, key: &Key) -> Option<Registration> {
        let list = shard.shadows.get_mut(key.as_str())?;
        let mut best = 0;
        for i in 1..list.len() {
            if self.resolve(key, &list[i], &list[best]).0 == Winner::First {
                best = i;
            }
        }
        let entry = list.swap_remove(best);
        if list.is_empty() {
            shard.shadows.remove(key.as_str());
        }
        Some(entry)
    }

    /// The live owner of `key`. Lock-free.
    #[inline]
    pub fn lookup(&self, key: &str) -> Option<Registration> {
        let names = self.names.pin();
        let entry = names.get(key)?;
        self.is_live(entry.pid).then(|| entry.clone())
    }

    /// The pid of the live owner of `key`. Lock-free and allocation-free.
    #[inline]
    pub fn whereis(&self, key: &str) -> Option<Pid> {
        let names = self.names.pin();
        let entry = names.get(key)?;
        self.is_live(entry.pid).then_some(entry.pid)
    }

    /// Live names under `prefix` (`""`: all), in key order, at most `limit`.
    pub fn registered(&self, prefix: &str, limit: usize) -> Vec<(Key, Registration)> {
        self.registered_after(prefix, None, limit)
    }

    /// As [`Self::registered`], for the keys strictly after `after` if given (a page after
    /// the last key of the one before).
    pub fn registered_after(
        &self,
        prefix: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Vec<(Key, Registration)> {
        let guard = scc::Guard::new();
        let names = self.names.pin();
        keys_with_prefix_after(&self.name_index, prefix, after, &guard)
            .filter_map(|k| {
                let e = names.get(k.as_str())?;
                self.is_live(e.pid).then(|| (k.to_key(), e.clone()))
            })
            .take(limit)
            .collect()
    }

    /// Number of names (all, or owned by local processes).
    pub fn registry_count(&self, local_only: bool) -> usize {
        if local_only {
            self.count(|c| &c.local_names)
        } else {
            self.names.len()
        }
    }

    /// Visits live names, under `prefix` if given (cost proportional to the range).
    pub fn visit_names(&self, prefix: Option<&str>, mut visit: impl FnMut(Entry) -> bool) {
        let names = self.names.pin();
        let mut emit = |key: &StoredKey, e: &Registration| {
            if !self.is_live(e.pid) {
                return true;
            }
            visit(Entry {
                key: key.to_key(),
                pid: e.pid,
                meta: e.meta.clone(),
            })
        };
        match prefix {
            Some(prefix) => {
                let guard = scc::Guard::new();
                for key in keys_with_prefix(&self.name_index, prefix, &guard) {
                    if let Some(e) = names.get(key.as_str())
                        && !emit(key, e)
                    {
                        return;
                    }
                }
            }
            None => {
                for (key, e) in names.iter() {
                    if !emit(key, e) {
                        return;
                    }
                }
            }
        }
    }
}
