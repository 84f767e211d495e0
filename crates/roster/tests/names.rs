//! The unique registry: register, unregister, lookup, listing, counts and spawn_named.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use common::{assert_quiet, meta, node, single, within};
use roster::{EventKind, ExitReason, KeyError, Node, Pattern, Reason, RegistryError};

#[tokio::test]
async fn registering_a_free_name_emits_registered_and_lookup_finds_the_owner() {
    let node = node();
    let mut events = node.default_scope().subscribe(Pattern::All).unwrap();
    let p = node.new_process();

    let registration = p.register("user/1", &"eu").unwrap();

    assert_eq!(registration.pid, p.pid());
    assert_eq!(registration.meta, meta("eu"));
    assert_eq!(node.default_scope().lookup("user/1"), Some(registration));
    assert_eq!(node.default_scope().whereis("user/1"), Some(p.pid()));
    let event = single(&mut events);
    assert_eq!(event.kind, EventKind::Registered);
    assert_eq!(event.scope, "default");
    assert_eq!(event.key, "user/1");
    assert_eq!(event.pid, p.pid());
    assert_eq!(event.meta, meta("eu"));
    assert_eq!(event.previous_meta, None);
    assert_eq!(event.reason, Reason::Requested);
}

#[tokio::test]
async fn registering_again_with_new_meta_updates_in_place_and_reports_the_previous_meta() {
    let node = node();
    let mut events = node.default_scope().subscribe(Pattern::All).unwrap();
    let p = node.new_process();
    let first = p.register("k", &1u8).unwrap();
    let _ = single(&mut events);

    let updated = p.register("k", &2u8).unwrap();

    assert_eq!(updated.pid, p.pid());
    assert_eq!(updated.meta, meta(&2u8));
    assert_eq!(updated.registered_at, first.registered_at);
    assert_eq!(updated.token, first.token);
    assert_eq!(node.default_scope().lookup("k"), Some(updated));
    assert_eq!(node.default_scope().name_count(), 1);
    let event = single(&mut events);
    assert_eq!(event.kind, EventKind::Registered);
    assert_eq!(event.meta, meta(&2u8));
    assert_eq!(event.previous_meta, Some(meta(&1u8)));
    assert_eq!(event.reason, Reason::Requested);
}

#[tokio::test]
async fn registering_again_with_the_same_meta_changes_nothing_and_emits_nothing() {
    let node = node();
    let mut events = node.default_scope().subscribe(Pattern::All).unwrap();
    let p = node.new_process();
    let first = p.register("k", &"same").unwrap();
    let _ = single(&mut events);

    let again = p.register("k", &"same").unwrap();

    assert_eq!(again, first);
    assert_eq!(node.default_scope().lookup("k"), Some(first));
    assert_quiet(&mut events);
}

#[tokio::test]
async fn a_name_held_by_a_live_process_is_taken() {
    let node = node();
    let mut events = node.default_scope().subscribe(Pattern::All).unwrap();
    let (owner, rival) = (node.new_process(), node.new_process());
    let registration = owner.register("leader", &"owner-meta").unwrap();
    let _ = single(&mut events);

    let refused = rival.register("leader", &"rival-meta");

    assert_eq!(
        refused,
        Err(RegistryError::Taken {
            key: "leader".into(),
            owner: owner.pid(),
            meta: meta("owner-meta"),
        })
    );
    assert_eq!(node.default_scope().lookup("leader"), Some(registration));
    assert!(node.default_scope().names_of(rival.pid()).is_empty());
    assert_quiet(&mut events);
}

#[tokio::test]
async fn unregistering_removes_the_name_and_emits_unregistered_with_its_meta() {
    let node = node();
    let mut events = node.default_scope().subscribe(Pattern::All).unwrap();
    let p = node.new_process();
    p.register("k", &5u8).unwrap();
    let _ = single(&mut events);

    p.unregister("k").unwrap();

    assert_eq!(node.default_scope().lookup("k"), None);
    assert_eq!(node.default_scope().name_count(), 0);
    assert!(node.default_scope().names_of(p.pid()).is_empty());
    let event = single(&mut events);
    assert_eq!(event.kind, EventKind::Unregistered);
    assert_eq!((event.pid, event.meta.clone()), (p.pid(), meta(&5u8)));
    assert_eq!(event.reason, Reason::Requested);
    // Once unregistered, dropping the process emits nothing more for the name.
    drop(p);
    assert_quiet(&mut events);
}

#[tokio::test]
async fn unregistering_a_free_name_fails_with_not_registered() {
    let node = node();
    let p = node.new_process();
    assert_eq!(
        p.unregister("nobody"),
        Err(RegistryError::NotRegistered {
            key: "nobody".into()
        })
    );
    p.register("once", &()).unwrap();
    p.unregister("once").unwrap();
    assert_eq!(
        p.unregister("once"),
        Err(RegistryError::NotRegistered { key: "once".into() })
    );
}

