//! Direct tests of the replication core, driven through [`super::pair::Pair`]: no node,
//! no sockets, no runtime.

use std::time::Duration;

use super::pair::Pair;
use crate::nodes::{Keeper, NodeRecord};
use crate::replication::core::{CoreConfig, CoreEvent};
use crate::replication::wire::Frame;
use crate::store::SnapshotSize;
use crate::subscription::{Delivery, Subscription};
use crate::vocab::event::{Event, EventKind, ExitReason, Reason};
use crate::vocab::op::Op;
use crate::vocab::pid::{Incarnation, Pid};

fn config() -> CoreConfig {
    CoreConfig {
        op_log: 16,
        anti_entropy_interval: Duration::from_millis(100),
        ..CoreConfig::default()
    }
}

fn is_snapshot(frame: &Frame) -> bool {
    matches!(frame, Frame::Snapshot { .. })
}

/// The batches queued for `events`, without waiting; panics on a lag notice.
fn queued_batches(events: &mut Subscription) -> Vec<Vec<Event>> {
    use futures_core::Stream;
    use std::task::{Context, Poll, Waker};
    let mut cx = Context::from_waker(Waker::noop());
    let mut batches = Vec::new();
    while let Poll::Ready(Some(delivery)) = std::pin::Pin::new(&mut *events).poll_next(&mut cx) {
        match delivery {
            Delivery::Events(batch) => batches.push(batch),
            Delivery::Lagged { missed } => panic!("lagged by {missed}"),
        }
    }
    batches
}

fn keys(batch: &[Event]) -> Vec<&str> {
    batch.iter().map(|e| e.key.as_str()).collect()
}

/// A peer that never had our stream gets a snapshot; its hello then carries its position,
/// and after a short absence it gets only the ops it missed, numbered after it.
#[test]
fn a_first_link_sends_a_snapshot_and_a_relink_only_the_missed_ops() {
    let mut pair = Pair::new(config());
    let p = pair.a.process();
    for key in ["k1", "k2", "k3"] {
        pair.a.register(p, key);
    }
    pair.link();
    assert_eq!(pair.b.names(), 3);
    assert!(pair.sent(true, 0).iter().any(|f| is_snapshot(f)));

    pair.unlink();
    pair.advance(Duration::from_secs(1));
    assert_eq!(pair.b.names(), 3, "a link drop is not a node loss");
    pair.a.register(p, "k4");
    pair.a.register(p, "k5");
    let mark = pair.log.len();
    pair.link();
    assert_eq!(pair.b.names(), 5);
    let hello = pair
        .sent(false, mark)
        .into_iter()
        .find_map(|f| match f {
            Frame::Hello { positions, .. } => Some(positions.clone()),
            _ => None,
        })
        .expect("b says hello");
    assert_eq!(hello, vec![("default".into(), 3)], "b applied a's ops 1-3");
    let from_a = pair.sent(true, mark);
    assert!(!from_a.iter().any(|f| is_snapshot(f)), "{from_a:?}");
    assert!(from_a.iter().any(|f| matches!(
        f,
        Frame::Ops { first_seq: 4, ops, .. } if ops.len() == 2
    )));
}

/// A peer away for more ops than the log holds gets a snapshot, which also removes what
/// went meanwhile.
#[test]
fn a_gap_longer_than_the_log_is_filled_by_a_snapshot() {
    let mut pair = Pair::new(config());
    let p = pair.a.process();
    pair.a.register(p, "stays");
    let q = pair.a.process();
    pair.a.register(q, "goes");
    pair.link();
    assert_eq!(pair.b.names(), 2);

    pair.unlink();
    pair.a.exit(q, ExitReason::Normal);
    let r = pair.a.process();
    for i in 0..20 {
        pair.a.register(r, &format!("new/{i}"));
    }
    let mark = pair.log.len();
    pair.link();
    assert!(pair.sent(true, mark).iter().any(|f| is_snapshot(f)));
    assert_eq!(pair.b.whereis("goes"), None);
    assert_eq!(pair.b.whereis("stays"), Some(p));
    assert_eq!(pair.b.names(), 21);
    assert_eq!(
        pair.a.digest_of(pair.a.incarnation.get()),
        pair.b.digest_of(1)
    );
}

