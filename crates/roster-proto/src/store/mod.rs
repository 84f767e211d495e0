//! The store of one scope: concurrent indexes of names and group memberships.
//!
//! # Reads
//!
//! Reads never wait for a task and never take a lock: exact keys are looked up in lock-free
//! hash maps ([`papaya`]), prefix scans walk ordered indexes ([`scc::TreeIndex`]) whose
//! readers never block behind writers. Group member lists are immutable snapshots (a flat
//! list, or a persistent tree for large groups, where a change copies one path), so
//! `members` hands out a reference-counted list without copying it.
//!
//! # Writes
//!
//! Writes are serialized per shard (a hash of the key picks one of [`SHARDS`] locks), so
//! the conflict check of a unique name and its insert are atomic, and events of one key are
//! emitted in the order the changes were applied. Bulk removals (a process exiting, a
//! scope disconnecting) take the shard locks they need in ascending order, apply every
//! removal, and emit one batch per subscriber.
//!
//! # Owner index
//!
//! Each local process keeps the list of entries it holds (see `process::HeldEntry`), so the
//! cleanup of an exited process costs what that process held, not a scan of the store.
//! Remote processes' entries are indexed per shard once a caller asks about one (`owners`).

mod change_log;
mod digest;
mod groups;
mod kept_back;
mod lease;
mod names;
mod node_stores;
mod ordered_keys;
mod owners;
mod process_table;
mod replica;
mod snapshot;
mod standby;
#[cfg(any(test, feature = "fuzzing"))]
pub(crate) mod test_support;
mod token_floors;
mod watch;

use std::collections::HashMap;

use crate::vocab::clock::{Clock, Hlc};
use std::hash::BuildHasher;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use self::lease::Lease;

use self::ordered_keys::OrderedKeys;
use smallvec::SmallVec;

pub use self::process_table::{
    HeldEntry, HeldKind, Holdings, LocalProcess, Mailbox, ProcessTable, Refused, Task,
};
use crate::nodes::Fence;
use crate::subscription::{Subscribers, Subscription};
use crate::vocab::conflict::{ConflictRule, DecidedBy, Winner};
use crate::vocab::entry::{MemberList, Registration};
use crate::vocab::error::RegistryError;
use crate::vocab::event::{Event, EventKind, ExitReason, Reason};
use crate::vocab::key::{INLINE_KEY_BYTES, Key, PackedKey, Pattern, ScopeName};
use crate::vocab::meta::Meta;
use crate::vocab::op::{Op, Outbox};
use crate::vocab::pid::{Incarnation, Pid};

pub use change_log::{Change, ChangeHook, ChangeKind, ChangeLog};
pub use node_stores::DEFAULT_SCOPE;
pub use node_stores::{KindMismatch, NodeStores};
pub use replica::{ApplyOutcome, SnapshotReceiver, SnapshotSize};
pub use snapshot::SnapshotCursor;

/// Number of write shards per scope. A power of two well above the core count keeps two
/// writers on different keys from meeting on a lock; 64 mutexes cost a few KiB per scope.
pub const SHARDS: usize = 64;

type Hasher = foldhash::fast::FixedState;
type Map<V> = papaya::HashMap<StoredKey, V, foldhash::fast::RandomState>;

/// A key as a scope's tables keep it (in the table, its ordered index and the held-entry
/// record of a local owner), tagged with the kind of entry of its table (a name, or a
/// group membership). A long key is allocated once and shared by the three.
pub type StoredKey = PackedKey<HeldKind>;

type FastMap<K, V> = HashMap<K, V, foldhash::fast::RandomState>;

