//! Process groups: `key -> [members]`, many members per key.
//!
//! A group's members are an immutable [`MemberList`] that readers share with a reference
//! count. A small group is a flat list rewritten on each change; a large one is a
//! persistent B-tree keyed by join sequence, where a join or leave copies one path,
//! O(log n), not the group. The writer finds a tree member by pid through the shard's
//! [`JoinSeqs`] of the group.

use std::sync::Arc;

use super::{Cause, FastMap, ScopeStore, Shard, digest, keys_with_prefix};
use super::{HeldKind, LocalProcess};
use crate::entry::{Entry, Member, MemberList, Members};
use crate::error::RegistryError;
use crate::event::{Event, EventKind, Reason};
use crate::key::{Key, is_prefix};
use crate::meta::Meta;
use crate::op::Op;
use crate::pid::Pid;

/// The writer's index of a group held as a tree (kept in its shard, under its lock): the
/// join sequence of each member, which is its key in the tree, and the next one to give.
#[derive(Default)]
pub(super) struct JoinSeqs {
    of: FastMap<Pid, u64>,
    next: u64,
}

/// The member `pid` of `list` (group `key`); `shard` is the key's locked shard.
fn find<'l>(shard: &Shard, key: &str, list: &'l MemberList, pid: Pid) -> Option<&'l Member> {
    match list {
        MemberList::Flat(members) => members.iter().find(|m| m.pid() == pid),
        MemberList::Tree(tree) => {
            let seq = shard.join_seqs.get(key)?.of.get(&pid)?;
            tree.get(seq)
        }
    }
}

/// A tree of `members` in join order (sequences from 0) and its index.
fn tree_of<'m>(members: impl Iterator<Item = &'m Member>) -> (MemberList, JoinSeqs) {
    let tree: imbl::OrdMap<u64, Member> = members
        .enumerate()
        .map(|(seq, m)| (seq as u64, m.clone()))
        .collect();
    let seqs = JoinSeqs {
        of: tree.iter().map(|(seq, m)| (m.pid(), *seq)).collect(),
        next: tree.len() as u64,
    };
    (MemberList::Tree(tree), seqs)
}

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
        let is_member = self.member_of(&shard, &key, cell.pid).is_some();
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
        let previous = current
            .and_then(|list| find(shard, key, list, pid))
            .map(|m| m.meta().clone());
        let change = match (current, previous) {
            (Some(list), Some(previous)) => {
                if previous == *member.meta() {
                    return MemberChange::Unchanged;
                }
                shard.toggle_digest(pid.incarnation(), || digest::member(key, pid, &previous));
                let updated = match list {
                    MemberList::Flat(members) => MemberList::Flat(
                        members
                            .iter()
                            .map(|m| if m.pid() == pid { &member } else { m })
                            .cloned()
                            .collect(),
                    ),
                    MemberList::Tree(tree) => {
                        let seq = shard.join_seqs[key.as_str()].of[&pid];
                        MemberList::Tree(tree.update(seq, member.clone()))
                    }
                };
                groups.insert(key.clone(), updated);
                MemberChange::Updated(previous)
            }
            (current, _) => {
                let joined = match current {
                    None => MemberList::Flat(Arc::from([member.clone()])),
                    Some(MemberList::Flat(members)) if members.len() < MemberList::FLAT_MAX => {
                        MemberList::Flat(
                            members
                                .iter()
                                .chain(std::iter::once(&member))
                                .cloned()
                                .collect(),
                        )
                    }
                    Some(MemberList::Flat(members)) => {
                        let (tree, seqs) = tree_of(members.iter().chain(std::iter::once(&member)));
                        shard.join_seqs.insert(key.clone(), seqs);
                        tree
                    }
                    Some(MemberList::Tree(tree)) => {
                        let seqs = shard
                            .join_seqs
                            .get_mut(key.as_str())
                            .expect("a tree group has its join sequences");
                        let seq = seqs.next;
                        seqs.next += 1;
                        seqs.of.insert(pid, seq);
                        MemberList::Tree(tree.update(seq, member.clone()))
                    }
                };
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
        let list = groups.get(key.as_str())?;
        let meta = find(shard, key, list, pid)?.meta().clone();
        let rest = match list {
            MemberList::Flat(members) if members.len() == 1 => None,
            MemberList::Flat(members) => Some(MemberList::Flat(
                members.iter().filter(|m| m.pid() != pid).cloned().collect(),
            )),
            MemberList::Tree(tree) => {
                let seqs = shard
                    .join_seqs
                    .get_mut(key.as_str())
                    .expect("a tree group has its join sequences");
                let seq = seqs.of.remove(&pid).expect("a tree member has a sequence");
                let rest = tree.without(&seq);
                if rest.len() <= MemberList::FLAT_MAX / 2 {
                    shard.join_seqs.remove(key.as_str());
                    Some(MemberList::Flat(rest.values().cloned().collect()))
                } else {
                    Some(MemberList::Tree(rest))
                }
            }
        };
        match rest {
            None => {
                groups.remove(key.as_str());
                self.group_index.remove_sync(key.as_str());
            }
            Some(rest) => {
                groups.insert(key.clone(), rest);
            }
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

    /// The member `pid` of group `key`, if any; the caller holds the key's shard lock.
    pub(super) fn member_of(&self, shard: &Shard, key: &str, pid: Pid) -> Option<Member> {
        let groups = self.groups.pin();
        find(shard, key, groups.get(key)?, pid).cloned()
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
        let mut emit = |key: &Key, members: &MemberList| {
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
