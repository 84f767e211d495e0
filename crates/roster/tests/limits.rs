//! Nodes configured with different limits: what one node accepts and another cannot hold
//! fails at the caller, or is skipped by the receiver alone; the link never drops over it.

use std::time::Duration;

mod common;
use common::eventually;

use roster::{KeyError, MetaError, Node, NodeBuilder, RegistryError, SendError};

const SECRET: &str = "limits-test-secret";

fn start(builder: NodeBuilder, name: &str, seeds: &[&Node]) -> Node {
    let config =
        common::cluster_config(SECRET, seeds).anti_entropy_interval(Duration::from_millis(200));
    common::start_clustered(builder, name, config)
}

/// A string whose MessagePack encoding is about `bytes` long.
fn blob(bytes: usize) -> String {
    "x".repeat(bytes)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_with_smaller_limits_refuses_at_the_caller_and_keeps_its_link() {
    let big = start(
        Node::builder()
            .max_meta_bytes(1024 * 1024)
            .max_key_bytes(4096)
            .max_message_bytes(4 * 1024 * 1024),
        "big",
        &[],
    );
    // Written while no peer is linked: only this node's own limits apply.
    let early = big.new_process();
    early.register("early/big", &blob(100 * 1024)).unwrap();
    early.register("early/small", &"ok").unwrap();

    let small = start(Node::builder(), "small", &[&big]);
    eventually("linked", || {
        big.cluster().peers().len() == 1 && small.cluster().peers().len() == 1
    })
    .await;
    eventually("the small entry arrives", || {
        small.default_scope().whereis("early/small").is_some()
    })
    .await;
    eventually("the oversized entry is skipped and counted", || {
        small.cluster().stats().unwrap().items_skipped >= 1
    })
    .await;
    assert_eq!(small.default_scope().whereis("early/big"), None);

    // Linked now: a write the peer could not hold fails at the caller.
    let late = big.new_process();
    assert!(matches!(
        late.register("late/big", &blob(100 * 1024)),
        Err(RegistryError::InvalidMeta(MetaError::TooLargeForPeer { max, .. })) if max == 64 * 1024
    ));
    assert!(matches!(
        late.join(&"k".repeat(2000), &()),
        Err(RegistryError::InvalidKey(KeyError::TooLongForPeer {
            max: 1024,
            ..
        }))
    ));
    late.register("late/small", &"ok").unwrap();
    eventually("writes that fit still replicate", || {
        small.default_scope().whereis("late/small").is_some()
    })
    .await;

    // Messages: over the receiving node's limit fails at the sender; under it arrives.
    let mut receiver = small.new_process();
    receiver.join("room", &()).unwrap();
    eventually("the member is seen", || {
        big.default_scope().member_count("room") == 1
    })
    .await;
    assert!(matches!(
        big.send(receiver.pid(), &blob(2 * 1024 * 1024)),
        Err(SendError::TooLarge { max, .. }) if max == 1024 * 1024
    ));
    let dispatched = big
        .default_scope()
        .dispatch("room", &blob(2 * 1024 * 1024))
        .unwrap();
    assert_eq!(
        (dispatched.remote_nodes, dispatched.remote_too_large),
        (0, 1)
    );
    big.send(receiver.pid(), &blob(100 * 1024)).unwrap();
    let got: String = common::within("the message", receiver.recv())
        .await
        .unwrap();
    assert_eq!(got.len(), 100 * 1024);
    // Over this node's own limit: refused before anything is sent.
    assert!(matches!(
        big.send(receiver.pid(), &blob(5 * 1024 * 1024)),
        Err(SendError::TooLarge { max, .. }) if max == 4 * 1024 * 1024
    ));

    // Several anti-entropy rounds later, the skipped entry caused no repair and no
    // reconnect: both sides agree on what the smaller one can hold.
    tokio::time::sleep(Duration::from_millis(1000)).await;
    for node in [&big, &small] {
        let stats = node.cluster().stats().unwrap();
        assert_eq!(stats.links_established, 1, "{}: {stats:?}", node.name());
        assert_eq!(stats.digest_repairs, 0, "{}: {stats:?}", node.name());
        assert_eq!(stats.bad_frames, 0, "{}: {stats:?}", node.name());
    }
    drop(early);
    eventually("the small entry goes with its process", || {
        small.default_scope().whereis("early/small").is_none()
    })
    .await;
    big.shutdown().await;
    small.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_over_the_local_limit_are_refused_without_a_cluster() {
    let node = Node::builder().max_message_bytes(1024).start().unwrap();
    let p = node.new_process();
    assert!(matches!(
        node.send(p.pid(), &blob(2000)),
        Err(SendError::TooLarge { max: 1024, .. })
    ));
    p.join("g", &()).unwrap();
    assert!(matches!(
        node.default_scope().dispatch("g", &blob(2000)),
        Err(SendError::TooLarge { max: 1024, .. })
    ));
    node.send(p.pid(), &blob(100)).unwrap();
}

/// Ops with large meta are cut into frames by bytes as well as by count: a catch-up of
/// 1,200 entries of 60 KiB would make a 72 MiB frame, over every receiver's 64 MiB cap.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_catch_up_of_large_entries_comes_in_frames_a_receiver_accepts() {
    let a = start(Node::builder(), "a", &[]);
    let b = start(Node::builder(), "b", &[&a]);
    eventually("linked", || {
        a.cluster().peers().len() == 1 && b.cluster().peers().len() == 1
    })
    .await;
    let meta = blob(60 * 1024);
    // Written while the link is down: the catch-up then sends them all at once.
    a.cluster().sever_links(Duration::from_secs(3));
    let procs: Vec<_> = (0..1200)
        .map(|i| {
            let p = a.new_process();
            p.register(&format!("big/{i}"), &meta).unwrap();
            p
        })
        .collect();
    eventually("b has every entry", || {
        b.default_scope().name_count() == 1200
    })
    .await;
    let (sa, sb) = (a.cluster().stats().unwrap(), b.cluster().stats().unwrap());
    assert_eq!(sb.bad_frames, 0, "{sb:?}");
    // The first link, and the one after the sever: none dropped over a frame.
    assert_eq!((sa.links_established, sb.links_established), (2, 2));
    drop(procs);
    eventually("b sees them go", || b.default_scope().name_count() == 0).await;
    a.shutdown().await;
    b.shutdown().await;
}
