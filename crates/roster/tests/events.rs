//! Event subscriptions: patterns, batching, lagging, ordering and stream behaviour.

mod common;

use common::{EntryModel, assert_quiet, batch, drain, meta, node, queued, single, within};
use futures_util::StreamExt;
use roster::{Delivery, Event, EventKind, ExitReason, Meta, Node, Pattern, Reason};

#[tokio::test]
async fn an_exact_pattern_sees_only_its_key() {
    let node = node();
    let mut events = node.default_scope().subscribe("user/1").unwrap();
    let p = node.new_process();
    p.register("user/12", &()).unwrap();
    p.register("user/1/a", &()).unwrap();
    p.register("user", &()).unwrap();
    p.join("user/10", &()).unwrap();
    assert_quiet(&mut events);

    p.register("user/1", &()).unwrap();
    p.join("user/1", &()).unwrap();

    assert_eq!(single(&mut events).kind, EventKind::Registered);
    assert_eq!(single(&mut events).kind, EventKind::Joined);
    assert_quiet(&mut events);
}

#[tokio::test]
async fn a_prefix_pattern_sees_every_key_under_it_and_nothing_else() {
    let node = node();
    let mut events = node.default_scope().subscribe("user/").unwrap();
    let p = node.new_process();
    p.register("users", &()).unwrap();
    p.register("user", &()).unwrap();
    p.join("room/user/1", &()).unwrap();
    assert_quiet(&mut events);

    for key in ["user/1", "user/2/deep", "user/x"] {
        p.register(key, &()).unwrap();
        assert_eq!(single(&mut events).key, key);
    }
    p.join("user/g", &()).unwrap();
    assert_eq!(single(&mut events).key, "user/g");
}

#[tokio::test]
async fn the_all_pattern_sees_every_key_of_its_scope_only() {
    let node = node();
    let other = node.connect("other").unwrap();
    let mut all = node.default_scope().subscribe(Pattern::All).unwrap();
    let mut star = node.default_scope().subscribe("*").unwrap();
    let p = node.new_process();
    other.register(&p, "elsewhere", &()).unwrap();
    assert_quiet(&mut all);
    assert_quiet(&mut star);

    p.register("a", &()).unwrap();
    p.join("b/c", &()).unwrap();
    for events in [&mut all, &mut star] {
        assert_eq!(single(events).key, "a");
        let joined = single(events);
        assert_eq!(
            (joined.key.as_str(), joined.scope.as_str()),
            ("b/c", "default")
        );
    }
}

#[tokio::test]
async fn a_change_matching_several_patterns_of_a_subscription_is_delivered_once() {
    let node = node();
    let mut events = node
        .default_scope()
        .subscribe_many([
            Pattern::All,
            Pattern::from("user/"),
            Pattern::from("user/1/"),
            Pattern::from("user/1/a"),
            Pattern::from("user/1/a"),
        ])
        .unwrap();
    let p = node.new_process();
    p.register("user/1/a", &()).unwrap();
    assert_eq!(single(&mut events).key, "user/1/a");
    assert_quiet(&mut events);

    // The same holds inside a bulk batch.
    p.join("user/1/a", &()).unwrap();
    let _ = single(&mut events);
    drop(p);
    assert_eq!(batch(&mut events).len(), 2);
}

#[tokio::test]
async fn subscribe_many_delivers_the_union_of_its_patterns() {
    let node = node();
    let mut events = node
        .default_scope()
        .subscribe_many([Pattern::from("a/"), Pattern::from("b")])
        .unwrap();
    assert!(events.matches("a/1") && events.matches("b") && !events.matches("b/1"));
    let p = node.new_process();
    for key in ["a/1", "b", "b/1", "c"] {
        p.register(key, &()).unwrap();
    }
    let keys: Vec<_> = drain(&mut events).into_iter().map(|e| e.key).collect();
    assert_eq!(keys, ["a/1", "b"]);
}

