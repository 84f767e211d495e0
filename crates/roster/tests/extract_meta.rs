//! `extract_meta`: the read-side transform of meta, per node and per scope.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

mod common;
use common::{cluster_config, eventually, meta, node, start_clustered, within};

use roster::{Delivery, EventKind, Meta, Node, Pattern, ScopeOptions, Table};

/// Stored meta: a map with a public and an internal field.
fn stored(region: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        ("region".to_string(), region.to_string()),
        ("token".to_string(), "secret".to_string()),
    ])
}

/// Keeps the region only; other meta passes through.
fn region_only(_key: &str, meta: &Meta) -> Meta {
    match meta.decode::<BTreeMap<String, String>>() {
        Ok(fields) => Meta::encode(&fields["region"]).unwrap(),
        Err(_) => meta.clone(),
    }
}

fn decoded(m: &Meta) -> String {
    m.decode::<String>().unwrap()
}

#[tokio::test]
async fn the_node_transform_applies_to_every_read_that_returns_meta() {
    let node = Node::builder().extract_meta(region_only).start().unwrap();
    let scope = node.default_scope();
    let (a, b) = (node.new_process(), node.new_process());
    a.register("session/1", &stored("eu")).unwrap();
    b.register("session/2", &stored("us")).unwrap();
    a.join("room/1", &stored("eu")).unwrap();
    b.join("room/2", &stored("us")).unwrap();

    assert_eq!(decoded(&scope.lookup("session/1").unwrap().meta), "eu");
    assert_eq!(scope.whereis("session/1"), Some(a.pid()));
    let names = scope.names("session/", 10).unwrap();
    let seen: Vec<String> = names.iter().map(|(_, r)| decoded(&r.meta)).collect();
    assert_eq!(seen, ["eu", "us"]);

    let members = scope.members("room/");
    let seen: Vec<String> = members.iter().map(|m| decoded(m.meta())).collect();
    assert_eq!(seen, ["eu", "us"]);
    assert_eq!(members.len(), 2);
    assert_eq!(scope.members("room/1").pids(), [a.pid()]);
    assert_eq!(scope.members_limited("room/", 1).len(), 1);
    assert_eq!(decoded(scope.local_members("room/2")[0].meta()), "us");
    assert_eq!(scope.local_members_limited("room/", 1).len(), 1);
    assert_eq!(scope.member_count("room/"), 2);

    // Predicates see the transformed meta, and selections return it.
    let eu = scope
        .select(Table::Names, Some("session/"), |e| decoded(&e.meta) == "eu")
        .unwrap();
    assert_eq!((eu.len(), decoded(&eu[0].meta)), (1, "eu".to_string()));
    let n = scope
        .count_match(Table::Groups, None, |e| decoded(&e.meta) == "us")
        .unwrap();
    assert_eq!(n, 1);
    let found = scope
        .select_as::<String, _>(Table::Groups, Some("room/"), 10, |_, r| r == "eu")
        .unwrap();
    assert_eq!((found.items.len(), found.undecodable), (1, 0));
    let counted = scope
        .count_match_as::<String, _>(Table::Names, None, |_, _| true)
        .unwrap();
    assert_eq!((counted.matched, counted.undecodable), (2, 0));

    // Watches carry the stored meta; `extract_meta` gives what reads show.
    let watch = scope.watch("session/").unwrap();
    let raw = &watch.names[0].1.meta;
    assert_eq!(raw, &meta(&stored("eu")));
    assert_eq!(decoded(&scope.extract_meta("session/1", raw)), "eu");
    // A write returns what it stored.
    let registered = a.register("session/3", &stored("ap")).unwrap();
    assert_eq!(registered.meta, meta(&stored("ap")));
}