/// A divergence the streams cannot see is found by the digest exchange and repaired by a
/// snapshot, and counted.
#[test]
fn anti_entropy_finds_and_repairs_a_divergence() {
    let mut pair = Pair::new(config());
    let p = pair.a.process();
    pair.a.register(p, "k1");
    pair.a.register(p, "k2");
    pair.link();
    pair.advance(Duration::from_millis(150));
    assert!(
        !pair
            .a
            .events
            .iter()
            .any(|e| matches!(e, CoreEvent::Repaired { .. }))
    );

    pair.b.corrupt_drop("k2");
    assert_eq!(pair.b.names(), 1);
    pair.advance(Duration::from_millis(150));
    assert!(
        pair.a
            .events
            .iter()
            .any(|e| matches!(e, CoreEvent::Repaired { .. })),
        "{:?}",
        pair.a.events
    );
    assert_eq!(pair.b.whereis("k2"), Some(p));
    assert_eq!(pair.a.digest_of(1), pair.b.digest_of(1));
}

/// Both sides of a cut register one name; when they meet, both keep the older one, only
/// the loser's node is told to end its process, and both report the conflict once.
#[test]
fn a_conflict_is_resolved_the_same_on_both_sides() {
    let mut pair = Pair::new(config());
    let (mut on_a, mut on_b) = (pair.a.subscribe(), pair.b.subscribe());
    let older = pair.a.process();
    pair.a.register(older, "leader");
    let newer = pair.b.process();
    pair.b.register(newer, "leader");
    let (_, _) = (queued_batches(&mut on_a), queued_batches(&mut on_b));
    pair.link();
    assert_eq!(pair.a.whereis("leader"), Some(older));
    assert_eq!(pair.b.whereis("leader"), Some(older));
    assert_eq!(pair.a.exit_reason(older), None);
    assert_eq!(
        pair.b.exit_reason(newer),
        Some(ExitReason::Conflict {
            key: "leader".into(),
            winner: older
        }),
        "the loser's node ended it in the core's call"
    );

    // Both sides report the conflict once, with the same winner, loser and rule: the
    // winner's side, where nothing else changes, and the loser's, before the removal.
    let conflict = Reason::Conflict {
        winner: older,
        loser: newer,
        rule: crate::vocab::conflict::DecidedBy::KeepOldest,
    };
    let seen = |events: &mut Subscription| -> Vec<(EventKind, Pid, Reason)> {
        queued_batches(events)
            .concat()
            .into_iter()
            .map(|e| (e.kind, e.pid, e.reason))
            .collect()
    };
    assert_eq!(
        seen(&mut on_a),
        [(EventKind::ConflictResolved, newer, conflict.clone())],
        "the winner's side"
    );
    assert_eq!(
        seen(&mut on_b),
        [
            (EventKind::ConflictResolved, newer, conflict.clone()),
            (EventKind::Unregistered, newer, conflict),
            (EventKind::Registered, older, Reason::Requested),
        ],
        "the loser's side"
    );
    // Later traffic (the loser's removal reaching a, the winner's new token reaching b)
    // reports nothing more.
    pair.advance(Duration::from_millis(350));
    assert!(
        seen(&mut on_a)
            .iter()
            .chain(&seen(&mut on_b))
            .all(|(kind, ..)| *kind != EventKind::ConflictResolved),
        "once per node"
    );
}

/// A name released on one side of a cut, where it had a newer owner (a larger token),
/// comes back from the other side with its older registration: the node that showed the
/// larger token keeps the older one back, asks its owner's node for a fresh token, and
/// shows it only with a token above the one it showed. Both sides agree.
#[test]
fn a_name_back_from_a_cut_never_shows_a_smaller_token_than_before() {
    let mut pair = Pair::new(config());
    let older = pair.a.process();
    let held = pair.a.register(older, "leader");
    pair.advance(Duration::from_secs(1));
    let newer = pair.b.process();
    let shown = pair.b.register(newer, "leader");
    assert!(shown.token > held.token);
    pair.b.exit(newer, ExitReason::Normal);
    assert_eq!(pair.b.whereis("leader"), None);
    let from = pair.log.len();

    pair.link();
    let on_b = pair.b.lookup("leader").expect("back on b");
    assert_eq!(on_b.pid, older);
    assert!(
        on_b.token > shown.token,
        "b showed {} and now {}",
        shown.token,
        on_b.token
    );
    assert_eq!(pair.a.lookup("leader"), Some(on_b), "both sides agree");
    let asked = pair
        .sent(false, from)
        .into_iter()
        .filter(|f| matches!(f, Frame::Restamp { .. }))
        .count();
    assert_eq!(asked, 1, "b asked a once");
}