#[tokio::test]
async fn unregistering_another_process_s_name_fails_with_not_owner() {
    let node = node();
    let mut events = node.default_scope().subscribe(Pattern::All).unwrap();
    let (owner, other) = (node.new_process(), node.new_process());
    owner.register("k", &()).unwrap();
    let _ = single(&mut events);

    assert_eq!(
        other.unregister("k"),
        Err(RegistryError::NotOwner {
            key: "k".into(),
            owner: owner.pid(),
        })
    );
    assert_eq!(node.default_scope().whereis("k"), Some(owner.pid()));
    assert_quiet(&mut events);
}

#[tokio::test]
async fn a_name_of_a_dead_owner_is_not_registered_for_anyone() {
    let node = node();
    let (owner, other) = (node.new_process(), node.new_process());
    owner.register("k", &()).unwrap();
    node.kill(owner.pid());
    assert_eq!(
        other.unregister("k"),
        Err(RegistryError::NotRegistered { key: "k".into() })
    );
}

#[tokio::test]
async fn lookup_never_returns_a_dead_local_process() {
    let node = node();
    let killed = node.new_process();
    killed.register("killed", &()).unwrap();
    let dropped = node.new_process();
    dropped.register("dropped", &()).unwrap();

    node.kill(killed.pid());
    drop(dropped);

    assert_eq!(node.default_scope().lookup("killed"), None);
    assert_eq!(node.default_scope().whereis("killed"), None);
    assert_eq!(node.default_scope().lookup("dropped"), None);
    assert_eq!(node.default_scope().whereis("dropped"), None);
    assert!(node.default_scope().names("", 100).unwrap().is_empty());
}

#[tokio::test]
async fn a_name_freed_by_an_exit_can_be_registered_by_another_process() {
    let node = node();
    let owner = node.new_process();
    let first = owner.register("k", &()).unwrap();
    drop(owner);
    let heir = node.new_process();
    let second = heir.register("k", &()).unwrap();
    assert_eq!(node.default_scope().whereis("k"), Some(heir.pid()));
    assert!(
        second.token > first.token,
        "a new owner gets a larger token"
    );
    assert!(second.registered_at > first.registered_at);
}

#[tokio::test]
async fn a_process_may_hold_several_names() {
    let node = node();
    let p = node.new_process();
    p.register("b", &()).unwrap();
    p.register("a", &()).unwrap();
    p.register("c/1", &()).unwrap();
    assert_eq!(node.default_scope().names_of(p.pid()), ["a", "b", "c/1"]);
    assert!(node.default_scope().groups_of(p.pid()).is_empty());
    p.unregister("b").unwrap();
    assert_eq!(node.default_scope().names_of(p.pid()), ["a", "c/1"]);
    assert_eq!(node.default_scope().name_count(), 2);
}

