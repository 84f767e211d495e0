//! The replica side of the store: applying ops of remote origins, resolving name
//! conflicts, purging an origin, snapshots and digests.

use std::collections::HashSet;

use serde::{Deserialize, Serialize};

use super::change_log::NotedOps;
use super::groups::MemberChange;
use super::{Cause, HeldKind, ScopeStore, Shard, ShardLocks, StoredKey, digest, put};
use crate::vocab::conflict::Winner;
use crate::vocab::entry::{Member, Registration};
use crate::vocab::event::{Event, EventKind, Reason};
use crate::vocab::key::Key;
use crate::vocab::meta::Meta;
use crate::vocab::op::{Op, Restamp};
use crate::vocab::pid::{Incarnation, Pid};

/// How many conflicts each shard remembers having reported (see
/// `ScopeStore::report_conflict`): 4,096 per scope, far more than a burst of conflicts
/// on one shard between the decision and a second word of the same conflict.
const REPORTED_PER_SHARD: usize = 64;

/// The outcome of applying remote ops that the node must act on, besides the store
/// changes themselves.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ApplyOutcome {
    /// Local processes that lost a name to a remote contender: `(loser, key, winner)`.
    /// Their node removes nothing more here; it decides whether to end the process.
    pub lost: Vec<(Pid, Key, Pid)>,
    /// Remote registrations kept back because their token is below one this node showed
    /// for the name since (see `token_floors`): each asks the owner's node, the origin of
    /// the ops applied, for a fresh token.
    pub restamps: Vec<Restamp>,
}

impl ScopeStore {
    /// A local process that lost `key` in a conflict no longer holds it: its list of held
    /// entries forgets it (a process kept alive must not list it, an ended loser's list
    /// goes with it). The caller holds the key's shard (lock order: shard, then holdings).
    fn forget_lost_name(&self, key: &Key, pid: Pid) {
        if let Some(cell) = self.config.locals.cells.pin().get(&pid) {
            self.forget_holding(cell, HeldKind::Name, key);
        }
    }

    /// Applies ops of a remote origin (the ops of one received frame) and delivers their
    /// events as one batch per subscriber, in the order the ops were applied.
    ///
    /// The shards of every key the ops touch are locked together (in index order) for the
    /// whole batch, and the batch is delivered before they are released: a local writer of
    /// one of these keys, or a new watch, sees the frame either not at all or entirely.
    pub fn apply_remote(&self, ops: Vec<Op>) -> ApplyOutcome {
        self.apply_batch(ops, Fresh::Unknown)
    }

    /// [`ScopeStore::apply_remote`], knowing whether the names are likely new here.
    fn apply_batch(&self, ops: Vec<Op>, fresh: Fresh) -> ApplyOutcome {
        let noted = NotedOps::note(&self.config.locals.changes, &ops);
        let mut locks = self.lock_keys(ops.iter().map(|op| op.key().as_str()));
        // Most ops make one event: a snapshot chunk's 4,096 would otherwise regrow (and
        // copy) the batch a dozen times.
        let mut events = Vec::with_capacity(ops.len());
        let applied = self.apply_locked(&mut locks, ops, fresh, &mut events);
        self.subscribers.emit_batch(events);
        drop(locks);
        if let Some(noted) = noted {
            noted.tell(&self.name);
        }
        applied
    }

    /// Applies `ops` under `locks` (which hold the shard of each op's key), pushing their
    /// events; applies nothing in a disconnected scope, since ops queued before a
    /// disconnect must not repopulate it.
    fn apply_locked(
        &self,
        locks: &mut ShardLocks<'_>,
        ops: Vec<Op>,
        fresh: Fresh,
        events: &mut Vec<Event>,
    ) -> ApplyOutcome {
        let mut applied = ApplyOutcome::default();
        if !self.is_connected() {
            return applied;
        }
        self.stage_groups(locks);
        for op in ops {
            let shard = locks.shard(self.shard_of(op.key()));
            self.apply_one(shard, op, fresh, events, &mut applied);
        }
        self.publish_staged_groups(locks);
        applied
    }

    fn apply_one(
        &self,
        shard: &mut Shard,
        op: Op,
        fresh: Fresh,
        events: &mut Vec<Event>,
        applied: &mut ApplyOutcome,
    ) {
        debug_assert!(!self.is_local(op.pid()), "remote ops carry remote pids");
        match op {
            Op::Register {
                key,
                pid,
                meta,
                registered_at,
                token,
            } => {
                shard.hlc.observe(registered_at.max(token));
                let registration = Registration {
                    pid,
                    meta,
                    registered_at,
                    token,
                };
                self.register_remote(shard, key, registration, fresh, events, applied);
            }
            Op::Unregister { key, pid, reason } => {
                if matches!(reason, Reason::Conflict { .. }) {
                    self.conflict_learned(shard, &key, pid, &reason, events);
                }
                self.remove_name(shard, &key, pid, Cause::Remote(&reason), events);
            }
            Op::Join { key, pid, meta } => {
                let member = Member::new(pid, meta.clone());
                let change = self.upsert_member(shard, &key, member);
                if !matches!(change, MemberChange::Unchanged) {
                    self.push_event(events, || {
                        self.joined_event(&key, pid, meta, change, Reason::Requested)
                            .expect("a change makes an event")
                    });
                }
            }
            Op::Leave { key, pid, reason } => {
                self.remove_member(shard, &key, pid, Cause::Remote(&reason), events);
            }
        }
    }