#[tokio::test]
async fn every_subscription_gets_its_own_copy_of_an_event() {
    let node = node();
    let mut first = node.default_scope().subscribe("k").unwrap();
    let mut second = node.default_scope().subscribe(Pattern::All).unwrap();
    let p = node.new_process();
    p.register("k", &()).unwrap();
    assert_eq!(single(&mut first), single(&mut second));
}

#[tokio::test]
async fn single_operations_make_one_event_batches() {
    let node = node();
    let mut events = node.default_scope().subscribe(Pattern::All).unwrap();
    let p = node.new_process();
    let pid = p.pid();
    p.register("n", &1u8).unwrap();
    p.register("n", &2u8).unwrap();
    p.unregister("n").unwrap();
    p.join("g", &1u8).unwrap();
    p.join("g", &2u8).unwrap();
    p.leave("g").unwrap();
    p.join("g", &3u8).unwrap();
    drop(p); // one entry left: the exit is a one-event batch too

    let expected = [
        (
            EventKind::Registered,
            "n",
            meta(&1u8),
            None,
            Reason::Requested,
        ),
        (
            EventKind::Registered,
            "n",
            meta(&2u8),
            Some(meta(&1u8)),
            Reason::Requested,
        ),
        (
            EventKind::Unregistered,
            "n",
            meta(&2u8),
            None,
            Reason::Requested,
        ),
        (EventKind::Joined, "g", meta(&1u8), None, Reason::Requested),
        (
            EventKind::Joined,
            "g",
            meta(&2u8),
            Some(meta(&1u8)),
            Reason::Requested,
        ),
        (EventKind::Left, "g", meta(&2u8), None, Reason::Requested),
        (EventKind::Joined, "g", meta(&3u8), None, Reason::Requested),
        (
            EventKind::Left,
            "g",
            meta(&3u8),
            None,
            Reason::Exit(ExitReason::Normal),
        ),
    ];
    for (kind, key, meta, previous_meta, reason) in expected {
        let event = single(&mut events);
        assert_eq!(
            event,
            Event {
                kind,
                scope: "default".into(),
                key: key.into(),
                pid,
                meta,
                previous_meta,
                reason,
            }
        );
    }
    assert_quiet(&mut events);
}

#[tokio::test]
async fn a_process_with_many_entries_dying_makes_one_batch_per_subscription() {
    let node = node();
    let mut all = node.default_scope().subscribe(Pattern::All).unwrap();
    let mut some = node.default_scope().subscribe("n/").unwrap();
    let mut none = node.default_scope().subscribe("unrelated").unwrap();
    let p = node.new_process();
    let pid = p.pid();
    for i in 0..20 {
        p.register(&format!("n/{i}"), &i).unwrap();
        p.join(&format!("g/{i}"), &i).unwrap();
    }
    let _ = (drain(&mut all), drain(&mut some));

    node.kill(pid);

    let everything = batch(&mut all);
    assert_eq!(everything.len(), 40);
    assert!(
        everything
            .iter()
            .all(|e| e.pid == pid && e.reason == Reason::Exit(ExitReason::Killed))
    );
    assert_eq!(
        everything
            .iter()
            .filter(|e| e.kind == EventKind::Unregistered)
            .count(),
        20
    );
    assert_quiet(&mut all);
    let names = batch(&mut some);
    assert_eq!(names.len(), 20);
    assert!(names.iter().all(|e| e.kind == EventKind::Unregistered));
    let mut keys: Vec<_> = names.iter().map(|e| e.key.to_string()).collect();
    keys.sort();
    let mut expected: Vec<_> = (0..20).map(|i| format!("n/{i}")).collect();
    expected.sort();
    assert_eq!(keys, expected);
    for e in &names {
        let i: u32 = e.key["n/".len()..].parse().unwrap();
        assert_eq!(e.meta, meta(&i), "each removal carries the entry's meta");
    }
    assert_quiet(&mut some);
    assert_quiet(&mut none);
}