/// What a shard lock guards besides serializing the writers of its keys.
#[derive(Default)]
pub struct Shard {
    /// This shard's index (to find its counters).
    index: usize,
    /// Whether digests are kept (only replicated scopes need them).
    keep_digests: bool,
    /// Per origin incarnation: the XOR of the hashes of the entries of its keys in this
    /// shard (live and shadowed), so that anti-entropy digests cost O(1) per write.
    digests: FastMap<u64, u128>,
    /// Names held by remote processes that lost a conflict to the live owner and whose
    /// node has not removed them yet. If the live owner goes, the best of them takes over.
    shadows: FastMap<Key, Vec<Registration>>,
    /// Remote registrations kept back until their node re-stamps them (see `kept_back`).
    kept_back: kept_back::KeptBack,
    /// The hybrid logical clock of this shard's keys.
    hlc: Hlc,
    /// Claims of remote processes on this shard's keys, once the scope's owner index is
    /// built (see `owners`).
    claims: Option<owners::Claims>,
    /// The join sequences of this shard's groups held as trees (see `groups`).
    join_seqs: FastMap<Key, groups::JoinSeqs>,
    /// During a batch of remote changes: the groups it changed, not yet published
    /// (`None`: the group is gone).
    staged_groups: Option<FastMap<Key, Option<MemberList>>>,
    /// Standby claims on this shard's keys, `(key, local pid)`: a handful at most, since
    /// each lasts from a standby's registration to its confirmation (see `standby`).
    standby: Vec<(Key, Pid)>,
    /// New names inserted in this shard, to flush retired map tables now and then (see
    /// `ScopeStore::insert_live`).
    name_inserts: u32,
    /// The last conflicts of this shard's keys reported with a `ConflictResolved` event,
    /// `(key, loser)`, so that one learned of twice is reported once (see `replica`).
    reported: std::collections::VecDeque<(Key, Pid)>,
    /// The tokens shown for this shard's recently removed names, in a replicated scope
    /// (see `token_floors`).
    floors: token_floors::TokenFloors,
}

/// Entry counts of one shard, updated under its lock and read without it. Aligned to its
/// own cache lines so that writers of different shards do not share one.
#[derive(Default)]
#[repr(align(128))]
struct ShardCounts {
    local_names: AtomicUsize,
    memberships: AtomicUsize,
    local_memberships: AtomicUsize,
}

impl Shard {
    fn toggle_digest(&mut self, origin: u64, hash: impl FnOnce() -> u128) {
        if !self.keep_digests {
            return;
        }
        let hash = hash();
        let digest = self.digests.entry(origin).or_insert(0);
        *digest ^= hash;
        if *digest == 0 {
            self.digests.remove(&origin);
        }
    }
}

/// Shard locks held together by one multi-shard write, taken in ascending index order.
/// While any shard lock is held the scope cannot be closed (`close` takes them all), so
/// one connection check under them holds for the whole write.
///
/// Most writes lock one or two shards (a process's exit, a frame of a few ops), which
/// then allocate nothing.
struct ShardLocks<'a>(SmallVec<[(usize, MutexGuard<'a, Shard>); 2]>);

impl ShardLocks<'_> {
    /// The locked shard `index`; panics if it was not locked (a bug of the caller).
    fn shard(&mut self, index: usize) -> &mut Shard {
        let at = self
            .0
            .binary_search_by_key(&index, |(i, _)| *i)
            .expect("the shard of every key written is locked");
        &mut self.0[at].1
    }

    /// Every locked shard.
    fn iter(&self) -> impl Iterator<Item = &Shard> {
        self.0.iter().map(|(_, guard)| &**guard)
    }

    /// Every locked shard, to change.
    fn iter_mut(&mut self) -> impl Iterator<Item = &mut Shard> {
        self.0.iter_mut().map(|(_, guard)| &mut **guard)
    }
}

/// Settings of a scope that come from the node.
#[derive(Clone)]
pub struct ScopeConfig {
    /// How name conflicts are decided.
    pub rule: ConflictRule,
    /// Where local writes put their ops; `None` for a node without replication.
    pub outbox: Option<Arc<Outbox>>,
    /// The physical time source of the shards' hybrid logical clocks.
    pub clock: Arc<dyn Clock>,
    /// The node's local processes (liveness of local entries, exit reasons).
    pub locals: Arc<ProcessTable>,
    /// The node's fence: while raised, new names in replicated scopes are refused.
    pub fence: Arc<Fence>,
    /// The node's count of custom conflict resolvers that panicked (keep-oldest decided).
    pub resolver_panics: Arc<AtomicU64>,
    /// Whether a local process that loses a name in a conflict is ended with
    /// [`ExitReason::Conflict`] (its task aborted), or only told
    /// ([`LocalProcess::lost_name`]) and left its other entries.
    pub end_conflict_losers: bool,
}

