//! Scopes: connect, leases, disconnect, local-only scopes and kind checks.

mod common;

use std::time::Duration;

use common::{assert_quiet, batch, drain, meta, node, single, within};
use roster::{Dispatched, EventKind, KeyError, Pattern, Reason, RegistryError, ScopeError, Table};

#[tokio::test]
async fn connecting_twice_returns_the_same_scope() {
    let node = node();
    let first = node.connect("chat").unwrap();
    let second = node.connect("chat").unwrap();
    let p = node.new_process();
    first.register(&p, "k", &()).unwrap();
    assert_eq!(second.whereis("k"), Some(p.pid()));
    assert_eq!(node.scope("chat").unwrap().whereis("k"), Some(p.pid()));
    assert_eq!(second.scope_name(), "chat");
    assert!(!second.is_local_only());
    assert!(second.is_connected());
}

#[tokio::test]
async fn scopes_are_isolated_from_each_other_and_from_the_default_scope() {
    let node = node();
    let (a, b) = (node.connect("a").unwrap(), node.connect("b").unwrap());
    let p = node.new_process();
    a.register(&p, "k", &1u8).unwrap();
    a.join(&p, "g", &()).unwrap();
    let mut b_events = b.subscribe(Pattern::All).unwrap();
    b.register(&p, "k", &2u8).unwrap();
    assert_eq!(single(&mut b_events).meta, meta(&2u8));
    assert_eq!(a.lookup("k").unwrap().meta, meta(&1u8));
    assert!(b.members("g").is_empty());
    assert!(node.default_scope().lookup("k").is_none());
    assert_eq!(node.default_scope().name_count(), 0);
    assert_eq!(node.scopes(), ["a", "b", "default"]);
}

#[tokio::test]
async fn a_scope_that_is_not_connected_cannot_be_found() {
    let node = node();
    assert_eq!(
        node.scope("nope").map(|_| ()),
        Err(ScopeError::NotConnected("nope".into()))
    );
    assert_eq!(node.scope("default").unwrap().scope_name(), "default");
    assert_eq!(node.default_scope().scope_name(), "default");
}

#[tokio::test]
async fn scope_names_are_validated() {
    let node = node();
    let refused = |r: Result<roster::Scope, ScopeError>| r.map(|_| ());
    assert_eq!(
        refused(node.connect("")),
        Err(ScopeError::InvalidName(KeyError::Empty))
    );
    assert_eq!(
        refused(node.connect_with("s/", roster::ScopeOptions::new().local_only())),
        Err(ScopeError::InvalidName(KeyError::PrefixNotAllowed(
            "s/".into()
        )))
    );
    let long = "s".repeat(2000);
    assert!(matches!(
        node.connect_with(
            &long,
            roster::ScopeOptions::new().ttl(Duration::from_secs(1))
        ),
        Err(ScopeError::InvalidName(KeyError::TooLong { len: 2000, .. }))
    ));
    assert_eq!(node.scopes(), ["default"]);
}

#[tokio::test]
async fn disconnecting_drops_the_local_view_with_one_final_batch_and_ends_subscriptions() {
    let node = node();
    let chat = node.connect("chat").unwrap();
    let mut all = chat.subscribe(Pattern::All).unwrap();
    let mut rooms = chat.subscribe("room/").unwrap();
    let mut default_events = node.default_scope().subscribe(Pattern::All).unwrap();
    let (a, b) = (node.new_process(), node.new_process());
    chat.register(&a, "owner/1", &1u8).unwrap();
    chat.join(&a, "room/1", &2u8).unwrap();
    chat.join(&b, "room/1", &3u8).unwrap();
    a.register("kept", &()).unwrap();
    let _ = (
        drain(&mut all),
        drain(&mut rooms),
        drain(&mut default_events),
    );

    node.disconnect("chat").unwrap();

    let mut final_batch: Vec<_> = batch(&mut all)
        .into_iter()
        .map(|e| (e.kind, e.key.to_string(), e.pid, e.meta, e.reason, e.scope))
        .collect();
    final_batch.sort_by(|l, r| (&l.1, l.2).cmp(&(&r.1, r.2)));
    let gone = |kind, key: &str, pid, m: u8| {
        (
            kind,
            key.to_string(),
            pid,
            meta(&m),
            Reason::ScopeDisconnected,
            "chat".into(),
        )
    };
    assert_eq!(
        final_batch,
        [
            gone(EventKind::Unregistered, "owner/1", a.pid(), 1),
            gone(EventKind::Left, "room/1", a.pid(), 2),
            gone(EventKind::Left, "room/1", b.pid(), 3),
        ]
    );
    assert_eq!(
        within("the end of the subscription", all.recv()).await,
        None
    );
    let room_batch = batch(&mut rooms);
    assert_eq!(room_batch.len(), 2);
    assert!(room_batch.iter().all(|e| e.kind == EventKind::Left));
    assert_eq!(
        within("the end of the subscription", rooms.recv()).await,
        None
    );

    // The default scope and the processes are untouched.
    assert_quiet(&mut default_events);
    assert_eq!(node.default_scope().whereis("kept"), Some(a.pid()));
    assert!(a.is_alive() && b.is_alive());
}