#[tokio::test]
async fn an_exit_spanning_scopes_makes_one_batch_per_scope() {
    let node = node();
    let other = node.connect("other").unwrap();
    let mut here = node.default_scope().subscribe(Pattern::All).unwrap();
    let mut there = other.subscribe(Pattern::All).unwrap();
    let p = node.new_process();
    p.register("a", &()).unwrap();
    p.join("b", &()).unwrap();
    other.register(&p, "c", &()).unwrap();
    other.join(&p, "d", &()).unwrap();
    let _ = (drain(&mut here), drain(&mut there));

    drop(p);

    let here_batch = batch(&mut here);
    assert_eq!(here_batch.len(), 2);
    assert!(here_batch.iter().all(|e| e.scope == "default"));
    let there_batch = batch(&mut there);
    assert_eq!(there_batch.len(), 2);
    assert!(there_batch.iter().all(|e| e.scope == "other"));
    assert_quiet(&mut here);
    assert_quiet(&mut there);
}

#[tokio::test]
async fn a_slow_subscriber_is_told_exactly_how_many_events_it_missed_and_keeps_working() {
    let node = Node::builder().subscription_capacity(3).start().unwrap();
    let mut events = node.default_scope().subscribe(Pattern::All).unwrap();
    let p = node.new_process();
    for i in 0..8 {
        p.register(&format!("k{i}"), &()).unwrap();
    }

    for i in 0..3 {
        assert_eq!(single(&mut events).key, format!("k{i}"));
    }
    assert_eq!(queued(&mut events), Some(Delivery::Lagged { missed: 5 }));
    assert_quiet(&mut events);

    p.register("after", &()).unwrap();
    assert_eq!(single(&mut events).key, "after");

    // It can lag again, and the count starts afresh.
    for i in 0..5 {
        p.unregister(&format!("k{i}")).unwrap();
    }
    for i in 0..3 {
        assert_eq!(single(&mut events).key, format!("k{i}"));
    }
    assert_eq!(queued(&mut events), Some(Delivery::Lagged { missed: 2 }));
    assert_quiet(&mut events);
}

#[tokio::test]
async fn consuming_makes_room_so_a_subscriber_that_keeps_up_never_lags() {
    let node = Node::builder().subscription_capacity(2).start().unwrap();
    let mut events = node.default_scope().subscribe(Pattern::All).unwrap();
    let p = node.new_process();
    for i in 0..50 {
        p.register(&format!("k{i}"), &()).unwrap();
        p.register(&format!("k{i}"), &1u8).unwrap();
        assert_eq!(single(&mut events).previous_meta, None);
        assert_eq!(single(&mut events).previous_meta, Some(Meta::EMPTY));
    }
}

#[tokio::test]
async fn a_bulk_batch_larger_than_the_capacity_fits_an_empty_queue_only() {
    let node = Node::builder().subscription_capacity(4).start().unwrap();
    let mut events = node.default_scope().subscribe(Pattern::All).unwrap();
    let big = node.new_process();
    for i in 0..6 {
        big.join(&format!("g/{i}"), &()).unwrap();
        let _ = single(&mut events);
    }

    drop(big); // six removals into an empty queue of capacity four
    assert_eq!(batch(&mut events).len(), 6);

    let (small, bigger) = (node.new_process(), node.new_process());
    for i in 0..6 {
        bigger.join(&format!("h/{i}"), &()).unwrap();
    }
    let _ = drain_lenient(&mut events);
    small.join("s", &()).unwrap(); // one queued event
    drop(bigger); // six more do not fit behind it: all six are missed
    assert_eq!(single(&mut events).key, "s");
    assert_eq!(queued(&mut events), Some(Delivery::Lagged { missed: 6 }));
    assert_quiet(&mut events);
}

/// Empties a subscription, lag notices included.
fn drain_lenient(events: &mut roster::Subscription) -> usize {
    let mut items = 0;
    while queued(events).is_some() {
        items += 1;
    }
    items
}

