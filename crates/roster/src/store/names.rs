//! Unique names: `key -> (pid, meta)`, one live owner per key.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use super::{Cause, ScopeState, keys_with_prefix};
use crate::clock::Hlc;
use crate::entry::{Entry, NameEntry, Registration};
use crate::error::RegistryError;
use crate::event::{Event, EventKind, Reason};
use crate::key::Key;
use crate::meta::Meta;
use crate::pid::Pid;
use crate::process::{ExitReason, HoldingKind, ProcessCell};

impl ScopeState {
    /// Registers `key` for a local process, updates its meta, or refuses with `Taken`.
    pub(crate) fn register(
        self: &Arc<Self>,
        cell: &ProcessCell,
        key: Key,
        meta: Meta,
        clock: &Hlc,
    ) -> Result<Registration, RegistryError> {
        let _shard = self.write_lock(&key)?;
        let names = self.names.pin();
        let mut replaced = None;
        if let Some(existing) = names.get(key.as_str()) {
            let current = &existing.registration;
            if current.pid == cell.pid {
                if !cell.liveness.is_alive() {
                    return Err(RegistryError::ProcessDead { pid: cell.pid });
                }
                if current.meta == meta {
                    return Ok(current.clone());
                }
                let registration = Registration {
                    meta: meta.clone(),
                    ..current.clone()
                };
                let previous = current.meta.clone();
                names.insert(
                    key.clone(),
                    NameEntry {
                        registration: registration.clone(),
                        liveness: existing.liveness.clone(),
                    },
                );
                self.subscribers.emit(self.event(
                    EventKind::Registered,
                    &key,
                    cell.pid,
                    meta,
                    Some(previous),
                    Reason::Requested,
                ));
                return Ok(registration);
            }
            if existing.is_alive() {
                return Err(RegistryError::Taken {
                    key,
                    owner: current.pid,
                    meta: current.meta.clone(),
                });
            }
            // The owner died and its cleanup has not reached this key yet: the name is free.
            replaced = Some(existing.clone());
        }
        let now = clock.tick();
        let registration = Registration {
            pid: cell.pid,
            meta,
            registered_at: now,
            token: now,
        };
        self.hold(cell, HoldingKind::Name, &key, || {
            names.insert(
                key.clone(),
                NameEntry {
                    registration: registration.clone(),
                    liveness: Some(cell.liveness.clone()),
                },
            );
        })?;
        match &replaced {
            None => {
                let _ = self.name_index.insert_sync(key.clone(), ());
                self.local_names.fetch_add(1, Ordering::Relaxed);
            }
            Some(dead) if !self.is_local(dead.registration.pid) => {
                self.local_names.fetch_add(1, Ordering::Relaxed);
            }
            Some(_) => {}
        }
        if let Some(dead) = replaced {
            let reason = dead
                .liveness
                .as_ref()
                .and_then(|l| l.exit_reason().cloned())
                .unwrap_or(ExitReason::Normal);
            self.subscribers.emit(self.event(
                EventKind::Unregistered,
                &key,
                dead.registration.pid,
                dead.registration.meta,
                None,
                Reason::Exit(reason),
            ));
        }
        self.subscribers.emit(self.event(
            EventKind::Registered,
            &key,
            cell.pid,
            registration.meta.clone(),
            None,
            Reason::Requested,
        ));
        Ok(registration)
    }

    /// Unregisters a name owned by a local process.
    pub(crate) fn unregister(&self, cell: &ProcessCell, key: &Key) -> Result<(), RegistryError> {
        let _shard = self.write_lock(key)?;
        match self.names.pin().get(key.as_str()) {
            Some(e) if e.is_alive() && e.registration.pid != cell.pid => {
                return Err(RegistryError::NotOwner {
                    key: key.clone(),
                    owner: e.registration.pid,
                });
            }
            Some(e) if e.registration.pid == cell.pid => {}
            _ => return Err(RegistryError::NotRegistered { key: key.clone() }),
        }
        let event = self.remove_name(key, cell.pid, Cause::Requested);
        self.forget_holding(cell, HoldingKind::Name, key);
        self.subscribers.emit(event.expect("entry checked above"));
        Ok(())
    }

    /// Removes `key` if `pid` owns it; the caller holds the shard lock and emits the event.
    pub(super) fn remove_name(&self, key: &Key, pid: Pid, cause: Cause<'_>) -> Option<Event> {
        let names = self.names.pin();
        let removed = names.remove_if(key.as_str(), |_, e| e.registration.pid == pid);
        let (_, entry) = removed.ok().flatten()?;
        self.name_index.remove_sync(key.as_str());
        if self.is_local(pid) {
            self.local_names.fetch_sub(1, Ordering::Relaxed);
        }
        Some(self.event(
            EventKind::Unregistered,
            key,
            pid,
            entry.registration.meta.clone(),
            None,
            cause.reason(),
        ))
    }

    /// The live owner of `key`. Lock-free.
    #[inline]
    pub(crate) fn lookup(&self, key: &str) -> Option<Registration> {
        let names = self.names.pin();
        let entry = names.get(key)?;
        entry.is_alive().then(|| entry.registration.clone())
    }

    /// The pid of the live owner of `key`. Lock-free and allocation-free.
    #[inline]
    pub(crate) fn whereis(&self, key: &str) -> Option<Pid> {
        let names = self.names.pin();
        let entry = names.get(key)?;
        entry.is_alive().then_some(entry.registration.pid)
    }

    /// Live names under `prefix` (`""`: all), in key order, at most `limit`.
    pub(crate) fn registered(&self, prefix: &str, limit: usize) -> Vec<(Key, Registration)> {
        let guard = scc::Guard::new();
        let names = self.names.pin();
        keys_with_prefix(&self.name_index, prefix, &guard)
            .filter_map(|k| {
                let e = names.get(k.as_str())?;
                e.is_alive().then(|| (k.clone(), e.registration.clone()))
            })
            .take(limit)
            .collect()
    }

    /// Number of names (all, or owned by local processes).
    pub(crate) fn registry_count(&self, local_only: bool) -> usize {
        if local_only {
            self.local_names.load(Ordering::Relaxed)
        } else {
            self.names.len()
        }
    }

    /// Visits live names, under `prefix` if given (cost proportional to the range).
    pub(crate) fn visit_names(&self, prefix: Option<&str>, mut visit: impl FnMut(Entry) -> bool) {
        let names = self.names.pin();
        let mut emit = |key: &Key, e: &NameEntry| {
            if !e.is_alive() {
                return true;
            }
            visit(Entry {
                key: key.clone(),
                pid: e.registration.pid,
                meta: e.registration.meta.clone(),
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