    /// A remote registration: new, an update of the same owner, or a conflict.
    fn register_remote(
        &self,
        shard: &mut Shard,
        key: Key,
        mut incoming: Registration,
        fresh: Fresh,
        events: &mut Vec<Event>,
        applied: &mut ApplyOutcome,
    ) {
        let names = self.names.pin();
        // The registration kept back comes again: re-stamped (then shown below, with its
        // event), or still below the floor (then kept back again, remembering a refusal).
        let refused_local = shard
            .kept_back
            .take(key.as_str(), incoming.pid)
            .is_some_and(|waiting| waiting.refused_local);
        // A contender that already lost: keep its shadow up to date.
        if shard
            .shadows
            .get(key.as_str())
            .is_some_and(|list| list.iter().any(|e| e.pid == incoming.pid))
        {
            self.remove_shadow(shard, &key, incoming.pid);
            self.add_shadow(shard, &key, incoming);
            return;
        }
        let existing = match fresh {
            // Insert first, and look at what is there only on a clash: one probe of the map
            // instead of two (a lookup, then the insert) for a new name.
            Fresh::Likely => {
                if self.held_back(shard, &key, &incoming, refused_local, applied) {
                    return;
                }
                let stored = StoredKey::new(HeldKind::Name, &key);
                match names.try_insert(stored.clone(), incoming) {
                    Ok(inserted) => {
                        self.push_event(events, || self.registered_event(&key, inserted, None));
                        self.note_live(shard, &key, inserted);
                        self.index_new_name(shard, stored);
                        return;
                    }
                    Err(clash) => {
                        incoming = clash.not_inserted;
                        clash.current
                    }
                }
            }
            // A clash would allocate the entry for nothing: look first.
            Fresh::Unknown => match names.get(key.as_str()) {
                Some(existing) => existing,
                None => {
                    if self.held_back(shard, &key, &incoming, refused_local, applied) {
                        return;
                    }
                    self.push_event(events, || self.registered_event(&key, &incoming, None));
                    self.insert_live(shard, &key, incoming);
                    return;
                }
            },
        };
        let current = existing.clone();
        if current.pid == incoming.pid {
            if current != incoming {
                let previous = (current.meta != incoming.meta).then(|| current.meta.clone());
                if previous.is_some() {
                    self.push_event(events, || self.registered_event(&key, &incoming, previous));
                }
                self.replace_live(shard, &key, existing, incoming);
            }
            return;
        }
        if !self.is_live(existing.pid) {
            // A dead local owner whose cleanup is under way: remove it now.
            let reason = self.config.locals.exit_reason(existing.pid);
            self.remove_name(shard, &key, current.pid, Cause::Exit(&reason), events);
            self.register_remote(shard, key, incoming, fresh, events, applied);
            return;
        }
        let (decided, rule) = self.resolve(&key, &current, &incoming);
        match decided {
            Winner::First => {
                // The live owner keeps the name; the newcomer waits as a shadow until its
                // node removes it.
                let reason = Reason::Conflict {
                    winner: current.pid,
                    loser: incoming.pid,
                    rule,
                };
                self.report_conflict(shard, &key, &incoming, &reason, events);
                self.add_shadow(shard, &key, incoming);
                if self.is_local(current.pid) {
                    // Our process won: a fresh fencing token greater than both contenders'.
                    let restamped = Registration {
                        token: shard.hlc.tick(&*self.config.clock),
                        ..current
                    };
                    self.replace_live(shard, &key, existing, restamped);
                }
            }
            Winner::Second => {
                let winner = incoming.pid;
                let conflict = Reason::Conflict {
                    winner,
                    loser: current.pid,
                    rule,
                };
                self.report_conflict(shard, &key, &current, &conflict, events);
                // A winner with a smaller token than the loser's shown here is not shown
                // until its node re-stamps it above (as that node does once it learns of
                // the conflict; it is asked too): a token shown here never goes down.
                let kept_back = shard.keep_digests && incoming.token < current.token;
                if self.is_local(current.pid) {
                    // Our process lost: remove its claim (this ships the removal) and let
                    // the node decide what happens to the process; a standby's claim is
                    // only removed, the standby sees the event and waits again. Either
                    // way the process no longer holds the name.
                    self.forget_lost_name(&key, current.pid);
                    if !Self::is_standby_claim(&shard.standby, &key, current.pid) {
                        applied.lost.push((current.pid, key.clone(), winner));
                    }
                }
                if kept_back {
                    // The winner waits for its fresh token, kept back (a local loser, such
                    // as a standby, waits on the key: its going unseen must be told); the
                    // loser goes now (a remote loser's node removes it too, or, if it never
                    // learns that it lost, sends it again when the digests differ).
                    self.remove_name(shard, &key, current.pid, Cause::Remote(&conflict), events);
                    let local_loser = self.is_local(current.pid) || refused_local;
                    self.keep_back(shard, &key, &incoming, local_loser);
                    Self::ask_restamp(applied, &key, incoming.pid, current.token);
                } else if self.is_local(current.pid) {
                    // The winner takes over from the shadows as the loser's claim goes.
                    self.add_shadow(shard, &key, incoming);
                    self.remove_name(shard, &key, current.pid, Cause::Remote(&conflict), events);
                } else {
                    // Two remote contenders: the loser's node will remove it; until then it
                    // waits as a shadow.
                    self.push_event(events, || {
                        self.event(
                            EventKind::Unregistered,
                            &key,
                            current.pid,
                            current.meta.clone(),
                            None,
                            conflict,
                        )
                    });
                    let loser = existing.clone();
                    put(&self.names, HeldKind::Name, &key, incoming.clone());
                    shard.toggle_digest(winner.incarnation().get(), || {
                        digest::name(&key, &incoming)
                    });
                    self.note_claim(shard, winner, HeldKind::Name, &key, true);
                    shard.shadows.entry(key.clone()).or_default().push(loser);
                    self.push_event(events, || self.registered_event(&key, &incoming, None));
                }
            }
        }
    }