/// The store of one scope on this node: its names, groups, their indexes, digests and
/// subscribers.
pub struct ScopeStore {
    /// The scope's name.
    pub name: ScopeName,
    /// Distinguishes this connection of the scope from earlier ones of the same name.
    pub epoch: u64,
    /// Never replicated (Elixir `Registry` semantics).
    pub local_only: bool,
    config: ScopeConfig,
    connected: AtomicBool,
    /// Whether reads of this scope go through a transform of their meta that the node
    /// keeps (`extract_meta` in `roster`): read beside the maps, so that a scope without
    /// one pays a load of a line the read touches anyway.
    read_transform: AtomicBool,
    /// The TTL lease, for a scope connected with one.
    lease: Mutex<Option<Lease>>,
    names: Map<Registration>,
    name_index: OrderedKeys,
    groups: Map<MemberList>,
    group_index: OrderedKeys,
    shards: Box<[Mutex<Shard>]>,
    counts: Box<[ShardCounts]>,
    /// Whether the owner index of remote entries is built.
    owner_index: AtomicBool,
    /// Held while the owner index is built (one build at a time; queries wait for it).
    owner_index_build: Mutex<()>,
    /// Who is subscribed to changes in the scope.
    pub subscribers: Arc<Subscribers>,
}

impl std::fmt::Debug for ScopeStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScopeStore")
            .field("name", &self.name)
            .field("epoch", &self.epoch)
            .finish_non_exhaustive()
    }
}

/// Who changed an entry, for the event's `reason`.
#[derive(Clone, Copy)]
enum Cause<'a> {
    Requested,
    Exit(&'a ExitReason),
    Remote(&'a Reason),
}

impl Cause<'_> {
    fn reason(self) -> Reason {
        match self {
            Cause::Requested => Reason::Requested,
            Cause::Exit(r) => Reason::Exit(r.clone()),
            Cause::Remote(r) => r.clone(),
        }
    }
}

impl ScopeStore {
    /// A connected, empty store for scope `name`.
    pub fn new(name: ScopeName, local_only: bool, mut config: ScopeConfig) -> Arc<Self> {
        if local_only {
            config.outbox = None;
        }
        let keep_digests = config.outbox.is_some();
        static EPOCHS: AtomicU64 = AtomicU64::new(1);
        Arc::new(Self {
            name,
            epoch: EPOCHS.fetch_add(1, Ordering::Relaxed),
            local_only,
            config,
            connected: AtomicBool::new(true),
            read_transform: AtomicBool::new(false),
            lease: Mutex::new(None),
            names: Map::default(),
            name_index: OrderedKeys::new(HeldKind::Name),
            groups: Map::default(),
            group_index: OrderedKeys::new(HeldKind::Member),
            shards: (0..SHARDS)
                .map(|index| {
                    Mutex::new(Shard {
                        index,
                        keep_digests,
                        ..Shard::default()
                    })
                })
                .collect(),
            counts: (0..SHARDS).map(|_| ShardCounts::default()).collect(),
            owner_index: AtomicBool::new(false),
            owner_index_build: Mutex::new(()),
            subscribers: Arc::default(),
        })
    }

    /// The highest reading of this scope's clocks (one per shard).
    pub fn clock_reading(&self) -> u64 {
        (0..SHARDS)
            .map(|i| self.lock_shard(i).hlc.reading())
            .max()
            .unwrap_or(0)
    }

    /// Moves every clock of this scope past `reading`, a peer's (see [`Hlc::observe`]).
    pub fn observe_clock(&self, reading: u64) {
        for i in 0..SHARDS {
            self.lock_shard(i).hlc.observe(reading);
        }
    }

    fn shard_of(&self, key: &str) -> usize {
        Hasher::default().hash_one(key) as usize & (SHARDS - 1)
    }

