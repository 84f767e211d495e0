//! Unauthenticated clients on the cluster port: what they can make a node allocate, and
//! how many handshakes they can hold open. The bytes a node allocates are counted by the
//! global allocator of this test binary, so this file holds a single test.

use std::alloc::System;

use cap::Cap;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

mod common;
use common::eventually;

use roster::Node;

#[global_allocator]
static ALLOCATED: Cap<System> = Cap::new(System, usize::MAX);

const SECRET: &str = "hostile-test-secret";

fn start(name: &str, seeds: &[&Node]) -> Node {
    common::start_clustered(Node::builder(), name, common::cluster_config(SECRET, seeds))
}

/// Opens `count` connections to `node` and writes `bytes` on each; keeps them open.
async fn connect_and_send(node: &Node, count: usize, bytes: &[u8]) -> Vec<TcpStream> {
    let mut conns = Vec::with_capacity(count);
    for _ in 0..count {
        let mut tcp = TcpStream::connect(node.cluster().addr().unwrap())
            .await
            .expect("connects");
        tcp.write_all(bytes).await.expect("writes");
        conns.push(tcp);
    }
    conns
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unauthenticated_clients_cost_little_and_cannot_hold_the_port() {
    let node = start("target", &[]);
    let mib = |bytes: usize| bytes as f64 / (1024.0 * 1024.0);

    // 1. Announcing a 64 MiB greeting: refused at once, nothing allocated for it (each
    //    such connection used to cost 64 MiB).
    let before = ALLOCATED.allocated();
    let failures = node.cluster().stats().unwrap().handshake_failures;
    let huge = 0x03ff_ffffu32.to_be_bytes();
    let conns = connect_and_send(&node, 64, &huge).await;
    eventually("64 oversized greetings refused", || {
        node.cluster().stats().unwrap().handshake_failures >= failures + 64
    })
    .await;
    let grown = ALLOCATED.allocated().saturating_sub(before);
    assert!(
        grown < 8 * 1024 * 1024,
        "64 connections announcing 64 MiB made the node allocate {:.1} MiB",
        mib(grown)
    );
    drop(conns);

    // 2. Announcing a plausible greeting and sending nothing more: the handshake waits
    //    (until its timeout) holding only what arrived; beyond the bound of pending
    //    handshakes, connections are closed at once and counted.
    let before = ALLOCATED.allocated();
    let refused = node.cluster().stats().unwrap().connections_refused;
    let plausible = 4000u32.to_be_bytes();
    let conns = connect_and_send(&node, 100, &plausible).await;
    eventually("connections beyond the pending bound refused", || {
        node.cluster().stats().unwrap().connections_refused >= refused + 36
    })
    .await;
    let grown = ALLOCATED.allocated().saturating_sub(before);
    assert!(
        grown < 8 * 1024 * 1024,
        "100 pending handshakes made the node allocate {:.1} MiB",
        mib(grown)
    );
    drop(conns);

    // 3. Once they are gone, a real peer links and replicates.
    let peer = start("peer", &[&node]);
    eventually("the real peer links", || {
        node.cluster().peers().len() == 1 && peer.cluster().peers().len() == 1
    })
    .await;
    let p = peer.new_process();
    p.register("still/working", &()).unwrap();
    eventually("replication works", || {
        node.default_scope().whereis("still/working").is_some()
    })
    .await;
    drop(p);
    node.shutdown().await;
    peer.shutdown().await;
}