    /// Whether `incoming`, a registration of a name this shard does not hold, is kept back:
    /// its token is below one this node showed for `key` since (the name changed owner
    /// while this node and the owner's were apart), so it is not shown, and its owner's
    /// node is asked for a fresh token above that one. The re-stamped registration then
    /// comes as any update does. Until then it waits in the shard's `kept_back`, where a
    /// local registration of `key` meets it as a contender (one kept back per name: the
    /// one the conflict rule prefers; `refused_local`: a local registration was refused
    /// for an earlier version of it). The caller holds the key's shard lock.
    fn held_back(
        &self,
        shard: &mut Shard,
        key: &Key,
        incoming: &Registration,
        refused_local: bool,
        applied: &mut ApplyOutcome,
    ) -> bool {
        let Some(above) = shard.floors.above(key, incoming.token) else {
            return false;
        };
        if self.names.pin().contains_key(key.as_str()) {
            return false;
        }
        self.keep_back(shard, key, incoming, refused_local);
        Self::ask_restamp(applied, key, incoming.pid, above);
        true
    }

    /// Keeps `incoming` back for `key`, unless the conflict rule prefers the one kept back
    /// already (which then inherits `refused_local`). The caller holds the key's shard lock.
    fn keep_back(
        &self,
        shard: &mut Shard,
        key: &Key,
        incoming: &Registration,
        refused_local: bool,
    ) {
        let preferred = match shard.kept_back.get(key.as_str()) {
            Some(waiting) => self.resolve(key, incoming, waiting).0 == Winner::First,
            None => true,
        };
        if preferred {
            shard.kept_back.keep(key, incoming.clone(), refused_local);
        } else if refused_local {
            shard.kept_back.refused(key.as_str());
        }
    }

    /// Asks the node of `pid` (the origin of the ops applied) for a token of its `key`
    /// above `above`.
    fn ask_restamp(applied: &mut ApplyOutcome, key: &Key, pid: Pid, above: u64) {
        applied.restamps.push(Restamp {
            key: key.clone(),
            pid,
            above,
        });
    }

    /// A remote node kept back this node's registration of `key` by `pid` because it
    /// showed a token above `above` for `key` since: if `pid` still holds `key` here with a
    /// token no larger, it gets a fresh one greater than `above`, which replication ships
    /// as any update. Returns whether it was re-stamped.
    pub fn restamp(&self, key: &Key, pid: Pid, above: u64) -> bool {
        if !self.is_local(pid) || !self.is_connected() {
            return false;
        }
        let mut locks = self.lock_keys([key.as_str()]);
        let shard = locks.shard(self.shard_of(key));
        let names = self.names.pin();
        let Some(current) = names.get(key.as_str()).filter(|r| r.pid == pid) else {
            return false;
        };
        if current.token > above {
            return false;
        }
        shard.hlc.observe(above);
        let restamped = Registration {
            token: shard.hlc.tick(&*self.config.clock),
            ..current.clone()
        };
        self.replace_live(shard, key, current, restamped);
        true
    }

    fn add_shadow(&self, shard: &mut Shard, key: &Key, entry: Registration) {
        let r = &entry;
        shard.toggle_digest(r.pid.incarnation().get(), || digest::name(key, r));
        self.note_claim(shard, r.pid, HeldKind::Name, key, true);
        shard.shadows.entry(key.clone()).or_default().push(entry);
    }

    /// Pushes the [`EventKind::ConflictResolved`] of the losing claim `loser` on `key`,
    /// unless this node already reported that conflict (the last [`REPORTED_PER_SHARD`]
    /// of each shard are remembered); returns whether it is reported now. The caller holds
    /// the key's shard lock.
    fn report_conflict(
        &self,
        shard: &mut Shard,
        key: &Key,
        loser: &Registration,
        reason: &Reason,
        events: &mut Vec<Event>,
    ) -> bool {
        if shard
            .reported
            .iter()
            .any(|(k, pid)| *pid == loser.pid && k == key)
        {
            return false;
        }
        if shard.reported.len() >= REPORTED_PER_SHARD {
            shard.reported.pop_front();
        }
        shard.reported.push_back((key.clone(), loser.pid));
        self.push_event(events, || {
            self.event(
                EventKind::ConflictResolved,
                key,
                loser.pid,
                loser.meta.clone(),
                None,
                reason.clone(),
            )
        });
        true
    }

    /// A remote node removed `pid`'s claim on `key` because it lost a conflict (`reason`).
    /// This node learns of the conflict now if it never saw the two claims together:
    ///
    /// - it holds the loser's claim as the live owner (the winner's has not arrived);
    /// - its own process is the winner and the loser's claim never reached it (the loser's
    ///   node removed it before sending its entries, in a snapshot that carries this
    ///   removal): it also gives the winner a fresh fencing token, as a decision would.
    ///
    /// A node that held both decided the conflict then, and holds the loser as a shadow,
    /// whose removal is silent. The caller holds the key's shard lock.
    fn conflict_learned(
        &self,
        shard: &mut Shard,
        key: &Key,
        pid: Pid,
        reason: &Reason,
        events: &mut Vec<Event>,
    ) {
        let Reason::Conflict { winner, .. } = reason else {
            return;
        };
        let names = self.names.pin();
        let Some(live) = names.get(key.as_str()) else {
            return;
        };
        if live.pid == pid {
            self.report_conflict(shard, key, live, reason, events);
        } else if live.pid == *winner
            && self.is_local(*winner)
            && !shard
                .shadows
                .get(key.as_str())
                .is_some_and(|list| list.iter().any(|e| e.pid == pid))
        {
            let unseen = Registration {
                pid,
                meta: Meta::EMPTY,
                registered_at: 0,
                token: 0,
            };
            if self.report_conflict(shard, key, &unseen, reason, events) {
                let restamped = Registration {
                    token: shard.hlc.tick(&*self.config.clock),
                    ..live.clone()
                };
                self.replace_live(shard, key, live, restamped);
            }
        }
    }

