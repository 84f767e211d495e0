//! Links under stress through real sockets: sever/heal cycles, overload, hostile
//! connections. Several nodes in one test process over loopback. Built in release mode by
//! CI as well, where the cycle counts are higher (see `cycles`). The core's decisions
//! alone (a sever refuses every handshake, redials back off) are tested without sockets,
//! on virtual time, in `roster-proto` (`links_tests`, and the simulation's checks).

use std::time::Duration;

mod common;
use common::{eventually, fully_linked};

use roster::{ClusterConfig, Node, NodeBuilder, Process};

const SECRET: &str = "robustness-test-secret";

/// How many times a stress loop runs: hundreds in an optimized build, a few dozen in a
/// debug build (the default `cargo test`).
fn cycles(release: usize, debug: usize) -> usize {
    if cfg!(debug_assertions) {
        debug
    } else {
        release
    }
}

fn config(seeds: &[&Node]) -> ClusterConfig {
    common::cluster_config(SECRET, seeds).anti_entropy_interval(Duration::from_millis(300))
}

fn start(builder: NodeBuilder, name: &str, config: ClusterConfig) -> Node {
    common::start_clustered(builder, name, config)
}

/// Registers a fresh name on every node and waits until every node sees all of them:
/// replication works in every direction.
async fn replicates_everywhere(nodes: &[&Node], round: usize) -> Vec<Process> {
    let procs: Vec<Process> = nodes
        .iter()
        .enumerate()
        .map(|(i, n)| {
            let p = n.new_process();
            p.register(&format!("probe/{round}/{i}"), &()).unwrap();
            p
        })
        .collect();
    for node in nodes {
        eventually(
            &format!("round {round}: {} sees every probe", node.name()),
            || {
                (0..nodes.len()).all(|i| {
                    node.default_scope()
                        .whereis(&format!("probe/{round}/{i}"))
                        .is_some()
                })
            },
        )
        .await;
    }
    procs
}

/// Isolating one of three nodes and healing, over and over: every heal relinks every pair
/// and replication flows in every direction again (a link left without its reader used to
/// stop two nodes from ever replicating again, about one heal in seven).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_heal_relinks_and_replicates_in_every_direction() {
    let fast = |seeds: &[&Node]| {
        config(seeds).redial_backoff(Duration::from_millis(2), Duration::from_millis(40))
    };
    let a = start(Node::builder(), "a", fast(&[]));
    let b = start(Node::builder(), "b", fast(&[&a]));
    let c = start(Node::builder(), "c", fast(&[&a, &b]));
    let nodes = [&a, &b, &c];
    eventually("three nodes linked", || fully_linked(&nodes)).await;
    let mut kept = Vec::new();
    for round in 0..cycles(300, 30) {
        let isolated = nodes[round % 3];
        isolated
            .cluster()
            .sever_links(Duration::from_millis(5 + (round as u64 * 7) % 30));
        eventually(&format!("round {round}: relinked"), || fully_linked(&nodes)).await;
        kept = replicates_everywhere(&nodes, round).await;
    }
    drop(kept);
    // A link left listed after its connection ended would be found only by the silent-link
    // closer (after 5 silent intervals), well within the waits above: it must never have
    // had to act.
    for node in nodes {
        let silent = node.cluster().stats().unwrap().links_silent;
        assert_eq!(
            silent,
            0,
            "{}: {silent} links closed for silence",
            node.name()
        );
    }
    for node in nodes {
        node.shutdown().await;
    }
}

/// A peer whose link overflows the queue bound is dropped, and then catches up anyway:
/// catch-up is paced by the socket and not counted as backlog, whatever the bound.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_overloaded_peer_always_converges() {
    let small = |seeds: &[&Node]| config(seeds).max_queued_ops(100);
    let a = start(Node::builder(), "a", small(&[]));
    let b = start(Node::builder(), "b", small(&[&a]));
    eventually("linked", || fully_linked(&[&a, &b])).await;
    let writes = 5_000;
    let procs: Vec<Process> = (0..writes)
        .map(|i| {
            let p = a.new_process();
            p.register(&format!("burst/{i}"), &i).unwrap();
            p
        })
        .collect();
    eventually("b has every name", || {
        b.default_scope().name_count() == writes
    })
    .await;
    let overloaded = a.cluster().stats().unwrap().links_overloaded;
    // The burst is 50 times the bound: the link must have been dropped for overload, or
    // this test checked no catch-up after one.
    assert!(
        overloaded >= 1,
        "5,000 writes never overloaded a peer whose bound is 100 queued ops"
    );
    assert!(
        overloaded < 10,
        "the link was dropped {overloaded} times for 5,000 writes"
    );
    drop(procs);
    eventually("b sees every name go", || {
        b.default_scope().name_count() == 0
    })
    .await;
    a.shutdown().await;
    b.shutdown().await;
}

/// Hostile connection patterns, many times over, against a node that keeps replicating:
/// garbage, oversized announced frames, truncated greetings, connect-and-close, and
/// connections that say nothing. Every round ends with replication working both ways.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_connections_never_stop_replication() {
    use tokio::io::AsyncWriteExt;
    use tokio::net::TcpStream;

    let a = start(Node::builder(), "a", config(&[]));
    let b = start(Node::builder(), "b", config(&[&a]));
    eventually("linked", || fully_linked(&[&a, &b])).await;
    let target = a.cluster().addr().unwrap();
    let patterns: [&[u8]; 5] = [
        b"GET / HTTP/1.1\r\nHost: roster\r\n\r\n",
        &[0x03, 0xff, 0xff, 0xff],
        &[0x00, 0x00, 0x00, 0x40, 0x01, 0x02],
        &[],
        &[0x00, 0x00, 0x10, 0x00],
    ];
    let mut kept = Vec::new();
    for round in 0..cycles(100, 10) {
        let mut held = Vec::new();
        for (i, bytes) in patterns.iter().enumerate().cycle().take(20) {
            let Ok(mut tcp) = TcpStream::connect(target).await else {
                continue;
            };
            let _ = tcp.write_all(bytes).await;
            // Half of them stay open for the round, the others close at once.
            if i % 2 == 0 {
                held.push(tcp);
            }
        }
        kept = replicates_everywhere(&[&a, &b], round).await;
        drop(held);
    }
    drop(kept);
    let stats = a.cluster().stats().unwrap();
    assert_eq!(
        stats.links_established, 1,
        "the real link never dropped: {stats:?}"
    );
    a.shutdown().await;
    b.shutdown().await;
}