#[tokio::test]
async fn a_disconnected_scope_refuses_writes_through_old_handles_and_reads_empty() {
    let node = node();
    let chat = node.connect("chat").unwrap();
    let p = node.new_process();
    chat.register(&p, "n/1", &()).unwrap();
    chat.join(&p, "g/1", &()).unwrap();

    node.disconnect("chat").unwrap();

    let not_connected = RegistryError::ScopeNotConnected {
        scope: "chat".into(),
    };
    assert!(!chat.is_connected());
    assert_eq!(
        chat.register(&p, "n/2", &()).map(|_| ()),
        Err(not_connected.clone())
    );
    assert_eq!(chat.unregister(&p, "n/1"), Err(not_connected.clone()));
    assert_eq!(chat.join(&p, "g/2", &()), Err(not_connected.clone()));
    assert_eq!(chat.leave(&p, "g/1"), Err(not_connected.clone()));
    assert_eq!(
        chat.subscribe(Pattern::All).map(|_| ()),
        Err(not_connected.clone())
    );
    assert_eq!(
        chat.spawn_named("n/3", &(), |_| async {}),
        Err(not_connected)
    );
    assert_eq!(node.process_count(), 1, "the refused spawn started nothing");

    assert_eq!(chat.lookup("n/1"), None);
    assert_eq!(chat.whereis("n/1"), None);
    assert!(chat.names("", 10).unwrap().is_empty());
    assert!(chat.members("g/1").is_empty());
    assert!(chat.members("g/").is_empty());
    assert_eq!(chat.name_count(), 0);
    assert_eq!(chat.local_name_count(), 0);
    assert_eq!(chat.membership_count(), 0);
    assert!(chat.groups("", 10).unwrap().is_empty());
    assert_eq!(chat.select(Table::Names, None, |_| true), Ok(vec![]));
    assert_eq!(chat.count_match(Table::Groups, None, |_| true), Ok(0));
    assert!(chat.names_of(p.pid()).is_empty());
    assert!(chat.groups_of(p.pid()).is_empty());
    assert_eq!(chat.dispatch("n/1", &()), Ok(Dispatched::default()));
    assert_eq!(
        node.scope("chat").map(|_| ()),
        Err(ScopeError::NotConnected("chat".into()))
    );
    assert_eq!(node.scopes(), ["default"]);
}

#[tokio::test]
async fn a_process_that_held_entries_in_a_disconnected_scope_exits_quietly() {
    let node = node();
    let chat = node.connect("chat").unwrap();
    let p = node.new_process();
    chat.register(&p, "n", &()).unwrap();
    p.register("here", &()).unwrap();
    node.disconnect("chat").unwrap();
    let again = node.connect("chat").unwrap();
    let mut chat_events = again.subscribe(Pattern::All).unwrap();
    let mut default_events = node.default_scope().subscribe(Pattern::All).unwrap();

    drop(p);

    assert_quiet(&mut chat_events);
    let event = single(&mut default_events);
    assert_eq!(event.key, "here");
}

#[tokio::test]
async fn reconnecting_after_a_disconnect_gives_a_fresh_empty_scope() {
    let node = node();
    let old = node.connect("chat").unwrap();
    let p = node.new_process();
    old.register(&p, "k", &()).unwrap();
    node.disconnect("chat").unwrap();

    let fresh = node.connect("chat").unwrap();

    assert!(fresh.is_connected());
    assert_eq!(fresh.name_count(), 0);
    fresh.register(&p, "k", &()).unwrap();
    assert_eq!(fresh.names_of(p.pid()), ["k"]);
    assert_eq!(
        old.lookup("k"),
        None,
        "the old handle still reads the old scope"
    );
    assert!(matches!(
        old.register(&p, "k2", &()),
        Err(RegistryError::ScopeNotConnected { .. })
    ));
}