#[tokio::test]
async fn the_transform_sees_each_members_own_group_key() {
    let node = Node::builder()
        .extract_meta(|key, _| Meta::encode(key).unwrap())
        .start()
        .unwrap();
    let (a, b, c) = (node.new_process(), node.new_process(), node.new_process());
    a.join("room/1", &()).unwrap();
    b.join("room/2", &()).unwrap();
    c.join("room/2", &()).unwrap();
    let scope = node.default_scope();
    let seen: Vec<String> = scope
        .members("room/")
        .iter()
        .map(|m| decoded(m.meta()))
        .collect();
    assert_eq!(seen, ["room/1", "room/2", "room/2"]);
    assert_eq!(scope.members_limited("room/", 2).len(), 2);
    // A dead member leaves the transformed list at once, as it leaves the stored one.
    let members = scope.members("room/2");
    node.kill(b.pid());
    assert_eq!(members.pids(), [c.pid()]);
}

#[tokio::test]
async fn a_scope_transform_wins_over_the_node_one_and_can_be_replaced() {
    let node = Node::builder()
        .extract_meta(|_, _| Meta::encode("node").unwrap())
        .start()
        .unwrap();
    let own = node
        .connect_with(
            "own",
            ScopeOptions::new().extract_meta(|_, _| Meta::encode("scope").unwrap()),
        )
        .unwrap();
    let plain = node.connect("plain").unwrap();
    let p = node.new_process();
    for scope in [node.default_scope(), &own, &plain] {
        scope.register(&p, "k", &()).unwrap();
    }
    assert_eq!(
        decoded(&node.default_scope().lookup("k").unwrap().meta),
        "node"
    );
    assert_eq!(decoded(&plain.lookup("k").unwrap().meta), "node");
    assert_eq!(decoded(&own.lookup("k").unwrap().meta), "scope");
    // Every handle of the scope sees its transform.
    let again = node.scope("own").unwrap();
    assert_eq!(decoded(&again.lookup("k").unwrap().meta), "scope");
    // Connecting without one keeps it; with one replaces it for every handle.
    node.connect("own").unwrap();
    assert_eq!(decoded(&own.lookup("k").unwrap().meta), "scope");
    node.connect_with(
        "own",
        ScopeOptions::new().extract_meta(|_, _| Meta::encode("replaced").unwrap()),
    )
    .unwrap();
    assert_eq!(decoded(&own.lookup("k").unwrap().meta), "replaced");
    // It lasts until the scope is disconnected.
    node.disconnect("own").unwrap();
    let fresh = node.connect("own").unwrap();
    fresh.register(&p, "k", &()).unwrap();
    assert_eq!(decoded(&fresh.lookup("k").unwrap().meta), "node");
}

