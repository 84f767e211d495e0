//! The size a snapshot announces is the peer's word: whatever it says, the receiver
//! reserves a bounded amount of memory for it, and applies the snapshot all the same. The
//! bytes are counted by the global allocator of this test binary, so this file holds a
//! single test.

use std::alloc::System;
use std::sync::Arc;

use cap::Cap;
use roster_proto::conflict::ConflictRule;
use roster_proto::meta::Meta;
use roster_proto::op::{Op, Outbox};
use roster_proto::pid::{Incarnation, Pid};
use roster_proto::store::{NodeStores, ProcessTable, ScopeConfig, SnapshotReceiver, SnapshotSize};

#[global_allocator]
static ALLOCATED: Cap<System> = Cap::new(System, usize::MAX);

/// The incarnation of the peer whose snapshot is received.
const ORIGIN: u64 = 9;

/// A registration of `key` by the origin's process `serial`.
fn name(key: &str, serial: u64) -> Op {
    Op::Register {
        key: key.into(),
        pid: Pid::new(Incarnation::new(ORIGIN), serial),
        meta: Meta::EMPTY,
        registered_at: 5,
        token: 5,
    }
}

#[test]
fn an_announced_size_reserves_a_bounded_amount_whatever_it_says() {
    let stores = NodeStores::new(ScopeConfig {
        rule: ConflictRule::KeepOldest,
        outbox: Some(Arc::new(Outbox::default())),
        clock: roster_proto::clock::wall_clock(),
        locals: Arc::new(ProcessTable::new(1)),
        fence: Arc::default(),
        resolver_panics: Arc::default(),
        end_conflict_losers: true,
    });
    let scope = stores.default_scope().clone();
    let huge = SnapshotSize {
        names: u64::MAX,
        groups: u64::MAX,
        members: u64::MAX,
    };
    // Each map or set is sized within 64 MiB; two of them at a time.
    let bound = 2 * 64 * 1024 * 1024;
    let presize = |receiver: &mut SnapshotReceiver, sync: &str| {
        let before = ALLOCATED.allocated();
        receiver.presize(&scope, huge);
        let grown = ALLOCATED.allocated().saturating_sub(before);
        assert!(
            grown <= bound,
            "announcing {} names made a {sync} allocate {:.1} MiB",
            u64::MAX,
            grown as f64 / (1024.0 * 1024.0)
        );
    };

    // A first sync sizes the scope's maps.
    let mut first = SnapshotReceiver::new(&scope, ORIGIN);
    presize(&mut first, "first sync");
    let _ = first.finish(&scope, vec![name("a", 1), name("b", 2), name("c", 3)]);
    assert_eq!(scope.registry_count(false), 3);

    // A resync sizes the sets that track what it holds, no more; what it lacks still goes.
    let mut again = SnapshotReceiver::new(&scope, ORIGIN);
    presize(&mut again, "resync");
    let _ = again.finish(&scope, vec![name("b", 2)]);
    assert_eq!(scope.registry_count(false), 1);
    assert_eq!(
        scope.whereis("b"),
        Some(Pid::new(Incarnation::new(ORIGIN), 2))
    );
}