/// A conflict that the older registration wins, where the newer one (shown by its node)
/// has the larger token: the loser's node shows the winner only with a token above the
/// loser's, and both sides end with the same registration.
#[test]
fn a_conflict_winner_is_shown_with_a_token_above_the_loser_s() {
    let mut pair = Pair::new(config());
    let older = pair.a.process();
    pair.a.register(older, "leader");
    pair.advance(Duration::from_secs(1));
    let newer = pair.b.process();
    let shown = pair.b.register(newer, "leader");
    let mut on_b = pair.b.subscribe();
    pair.watch_on_b = Some("leader");
    pair.link();
    let tokens: Vec<u64> = pair.seen_on_b.iter().flatten().map(|r| r.token).collect();
    assert!(
        tokens.iter().all(|t| *t >= shown.token),
        "b showed {} before, then {tokens:?}",
        shown.token
    );
    let now_on_b = pair.b.lookup("leader").expect("the winner on b");
    assert_eq!(now_on_b.pid, older);
    assert!(now_on_b.token > shown.token);
    assert_eq!(pair.a.lookup("leader"), Some(now_on_b));
    let kinds: Vec<(EventKind, Pid)> = queued_batches(&mut on_b)
        .concat()
        .into_iter()
        .map(|e| (e.kind, e.pid))
        .collect();
    assert_eq!(
        kinds,
        [
            (EventKind::ConflictResolved, newer),
            (EventKind::Unregistered, newer),
            (EventKind::Registered, older),
        ]
    );
}

/// The same when the newer owner's node died while cut off from the older owner's: the
/// node that saw the newer owner never shows the older registration with its old token.
#[test]
fn a_name_back_after_its_rival_node_died_never_shows_a_smaller_token() {
    let mut pair = Pair::new(config());
    let older = pair.a.process();
    let held = pair.a.register(older, "leader");
    let rival = Pid::new(Incarnation::new(9), 1);
    let shown = held.token + 1_000;
    pair.b.apply_foreign(vec![Op::Register {
        key: "leader".into(),
        pid: rival,
        meta: crate::vocab::meta::Meta::EMPTY,
        registered_at: shown,
        token: shown,
    }]);
    pair.b.purge(9);
    assert_eq!(pair.b.whereis("leader"), None);

    pair.link();
    let on_b = pair.b.lookup("leader").expect("back on b");
    assert_eq!(on_b.pid, older);
    assert!(on_b.token > shown);
    assert_eq!(pair.a.lookup("leader").as_ref(), Some(&on_b));
    // A later relink (the floor is still there) shows the same, and asks nothing more.
    pair.unlink();
    let from = pair.log.len();
    pair.link();
    assert_eq!(pair.b.lookup("leader"), Some(on_b));
    assert!(
        pair.sent(false, from)
            .iter()
            .all(|f| !matches!(f, Frame::Restamp { .. }))
    );
}

/// A node that just started (its clock its own wall clock) takes in its peer's clock at
/// the link's first frame: a name it registers after that gets a token above every token
/// its peer has seen, even one stamped by a clock that ran ahead.
#[test]
fn a_new_node_takes_in_its_peer_s_clock_when_it_links() {
    let mut pair = Pair::new(config());
    // a applied a registration stamped an hour past the pair's clocks (1,000,000 ms).
    let ahead = (1_000_000u64 + 3_600_000) << 16;
    pair.a.apply_foreign(vec![Op::Register {
        key: "skewed".into(),
        pid: Pid::new(Incarnation::new(9), 1),
        meta: crate::vocab::meta::Meta::EMPTY,
        registered_at: ahead,
        token: ahead,
    }]);
    pair.link();
    let p = pair.b.process();
    let token = pair.b.register(p, "fresh").token;
    assert!(token > ahead, "b stamped {token}, a had seen {ahead}");
}

