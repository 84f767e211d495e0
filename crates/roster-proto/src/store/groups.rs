//! Process groups: `key -> [members]`, many members per key.
//!
//! A group's members are an immutable list replaced copy-on-write: readers share it with a
//! reference count, writers pay O(group size) per join or leave (as OTP `pg` does when it
//! rewrites a group's ETS row).

use std::sync::Arc;

use super::{Cause, ScopeStore, Shard, digest, keys_with_prefix};
use super::{HeldKind, LocalProcess};
use crate::entry::{Entry, Member, Members};
use crate::error::RegistryError;
use crate::event::{Event, EventKind, Reason};
use crate::key::{Key, is_prefix};
use crate::meta::Meta;
use crate::op::Op;
use crate::pid::Pid;

/// What an upsert did to a group.
pub(super) enum MemberChange {
    /// The member was already there with the same meta.
    Unchanged,
    /// A new member.
    Added,
    /// The member's meta changed from this.
    Updated(Meta),
}

impl ScopeStore {
    /// Adds a local process to a group, or updates its meta there.
    pub fn join(
        self: &Arc<Self>,
        cell: &LocalProcess,
        key: Key,
        meta: Meta,
    ) -> Result<(), RegistryError> {
        let mut shard = self.write_lock(&key)?;
        let is_member = self
            .groups
            .pin()
            .get(key.as_str())
            .is_some_and(|members| members.iter().any(|m| m.pid() == cell.pid));
        let member = Member::new(cell.pid, meta.clone());
        let change = if is_member {
            if !cell.is_alive() {
                return Err(RegistryError::ProcessDead { pid: cell.pid });
            }
            self.upsert_member(&mut shard, &key, member)
        } else {
            let mut change = MemberChange::Unchanged;
            self.hold(cell, HeldKind::Member, &key, || {
                change = self.upsert_member(&mut shard, &key, member);
            })?;
            change
        };
        if !matches!(change, MemberChange::Unchanged) {
            self.subscribers.emit(|| {
                self.joined_event(&key, cell.pid, meta, change, Reason::Requested)
                    .expect("a change makes an event")
            });
        }
        Ok(())
    }

    /// Removes a local process from a group.
    pub fn leave(&self, cell: &LocalProcess, key: &Key) -> Result<(), RegistryError> {
        let mut shard = self.write_lock(key)?;
        let event = self
            .remove_member(&mut shard, key, cell.pid, Cause::Requested)
            .ok_or_else(|| RegistryError::NotInGroup { key: key.clone() })?;
        self.forget_holding(cell, HeldKind::Member, key);
        self.subscribers.emit(|| event);
        Ok(())
    }

    /// Adds `member` to group `key` or replaces its meta there; the caller holds the shard
    /// lock.
    pub(super) fn upsert_member(
        &self,
        shard: &mut Shard,
        key: &Key,
        member: Member,
    ) -> MemberChange {
        let groups = self.groups.pin();
        let current = groups.get(key.as_str());
        let pid = member.pid();
        let position = current.and_then(|members| members.iter().position(|m| m.pid() == pid));
        let change = match (current, position) {
            (Some(members), Some(i)) => {
                let previous = members[i].meta().clone();
                if previous == *member.meta() {
                    return MemberChange::Unchanged;
                }
                shard.toggle_digest(pid.incarnation(), || digest::member(key, pid, &previous));
                let updated: Arc<[Member]> = members
                    .iter()
                    .enumerate()
                    .map(|(j, m)| if j == i { member.clone() } else { m.clone() })
                    .collect();
                groups.insert(key.clone(), updated);
                MemberChange::Updated(previous)
            }
            _ => {
                let joined: Arc<[Member]> = current
                    .into_iter()
                    .flat_map(|members| members.iter().cloned())
                    .chain(std::iter::once(member.clone()))
                    .collect();
                if groups.insert(key.clone(), joined).is_none() {
                    let _ = self.group_index.insert_sync(key.clone(), ());
                }
                self.bump(shard, |c| &c.memberships, 1);
                self.note_claim(shard, pid, HeldKind::Member, key, true);
                if self.is_local(pid) {
                    self.bump(shard, |c| &c.local_memberships, 1);
                }
                MemberChange::Added
            }
        };
        shard.toggle_digest(pid.incarnation(), || {
            digest::member(key, pid, member.meta())
        });
        if self.is_local(pid) {
            self.ship(Op::Join {
                key: key.clone(),
                pid,
                meta: member.meta().clone(),
            });
        }
        change
    }