#[tokio::test]
async fn a_node_without_a_transform_returns_the_stored_meta() {
    let node = node();
    let p = node.new_process();
    p.register("k", &stored("eu")).unwrap();
    let scoped = node
        .connect_with("s", ScopeOptions::new().extract_meta(region_only))
        .unwrap();
    scoped.register(&p, "k", &stored("eu")).unwrap();
    assert_eq!(
        node.default_scope().lookup("k").unwrap().meta,
        meta(&stored("eu"))
    );
    assert_eq!(decoded(&scoped.lookup("k").unwrap().meta), "eu");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replication_and_the_stored_entry_are_unchanged() {
    const SECRET: &str = "extract-meta-secret";
    let calls = Arc::new(AtomicUsize::new(0));
    let counted = calls.clone();
    let a = start_clustered(
        Node::builder().extract_meta(move |key, meta| {
            counted.fetch_add(1, Ordering::Relaxed);
            region_only(key, meta)
        }),
        "xa",
        cluster_config(SECRET, &[]),
    );
    let b = start_clustered(Node::builder(), "xb", cluster_config(SECRET, &[&a]));
    eventually("linked", || common::fully_linked(&[&a, &b])).await;
    let mut on_b = b.default_scope().subscribe(Pattern::All).unwrap();
    let mut on_a = a.default_scope().subscribe(Pattern::All).unwrap();

    let p = a.new_process();
    p.register("session/1", &stored("eu")).unwrap();
    p.join("room/1", &stored("eu")).unwrap();
    let mut seen = Vec::new();
    while seen.len() < 2 {
        match within("events on b", on_b.recv()).await {
            Some(Delivery::Events(events)) => seen.extend(events),
            other => panic!("expected events, got {other:?}"),
        }
    }
    // The peer, without a transform, holds and sees the stored meta.
    assert!(seen.iter().all(|e| e.meta == meta(&stored("eu"))));
    assert_eq!(seen[0].kind, EventKind::Registered);
    assert_eq!(
        b.default_scope().lookup("session/1").unwrap().meta,
        meta(&stored("eu"))
    );
    assert_eq!(
        b.default_scope().members("room/1").to_vec()[0].meta(),
        &meta(&stored("eu"))
    );
    // The writer's own events carry the stored meta; its reads the transformed one.
    let local = within("events on a", on_a.recv()).await;
    let Some(Delivery::Events(local)) = local else {
        panic!("expected events")
    };
    assert_eq!(local[0].meta, meta(&stored("eu")));
    let before = calls.load(Ordering::Relaxed);
    assert_eq!(
        decoded(&a.default_scope().lookup("session/1").unwrap().meta),
        "eu"
    );
    assert_eq!(calls.load(Ordering::Relaxed), before + 1);
    // A write from b reaches a's reads transformed.
    let q = b.new_process();
    q.register("session/2", &stored("us")).unwrap();
    eventually("b's name on a", || {
        a.default_scope().whereis("session/2").is_some()
    })
    .await;
    assert_eq!(
        decoded(&a.default_scope().lookup("session/2").unwrap().meta),
        "us"
    );
    a.shutdown().await;
    b.shutdown().await;
}

#[tokio::test]
async fn a_panicking_transform_returns_the_stored_meta_and_breaks_nothing() {
    let node = Node::builder()
        .extract_meta(|key, meta| {
            if key.starts_with("bad/") {
                panic!("a buggy transform");
            }
            region_only(key, meta)
        })
        .start()
        .unwrap();
    let scope = node.default_scope().clone();
    let p = node.new_process();
    p.register("bad/1", &stored("eu")).unwrap();
    p.register("good/1", &stored("eu")).unwrap();
    p.join("bad/g", &stored("eu")).unwrap();

    assert_eq!(scope.lookup("bad/1").unwrap().meta, meta(&stored("eu")));
    assert_eq!(node.extract_meta_panics(), 1);
    assert_eq!(decoded(&scope.lookup("good/1").unwrap().meta), "eu");
    let members = scope.members("bad/g");
    assert_eq!(members.to_vec()[0].meta(), &meta(&stored("eu")));
    let all = scope.select(Table::Names, None, |_| true).unwrap();
    assert_eq!(all.len(), 2);
    assert_eq!(node.extract_meta_panics(), 3);

    // The scope is fully usable: writes, reads, events, exits.
    let mut events = scope.subscribe(Pattern::All).unwrap();
    p.register("bad/1", &stored("us")).unwrap();
    p.unregister("good/1").unwrap();
    p.leave("bad/g").unwrap();
    let q = node.new_process();
    q.register("bad/2", &()).unwrap();
    assert_eq!(scope.name_count(), 2);
    drop(p);
    drop(q);
    assert_eq!(scope.name_count(), 0);
    assert!(scope.members("bad/").is_empty());
    let mut kinds = Vec::new();
    while kinds.len() < 6 {
        match within("events", events.recv()).await {
            Some(Delivery::Events(batch)) => kinds.extend(batch.into_iter().map(|e| e.kind)),
            other => panic!("expected events, got {other:?}"),
        }
    }
    assert_eq!(kinds.len(), 6);
}

#[tokio::test]
async fn a_panicking_scope_transform_leaves_other_scopes_alone() {
    let node = node();
    let bad = node
        .connect_with(
            "bad",
            ScopeOptions::new().extract_meta(|_, _| panic!("always")),
        )
        .unwrap();
    let p = node.new_process();
    bad.register(&p, "k", &1u8).unwrap();
    p.register("k", &2u8).unwrap();
    assert_eq!(bad.lookup("k").unwrap().meta.decode::<u8>().unwrap(), 1);
    assert_eq!(
        node.default_scope()
            .lookup("k")
            .unwrap()
            .meta
            .decode::<u8>()
            .unwrap(),
        2
    );
    assert_eq!(node.extract_meta_panics(), 1);
    bad.unregister(&p, "k").unwrap();
    assert!(bad.lookup("k").is_none());
}