/// A restarted node (same name, new incarnation) replaces the old one: the peer drops
/// every entry of the old incarnation as soon as the new one links.
#[test]
fn a_new_incarnation_replaces_the_old_one() {
    let mut pair = Pair::new(config());
    let p = pair.b.process();
    pair.b.register(p, "old/1");
    pair.link();
    assert_eq!(pair.a.whereis("old/1"), Some(p));

    pair.restart_b(3, config());
    let q = pair.b.process();
    pair.b.register(q, "new/1");
    pair.link();
    assert_eq!(pair.a.whereis("old/1"), None);
    assert_eq!(pair.a.whereis("new/1"), Some(q));
    assert_eq!(
        pair.a.digest_of(2),
        0,
        "nothing of the old incarnation is left"
    );
}

/// A node speaks only for itself (and the external nodes it keeps) over its own link: on
/// a's link, a record of another incarnation of a (newer, of a later revision and clock),
/// of another node, or of an external node another node keeps is ignored; a's own record,
/// and one it keeps, are taken.
#[test]
fn a_record_of_another_incarnation_on_a_link_is_ignored() {
    let mut pair = Pair::new(config());
    pair.link();
    let own = NodeRecord::new("a", pair.a.incarnation, 1_000_000);
    pair.a
        .step(|core, host| core.set_own_record(host, own.clone()));
    pair.drive();
    assert_eq!(pair.b.node_record("a"), Some(own.clone()));

    let mut restarted = NodeRecord::new("a", Incarnation::new(7), 2_000_000);
    restarted.revision = own.revision + 10;
    pair.deliver_decoded_to_b(Frame::Node(restarted));
    assert_eq!(
        pair.b.node_record("a"),
        Some(own.clone()),
        "a record of another incarnation of a, on a's link"
    );

    let c = NodeRecord::new("c", Incarnation::new(9), 2_000_000);
    pair.deliver_decoded_to_b(Frame::Node(c));
    assert_eq!(pair.b.node_record("c"), None, "c's record on a's link");

    let mut external = NodeRecord::new("ext", Incarnation::new(11), 2_000_000);
    external.keeper = Some(Keeper {
        name: "c".into(),
        incarnation: Incarnation::new(9),
    });
    pair.deliver_decoded_to_b(Frame::Node(external.clone()));
    assert_eq!(pair.b.node_record("ext"), None, "kept by c, sent by a");

    external.keeper = Some(Keeper {
        name: "a".into(),
        incarnation: pair.a.incarnation,
    });
    pair.deliver_decoded_to_b(Frame::Node(external.clone()));
    assert_eq!(pair.b.node_record("ext"), Some(external), "kept by a");

    let mut changed = own.clone();
    changed.revision += 1;
    changed.status_reason = "changed".into();
    pair.deliver_decoded_to_b(Frame::Node(changed.clone()));
    assert_eq!(pair.b.node_record("a"), Some(changed), "a's own, changed");
}

/// A peer that was away gets its missed ops from the log in consecutive frames of at most
/// `max_ops_per_frame`, in sequence, with no gap and no snapshot.
#[test]
fn catch_up_comes_in_consecutive_frames_of_the_log() {
    let mut pair = Pair::new(CoreConfig {
        op_log: 1_000,
        max_ops_per_frame: 10,
        ..config()
    });
    let p = pair.a.process();
    pair.link();
    pair.unlink();
    for i in 0..95 {
        pair.a.register(p, &format!("k/{i}"));
    }
    let mark = pair.log.len();
    pair.link();
    assert_eq!(pair.b.names(), 95);
    let firsts: Vec<u64> = pair
        .sent(true, mark)
        .into_iter()
        .filter_map(|f| match f {
            Frame::Ops { first_seq, .. } => Some(*first_seq),
            _ => None,
        })
        .collect();
    assert_eq!(firsts, (0..10).map(|i| 1 + i * 10).collect::<Vec<_>>());
}

