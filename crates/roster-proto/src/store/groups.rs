//! Process groups: `key -> [members]`, many members per key.
//!
//! A group's members are an immutable [`MemberList`] that readers share with a reference
//! count. A small group is a flat list rewritten on each change; a large one is a
//! persistent B-tree keyed by join sequence, where a join or leave copies one path,
//! O(log n), not the group. The writer finds a tree member by pid through the shard's
//! [`JoinSeqs`] of the group.

use std::sync::Arc;

use super::change_log::ChangeKind;
use super::{Cause, FastMap, ScopeStore, Shard, ShardLocks, StoredKey, digest};
use super::{HeldKind, LocalProcess};
use super::{keys_with_prefix, keys_with_prefix_after, put, stored_key};
use crate::vocab::entry::{Entry, Member, MemberList, Members};
use crate::vocab::error::RegistryError;
use crate::vocab::event::{Event, EventKind, Reason};
use crate::vocab::key::{Key, is_prefix};
use crate::vocab::meta::Meta;
use crate::vocab::op::Op;
use crate::vocab::pid::Pid;

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
        let Some(log) = self.config.locals.changes.active() else {
            return self.join_locked(cell, key, meta);
        };
        let logged = key.clone();
        self.join_locked(cell, key, meta)?;
        self.tell(log, ChangeKind::Join, &logged, cell.pid);
        Ok(())
    }

    /// [`ScopeStore::join`], under the key's shard lock.
    fn join_locked(
        self: &Arc<Self>,
        cell: &LocalProcess,
        key: Key,
        meta: Meta,
    ) -> Result<(), RegistryError> {
        let mut shard = self.write_lock(&key)?;
        // The group is looked up once, for the membership check and the change.
        let current = self.take_group(&mut shard, &key);
        let previous = current
            .as_ref()
            .and_then(|list| find(&shard, &key, list, cell.pid))
            .map(|m| m.meta().clone());
        let member = Member::new(cell.pid, meta.clone());
        let change = if previous.is_some() {
            if !cell.is_alive() {
                if let Some(list) = current {
                    self.untake_group(&mut shard, &key, list);
                }
                return Err(RegistryError::ProcessDead { pid: cell.pid });
            }
            self.upsert_taken(&mut shard, &key, member, current, previous)
        } else {
            let mut change = MemberChange::Unchanged;
            let mut current = Some(current);
            let held = self.hold(cell, || {
                let current = current.take().expect("the closure runs once");
                change = self.upsert_taken(&mut shard, &key, member, current, None);
                stored_key(&self.groups, HeldKind::Member, &key)
            });
            if let Err(e) = held {
                if let Some(Some(list)) = current {
                    self.untake_group(&mut shard, &key, list);
                }
                return Err(e);
            }
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
        self.leave_locked(cell, key)?;
        if let Some(log) = self.config.locals.changes.active() {
            self.tell(log, ChangeKind::Leave, key, cell.pid);
        }
        Ok(())
    }

    /// [`ScopeStore::leave`], under the key's shard lock.
    fn leave_locked(&self, cell: &LocalProcess, key: &Key) -> Result<(), RegistryError> {
        let mut shard = self.write_lock(key)?;
        let mut events = Vec::new();
        if !self.remove_member(&mut shard, key, cell.pid, Cause::Requested, &mut events) {
            return Err(RegistryError::NotInGroup { key: key.clone() });
        }
        self.forget_holding(cell, HeldKind::Member, key);
        for event in events {
            self.subscribers.emit(|| event);
        }
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
        let current = self.take_group(shard, key);
        let previous = current
            .as_ref()
            .and_then(|list| find(shard, key, list, member.pid()))
            .map(|m| m.meta().clone());
        self.upsert_taken(shard, key, member, current, previous)
    }

    /// [`ScopeStore::upsert_member`] with the group's list already taken
    /// ([`ScopeStore::take_group`]: `current`) and the member's meta in it, if it is one
    /// (`previous`).
    fn upsert_taken(
        &self,
        shard: &mut Shard,
        key: &Key,
        member: Member,
        current: Option<MemberList>,
        previous: Option<Meta>,
    ) -> MemberChange {
        let pid = member.pid();
        let change = match (current, previous) {
            (Some(list), Some(previous)) => {
                if previous == *member.meta() {
                    self.untake_group(shard, key, list);
                    return MemberChange::Unchanged;
                }
                shard.toggle_digest(pid.incarnation().get(), || {
                    digest::member(key, pid, &previous)
                });
                let updated = match list {
                    MemberList::Flat(members) => MemberList::Flat(
                        members
                            .iter()
                            .map(|m| if m.pid() == pid { &member } else { m })
                            .cloned()
                            .collect(),
                    ),
                    MemberList::Tree(mut tree) => {
                        let seq = shard.join_seqs[key.as_str()].of[&pid];
                        tree.insert(seq, member.clone());
                        MemberList::Tree(tree)
                    }
                };
                self.put_group(shard, key, Some(updated));
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
                    Some(MemberList::Tree(mut tree)) => {
                        let seqs = shard
                            .join_seqs
                            .get_mut(key.as_str())
                            .expect("a tree group has its join sequences");
                        let seq = seqs.next;
                        seqs.next += 1;
                        seqs.of.insert(pid, seq);
                        tree.insert(seq, member.clone());
                        MemberList::Tree(tree)
                    }
                };
                self.put_group(shard, key, Some(joined));
                self.bump(shard, |c| &c.memberships, 1);
                self.note_claim(shard, pid, HeldKind::Member, key, true);
                if self.is_local(pid) {
                    self.bump(shard, |c| &c.local_memberships, 1);
                }
                MemberChange::Added
            }
        };
        shard.toggle_digest(pid.incarnation().get(), || {
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

    /// The member list of group `key` for a change: taken out of the shard's staged groups
    /// during a batch (so that the batch's changes to it are made in place), else a shared
    /// copy of the published list. The caller holds the shard lock.
    fn take_group(&self, shard: &mut Shard, key: &str) -> Option<MemberList> {
        if let Some(staged) = shard.staged_groups.as_mut()
            && let Some(list) = staged.remove(key)
        {
            return list;
        }
        self.groups.pin().get(key).cloned()
    }

    /// Gives back a list taken by [`ScopeStore::take_group`] and left unchanged.
    fn untake_group(&self, shard: &mut Shard, key: &Key, list: MemberList) {
        if let Some(staged) = shard.staged_groups.as_mut() {
            staged.insert(key.clone(), Some(list));
        }
    }

    /// Stores the new member list of group `key` (`None`: the group is gone): staged during
    /// a batch, else published at once.
    fn put_group(&self, shard: &mut Shard, key: &Key, list: Option<MemberList>) {
        match shard.staged_groups.as_mut() {
            Some(staged) => {
                staged.insert(key.clone(), list);
            }
            None => self.publish_group(key, list),
        }
    }

    /// Makes `list` the group's published member list, or removes the group.
    fn publish_group(&self, key: &Key, list: Option<MemberList>) {
        match list {
            Some(list) => {
                let (stored, new) = put(&self.groups, HeldKind::Member, key, list);
                if new {
                    self.group_index.insert(stored);
                }
            }
            None => {
                if self.groups.pin().remove(key.as_str()).is_some() {
                    self.group_index.remove(key.as_str());
                }
            }
        }
    }

    /// Starts a batch of group changes in the locked shards: each changed group is then
    /// changed in place and published once, by [`ScopeStore::publish_staged_groups`], not
    /// once per change (a frame of many joins or leaves of one large group copies its tree's
    /// paths once, not once per op).
    pub(super) fn stage_groups(&self, locks: &mut ShardLocks<'_>) {
        for shard in locks.iter_mut() {
            shard.staged_groups = Some(FastMap::default());
        }
    }

    /// Publishes the groups a batch changed and ends the batch; before the shard locks are
    /// released.
    pub(super) fn publish_staged_groups(&self, locks: &mut ShardLocks<'_>) {
        for shard in locks.iter_mut() {
            for (key, list) in shard.staged_groups.take().into_iter().flatten() {
                self.publish_group(&key, list);
            }
        }
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

    /// Removes `pid` from group `key`, pushing its event (see `push_event`); false if it
    /// was not a member. The caller holds the shard lock and emits the events.
    pub(super) fn remove_member(
        &self,
        shard: &mut Shard,
        key: &Key,
        pid: Pid,
        cause: Cause<'_>,
        events: &mut Vec<Event>,
    ) -> bool {
        let Some(list) = self.take_group(shard, key) else {
            return false;
        };
        let (meta, rest) = match list {
            MemberList::Flat(members) => {
                let Some(meta) = members
                    .iter()
                    .find(|m| m.pid() == pid)
                    .map(|m| m.meta().clone())
                else {
                    self.untake_group(shard, key, MemberList::Flat(members));
                    return false;
                };
                let rest = (members.len() > 1).then(|| {
                    MemberList::Flat(members.iter().filter(|m| m.pid() != pid).cloned().collect())
                });
                (meta, rest)
            }
            MemberList::Tree(mut tree) => {
                let seqs = shard
                    .join_seqs
                    .get_mut(key.as_str())
                    .expect("a tree group has its join sequences");
                // One lookup of the pid's sequence, which finds and forgets it at once.
                let Some(seq) = seqs.of.remove(&pid) else {
                    self.untake_group(shard, key, MemberList::Tree(tree));
                    return false;
                };
                let member = tree.remove(&seq).expect("a sequence names a tree member");
                let rest = if tree.len() <= MemberList::FLAT_MAX / 2 {
                    shard.join_seqs.remove(key.as_str());
                    MemberList::Flat(tree.values().cloned().collect())
                } else {
                    MemberList::Tree(tree)
                };
                (member.meta().clone(), Some(rest))
            }
        };
        self.put_group(shard, key, rest);
        shard.toggle_digest(pid.incarnation().get(), || digest::member(key, pid, &meta));
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
        self.push_event(events, || {
            self.event(EventKind::Left, key, pid, meta, None, cause.reason())
        });
        true
    }

    /// The member `pid` of group `key`, if any; the caller holds the key's shard lock.
    pub(super) fn member_of(&self, shard: &Shard, key: &str, pid: Pid) -> Option<Member> {
        if let Some(staged) = shard.staged_groups.as_ref().and_then(|s| s.get(key)) {
            return find(shard, key, staged.as_ref()?, pid).cloned();
        }
        let groups = self.groups.pin();
        find(shard, key, groups.get(key)?, pid).cloned()
    }

    /// Members of a group, or of every group under a prefix (key ending in `/`). Lock-free.
    pub fn members(&self, key: &str, limit: Option<usize>) -> Members<'_> {
        let live = &self.config.locals.live;
        // Before the lists are read (see `LiveSet::settled_since`).
        let mark = live.exits_finished();
        let groups = self.groups.pin();
        if !is_prefix(key) {
            let found = groups.get(key).cloned().into_iter().collect();
            return Members::new(found, limit, self.config.locals.incarnation, live, mark);
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
        Members::new(found, limit, self.config.locals.incarnation, live, mark)
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
        self.group_keys_after(prefix, None, limit)
    }

    /// As [`Self::group_keys`], for the keys strictly after `after` if given.
    pub fn group_keys_after(&self, prefix: &str, after: Option<&str>, limit: usize) -> Vec<Key> {
        let guard = scc::Guard::new();
        keys_with_prefix_after(&self.group_index, prefix, after, &guard)
            .take(limit)
            .map(StoredKey::to_key)
            .collect()
    }

    /// Visits live memberships, under `prefix` if given (cost proportional to the range).
    pub fn visit_members(&self, prefix: Option<&str>, mut visit: impl FnMut(Entry) -> bool) {
        let groups = self.groups.pin();
        let mut emit = |key: &StoredKey, members: &MemberList| {
            let key = key.to_key();
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
