//! The owner index of remote entries: the names and memberships a process of another node
//! holds in this scope.
//!
//! A local process keeps its own index (its `HeldEntry`s); a remote process has no cell
//! here, so its claims are indexed per shard, under the shard's lock, by the writes that
//! change them. The index is built on the first query about a remote process in the scope
//! (one scan of the scope, during which writers wait for one shard at a time) and kept up
//! to date from then on: a scope whose callers never ask about remote processes pays
//! nothing for it.
//!
//! A claim is a membership, a live name, or a name held as a shadowed conflict loser; a
//! query keeps only the names the process owns now, so promoting or demoting a contender
//! leaves the index alone.

use std::collections::BTreeSet;
use std::ops::Bound;
use std::sync::atomic::Ordering;

use super::{HeldKind, ScopeStore, Shard};
use crate::vocab::key::Key;
use crate::vocab::pid::Pid;

/// The claims of remote processes on the keys of one shard, ordered by process.
pub(super) type Claims = BTreeSet<(Pid, HeldKind, Key)>;

impl ScopeStore {
    /// Records (`held`) or forgets a claim of `pid` on `key`, if the index is built and the
    /// process is remote. The caller holds the shard lock and applies the change with it.
    pub(super) fn note_claim(
        &self,
        shard: &mut Shard,
        pid: Pid,
        kind: HeldKind,
        key: &Key,
        held: bool,
    ) {
        if self.is_local(pid) {
            return;
        }
        let Some(claims) = shard.claims.as_mut() else {
            return;
        };
        let claim = (pid, kind, key.clone());
        if held {
            claims.insert(claim);
        } else {
            claims.remove(&claim);
        }
    }

    /// The keys of kind `kind` that the remote process `pid` holds here, in key order.
    ///
    /// Builds the index on the first call; afterwards each shard's lock is taken briefly,
    /// one at a time, so the cost is one lock per shard plus the process's own claims.
    pub fn remote_holdings(&self, pid: Pid, kind: HeldKind) -> Vec<Key> {
        if self.is_local(pid) || !self.is_connected() {
            return Vec::new();
        }
        if !self.owner_index.load(Ordering::Acquire) {
            self.build_owner_index();
        }
        let from = (pid, kind, Key::const_new(""));
        let mut keys = Vec::new();
        for i in 0..super::SHARDS {
            let shard = self.lock_shard(i);
            let Some(claims) = shard.claims.as_ref() else {
                continue;
            };
            keys.extend(
                claims
                    .range((Bound::Included(&from), Bound::Unbounded))
                    .take_while(|(p, k, _)| *p == pid && *k == kind)
                    .map(|(_, _, key)| key.clone()),
            );
        }
        if kind == HeldKind::Name {
            // A shadowed contender claims a name it does not own.
            keys.retain(|key| self.whereis(key) == Some(pid));
        }
        keys.sort_unstable();
        keys
    }