/// What one received frame changes reaches a subscriber as one batch, in the order of the
/// frame's ops: a first snapshot, each frame of a catch-up from the log, and the last chunk
/// of a snapshot together with the removals it implies.
#[test]
fn each_received_frame_makes_one_event_batch_per_subscriber() {
    let mut pair = Pair::new(CoreConfig {
        max_ops_per_frame: 10,
        ..config()
    });
    let mut events = pair.b.subscribe();
    let (p, q) = (pair.a.process(), pair.a.process());
    pair.a.register(q, "goes");
    for i in 0..3 {
        pair.a.register(p, &format!("k/{i:02}"));
    }
    pair.link();
    let batches = queued_batches(&mut events);
    assert_eq!(
        batches.len(),
        1,
        "one snapshot frame, one batch: {batches:?}"
    );
    assert_eq!(batches[0].len(), 4);

    pair.unlink();
    for i in 3..15 {
        pair.a.register(p, &format!("k/{i:02}"));
    }
    let mark = pair.log.len();
    pair.link();
    let frames: Vec<usize> = pair
        .sent(true, mark)
        .into_iter()
        .filter_map(|f| match f {
            Frame::Ops { ops, .. } => Some(ops.len()),
            _ => None,
        })
        .collect();
    assert_eq!(frames, [10, 2]);
    let batches = queued_batches(&mut events);
    let sizes: Vec<usize> = batches.iter().map(Vec::len).collect();
    assert_eq!(sizes, frames, "one batch per frame of the catch-up");
    let expected: Vec<String> = (3..15).map(|i| format!("k/{i:02}")).collect();
    assert_eq!(
        batches
            .concat()
            .iter()
            .map(|e| e.key.as_str())
            .collect::<Vec<_>>(),
        expected
    );

    // Away for more than the log holds: a snapshot, whose last chunk also removes "goes".
    pair.unlink();
    pair.a.exit(q, ExitReason::Normal);
    for i in 15..35 {
        pair.a.register(p, &format!("k/{i:02}"));
    }
    let mark = pair.log.len();
    pair.link();
    let chunks = pair
        .sent(true, mark)
        .into_iter()
        .filter(|f| is_snapshot(f))
        .count();
    let batches = queued_batches(&mut events);
    assert!(
        (1..=chunks).contains(&batches.len()),
        "{} batches for {chunks} snapshot frames",
        batches.len()
    );
    assert_eq!(batches.iter().map(Vec::len).sum::<usize>(), 21);
    let last = batches.last().expect("a batch");
    let removal = last.last().expect("a non-empty batch");
    assert_eq!(
        (removal.kind, removal.key.as_str(), &removal.reason),
        (EventKind::Unregistered, "goes", &Reason::Resynced),
        "the removals come with the last chunk: {:?}",
        keys(last)
    );
}

/// A large group (a tree past `MemberList::FLAT_MAX`) replicates through frames of many
/// joins, meta updates and leaves, each frame's changes to it applied as one batch: the
/// peer ends with the owner's members in the owner's order, and the same digest.
#[test]
fn a_large_group_replicates_through_batched_frames() {
    let mut pair = Pair::new(config());
    pair.link();
    let procs: Vec<_> = (0..700).map(|_| pair.a.process()).collect();
    let meta = |i: usize| crate::vocab::meta::Meta::encode(&(i as u32)).unwrap();
    let mut events = pair.b.subscribe();
    for (i, &p) in procs.iter().enumerate() {
        pair.a.join(p, "big", meta(i));
    }
    for (i, &p) in procs.iter().enumerate().step_by(5) {
        pair.a.join(p, "big", meta(i + 1000));
    }
    pair.drive();
    assert_eq!(pair.b.members("big").len(), 700);
    assert_eq!(pair.b.members("big"), pair.a.members("big"));
    let changes = 700 + 140;
    assert_eq!(queued_batches(&mut events).concat().len(), changes);
    for &p in procs.iter().step_by(2) {
        pair.a.exit(p, ExitReason::Normal);
    }
    pair.drive();
    assert_eq!(pair.b.members("big"), pair.a.members("big"));
    for &p in procs.iter().skip(1).step_by(2).take(300) {
        pair.a.exit(p, ExitReason::Killed);
    }
    pair.drive();
    let left = pair.b.members("big");
    assert_eq!(left.len(), 50, "flat again");
    assert_eq!(left, pair.a.members("big"));
    assert_eq!(
        pair.b.digest_of(pair.a.incarnation.get()),
        pair.a.digest_of(pair.a.incarnation.get())
    );
    let left_events = queued_batches(&mut events).concat();
    assert_eq!(left_events.len(), 650);
    assert!(left_events.iter().all(|e| e.kind == EventKind::Left));
}