    fn lock_shard(&self, index: usize) -> MutexGuard<'_, Shard> {
        // Every critical section leaves the shard consistent before anything can panic in
        // it, so a poisoned lock carries no broken invariant.
        self.shards[index].lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Locks every shard, in index order (the order every multi-shard writer uses).
    fn lock_all(&self) -> Vec<MutexGuard<'_, Shard>> {
        (0..SHARDS).map(|i| self.lock_shard(i)).collect()
    }

    /// Locks the shards of `keys`, in index order (the order every multi-shard writer uses).
    fn lock_keys<'k>(&self, keys: impl IntoIterator<Item = &'k str>) -> ShardLocks<'_> {
        let mut indexes: SmallVec<[usize; 4]> =
            keys.into_iter().map(|k| self.shard_of(k)).collect();
        indexes.sort_unstable();
        indexes.dedup();
        ShardLocks(
            indexes
                .into_iter()
                .map(|i| (i, self.lock_shard(i)))
                .collect(),
        )
    }

    /// Locks every shard, as [`ShardLocks`].
    fn lock_every_shard(&self) -> ShardLocks<'_> {
        ShardLocks(self.lock_all().into_iter().enumerate().collect())
    }

    /// Locks the shard of `key` and checks that the scope is still connected.
    fn write_lock(&self, key: &str) -> Result<MutexGuard<'_, Shard>, RegistryError> {
        let guard = self.lock_shard(self.shard_of(key));
        if !self.is_connected() {
            return Err(RegistryError::ScopeNotConnected {
                scope: self.name.clone(),
            });
        }
        Ok(guard)
    }

    /// Adds a subscriber unless the scope is disconnected. Done under every shard lock:
    /// `close` holds them all, so it either ends this subscriber or refuses it here, and a
    /// subscription never outlives its scope unnoticed; and a writer, which gathers a
    /// change's events under the shard locks of its keys (skipping them while nobody
    /// subscribes, see `push_event`), sees the subscriber either for its whole change or
    /// not at all.
    pub fn subscribe(
        &self,
        patterns: Vec<Pattern>,
        capacity: usize,
    ) -> Result<Subscription, RegistryError> {
        let _locks = self.lock_every_shard();
        if !self.is_connected() {
            return Err(RegistryError::ScopeNotConnected {
                scope: self.name.clone(),
            });
        }
        let queue = self.subscribers.add(patterns, capacity);
        Ok(Subscription::new(queue, Arc::downgrade(&self.subscribers)))
    }

    /// Marks this scope's reads as going through the node's transform of their meta.
    pub fn set_read_transform(&self) {
        self.read_transform.store(true, Ordering::Relaxed);
    }

    /// Whether this scope's reads go through the node's transform of their meta.
    #[inline]
    pub fn has_read_transform(&self) -> bool {
        self.read_transform.load(Ordering::Relaxed)
    }

    /// Whether the node is still connected to the scope (a disconnected store stays empty).
    pub fn is_connected(&self) -> bool {
        self.connected.load(Ordering::Acquire)
    }

    fn is_local(&self, pid: Pid) -> bool {
        pid.incarnation() == Incarnation::new(self.config.locals.incarnation)
    }

    /// Whether the process of an entry is alive as far as this node knows. Lock-free.
    #[inline]
    fn is_live(&self, pid: Pid) -> bool {
        self.config.locals.is_live(pid)
    }

    /// Hands the op of a local write to replication. Called under the key's shard lock, so
    /// the outbox holds each key's ops in the order they were applied.
    fn ship(&self, op: Op) {
        if let Some(outbox) = &self.config.outbox {
            outbox.push(self.name.clone(), self.epoch, op);
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn event(
        &self,
        kind: EventKind,
        key: &Key,
        pid: Pid,
        meta: Meta,
        previous_meta: Option<Meta>,
        reason: Reason,
    ) -> Event {
        Event {
            kind,
            scope: self.name.clone(),
            key: key.clone(),
            pid,
            meta,
            previous_meta,
            reason,
        }
    }

    /// Decides a name conflict with the scope's rule, counting a panicking custom resolver
    /// in the node's `resolver_panics`; returns the winner and the rule that decided.
    fn resolve(
        &self,
        key: &str,
        first: &Registration,
        second: &Registration,
    ) -> (Winner, DecidedBy) {
        self.config
            .rule
            .resolve_counting(key, first, second, &self.config.resolver_panics)
    }

    /// Adds the event `make` builds to a batch being gathered under the shard locks of its
    /// keys, unless nobody subscribes. A batch is only ever emitted, and no subscriber that
    /// could match it is added while those locks are held (`subscribe` takes every shard
    /// lock, `watch` those of its keys), so the answer holds for the whole batch. Spares
    /// exits and removals the event's copies and the batch's allocation.
    fn push_event(&self, events: &mut Vec<Event>, make: impl FnOnce() -> Event) {
        if !self.subscribers.is_empty() {
            events.push(make());
        }
    }

    /// Removes a holding from a live process's owner index.
    fn forget_holding(&self, cell: &LocalProcess, kind: HeldKind, key: &str) {
        let mut holdings = cell.holdings();
        if let Some(i) = holdings
            .iter()
            .position(|h| h.kind() == kind && h.key == *key && std::ptr::eq(&*h.scope, self))
        {
            holdings.swap_remove(i);
        }
    }

    /// Records a new holding: `insert` makes the entry and returns its stored key. Fails
    /// (without calling `insert`) if the process has exited. Called with the shard lock
    /// held, so an exit either happens before (refused here) or after (and then its cleanup
    /// sees the holding): a process can never leave an entry behind.
    fn hold(
        self: &Arc<Self>,
        cell: &LocalProcess,
        insert: impl FnOnce() -> StoredKey,
    ) -> Result<(), RegistryError> {
        let mut holdings = cell.holdings();
        if !cell.is_alive() {
            return Err(RegistryError::ProcessDead { pid: cell.pid });
        }
        let key = insert();
        holdings.push(HeldEntry {
            scope: self.clone(),
            key,
        });
        Ok(())
    }

    /// Removes every entry an exited process held in this scope and emits one batch.
    pub fn remove_exited(&self, pid: Pid, holdings: &[HeldEntry], reason: &ExitReason) {
        let mut locks = self.lock_keys(holdings.iter().map(|h| h.key.as_str()));
        // Empty (no allocation) unless someone subscribes.
        let mut events = Vec::new();
        for holding in holdings {
            let key = holding.key.to_key();
            let shard = locks.shard(self.shard_of(&key));
            match holding.kind() {
                HeldKind::Name => {
                    self.remove_name(shard, &key, pid, Cause::Exit(reason), &mut events)
                }
                HeldKind::Member => {
                    self.remove_member(shard, &key, pid, Cause::Exit(reason), &mut events);
                }
            }
        }
        if events.len() == 1 {
            self.subscribers.emit(|| events.pop().expect("one event"));
        } else {
            self.subscribers.emit_batch(events);
        }
    }

    /// Disconnects: refuses further writes, drops every entry, ends the subscriptions with
    /// a final batch, and returns the local processes whose holdings must be forgotten.
    pub fn close(&self) -> Vec<Pid> {
        let mut guards = self.lock_all();
        for shard in guards.iter_mut() {
            shard.digests.clear();
            shard.shadows.clear();
            shard.kept_back.clear();
            shard.claims = None;
            shard.join_seqs.clear();
        }
        self.connected.store(false, Ordering::Release);
        let mut events = Vec::new();
        let mut local = Vec::new();
        let names = self.names.pin();
        for (key, entry) in names.iter() {
            let r = &entry;
            if self.is_local(r.pid) {
                local.push(r.pid);
            }
            events.push(self.event(
                EventKind::Unregistered,
                &key.to_key(),
                r.pid,
                r.meta.clone(),
                None,
                Reason::ScopeDisconnected,
            ));
        }
        let groups = self.groups.pin();
        for (key, members) in groups.iter() {
            for m in members.iter() {
                if self.is_local(m.pid()) {
                    local.push(m.pid());
                }
                events.push(self.event(
                    EventKind::Left,
                    &key.to_key(),
                    m.pid(),
                    m.meta().clone(),
                    None,
                    Reason::ScopeDisconnected,
                ));
            }
        }
        names.clear();
        groups.clear();
        self.name_index.clear();
        self.group_index.clear();
        for counts in self.counts.iter() {
            counts.local_names.store(0, Ordering::Relaxed);
            counts.memberships.store(0, Ordering::Relaxed);
            counts.local_memberships.store(0, Ordering::Relaxed);
        }
        for queue in self.subscribers.take_all() {
            let mine = events
                .iter()
                .filter(|e| queue.matches(&e.key))
                .cloned()
                .collect();
            queue.close_with(mine);
        }
        local.sort_unstable();
        local.dedup();
        local
    }

    /// Live processes a dispatch to `key` reaches: the owner of the name and the members
    /// of the group, each once, in pid order.
    pub fn targets(&self, key: &str) -> Vec<Pid> {
        let mut targets: Vec<Pid> = self.members(key, None).pids();
        targets.extend(self.whereis(key));
        targets.sort_unstable();
        targets.dedup();
        targets
    }

    /// The [`ScopeStore::targets`] that live on this node.
    pub fn local_targets(&self, key: &str) -> Vec<Pid> {
        let mut targets = self.targets(key);
        targets.retain(|pid| self.is_local(*pid));
        targets
    }

    /// Takes (or replaces) a TTL lease on the scope at `now`.
    pub fn set_lease(&self, ttl: Duration, now: Instant) {
        *self.lease.lock().unwrap_or_else(|e| e.into_inner()) = Some(Lease::new(ttl, now));
    }

    /// When the scope's lease is next checked, if it has one.
    pub fn lease_due(&self) -> Option<Instant> {
        self.lease
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .and_then(|lease| lease.due())
    }

    /// Checks the lease at `now`: `true` if it expired and the scope should be released
    /// (it is renewed instead while this node holds something in the scope).
    pub fn lease_expired(&self, now: Instant) -> bool {
        let in_use = self.has_local_state();
        self.lease
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_mut()
            .is_some_and(|lease| lease.expired(now, in_use))
    }

    /// Whether this node holds anything in the scope: names, memberships or subscriptions
    /// (a TTL lease is only released when it holds nothing).
    pub fn has_local_state(&self) -> bool {
        self.count(|c| &c.local_names) > 0
            || self.count(|c| &c.local_memberships) > 0
            || !self.subscribers.is_empty()
    }

    /// Sums one counter over the shards. Lock-free.
    fn count(&self, counter: impl Fn(&ShardCounts) -> &AtomicUsize) -> usize {
        self.counts
            .iter()
            .map(|c| counter(c).load(Ordering::Relaxed))
            .sum()
    }

    /// Adds `delta` (+1 or -1) to one counter of a shard; the caller holds its lock.
    fn bump(&self, shard: &Shard, counter: impl Fn(&ShardCounts) -> &AtomicUsize, delta: isize) {
        let c = counter(&self.counts[shard.index]);
        if delta >= 0 {
            c.fetch_add(delta as usize, Ordering::Relaxed);
        } else {
            c.fetch_sub(delta.unsigned_abs(), Ordering::Relaxed);
        }
    }

    /// Forgets this scope's holdings in a local process (after a disconnect).
    pub fn forget_all_holdings(&self, cell: &LocalProcess) {
        cell.holdings().retain(|h| !std::ptr::eq(&*h.scope, self));
    }
}

/// The key to store for `key` in `map`: a long key that has an entry there shares that
/// entry's allocation (as the index and the holder's record do); any other is packed
/// anew, tagged `kind`. The caller holds the key's shard lock.
fn stored_key<V>(map: &Map<V>, kind: HeldKind, key: &str) -> StoredKey {
    if key.len() > INLINE_KEY_BYTES
        && let Some((stored, _)) = map.pin().get_key_value(key)
    {
        return stored.clone();
    }
    StoredKey::new(kind, key)
}

/// Makes `value` the entry of `key` in `map` (see [`stored_key`]); returns the stored key
/// and whether the key is new. The caller holds the key's shard lock.
fn put<V>(map: &Map<V>, kind: HeldKind, key: &str, value: V) -> (StoredKey, bool) {
    let stored = stored_key(map, kind, key);
    let new = map.pin().insert(stored.clone(), value).is_none();
    (stored, new)
}

/// Walks an ordered index from `prefix` while keys start with it (all keys for `""`).
fn keys_with_prefix<'g>(
    index: &'g OrderedKeys,
    prefix: &'g str,
    guard: &'g scc::Guard,
) -> impl Iterator<Item = &'g StoredKey> + 'g {
    keys_with_prefix_after(index, prefix, None, guard)
}