#[tokio::test]
async fn registered_lists_live_names_under_a_prefix_in_key_order_up_to_a_limit() {
    let node = node();
    let procs: Vec<_> = (0..6).map(|_| node.new_process()).collect();
    for (p, key) in procs
        .iter()
        .zip(["user/3", "user/1", "user/2", "users", "user", "room/1"])
    {
        p.register(key, &key).unwrap();
    }
    node.kill(procs[2].pid()); // user/2

    let under_user: Vec<_> = node
        .default_scope()
        .names("user/", 100)
        .unwrap()
        .into_iter()
        .map(|(k, r)| (k.to_string(), r.pid, r.meta))
        .collect();
    assert_eq!(
        under_user,
        [
            ("user/1".to_string(), procs[1].pid(), meta("user/1")),
            ("user/3".to_string(), procs[0].pid(), meta("user/3")),
        ]
    );
    let limited: Vec<_> = node
        .default_scope()
        .names("user/", 1)
        .unwrap()
        .into_iter()
        .map(|(k, _)| k)
        .collect();
    assert_eq!(limited, ["user/1"]);
    assert!(node.default_scope().names("user/", 0).unwrap().is_empty());
    let all: Vec<_> = node
        .default_scope()
        .names("", usize::MAX)
        .unwrap()
        .into_iter()
        .map(|(k, _)| k)
        .collect();
    assert_eq!(all, ["room/1", "user", "user/1", "user/3", "users"]);
    assert!(
        node.default_scope()
            .names("nothing/", 10)
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn registered_refuses_a_prefix_without_a_trailing_slash() {
    let node = node();
    assert_eq!(
        node.default_scope().names("user", 10),
        Err(KeyError::NotAPrefix("user".into()))
    );
}

#[tokio::test]
async fn registry_counts_count_every_name_and_the_local_ones() {
    let node = node();
    let other = node.connect("other").unwrap();
    let (a, b) = (node.new_process(), node.new_process());
    a.register("a/1", &()).unwrap();
    a.register("a/2", &()).unwrap();
    b.register("b/1", &()).unwrap();
    other.register(&b, "elsewhere", &()).unwrap();
    assert_eq!(node.default_scope().name_count(), 3);
    assert_eq!(node.default_scope().local_name_count(), 3);
    assert_eq!(other.name_count(), 1);
    drop(a);
    assert_eq!(node.default_scope().name_count(), 1);
    assert_eq!(node.default_scope().local_name_count(), 1);
    b.unregister("b/1").unwrap();
    assert_eq!(node.default_scope().name_count(), 0);
    assert_eq!(node.default_scope().local_name_count(), 0);
    assert_eq!(other.local_name_count(), 1);
}

#[tokio::test]
async fn spawn_named_starts_a_process_that_is_already_registered() {
    let node = node();
    let (seen_tx, seen_rx) = tokio::sync::oneshot::channel();
    let pid = node
        .default_scope()
        .spawn_named("worker/1", &7u8, move |proc| async move {
            let me = proc.pid();
            let owner = proc.node().default_scope().whereis("worker/1");
            seen_tx.send((me, owner)).unwrap();
            std::future::pending::<()>().await;
        })
        .unwrap();
    // Registered before the task ever ran.
    let registration = node.default_scope().lookup("worker/1").unwrap();
    assert_eq!((registration.pid, registration.meta), (pid, meta(&7u8)));
    let (me, owner) = within("the process to start", seen_rx).await.unwrap();
    assert_eq!((me, owner), (pid, Some(pid)));
    assert!(node.kill(pid));
}

#[tokio::test]
async fn spawn_named_on_a_taken_name_fails_without_starting_the_process() {
    let node = node();
    let mut events = node.default_scope().subscribe(Pattern::All).unwrap();
    let owner = node.new_process();
    owner.register("singleton", &"first").unwrap();
    let _ = single(&mut events);
    let started = Arc::new(AtomicBool::new(false));
    let started_flag = started.clone();

    let refused = node
        .default_scope()
        .spawn_named("singleton", &"second", move |_proc| {
            started_flag.store(true, Ordering::SeqCst);
            async {}
        });

    assert_eq!(
        refused,
        Err(RegistryError::Taken {
            key: "singleton".into(),
            owner: owner.pid(),
            meta: meta("first"),
        })
    );
    tokio::task::yield_now().await;
    assert!(!started.load(Ordering::SeqCst));
    assert_eq!(node.process_count(), 1);
    assert_eq!(node.default_scope().whereis("singleton"), Some(owner.pid()));
    assert_quiet(&mut events);
}

#[tokio::test]
async fn spawn_named_with_an_invalid_key_fails_without_starting_the_process() {
    let node = node();
    let refused = node.default_scope().spawn_named("bad/", &(), |_| async {});
    assert_eq!(
        refused,
        Err(RegistryError::InvalidKey(KeyError::PrefixNotAllowed(
            "bad/".into()
        )))
    );
    assert_eq!(node.process_count(), 0);
}

#[tokio::test]
async fn a_name_freed_by_a_killed_process_can_be_spawned_again_at_once() {
    let node = node();
    let mut events = node.default_scope().subscribe("service").unwrap();
    let body = |proc: roster::Process| async move {
        let _keep = proc;
        std::future::pending::<()>().await;
    };
    let first = node
        .default_scope()
        .spawn_named("service", &1u8, body)
        .unwrap();
    assert!(node.kill(first));
    let second = node
        .default_scope()
        .spawn_named("service", &2u8, body)
        .expect("a killed owner's name is free at once");
    assert_ne!(first, second);
    assert_eq!(node.default_scope().whereis("service"), Some(second));

    let story: Vec<_> = common::drain(&mut events)
        .into_iter()
        .map(|e| (e.kind, e.pid, e.reason))
        .collect();
    assert_eq!(
        story,
        [
            (EventKind::Registered, first, Reason::Requested),
            (
                EventKind::Unregistered,
                first,
                Reason::Exit(ExitReason::Killed)
            ),
            (EventKind::Registered, second, Reason::Requested),
        ]
    );
    assert!(node.kill(second));
}

#[tokio::test]
async fn names_are_unique_per_scope() {
    let node = node();
    let other = node.connect("other").unwrap();
    let (a, b) = (node.new_process(), node.new_process());
    a.register("k", &()).unwrap();
    other.register(&b, "k", &()).unwrap();
    assert_eq!(node.default_scope().whereis("k"), Some(a.pid()));
    assert_eq!(other.whereis("k"), Some(b.pid()));
    assert_eq!(other.names_of(b.pid()), ["k"]);
    assert!(node.default_scope().names_of(b.pid()).is_empty());
}

#[tokio::test]
async fn registrations_of_one_node_are_invisible_to_another() {
    let (one, two) = (node(), Node::builder().start().unwrap());
    let p = one.new_process();
    p.register("k", &()).unwrap();
    assert_eq!(two.default_scope().lookup("k"), None);
    assert_eq!(two.default_scope().name_count(), 0);
}