    fn registered_event(&self, key: &Key, r: &Registration, previous: Option<Meta>) -> Event {
        self.event(
            EventKind::Registered,
            key,
            r.pid,
            r.meta.clone(),
            previous,
            Reason::Requested,
        )
    }

    /// Removes every entry of an origin (its node is down, or restarted as a new
    /// incarnation), emitting one batch per subscriber with reason `reason`.
    pub fn purge_origin(&self, origin: u64, reason: &Reason) {
        let mut locks = self.lock_every_shard();
        let mut events = Vec::new();
        self.remove_origin_entries(&mut locks, origin, reason, |_, _| true, &mut events);
        self.subscribers.emit_batch(events);
    }

    /// Removes the entries of `origin` that `doomed` picks; the caller holds every shard.
    fn remove_origin_entries(
        &self,
        locks: &mut ShardLocks<'_>,
        origin: u64,
        reason: &Reason,
        mut doomed: impl FnMut(&OriginEntry, &Key) -> bool,
        events: &mut Vec<Event>,
    ) {
        let mut doomed_names: Vec<(Key, Pid)> = Vec::new();
        for (key, entry) in self.names.pin().iter() {
            let pid = entry.pid;
            if pid.incarnation() == Incarnation::new(origin) {
                let key = key.to_key();
                if doomed(&OriginEntry::Name(pid), &key) {
                    doomed_names.push((key, pid));
                }
            }
        }
        for shard in locks.iter() {
            for (key, list) in &shard.shadows {
                for e in list {
                    let pid = e.pid;
                    if pid.incarnation() == Incarnation::new(origin)
                        && doomed(&OriginEntry::Name(pid), key)
                    {
                        doomed_names.push((key.clone(), pid));
                    }
                }
            }
        }
        for shard in locks.iter_mut() {
            let gone = shard.kept_back.take_where(|key, waiting| {
                waiting.pid.incarnation() == Incarnation::new(origin)
                    && doomed(&OriginEntry::Name(waiting.pid), key)
            });
            for (key, waiting) in gone {
                self.kept_back_gone(&key, waiting, Cause::Remote(reason), events);
            }
        }
        let mut doomed_members: Vec<(Key, Pid)> = Vec::new();
        for (key, members) in self.groups.pin().iter() {
            let key = &key.to_key();
            for m in members.iter() {
                if m.pid().incarnation() == Incarnation::new(origin)
                    && doomed(&OriginEntry::Member(m.pid()), key)
                {
                    doomed_members.push((key.clone(), m.pid()));
                }
            }
        }
        let cause = Cause::Remote(reason);
        for (key, pid) in doomed_names {
            let shard = locks.shard(self.shard_of(&key));
            self.remove_name(shard, &key, pid, cause, events);
        }
        self.stage_groups(locks);
        for (key, pid) in doomed_members {
            let shard = locks.shard(self.shard_of(&key));
            self.remove_member(shard, &key, pid, cause, events);
        }
        self.publish_staged_groups(locks);
    }

    /// The digest of the entries of `origin` held here (see `digest`).
    pub fn digest(&self, origin: u64) -> u128 {
        (0..super::SHARDS)
            .map(|i| {
                self.lock_shard(i)
                    .digests
                    .get(&origin)
                    .copied()
                    .unwrap_or(0)
            })
            .fold(0, |acc, d| acc ^ d)
    }

    /// The digest of this node's own live entries that fit `limits`: what a peer with
    /// these limits holds of them when it is in sync. A scan: only for peers whose limits
    /// are smaller than ours, and only when the plain digests differ.
    pub fn local_digest_within(&self, limits: &crate::vocab::key::Limits) -> u128 {
        let mut cursor = super::SnapshotCursor::default();
        let mut ops = Vec::new();
        while !cursor.is_done() {
            ops.extend(self.snapshot_chunk(&mut cursor, 4096, usize::MAX));
        }
        ops.iter()
            .filter(|op| limits.admits(op.key(), op.meta_len()))
            .map(|op| match op {
                Op::Register {
                    key,
                    pid,
                    meta,
                    registered_at,
                    token,
                } => digest::name(
                    key,
                    &Registration {
                        pid: *pid,
                        meta: meta.clone(),
                        registered_at: *registered_at,
                        token: *token,
                    },
                ),
                Op::Join { key, pid, meta } => digest::member(key, *pid, meta),
                Op::Unregister { .. } | Op::Leave { .. } => 0,
            })
            .fold(0, |acc, h| acc ^ h)
    }

    /// Incarnations that have entries here (live or shadowed), besides this node's.
    pub fn remote_origins(&self) -> Vec<u64> {
        let mut origins: Vec<u64> = (0..super::SHARDS)
            .flat_map(|i| {
                self.lock_shard(i)
                    .digests
                    .keys()
                    .copied()
                    .collect::<Vec<_>>()
            })
            .filter(|&o| o != self.config.locals.incarnation)
            .collect();
        origins.sort_unstable();
        origins.dedup();
        origins
    }
}

/// Whether the names of a batch of remote ops are likely new here, which decides how each
/// is inserted (see `register_remote`).
#[derive(Clone, Copy)]
enum Fresh {
    /// Most are (the chunks of a first sync).
    Likely,
    /// Many may be there already.
    Unknown,
}

/// An entry of an origin, as seen when deciding what a snapshot removes.
pub(super) enum OriginEntry {
    Name(Pid),
    Member(Pid),
}

/// How many entries a snapshot holds, announced by its first chunk so that the receiver
/// can size its maps before the entries arrive rather than grow them step by step (each
/// step copies the table). The peer's word: the receiver only sizes a bounded reservation
/// with it ([`SnapshotReceiver::presize`]) and never relies on it for correctness.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotSize {
    /// Registrations.
    pub names: u64,
    /// Groups with members in the snapshot (an upper bound).
    pub groups: u64,
    /// Group memberships.
    pub members: u64,
}