/// The keys of `index` under `prefix`, in order, strictly after `after` if given: a page
/// that starts where the last one ended costs what it returns, not the keys before it.
fn keys_with_prefix_after<'g>(
    index: &'g OrderedKeys,
    prefix: &'g str,
    after: Option<&'g str>,
    guard: &'g scc::Guard,
) -> impl Iterator<Item = &'g StoredKey> + 'g {
    use std::ops::Bound;
    let start = match after {
        Some(after) if after >= prefix => Bound::Excluded(after),
        _ => Bound::Included(prefix),
    };
    index
        .from(start, guard)
        .take_while(move |k| k.as_bytes().starts_with(prefix.as_bytes()))
}

#[cfg(test)]
mod tests {
    use crate::store::test_support::{Discard, replicating_stores};

    use super::HeldKind;
    use crate::vocab::clock::wall_clock;

    use crate::vocab::event::ExitReason;
    use crate::vocab::key::{INLINE_KEY_BYTES, Key};
    use crate::vocab::meta::Meta;

    /// Short keys (stored in place) and long ones (shared by the table, its index and the
    /// holder's record) behave alike through updates, queries, leaves and an exit.
    #[test]
    fn short_and_long_keys_live_and_go_alike() {
        let stores = replicating_stores(3, wall_clock());
        let scope = stores.default_scope().clone();
        let short = Key::from("k/short");
        let long = Key::from(format!("k/{}", "l".repeat(INLINE_KEY_BYTES)));
        let (a, b) = (
            stores.new_process(Box::new(Discard)),
            stores.new_process(Box::new(Discard)),
        );
        for key in [&short, &long] {
            scope.register(&a, key.clone(), Meta::EMPTY).unwrap();
            let meta = Meta::encode(&1u8).unwrap();
            scope.register(&a, key.clone(), meta.clone()).unwrap();
            assert_eq!(scope.lookup(key).unwrap().meta, meta);
            assert!(scope.register(&b, key.clone(), Meta::EMPTY).is_err());
            scope.join(&a, key.clone(), Meta::EMPTY).unwrap();
            scope.join(&b, key.clone(), Meta::EMPTY).unwrap();
        }
        let listed: Vec<Key> = scope
            .registered("k/", 10)
            .into_iter()
            .map(|(k, _)| k)
            .collect();
        assert_eq!(listed, [long.clone(), short.clone()]);
        assert_eq!(scope.group_keys("k/", 10), [long.clone(), short.clone()]);
        let held = |p: &super::LocalProcess, kind| {
            let mut keys: Vec<Key> = p
                .holdings()
                .iter()
                .filter(|h| h.kind() == kind)
                .map(|h| h.key.to_key())
                .collect();
            keys.sort_unstable();
            keys
        };
        assert_eq!(held(&a, HeldKind::Name), [long.clone(), short.clone()]);
        assert_eq!(held(&a, HeldKind::Member), [long.clone(), short.clone()]);
        scope.unregister(&a, &long).unwrap();
        scope.leave(&b, &long).unwrap();
        assert_eq!(held(&a, HeldKind::Name), [&short]);
        assert_eq!(held(&b, HeldKind::Member), [&short]);
        assert!(stores.exit(&a, ExitReason::Normal));
        assert!(scope.lookup(&short).is_none());
        assert_eq!(scope.members(&long, None).pids(), Vec::new());
        assert_eq!(scope.members(&short, None).pids(), [b.pid]);
        assert_eq!(scope.group_keys("", 10), [short]);
    }