#[tokio::test]
async fn disconnect_refuses_an_unconnected_scope_and_the_default_scope() {
    let node = node();
    assert_eq!(
        node.disconnect("nope"),
        Err(ScopeError::NotConnected("nope".into()))
    );
    assert_eq!(node.disconnect("default"), Err(ScopeError::DefaultScope));
    node.connect("once").unwrap();
    node.disconnect("once").unwrap();
    assert_eq!(
        node.disconnect("once"),
        Err(ScopeError::NotConnected("once".into()))
    );
    let p = node.new_process();
    p.register("still-works", &()).unwrap();
}

#[tokio::test]
async fn a_scope_connected_with_one_kind_cannot_be_connected_with_the_other() {
    let node = node();
    node.connect("replicated").unwrap();
    node.connect_with("local", roster::ScopeOptions::new().local_only())
        .unwrap();
    assert_eq!(
        node.connect_with("replicated", roster::ScopeOptions::new().local_only())
            .map(|_| ()),
        Err(ScopeError::KindMismatch("replicated".into()))
    );
    assert_eq!(
        node.connect("local").map(|_| ()),
        Err(ScopeError::KindMismatch("local".into()))
    );
    assert_eq!(
        node.connect_with(
            "local",
            roster::ScopeOptions::new().ttl(Duration::from_secs(1))
        )
        .map(|_| ()),
        Err(ScopeError::KindMismatch("local".into()))
    );
    assert_eq!(
        node.connect_with("default", roster::ScopeOptions::new().local_only())
            .map(|_| ()),
        Err(ScopeError::KindMismatch("default".into()))
    );
    assert!(
        node.connect_with("local", roster::ScopeOptions::new().local_only())
            .unwrap()
            .is_local_only()
    );
    node.disconnect("local").unwrap();
    assert!(
        node.connect("local").is_ok(),
        "free to change kind once disconnected"
    );
}

#[tokio::test]
async fn a_local_only_scope_offers_unique_names_groups_dispatch_select_and_count() {
    let node = node();
    let local = node
        .connect_with("cache", roster::ScopeOptions::new().local_only())
        .unwrap();
    assert!(local.is_local_only());
    let mut events = local.subscribe(Pattern::All).unwrap();
    let (mut a, mut b) = (node.new_process(), node.new_process());

    local.register(&a, "conn/1", &10u8).unwrap();
    assert!(matches!(
        local.register(&b, "conn/1", &20u8),
        Err(RegistryError::Taken { owner, .. }) if owner == a.pid()
    ));
    local.join(&a, "topic", &1u8).unwrap();
    local.join(&b, "topic", &2u8).unwrap();
    assert_eq!(local.members("topic").pids(), [a.pid(), b.pid()]);
    assert_eq!(local.member_count("topic"), 2);
    assert_eq!(local.local_member_count("topic"), 2);
    assert_eq!(local.name_count(), 1);
    assert_eq!(local.local_name_count(), 1);

    assert_eq!(local.dispatch("topic", &"hi").unwrap().local, 2);
    assert_eq!(a.try_recv::<String>().unwrap(), "hi");
    assert_eq!(b.try_recv::<String>().unwrap(), "hi");
    assert_eq!(local.dispatch("conn/1", &"owner").unwrap().local, 1);
    assert_eq!(a.try_recv::<String>().unwrap(), "owner");

    let big = local
        .select(Table::Groups, None, |e| e.meta.decode::<u8>().unwrap() > 1)
        .unwrap();
    assert_eq!(big.len(), 1);
    assert_eq!(big[0].pid, b.pid());
    assert_eq!(
        local.count_match(Table::Names, Some("conn/"), |_| true),
        Ok(1)
    );
    assert_eq!(drain(&mut events).len(), 3);

    drop(a);
    assert_eq!(local.name_count(), 0);
    assert_eq!(local.members("topic").pids(), [b.pid()]);
    assert_eq!(batch(&mut events).len(), 2);
}