/// The size each snapshot chunk a sent b since `from` in the log announced, in order.
fn announced(pair: &Pair, from: usize) -> Vec<Option<SnapshotSize>> {
    pair.sent(true, from)
        .into_iter()
        .filter_map(|f| match f {
            Frame::Snapshot { size, .. } => Some(*size),
            _ => None,
        })
        .collect()
}

/// A snapshot's first chunk, and only it, announces how many entries it holds; the
/// receiver sizes its maps with that but never trusts it: a peer announcing nothing, too
/// few or absurdly many entries (first sync or resync) leaves the same view.
#[test]
fn a_snapshot_announces_its_size_and_any_size_applies_the_same() {
    fn none(frame: &mut Frame) {
        if let Frame::Snapshot { size, .. } = frame {
            *size = None;
        }
    }
    fn zero(frame: &mut Frame) {
        if let Frame::Snapshot { size: Some(s), .. } = frame {
            *s = SnapshotSize::default();
        }
    }
    fn huge(frame: &mut Frame) {
        if let Frame::Snapshot { size: Some(s), .. } = frame {
            *s = SnapshotSize {
                names: u64::MAX,
                groups: u64::MAX,
                members: u64::MAX,
            };
        }
    }
    for tamper in [None, Some(none as fn(&mut Frame)), Some(zero), Some(huge)] {
        let mut pair = Pair::new(CoreConfig {
            max_ops_per_frame: 8,
            ..config()
        });
        pair.tamper = tamper;
        let procs: Vec<_> = (0..40).map(|_| pair.a.process()).collect();
        for (i, &p) in procs.iter().enumerate() {
            pair.a.register(p, &format!("name/{i}"));
        }
        for &p in &procs[..10] {
            pair.a.join(p, "room", crate::vocab::meta::Meta::EMPTY);
        }
        pair.link();
        let sizes = announced(&pair, 0);
        assert!(sizes.len() > 1 && sizes[1..].iter().all(Option::is_none));
        if tamper.is_none() {
            let honest = SnapshotSize {
                names: 40,
                groups: 1,
                members: 10,
            };
            assert_eq!(sizes[0], Some(honest));
        }
        assert_eq!(pair.b.names(), 40);
        assert_eq!(pair.b.members("room"), pair.a.members("room"));

        // Away for more ops than the log holds: a resync, which drops what went.
        pair.unlink();
        for &p in &procs[..20] {
            pair.a.exit(p, ExitReason::Normal);
        }
        let mark = pair.log.len();
        pair.link();
        assert!(!announced(&pair, mark).is_empty(), "a resync by snapshot");
        assert_eq!(pair.b.names(), 20);
        assert!(pair.b.members("room").is_empty());
        assert_eq!(pair.b.digest_of(1), pair.a.digest_of(1));
    }
}

/// A first chunk (one with a size) starts a new snapshot: one under way is abandoned, and
/// what only it held is dropped when the new one completes.
#[test]
fn a_new_first_chunk_replaces_a_snapshot_under_way() {
    let mut pair = Pair::new(config());
    pair.link();
    let origin = pair.a.incarnation;
    let chunk = |key: &str, serial: u64, last: bool| {
        Frame::Snapshot {
            scope: "default".into(),
            seq: 7,
            size: Some(SnapshotSize {
                names: 1,
                ..SnapshotSize::default()
            }),
            ops: vec![Op::Register {
                key: key.into(),
                pid: Pid::new(origin, serial),
                meta: crate::vocab::meta::Meta::EMPTY,
                registered_at: 1,
                token: 1,
            }],
            last,
        }
        .encode()
    };
    pair.deliver_to_b(&chunk("abandoned", 1, false));
    assert_eq!(pair.b.whereis("abandoned"), Some(Pid::new(origin, 1)));
    pair.deliver_to_b(&chunk("kept", 2, true));
    assert_eq!(pair.b.whereis("abandoned"), None);
    assert_eq!(pair.b.whereis("kept"), Some(Pid::new(origin, 2)));
}