impl ScopeStore {
    /// The size of a snapshot of this node's entries read now, for its first chunk: the
    /// local names and memberships (of live processes, and of exited ones whose cleanup
    /// is under way, which the snapshot skips), and the groups they can be in. Lock-free.
    pub fn snapshot_size(&self) -> SnapshotSize {
        let members = self.count(|c| &c.local_memberships);
        SnapshotSize {
            names: self.count(|c| &c.local_names) as u64,
            groups: members.min(self.groups.len()) as u64,
            members: members as u64,
        }
    }
}

/// Most bytes the announced size of a snapshot may make the receiver reserve in one map or
/// set before the entries arrive: a peer may announce any count and send nothing. 64 MiB
/// holds the name map's table for about 2.5 M names, more than most snapshots carry; a
/// larger one is presized to that and grows the usual way beyond it.
const PRESIZE_MAX_BYTES: usize = 64 << 20;

/// Bytes a map of the store may take per entry it is sized for: a slot is an entry pointer
/// and a control byte, and papaya keeps at most 8/3 slots per entry (a load factor of 3/4,
/// rounded up to a power of two).
const MAP_BYTES_PER_ENTRY: usize = 3 * (size_of::<usize>() + 1);

/// Bytes a set of seen entries may take per entry it is sized for: std's table keeps at
/// most 16/7 slots per entry, each the entry and a control byte.
const SEEN_BYTES_PER_ENTRY: usize = 3 * (size_of::<(Key, Pid)>() + 1);

/// How many of `announced` entries, taking `bytes_per_entry` each, to reserve room for:
/// all of them, up to [`PRESIZE_MAX_BYTES`].
fn presize_bound(announced: u64, bytes_per_entry: usize) -> usize {
    usize::try_from(announced)
        .unwrap_or(usize::MAX)
        .min(PRESIZE_MAX_BYTES / bytes_per_entry)
}

/// Applies a snapshot of one (origin, scope) stream chunk by chunk: each chunk's entries
/// are upserted as they arrive, and when the last chunk is in, the origin's entries that
/// no chunk mentioned are removed. Subscribers see the difference between the old and the
/// new view, not a storm of removals and re-additions.
#[derive(Debug)]
pub struct SnapshotReceiver {
    origin: u64,
    /// Whether this node held entries of the origin when the snapshot began; if not (a
    /// first sync), nothing can be stale and nothing needs to be tracked.
    track: bool,
    seen_names: HashSet<(Key, Pid)>,
    seen_members: HashSet<(Key, Pid)>,
}

impl SnapshotReceiver {
    /// Starts receiving a snapshot of `origin`'s entries in `scope`.
    pub fn new(scope: &ScopeStore, origin: u64) -> Self {
        Self {
            origin,
            track: scope.digest(origin) != 0,
            seen_names: HashSet::new(),
            seen_members: HashSet::new(),
        }
    }

    /// Sizes what applying the snapshot fills for the `size` its first chunk announced, so
    /// that it does not grow step by step: on a first sync the scope's maps of names and
    /// groups, which all the entries are new to (when they at least double them); on a
    /// resync, whose entries are mostly there already, the sets that track which entries
    /// the snapshot holds. Each reservation is capped at `PRESIZE_MAX_BYTES`: a wrong
    /// size costs at most that, and nothing else.
    pub fn presize(&mut self, scope: &ScopeStore, size: SnapshotSize) {
        if self.track {
            let names = presize_bound(size.names, SEEN_BYTES_PER_ENTRY);
            let members = presize_bound(size.members, SEEN_BYTES_PER_ENTRY);
            self.seen_names.reserve(names);
            self.seen_members.reserve(members);
        } else {
            // Only for a snapshot that at least doubles a map: papaya's `reserve` completes a
            // resize at once, on this thread, copying what the map holds, which a map that
            // doubles copies anyway as it grows, but one that grows a little (or not at
            // all: a peer's empty snapshot) spreads over later writes, or never does.
            let names = presize_bound(size.names, MAP_BYTES_PER_ENTRY);
            if names > scope.names.len() {
                scope.names.pin().reserve(names);
            }
            let groups = presize_bound(size.groups, MAP_BYTES_PER_ENTRY);
            if groups > scope.groups.len() {
                scope.groups.pin().reserve(groups);
            }
        }
    }

    /// Applies one chunk (registrations and joins of the origin) that is not the last:
    /// one event batch per subscriber.
    pub fn apply_chunk(&mut self, scope: &ScopeStore, ops: Vec<Op>) -> ApplyOutcome {
        let ops = self.take_in(ops);
        scope.apply_batch(ops, self.fresh())
    }

    /// Whether the snapshot's names are likely new here: on a first sync they are.
    fn fresh(&self) -> Fresh {
        if self.track {
            Fresh::Unknown
        } else {
            Fresh::Likely
        }
    }

    /// Applies the last chunk and ends the snapshot: removes the origin's entries that no
    /// chunk contained. The chunk's changes and the removals are one event batch per
    /// subscriber, applied under every shard lock.
    pub fn finish(mut self, scope: &ScopeStore, ops: Vec<Op>) -> ApplyOutcome {
        let ops = self.take_in(ops);
        if !self.track {
            return scope.apply_batch(ops, self.fresh());
        }
        let noted = NotedOps::note(&scope.config.locals.changes, &ops);
        let mut locks = scope.lock_every_shard();
        let mut events = Vec::new();
        let applied = scope.apply_locked(&mut locks, ops, Fresh::Unknown, &mut events);
        if scope.is_connected() {
            scope.remove_origin_entries(
                &mut locks,
                self.origin,
                &Reason::Resynced,
                |entry, key| match entry {
                    OriginEntry::Name(pid) => !self.seen_names.contains(&(key.clone(), *pid)),
                    OriginEntry::Member(pid) => !self.seen_members.contains(&(key.clone(), *pid)),
                },
                &mut events,
            );
        }
        scope.subscribers.emit_batch(events);
        drop(locks);
        if let Some(noted) = noted {
            noted.tell(&scope.name);
        }
        applied
    }