    /// Indexes every claim of remote processes without stopping the scope's writers for
    /// more than one shard's share of the work at a time:
    ///
    /// 1. with every shard lock held (briefly), each shard starts an empty index, so every
    ///    write from then on records the claims it makes and ends;
    /// 2. without locks, a scan collects every name's key and every remote membership;
    /// 3. shard by shard, under its lock, it adds the current owner of each collected name
    ///    (if remote), each collected membership that still holds, and the shard's
    ///    shadowed contenders.
    ///
    /// A membership that holds at step 3 was made after step 1 (its write recorded it) or
    /// held all along (the scan saw it: an iterator reflects the map as of its creation or
    /// later). A live name that step 1 did not see made was either written after it
    /// (recorded) or is on a key that has had a live owner all along, owners changing only
    /// by promotion or demotion between the live entry and the shadows (which writes do not
    /// record, the claim being the same): the scan saw that key, so step 3 reads its owner.
    /// Nothing step 3 adds is stale, and a claim a write recorded is forgotten by the write
    /// that ends it.
    fn build_owner_index(&self) {
        let _building = self
            .owner_index_build
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if self.owner_index.load(Ordering::Acquire) {
            return;
        }
        for mut shard in self.lock_all() {
            shard.claims = Some(Claims::new());
        }
        let mut names: Vec<Vec<Key>> = vec![Vec::new(); super::SHARDS];
        for (key, _) in self.names.pin().iter() {
            let key = key.to_key();
            names[self.shard_of(&key)].push(key);
        }
        let mut members: Vec<Vec<(Pid, Key)>> = vec![Vec::new(); super::SHARDS];
        for (key, list) in self.groups.pin().iter() {
            let key = key.to_key();
            let remote = list.iter().filter(|m| !self.is_local(m.pid()));
            members[self.shard_of(&key)].extend(remote.map(|m| (m.pid(), key.clone())));
        }
        for (i, (names, members)) in names.into_iter().zip(members).enumerate() {
            let mut shard = self.lock_shard(i);
            let shard = &mut *shard;
            let mut found: Vec<(Pid, HeldKind, Key)> = Vec::new();
            let owners = self.names.pin();
            for key in names {
                if let Some(owner) = owners.get(key.as_str()).map(|e| e.pid)
                    && !self.is_local(owner)
                {
                    found.push((owner, HeldKind::Name, key));
                }
            }
            for (pid, key) in members {
                if self.member_of(shard, &key, pid).is_some() {
                    found.push((pid, HeldKind::Member, key));
                }
            }
            for (key, list) in &shard.shadows {
                let remote = list.iter().filter(|e| !self.is_local(e.pid));
                found.extend(remote.map(|e| (e.pid, HeldKind::Name, key.clone())));
            }
            if let Some(claims) = shard.claims.as_mut() {
                // Built from sorted claims at once: denser than inserting one by one.
                let mut all = Claims::from_iter(found);
                all.append(claims);
                *claims = all;
            }
        }
        self.owner_index.store(true, Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use proptest::prelude::*;

    use super::super::{ProcessTable, ScopeConfig, ScopeStore, SnapshotReceiver};
    use super::HeldKind;
    use crate::vocab::clock::wall_clock;
    use crate::vocab::conflict::ConflictRule;
    use crate::vocab::entry::Table;
    use crate::vocab::event::Reason;
    use crate::vocab::key::Key;
    use crate::vocab::meta::Meta;
    use crate::vocab::op::Op;
    use crate::vocab::pid::Incarnation;
    use crate::vocab::pid::Pid;
    use std::sync::atomic::Ordering;

    const LOCAL: u64 = 1;
    const ORIGINS: [u64; 2] = [2, 3];
    const KEYS: [&str; 4] = ["a", "b", "c/d", "c/e"];

    /// What the replica side of a scope can be asked to do, plus a query (which builds the
    /// index the first time).
    #[derive(Debug, Clone)]
    enum Step {
        Apply(Op),
        Purge(u64),
        Snapshot(u64, Vec<Op>),
        Query,
    }

    fn pid() -> impl Strategy<Value = Pid> {
        (prop::sample::select(&ORIGINS[..]), 1..4u64)
            .prop_map(|(o, s)| Pid::new(Incarnation::new(o), s))
    }

    fn key() -> impl Strategy<Value = Key> {
        prop::sample::select(&KEYS[..]).prop_map(Key::from)
    }

    fn write() -> impl Strategy<Value = Op> {
        prop_oneof![
            (key(), pid(), 1..5u64).prop_map(|(key, pid, at)| Op::Register {
                key,
                pid,
                meta: Meta::EMPTY,
                registered_at: at,
                token: at,
            }),
            (key(), pid()).prop_map(|(key, pid)| Op::Join {
                key,
                pid,
                meta: Meta::EMPTY
            }),
        ]
    }

    fn step() -> impl Strategy<Value = Step> {
        prop_oneof![
            4 => write().prop_map(Step::Apply),
            1 => (key(), pid()).prop_map(|(key, pid)| Step::Apply(Op::Unregister {
                key,
                pid,
                reason: Reason::Requested
            })),
            1 => (key(), pid()).prop_map(|(key, pid)| Step::Apply(Op::Leave {
                key,
                pid,
                reason: Reason::Requested
            })),
            1 => prop::sample::select(&ORIGINS[..]).prop_map(Step::Purge),
            1 => (prop::sample::select(&ORIGINS[..]), prop::collection::vec(write(), 0..6))
                .prop_map(|(o, ops)| Step::Snapshot(o, ops)),
            1 => Just(Step::Query),
        ]
    }

    fn scope() -> Arc<ScopeStore> {
        ScopeStore::new(
            "s".into(),
            false,
            ScopeConfig {
                rule: ConflictRule::KeepOldest,
                outbox: None,
                clock: wall_clock(),
                locals: Arc::new(ProcessTable::new(LOCAL)),
                fence: Arc::default(),
                resolver_panics: Arc::default(),
                end_conflict_losers: true,
            },
        )
    }

    /// What a scan of the table says `pid` holds: the answer the index must give.
    fn scanned(scope: &ScopeStore, pid: Pid, table: Table) -> Vec<Key> {
        let mut keys = Vec::new();
        let collect = |e: crate::vocab::entry::Entry| {
            if e.pid == pid {
                keys.push(e.key);
            }
            true
        };
        match table {
            Table::Names => scope.visit_names(None, collect),
            Table::Groups => scope.visit_members(None, collect),
        }
        keys.sort_unstable();
        keys
    }

    fn check(scope: &ScopeStore) -> Result<(), TestCaseError> {
        for origin in ORIGINS {
            for serial in 1..4 {
                let pid = Pid::new(Incarnation::new(origin), serial);
                prop_assert_eq!(
                    scope.remote_holdings(pid, HeldKind::Name),
                    scanned(scope, pid, Table::Names),
                    "names of {}",
                    pid
                );
                prop_assert_eq!(
                    scope.remote_holdings(pid, HeldKind::Member),
                    scanned(scope, pid, Table::Groups),
                    "memberships of {}",
                    pid
                );
            }
        }
        Ok(())
    }

    proptest! {
        /// Whenever it is built (on the first query, at any point of a history of remote
        /// writes, conflicts, purges and snapshots), the index answers what a scan does.
        #[test]
        fn the_owner_index_agrees_with_a_scan(steps in prop::collection::vec(step(), 1..40)) {
            let scope = scope();
            let mut queried = false;
            for step in steps {
                match step {
                    Step::Apply(op) => drop(scope.apply_remote(vec![op])),
                    Step::Purge(origin) => scope.purge_origin(origin, &Reason::Exit(crate::vocab::event::ExitReason::NodeDown)),
                    Step::Snapshot(origin, ops) => {
                        let mut receiver = SnapshotReceiver::new(&scope, origin);
                        let ops = ops.into_iter().filter(|op| op.pid().incarnation() == Incarnation::new(origin));
                        receiver.apply_chunk(&scope, ops.collect());
                        receiver.finish(&scope, Vec::new());
                    }
                    Step::Query => queried = true,
                }
                if queried {
                    check(&scope)?;
                }
            }
            check(&scope)?;
        }
    }

    /// A pseudo-random remote write on one of 2,048 keys by one of three processes of
    /// `origin`, drawn from `x` (which it advances).
    fn random_write(origin: u64, x: &mut u64) -> Op {
        *x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
        let key = Key::from(format!("k/{}", (*x >> 33) % 2048));
        let pid = Pid::new(Incarnation::new(origin), 1 + (*x >> 20) % 3);
        match *x >> 62 {
            0 => Op::Register {
                key,
                pid,
                meta: Meta::EMPTY,
                registered_at: *x >> 44,
                token: *x >> 44,
            },
            1 => Op::Unregister {
                key,
                pid,
                reason: Reason::Requested,
            },
            2 => Op::Join {
                key,
                pid,
                meta: Meta::EMPTY,
            },
            _ => Op::Leave {
                key,
                pid,
                reason: Reason::Requested,
            },
        }
    }

    /// Remote writes racing the build (its scan runs without locks) leave the index equal
    /// to a scan once they stop, round after round on fresh scopes.
    #[test]
    fn an_index_built_while_writers_race_agrees_with_a_scan() {
        for round in 0..10u64 {
            let scope = scope();
            let mut x = round;
            for _ in 0..10_000 {
                let origin = ORIGINS[(x & 1) as usize];
                scope.apply_remote(vec![random_write(origin, &mut x)]);
            }
            let start = Arc::new(std::sync::Barrier::new(3));
            let built = Arc::new(std::sync::atomic::AtomicBool::new(false));
            let writers = ORIGINS.map(|origin| {
                let (scope, start, built) = (scope.clone(), start.clone(), built.clone());
                std::thread::spawn(move || {
                    let mut x = origin ^ round << 8;
                    start.wait();
                    // Writes all through the build, and a little after.
                    while !built.load(Ordering::Acquire) {
                        scope.apply_remote(vec![random_write(origin, &mut x)]);
                    }
                    for _ in 0..100 {
                        scope.apply_remote(vec![random_write(origin, &mut x)]);
                    }
                })
            });
            start.wait();
            scope.remote_holdings(Pid::new(Incarnation::new(ORIGINS[0]), 1), HeldKind::Member);
            built.store(true, Ordering::Release);
            for w in writers {
                w.join().expect("a writer panicked");
            }
            check(&scope).expect("the index agrees with a scan");
        }
    }

    #[test]
    fn a_local_pid_or_a_disconnected_scope_has_no_remote_holdings() {
        let scope = scope();
        let remote = Pid::new(Incarnation::new(2), 1);
        scope.apply_remote(vec![Op::Join {
            key: "g".into(),
            pid: remote,
            meta: Meta::EMPTY,
        }]);
        assert!(
            scope
                .remote_holdings(Pid::new(Incarnation::new(LOCAL), 1), HeldKind::Member)
                .is_empty()
        );
        assert_eq!(scope.remote_holdings(remote, HeldKind::Member), ["g"]);
        scope.close();
        assert!(scope.remote_holdings(remote, HeldKind::Member).is_empty());
    }
}