/// Where in one direction of the pair's log the first frame `pick` accepts is.
fn position(pair: &Pair, a_to_b: bool, pick: impl Fn(&Frame) -> bool) -> Option<usize> {
    pair.sent(a_to_b, 0).into_iter().position(pick)
}

/// Whether `frame` carries an op of `key`.
fn carries(frame: &Frame, key: &str) -> bool {
    matches!(frame, Frame::Ops { ops, .. } if ops.iter().any(|op| op.key() == key))
}

#[test]
fn a_barrier_is_reached_once_the_peer_answered_behind_both_sides_earlier_writes() {
    let mut pair = Pair::new(config());
    pair.link();
    let (pa, pb) = (pair.a.process(), pair.b.process());
    pair.a.register(pa, "mine");
    pair.b.register(pb, "theirs");
    let barrier = pair.a.step(|core, host| core.barrier(host, "default"));
    assert!(!barrier.is_reached());
    assert_eq!(barrier.waiting_for(), vec![pair.b.incarnation]);

    pair.drive();
    assert!(barrier.is_reached(), "b answered: {barrier:?}");
    // The ping left behind a's write, and the pong behind b's, which b made before it
    // answered: on FIFO links, a reached barrier means both writes crossed.
    let ping = position(
        &pair,
        true,
        |f| matches!(f, Frame::Ping { id } if crate::replication::barrier::is_barrier_ping(*id)),
    )
    .expect("a sent its barrier ping");
    let pong = position(
        &pair,
        false,
        |f| matches!(f, Frame::Pong { id } if crate::replication::barrier::is_barrier_ping(*id)),
    )
    .expect("b answered it");
    assert!(position(&pair, true, |f| carries(f, "mine")).expect("a sent its write") < ping);
    assert!(position(&pair, false, |f| carries(f, "theirs")).expect("b sent its write") < pong);
    assert!(pair.b.whereis("mine").is_some() && pair.a.whereis("theirs").is_some());
}

/// Invariant 4 inside the core: a write applied to the stores and not yet handed to the
/// core goes out before a message the core is given after it, with no call in between.
#[test]
fn a_message_sent_right_after_a_write_leaves_behind_it() {
    let mut pair = Pair::new(config());
    pair.link();
    let (pa, pb) = (pair.a.process(), pair.b.process());
    pair.a.register(pa, "mine");
    let message = crate::replication::wire::Message {
        to: pb,
        from: Some(pa),
        payload: crate::vocab::meta::Meta::EMPTY,
    };
    let b = pair.b.incarnation;
    pair.a
        .step(|core, host| core.send_message(host, b, message))
        .expect("linked");
    pair.drive();
    let write = position(&pair, true, |f| carries(f, "mine")).expect("a sent its write");
    let sent = position(&pair, true, |f| matches!(f, Frame::Message(_))).expect("a sent it");
    assert!(write < sent, "the write at {write}, the message at {sent}");
}

#[test]
fn a_barrier_stops_waiting_for_a_peer_whose_link_closes() {
    let mut pair = Pair::new(config());
    pair.link();
    let barrier = pair.a.step(|core, host| core.barrier(host, "default"));
    assert!(!barrier.is_reached());
    pair.unlink();
    assert!(barrier.is_reached(), "the peer's link is gone: {barrier:?}");
}

#[test]
fn a_barrier_with_no_linked_peer_is_reached_at_once_and_a_dropped_one_holds_up_none() {
    let mut pair = Pair::new(config());
    let alone = pair.a.step(|core, host| core.barrier(host, "default"));
    assert!(alone.is_reached());
    assert!(alone.waiting_for().is_empty());

    pair.link();
    let dropped = pair.a.step(|core, host| core.barrier(host, "default"));
    drop(dropped);
    // Its pong still comes back and is ignored; a barrier set after it is reached by its own.
    let later = pair.a.step(|core, host| core.barrier(host, "default"));
    pair.drive();
    assert!(later.is_reached());
}