#[tokio::test]
async fn recv_waits_for_the_next_change() {
    let node = node();
    let mut events = node.default_scope().subscribe("later").unwrap();
    let writer = node.clone();
    let task = tokio::spawn(async move {
        tokio::task::yield_now().await;
        let p = writer.new_process();
        p.register("later", &()).unwrap();
        p
    });
    let delivery = within("the event", events.recv()).await.unwrap();
    assert_eq!(delivery.into_events().unwrap()[0].key, "later");
    drop(task.await.unwrap());
}

#[tokio::test]
async fn a_subscription_is_a_stream_of_deliveries() {
    let node = node();
    let mut events = node.default_scope().subscribe(Pattern::All).unwrap();
    let p = node.new_process();
    p.register("a", &()).unwrap();
    p.register("b", &()).unwrap();
    let first = within("a delivery", events.next()).await.unwrap();
    let second = within("a delivery", events.next()).await.unwrap();
    assert_eq!(first.into_events().unwrap()[0].key, "a");
    assert_eq!(second.into_events().unwrap()[0].key, "b");
}

#[tokio::test]
async fn subscribing_sees_only_changes_made_after_it() {
    let node = node();
    let p = node.new_process();
    p.register("before", &()).unwrap();
    let mut events = node.default_scope().subscribe(Pattern::All).unwrap();
    assert_quiet(&mut events);
    p.register("after", &()).unwrap();
    assert_eq!(single(&mut events).key, "after");
}

/// Checks, key by key, that the events tell the story of a name: registered (previous_meta
/// None), updated by its owner (previous_meta = the meta before), unregistered by its owner
/// with its last meta; and of a membership: joined, updated, left, likewise.
fn assert_per_key_order(events: &[Event]) -> (usize, usize) {
    let mut model = EntryModel::default();
    let (mut registrations, mut joins) = (0, 0);
    for e in events {
        match (e.kind, &e.previous_meta) {
            (EventKind::Registered, None) => registrations += 1,
            (EventKind::Joined, None) => joins += 1,
            _ => {}
        }
        model.apply(e);
    }
    assert!(model.is_empty(), "entries left over");
    (registrations, joins)
}

#[test]
fn events_of_one_key_arrive_in_the_order_concurrent_writers_applied_them() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let _guard = runtime.enter();
    let node = Node::builder()
        .subscription_capacity(1 << 22)
        .start()
        .unwrap();
    let mut events = node.default_scope().subscribe(Pattern::All).unwrap();
    const KEYS: [&str; 3] = ["k/0", "k/1", "k/2"];

    let taken: Vec<usize> = std::thread::scope(|s| {
        let writers: Vec<_> = (0..2u32)
            .map(|writer| {
                let node = &node;
                s.spawn(move || {
                    let p = node.new_process();
                    let mut taken = 0;
                    for i in 0..1500u32 {
                        let key = KEYS[i as usize % KEYS.len()];
                        match p.register(key, &(writer, i)) {
                            Ok(_) => {
                                p.register(key, &(writer, i, "updated")).unwrap();
                                p.unregister(key).unwrap();
                            }
                            Err(roster::RegistryError::Taken { .. }) => taken += 1,
                            Err(other) => panic!("unexpected {other}"),
                        }
                        p.join(key, &i).unwrap();
                        p.join(key, &(i + 1)).unwrap();
                        if i % 2 == 0 {
                            p.leave(key).unwrap();
                        }
                    }
                    drop(p);
                    taken
                })
            })
            .collect();
        writers.into_iter().map(|w| w.join().unwrap()).collect()
    });

    let all = drain(&mut events);
    let (registrations, joins) = assert_per_key_order(&all);
    assert_eq!(registrations + taken.iter().sum::<usize>(), 3000);
    assert!(joins > 0);
    assert_eq!(node.default_scope().name_count(), 0);
    assert_eq!(node.default_scope().membership_count(), 0);
}