#[tokio::test(start_paused = true)]
async fn a_leased_scope_nobody_uses_disconnects_when_its_ttl_expires() {
    let node = node();
    let leased = node
        .connect_with(
            "jobs",
            roster::ScopeOptions::new().ttl(Duration::from_secs(10)),
        )
        .unwrap();
    tokio::time::sleep(Duration::from_secs(9)).await;
    assert!(node.scope("jobs").is_ok());
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(node.scope("jobs").is_err());
    assert!(!leased.is_connected());
}

#[tokio::test(start_paused = true)]
async fn a_registration_extends_a_lease_by_one_ttl_at_each_expiry() {
    let node = node();
    let leased = node
        .connect_with(
            "jobs",
            roster::ScopeOptions::new().ttl(Duration::from_secs(10)),
        )
        .unwrap();
    let p = node.new_process();
    leased.register(&p, "job/1", &()).unwrap();

    tokio::time::sleep(Duration::from_secs(25)).await; // expiries at 10 and 20 extended
    assert!(leased.is_connected());
    leased.unregister(&p, "job/1").unwrap();
    tokio::time::sleep(Duration::from_secs(4)).await; // 29: the lease runs to 30
    assert!(leased.is_connected());
    tokio::time::sleep(Duration::from_secs(2)).await; // 31
    assert!(!leased.is_connected());
    assert!(node.scope("jobs").is_err());
}

#[tokio::test(start_paused = true)]
async fn a_membership_keeps_a_lease_alive_until_its_process_exits() {
    let node = node();
    let leased = node
        .connect_with(
            "jobs",
            roster::ScopeOptions::new().ttl(Duration::from_secs(10)),
        )
        .unwrap();
    let p = node.new_process();
    leased.join(&p, "workers", &()).unwrap();

    tokio::time::sleep(Duration::from_secs(35)).await;
    assert!(leased.is_connected());
    drop(p);
    tokio::time::sleep(Duration::from_secs(4)).await; // 39
    assert!(leased.is_connected());
    tokio::time::sleep(Duration::from_secs(2)).await; // 41
    assert!(!leased.is_connected());
}

#[tokio::test(start_paused = true)]
async fn a_subscription_keeps_a_lease_alive_until_it_is_dropped() {
    let node = node();
    let leased = node
        .connect_with(
            "jobs",
            roster::ScopeOptions::new().ttl(Duration::from_secs(10)),
        )
        .unwrap();
    let events = leased.subscribe(Pattern::All).unwrap();

    tokio::time::sleep(Duration::from_secs(15)).await;
    assert!(leased.is_connected());
    drop(events);
    tokio::time::sleep(Duration::from_secs(4)).await; // 19
    assert!(leased.is_connected());
    tokio::time::sleep(Duration::from_secs(2)).await; // 21
    assert!(!leased.is_connected());
}

#[tokio::test(start_paused = true)]
async fn a_dropped_subscription_without_patterns_releases_a_lease() {
    let node = node();
    let leased = node
        .connect_with(
            "jobs",
            roster::ScopeOptions::new().ttl(Duration::from_secs(10)),
        )
        .unwrap();
    let events = leased.subscribe_many(Vec::new()).unwrap();
    tokio::time::sleep(Duration::from_secs(15)).await;
    assert!(leased.is_connected());
    drop(events);
    tokio::time::sleep(Duration::from_secs(6)).await; // 21
    assert!(!leased.is_connected());
}

#[tokio::test(start_paused = true)]
async fn a_subscription_holds_a_lease_after_every_entry_is_gone() {
    let node = node();
    let leased = node
        .connect_with(
            "jobs",
            roster::ScopeOptions::new().ttl(Duration::from_secs(10)),
        )
        .unwrap();
    let p = node.new_process();
    leased.register(&p, "job", &()).unwrap();
    let mut events = leased.subscribe(Pattern::All).unwrap();
    tokio::time::sleep(Duration::from_secs(15)).await;
    leased.unregister(&p, "job").unwrap();
    assert_eq!(single(&mut events).kind, EventKind::Unregistered);
    // The subscription itself holds the lease: the scope stays connected.
    tokio::time::sleep(Duration::from_secs(30)).await;
    assert!(leased.is_connected());
    drop(events);
    tokio::time::sleep(Duration::from_secs(10)).await;
    assert!(!leased.is_connected());
}