    /// A subscriber is there for a whole change or not at all: while one thread applies
    /// frames of many registrations (a remote process's) and another ends processes that
    /// hold many names, two more keep subscribing and dropping their subscriptions; every
    /// change a subscriber sees any of, it sees whole, in one batch.
    #[test]
    fn subscribers_taken_during_changes_of_many_keys_see_each_whole_or_not_at_all() {
        use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
        use std::task::{Context, Poll, Waker};

        use futures_core::Stream;

        use crate::subscription::Delivery;
        use crate::vocab::event::EventKind;
        use crate::vocab::key::Pattern;
        use crate::vocab::op::Op;
        use crate::vocab::pid::{Incarnation, Pid};

        const KEYS: usize = 24;
        const CHANGES: u64 = 1_500;
        let stores = replicating_stores(3, wall_clock());
        let scope = stores.default_scope().clone();
        let writers_done = AtomicUsize::new(0);
        let seen_changes = AtomicUsize::new(0);
        let stop = AtomicBool::new(false);
        std::thread::scope(|s| {
            s.spawn(|| {
                for change in 0..CHANGES {
                    let pid = Pid::new(Incarnation::new(9), change + 1);
                    let ops = (0..KEYS)
                        .map(|k| Op::Register {
                            key: format!("remote/{change}/{k}").into(),
                            pid,
                            meta: Meta::EMPTY,
                            registered_at: 1,
                            token: 1,
                        })
                        .collect();
                    scope.apply_remote(ops);
                }
                writers_done.fetch_add(1, Ordering::SeqCst);
            });
            s.spawn(|| {
                for change in 0..CHANGES {
                    let process = stores.new_process(Box::new(Discard));
                    for k in 0..KEYS {
                        let key = Key::from(format!("local/{change}/{k}"));
                        scope.register(&process, key, Meta::EMPTY).unwrap();
                    }
                    assert!(stores.exit(&process, ExitReason::Normal));
                    stores.take_local_ops();
                }
                writers_done.fetch_add(1, Ordering::SeqCst);
            });
            for _ in 0..2 {
                s.spawn(|| {
                    let mut cx = Context::from_waker(Waker::noop());
                    while writers_done.load(Ordering::SeqCst) < 2 && !stop.load(Ordering::SeqCst) {
                        let mut events = scope.subscribe(vec![Pattern::All], 1 << 20).unwrap();
                        // Long enough to see a few changes start, end or both.
                        let mut batches = Vec::new();
                        for _ in 0..50 {
                            match std::pin::Pin::new(&mut events).poll_next(&mut cx) {
                                Poll::Ready(Some(Delivery::Events(batch))) => batches.push(batch),
                                Poll::Ready(Some(Delivery::Lagged { missed })) => {
                                    panic!("lagged by {missed}")
                                }
                                Poll::Ready(None) => panic!("the scope closed"),
                                Poll::Pending => std::thread::yield_now(),
                            }
                        }
                        drop(events);
                        for batch in batches {
                            // A local registration is a change of one key: left out.
                            let mut changes: Vec<((Pid, EventKind), usize)> = Vec::new();
                            for e in &batch {
                                if !(e.kind == EventKind::Registered && e.key.starts_with("local/"))
                                {
                                    match changes.iter_mut().find(|(c, _)| *c == (e.pid, e.kind)) {
                                        Some((_, n)) => *n += 1,
                                        None => changes.push(((e.pid, e.kind), 1)),
                                    }
                                }
                            }
                            for ((pid, kind), n) in changes {
                                if n != KEYS {
                                    stop.store(true, Ordering::SeqCst);
                                    panic!("{kind:?} of {pid}: {n} of its {KEYS} keys in a batch");
                                }
                                seen_changes.fetch_add(1, Ordering::Relaxed);
                            }
                        }
                    }
                });
            }
        });
        // Not a check of the invariant, but that the race was run: subscribers saw changes.
        assert!(seen_changes.load(Ordering::Relaxed) > 0);
    }
}