    /// Records what a chunk contains (when tracking) and keeps only the origin's ops.
    fn take_in(&mut self, ops: Vec<Op>) -> Vec<Op> {
        for op in ops.iter().filter(|_| self.track) {
            match op {
                Op::Register { key, pid, .. } => self.seen_names.insert((key.clone(), *pid)),
                Op::Join { key, pid, .. } => self.seen_members.insert((key.clone(), *pid)),
                _ => false,
            };
        }
        ops.into_iter()
            .filter(|op| op.pid().incarnation() == Incarnation::new(self.origin))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use crate::store::test_support::{Discard, replicating_stores};

    use super::super::NodeStores;
    use crate::subscription::Delivery;
    use crate::vocab::clock::wall_clock;
    use crate::vocab::conflict::DecidedBy;
    use crate::vocab::event::{EventKind, Reason};
    use crate::vocab::key::Pattern;
    use crate::vocab::meta::Meta;
    use crate::vocab::op::{Op, Restamp};
    use crate::vocab::pid::{Incarnation, Pid};

    fn register(key: &str, pid: Pid, at: u64) -> Op {
        Op::Register {
            key: key.into(),
            pid,
            meta: Meta::EMPTY,
            registered_at: at,
            token: at,
        }
    }

    /// What a subscriber of every key has been sent, as (kind, pid, reason).
    fn drain(events: &mut crate::subscription::Subscription) -> Vec<(EventKind, Pid, Reason)> {
        use futures_core::Stream;
        use std::task::{Context, Poll, Waker};
        let mut cx = Context::from_waker(Waker::noop());
        let mut seen = Vec::new();
        while let Poll::Ready(Some(Delivery::Events(batch))) =
            std::pin::Pin::new(&mut *events).poll_next(&mut cx)
        {
            seen.extend(batch.into_iter().map(|e| (e.kind, e.pid, e.reason)));
        }
        seen
    }

    /// A third node reports a conflict between two remote claims once: when it holds both
    /// (it decides), or, holding only the loser's, when the loser's removal arrives.
    #[test]
    fn a_third_node_reports_each_conflict_once() {
        let stores = replicating(3);
        let scope = stores.default_scope().clone();
        let mut events = scope.subscribe(vec![Pattern::All], 64).unwrap();
        let (older, newer) = (
            Pid::new(Incarnation::new(1), 1),
            Pid::new(Incarnation::new(2), 1),
        );
        let conflict = Reason::Conflict {
            winner: older,
            loser: newer,
            rule: DecidedBy::KeepOldest,
        };
        let removal = |key: &str| Op::Unregister {
            key: key.into(),
            pid: newer,
            reason: conflict.clone(),
        };

        // Holds both: the newer claim came first, the older one wins when it arrives, and
        // is shown once its node re-stamped it above the newer claim's token.
        scope.apply_remote(vec![register("both", newer, 20)]);
        let applied = scope.apply_remote(vec![register("both", older, 10)]);
        assert_eq!(
            applied.restamps,
            [Restamp {
                key: "both".into(),
                pid: older,
                above: 20
            }]
        );
        assert_eq!(scope.whereis("both"), None, "kept back");
        scope.apply_remote(vec![removal("both")]);
        scope.apply_remote(vec![register("both", older, 21)]);
        assert_eq!(
            drain(&mut events),
            [
                (EventKind::Registered, newer, Reason::Requested),
                (EventKind::ConflictResolved, newer, conflict.clone()),
                (EventKind::Unregistered, newer, conflict.clone()),
                (EventKind::Registered, older, Reason::Requested),
            ],
            "decided here; the loser's own removal is silent"
        );

        // Holds only the loser's claim: it learns of the conflict from the removal. The
        // winner's claim, older and with a smaller token than the loser's it showed, is kept
        // back until the winner's node re-stamps it (as it does once it learns of the
        // conflict).
        scope.apply_remote(vec![register("one", newer, 20)]);
        scope.apply_remote(vec![removal("one")]);
        let applied = scope.apply_remote(vec![register("one", older, 10)]);
        assert_eq!(applied.restamps.len(), 1);
        scope.apply_remote(vec![register("one", older, 21)]);
        assert_eq!(
            drain(&mut events),
            [
                (EventKind::Registered, newer, Reason::Requested),
                (EventKind::ConflictResolved, newer, conflict.clone()),
                (EventKind::Unregistered, newer, conflict),
                (EventKind::Registered, older, Reason::Requested),
            ]
        );
    }

    /// The stores of a replicating node of `incarnation` on the wall clock.
    fn replicating(incarnation: u64) -> NodeStores {
        replicating_stores(incarnation, wall_clock())
    }

    /// The winner's node learns of a conflict whose losing claim never reached it (the
    /// loser's node removed it before sending a snapshot, which carries the removal): once,
    /// and its process gets a fresh fencing token.
    #[test]
    fn the_winner_s_node_learns_of_a_loss_it_never_saw_the_claim_of() {
        let stores = replicating(3);
        let scope = stores.default_scope().clone();
        let winner = stores.new_process(Box::new(Discard));
        let before = scope.register(&winner, "k".into(), Meta::EMPTY).unwrap();
        let mut events = scope.subscribe(vec![Pattern::All], 64).unwrap();
        let loser = Pid::new(Incarnation::new(2), 1);
        let conflict = Reason::Conflict {
            winner: winner.pid,
            loser,
            rule: DecidedBy::KeepOldest,
        };
        let removal = Op::Unregister {
            key: "k".into(),
            pid: loser,
            reason: conflict.clone(),
        };
        scope.apply_remote(vec![removal.clone()]);
        assert_eq!(
            drain(&mut events),
            [(EventKind::ConflictResolved, loser, conflict)]
        );
        let after = scope.lookup("k").unwrap();
        assert_eq!(after.pid, winner.pid);
        assert!(after.token > before.token, "a fresh token");
        scope.apply_remote(vec![removal]);
        assert!(drain(&mut events).is_empty(), "reported once");
        assert_eq!(scope.lookup("k").unwrap().token, after.token);
    }

    /// A name removed here (its holder released it, or its node died) keeps the token it
    /// showed as a floor: an older registration of it that arrives later (from a node that
    /// was cut off) is kept back and its owner's node asked for a token above the floor,
    /// and the re-stamped registration is shown.
    #[test]
    fn a_registration_below_a_token_shown_before_is_kept_back_until_re_stamped() {
        let stores = replicating(3);
        let scope = stores.default_scope().clone();
        let (older, newer) = (
            Pid::new(Incarnation::new(1), 1),
            Pid::new(Incarnation::new(2), 1),
        );
        scope.apply_remote(vec![register("k", newer, 20)]);
        scope.purge_origin(2, &Reason::Exit(crate::vocab::event::ExitReason::NodeDown));
        assert!(scope.lookup("k").is_none());

        let applied = scope.apply_remote(vec![register("k", older, 10)]);
        assert!(scope.lookup("k").is_none(), "kept back");
        assert_eq!(
            applied.restamps,
            [Restamp {
                key: "k".into(),
                pid: older,
                above: 20
            }]
        );
        // The owner's re-stamped registration is shown, and asks for nothing.
        let applied = scope.apply_remote(vec![register("k", older, 21)]);
        assert!(applied.restamps.is_empty());
        assert_eq!(
            scope.lookup("k").map(|r| (r.pid, r.token)),
            Some((older, 21))
        );

        // A floor holds back only smaller tokens, and only of its own name.
        scope.apply_remote(vec![register("other", older, 5)]);
        assert!(scope.lookup("other").is_some());
    }

    /// Two remote contenders: `older` (incarnation 1) and `newer` (incarnation 2).
    fn contenders() -> (Pid, Pid) {
        (
            Pid::new(Incarnation::new(1), 1),
            Pid::new(Incarnation::new(2), 1),
        )
    }

    /// Makes `scope` keep back `older`'s registration of `key`: `newer`'s registration
    /// (token 20) is shown and released, leaving a floor above `older`'s (token 10).
    fn keep_back(scope: &crate::store::ScopeStore, key: &str) {
        let (older, newer) = contenders();
        scope.apply_remote(vec![register(key, newer, 20)]);
        scope.apply_remote(vec![Op::Unregister {
            key: key.into(),
            pid: newer,
            reason: Reason::Requested,
        }]);
        let applied = scope.apply_remote(vec![register(key, older, 10)]);
        assert_eq!(applied.restamps.len(), 1, "{key} kept back");
        assert!(scope.lookup(key).is_none());
    }

    /// A registration kept back still holds its name here: a local registration of it
    /// meets it as a contender (keep-oldest: the older kept-back one wins, the local one is
    /// refused), until its node removes it or goes; then the name is free again.
    #[test]
    fn a_registration_kept_back_still_holds_its_name_against_a_local_one() {
        let stores = replicating(3);
        let scope = stores.default_scope().clone();
        let (older, _) = contenders();
        let local = stores.new_process(Box::new(Discard));
        keep_back(&scope, "k");
        let refused = scope.register(&local, "k".into(), Meta::EMPTY);
        assert!(
            matches!(refused, Err(crate::vocab::error::RegistryError::Taken { owner, .. }) if owner == older),
            "{refused:?}"
        );
        // Its node released it: the name is free.
        scope.apply_remote(vec![Op::Unregister {
            key: "k".into(),
            pid: older,
            reason: Reason::Requested,
        }]);
        let held = scope.register(&local, "k".into(), Meta::EMPTY).unwrap();
        assert_eq!(held.pid, local.pid);
        scope.unregister(&local, &"k".into()).unwrap();

        // Kept back again; its node went down: free too.
        let applied = scope.apply_remote(vec![register("k", older, 10)]);
        assert_eq!(applied.restamps.len(), 1, "below the local release's floor");
        assert!(scope.register(&local, "k".into(), Meta::EMPTY).is_err());
        scope.purge_origin(1, &Reason::Exit(crate::vocab::event::ExitReason::NodeDown));
        assert!(scope.register(&local, "k".into(), Meta::EMPTY).is_ok());
    }

    /// A local registration refused for a registration kept back has seen no event for
    /// it: when that one goes unseen, its `Unregistered` wakes whoever waits on the key (a
    /// standby); one that nobody was refused for goes silently.
    #[test]
    fn a_registration_kept_back_that_goes_unseen_tells_a_refused_local_one() {
        let stores = replicating(3);
        let scope = stores.default_scope().clone();
        let (older, _) = contenders();
        let local = stores.new_process(Box::new(Discard));
        let mut events = scope.subscribe(vec![Pattern::All], 64).unwrap();
        for key in ["released", "node-down", "quiet"] {
            keep_back(&scope, key);
        }
        drain(&mut events);
        for key in ["released", "node-down"] {
            assert!(scope.register(&local, key.into(), Meta::EMPTY).is_err());
        }
        // Kept back again, below the floor still: the refusal is remembered.
        scope.apply_remote(vec![register("released", older, 11)]);
        scope.apply_remote(vec![Op::Unregister {
            key: "released".into(),
            pid: older,
            reason: Reason::Requested,
        }]);
        assert_eq!(
            drain(&mut events),
            [(EventKind::Unregistered, older, Reason::Requested)]
        );
        let down = Reason::Exit(crate::vocab::event::ExitReason::NodeDown);
        scope.purge_origin(1, &down);
        assert_eq!(drain(&mut events), [(EventKind::Unregistered, older, down)]);
        for key in ["released", "node-down", "quiet"] {
            assert!(scope.register(&local, key.into(), Meta::EMPTY).is_ok());
        }
    }

    /// Under keep-newest a local registration beats the older one kept back (as its node
    /// decides too once the local one reaches it), and the kept-back one is dropped.
    #[test]
    fn a_local_registration_the_rule_prefers_takes_a_name_kept_back() {
        let stores = crate::store::test_support::replicating_stores_ruled(
            3,
            wall_clock(),
            crate::vocab::conflict::ConflictRule::KeepNewest,
        );
        let scope = stores.default_scope().clone();
        let (older, _) = contenders();
        keep_back(&scope, "k");
        let local = stores.new_process(Box::new(Discard));
        let held = scope.register(&local, "k".into(), Meta::EMPTY).unwrap();
        assert_eq!(scope.whereis("k"), Some(local.pid));
        // The kept-back one, re-stamped, now meets the shown owner and loses again.
        scope.apply_remote(vec![Op::Register {
            key: "k".into(),
            pid: older,
            meta: Meta::EMPTY,
            registered_at: 10,
            token: held.token + 1,
        }]);
        assert_eq!(scope.whereis("k"), Some(local.pid));
    }

    /// A name this node's own process released also leaves a floor.
    #[test]
    fn a_local_release_leaves_a_floor_too() {
        let stores = replicating(3);
        let scope = stores.default_scope().clone();
        let process = stores.new_process(Box::new(Discard));
        let held = scope.register(&process, "k".into(), Meta::EMPTY).unwrap();
        scope.unregister(&process, &"k".into()).unwrap();
        let older = Pid::new(Incarnation::new(1), 1);
        let applied = scope.apply_remote(vec![register("k", older, held.token - 1)]);
        assert!(scope.lookup("k").is_none());
        assert_eq!(applied.restamps.len(), 1);
        assert_eq!(applied.restamps[0].above, held.token);
    }

    /// The owner's node re-stamps a registration its process still holds above the token
    /// asked for, and ships it; it leaves alone a name held by another process, a token
    /// already above, and a pid that is not its own.
    #[test]
    fn the_owner_re_stamps_above_the_floor_and_ships_it() {
        let stores = replicating(3);
        let scope = stores.default_scope().clone();
        let process = stores.new_process(Box::new(Discard));
        let held = scope.register(&process, "k".into(), Meta::EMPTY).unwrap();
        let outbox = stores.outbox().expect("replicated");
        outbox.take();
        let above = held.token + (1 << 40);
        assert!(scope.restamp(&"k".into(), process.pid, above));
        let now = scope.lookup("k").unwrap();
        assert!(now.token > above);
        assert_eq!(
            (now.pid, now.registered_at),
            (process.pid, held.registered_at)
        );
        let shipped: Vec<Op> = outbox.take().into_iter().map(|(_, _, op)| op).collect();
        assert_eq!(
            shipped,
            [Op::Register {
                key: "k".into(),
                pid: process.pid,
                meta: Meta::EMPTY,
                registered_at: held.registered_at,
                token: now.token,
            }]
        );
        assert!(
            !scope.restamp(&"k".into(), process.pid, above),
            "already above"
        );
        let other = Pid::new(Incarnation::new(1), 1);
        assert!(!scope.restamp(&"k".into(), other, u64::MAX / 2), "not ours");
        assert!(
            !scope.restamp(&"gone".into(), process.pid, above),
            "not held"
        );
        assert_eq!(scope.lookup("k").unwrap().token, now.token);
    }

    /// A contender that lost to the owner waits as a shadow; when the owner goes, it does
    /// not take over with a smaller token than the owner's shown here: it is forgotten
    /// (its origin's digest without it, so its node sends it again), and when it comes
    /// again it is kept back until its node re-stamps it.
    #[test]
    fn a_shadow_with_a_smaller_token_does_not_take_over() {
        let stores = replicating(3);
        let scope = stores.default_scope().clone();
        let (owner, contender) = (
            Pid::new(Incarnation::new(1), 1),
            Pid::new(Incarnation::new(2), 1),
        );
        let at = |key: &str, pid, registered_at, token| Op::Register {
            key: key.into(),
            pid,
            meta: Meta::EMPTY,
            registered_at,
            token,
        };
        // The owner registered first (keep-oldest keeps it) and was re-stamped since.
        scope.apply_remote(vec![at("k", owner, 10, 50)]);
        scope.apply_remote(vec![at("k", contender, 20, 30)]);
        assert_eq!(scope.whereis("k"), Some(owner));
        assert_ne!(
            scope.digest(2),
            0,
            "the shadow counts in its origin's digest"
        );
        scope.purge_origin(1, &Reason::Exit(crate::vocab::event::ExitReason::NodeDown));
        assert_eq!(scope.whereis("k"), None, "not shown with token 30 after 50");
        assert_eq!(scope.digest(2), 0, "forgotten");
        let applied = scope.apply_remote(vec![at("k", contender, 20, 30)]);
        assert_eq!(scope.whereis("k"), None);
        assert_eq!(applied.restamps.len(), 1);
        assert_eq!(applied.restamps[0].above, 50);
        scope.apply_remote(vec![at("k", contender, 20, 51)]);
        assert_eq!(scope.lookup("k").map(|r| r.token), Some(51));
    }
}