#[tokio::test(start_paused = true)]
async fn a_lease_does_not_touch_a_scope_reconnected_after_a_disconnect() {
    let node = node();
    node.connect_with(
        "jobs",
        roster::ScopeOptions::new().ttl(Duration::from_secs(10)),
    )
    .unwrap();
    node.disconnect("jobs").unwrap();
    let fresh = node.connect("jobs").unwrap();
    tokio::time::sleep(Duration::from_secs(25)).await;
    assert!(fresh.is_connected());
}

#[tokio::test]
async fn a_disconnect_ends_even_a_subscription_without_patterns() {
    let node = node();
    let chat = node.connect("chat").unwrap();
    let mut events = chat.subscribe_many(Vec::new()).unwrap();
    let p = node.new_process();
    chat.register(&p, "k", &()).unwrap();
    assert_quiet(&mut events);
    node.disconnect("chat").unwrap();
    assert_eq!(
        within("the end of the subscription", events.recv()).await,
        None
    );
}

#[test]
fn a_subscription_racing_a_disconnect_is_either_refused_or_ended() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let _guard = runtime.enter();
    let node = node();
    let mut ended = 0;
    for round in 0..2000 {
        let scope = node.connect("racy").unwrap();
        let barrier = std::sync::Barrier::new(2);
        let subscription = std::thread::scope(|s| {
            let subscriber = s.spawn(|| {
                barrier.wait();
                for _ in 0..round % 64 {
                    std::hint::spin_loop();
                }
                scope.subscribe(Pattern::All)
            });
            barrier.wait();
            node.disconnect("racy").unwrap();
            subscriber.join().unwrap()
        });
        match subscription {
            Ok(mut events) => {
                ended += 1;
                assert_eq!(
                    common::queued_or_end(&mut events),
                    Some(None),
                    "round {round}: a subscription to a disconnected scope must end"
                );
            }
            Err(e) => assert!(matches!(e, RegistryError::ScopeNotConnected { .. })),
        }
    }
    assert!(ended > 0);
}

#[tokio::test(start_paused = true)]
async fn the_default_scope_cannot_be_leased() {
    let node = node();
    assert_eq!(
        node.connect_with(
            "default",
            roster::ScopeOptions::new().ttl(Duration::from_secs(10))
        )
        .map(|_| ()),
        Err(ScopeError::DefaultScope)
    );
    tokio::time::sleep(Duration::from_secs(25)).await;
    assert!(node.default_scope().is_connected());
    let p = node.new_process();
    p.register("still-here", &()).unwrap();
}

#[tokio::test(start_paused = true)]
async fn taking_a_lease_again_replaces_it_instead_of_adding_a_second_one() {
    let node = node();
    let first = node
        .connect_with(
            "jobs",
            roster::ScopeOptions::new().ttl(Duration::from_secs(5)),
        )
        .unwrap();
    let second = node
        .connect_with(
            "jobs",
            roster::ScopeOptions::new().ttl(Duration::from_secs(20)),
        )
        .unwrap();
    tokio::time::sleep(Duration::from_secs(6)).await;
    assert!(
        first.is_connected() && second.is_connected(),
        "the 5 s lease was replaced"
    );
    tokio::time::sleep(Duration::from_secs(15)).await; // 21
    assert!(!second.is_connected());
}

/// The lease rule: a lease given again replaces the scope's lease; connecting again
/// without one keeps it.
#[tokio::test(start_paused = true)]
async fn a_lease_given_again_replaces_the_lease_and_a_plain_connect_keeps_it() {
    use roster::ScopeOptions;
    let node = roster::Node::builder().start().unwrap();
    let lease = |secs| ScopeOptions::new().ttl(Duration::from_secs(secs));

    // A plain connect keeps the 5 s lease: the scope goes after 5 s.
    node.connect_with("kept", lease(5)).unwrap();
    tokio::time::sleep(Duration::from_secs(1)).await;
    node.connect("kept").unwrap();
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert!(
        node.scope("kept").is_err(),
        "the lease was kept and ran out"
    );

    // A second lease replaces the first: 20 s from the second connect.
    node.connect_with("replaced", lease(5)).unwrap();
    tokio::time::sleep(Duration::from_secs(1)).await;
    node.connect_with("replaced", lease(20)).unwrap();
    tokio::time::sleep(Duration::from_secs(10)).await;
    assert!(node.scope("replaced").is_ok(), "the 5 s lease was replaced");
    tokio::time::sleep(Duration::from_secs(15)).await;
    assert!(node.scope("replaced").is_err(), "the 20 s lease ran out");
}