    /// The `Joined` event of a change, if it changed anything.
    pub(super) fn joined_event(
        &self,
        key: &Key,
        pid: Pid,
        meta: Meta,
        change: MemberChange,
        reason: Reason,
    ) -> Option<Event> {
        let previous = match change {
            MemberChange::Unchanged => return None,
            MemberChange::Added => None,
            MemberChange::Updated(previous) => Some(previous),
        };
        Some(self.event(EventKind::Joined, key, pid, meta, previous, reason))
    }

    /// Removes `pid` from group `key`; the caller holds the shard lock and emits the event.
    pub(super) fn remove_member(
        &self,
        shard: &mut Shard,
        key: &Key,
        pid: Pid,
        cause: Cause<'_>,
    ) -> Option<Event> {
        let groups = self.groups.pin();
        let members = groups.get(key.as_str())?;
        let i = members.iter().position(|m| m.pid() == pid)?;
        let meta = members[i].meta().clone();
        if members.len() == 1 {
            groups.remove(key.as_str());
            self.group_index.remove_sync(key.as_str());
        } else {
            let rest: Arc<[Member]> = members
                .iter()
                .enumerate()
                .filter(|&(j, _)| j != i)
                .map(|(_, m)| m.clone())
                .collect();
            groups.insert(key.clone(), rest);
        }
        shard.toggle_digest(pid.incarnation(), || digest::member(key, pid, &meta));
        self.bump(shard, |c| &c.memberships, -1);
        self.note_claim(shard, pid, HeldKind::Member, key, false);
        if self.is_local(pid) {
            self.bump(shard, |c| &c.local_memberships, -1);
            self.ship(Op::Leave {
                key: key.clone(),
                pid,
                reason: cause.reason(),
            });
        }
        Some(self.event(EventKind::Left, key, pid, meta, None, cause.reason()))
    }

    /// Members of a group, or of every group under a prefix (key ending in `/`). Lock-free.
    pub fn members(&self, key: &str, limit: Option<usize>) -> Members<'_> {
        let groups = self.groups.pin();
        if !is_prefix(key) {
            let found = groups.get(key).cloned().into_iter().collect();
            return Members::new(
                found,
                limit,
                self.config.locals.incarnation,
                &self.config.locals.live,
            );
        }
        let guard = scc::Guard::new();
        let mut found = Vec::new();
        let mut total = 0;
        for k in keys_with_prefix(&self.group_index, key, &guard) {
            if limit.is_some_and(|l| total >= l) {
                break;
            }
            if let Some(members) = groups.get(k.as_str()) {
                total += members.len();
                found.push(members.clone());
            }
        }
        Members::new(
            found,
            limit,
            self.config.locals.incarnation,
            &self.config.locals.live,
        )
    }

    /// Number of memberships in the scope (all, or of local processes).
    pub fn membership_count(&self, local_only: bool) -> usize {
        if local_only {
            self.count(|c| &c.local_memberships)
        } else {
            self.count(|c| &c.memberships)
        }
    }

    /// Group keys under `prefix` (`""`: all) that have members, in key order.
    pub fn group_keys(&self, prefix: &str, limit: usize) -> Vec<Key> {
        let guard = scc::Guard::new();
        keys_with_prefix(&self.group_index, prefix, &guard)
            .take(limit)
            .cloned()
            .collect()
    }

    /// Visits live memberships, under `prefix` if given (cost proportional to the range).
    pub fn visit_members(&self, prefix: Option<&str>, mut visit: impl FnMut(Entry) -> bool) {
        let groups = self.groups.pin();
        let mut emit = |key: &Key, members: &Arc<[Member]>| {
            members.iter().filter(|m| self.is_live(m.pid())).all(|m| {
                visit(Entry {
                    key: key.clone(),
                    pid: m.pid(),
                    meta: m.meta().clone(),
                })
            })
        };
        match prefix {
            Some(prefix) => {
                let guard = scc::Guard::new();
                for key in keys_with_prefix(&self.group_index, prefix, &guard) {
                    if let Some(members) = groups.get(key.as_str())
                        && !emit(key, members)
                    {
                        return;
                    }
                }
            }
            None => {
                for (key, members) in groups.iter() {
                    if !emit(key, members) {
                        return;
                    }
                }
            }
        }
    }
}
