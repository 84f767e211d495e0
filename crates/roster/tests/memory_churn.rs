//! Memory after churn: rounds of registrations, joins, deaths, severed links and a node
//! restart leave the bytes a cluster holds flat once every entry is gone.
//!
//! A counting global allocator ([`cap::Cap`] over the system allocator) counts the bytes
//! allocated by the whole test process, so this file holds one test, running its own
//! runtime: nothing else allocates meanwhile. Bytes are read only once the cluster has
//! converged (every node sees every entry gone and every link is back), never after a
//! delay.

use std::alloc::System;
use std::time::Duration;

use cap::Cap;

mod common;
use common::{eventually, fully_linked};

use roster::{Node, Process};

#[global_allocator]
static ALLOCATOR: Cap<System> = Cap::new(System, usize::MAX);

const SECRET: &str = "memory-churn-secret";

/// The op log budget per node and scope: a round writes several times this.
const OP_LOG_BYTES: usize = 256 * 1024;

/// Meta of every registration: large, so that a log that kept every op would grow by
/// about 1 MiB per node and round.
const META_BYTES: usize = 2048;

/// Processes started per node and round, in bursts that each converge before the next:
/// small bursts keep frames (and the read buffers that grow to the largest one) small.
const BURSTS: usize = 10;
const PER_BURST: usize = 50;

const ROUNDS: usize = 8;

/// How much the bytes may move between rounds once the logs are full: read buffers,
/// garbage awaiting epoch reclamation and frames in flight. A log bounded by count only
/// adds about 2.3 MiB per round here (on a and b: c restarts with an empty log).
const TOLERANCE: usize = 2 * 1024 * 1024;

fn start(name: &str, seeds: &[&Node]) -> Node {
    let config = common::cluster_config(SECRET, seeds)
        .anti_entropy_interval(Duration::from_millis(300))
        .redial_backoff(Duration::from_millis(2), Duration::from_millis(40))
        .op_log_bytes(OP_LOG_BYTES);
    common::start_clustered(Node::builder(), name, config)
}

fn empty(nodes: &[&Node]) -> bool {
    nodes
        .iter()
        .all(|n| n.default_scope().name_count() == 0 && n.default_scope().membership_count() == 0)
}

fn mib(bytes: usize) -> String {
    format!("{:.2} MiB", bytes as f64 / (1024.0 * 1024.0))
}

/// One round: every node starts processes that register with a large meta and join a
/// group; one node's links are severed while half of the processes die; the rest die
/// once the links are back. Returns when no node holds any entry.
async fn churn(nodes: &[&Node], round: usize, meta: &[u8]) {
    let mut procs: Vec<Vec<Process>> = nodes.iter().map(|_| Vec::new()).collect();
    for burst in 0..BURSTS {
        for (n, node) in nodes.iter().enumerate() {
            for i in 0..PER_BURST {
                let p = node.new_process();
                p.register(&format!("churn/{round}/{n}/{burst}/{i}"), meta)
                    .unwrap();
                p.join(&format!("group/{}", i % 8), &(i as u8)).unwrap();
                procs[n].push(p);
            }
        }
        let names = (burst + 1) * PER_BURST * nodes.len();
        eventually(&format!("round {round}: burst {burst} everywhere"), || {
            nodes
                .iter()
                .all(|n| n.default_scope().name_count() == names)
        })
        .await;
    }
    nodes[round % nodes.len()]
        .cluster()
        .sever_links(Duration::from_millis(50));
    for list in procs.iter_mut() {
        list.truncate(list.len() / 2);
    }
    eventually(&format!("round {round}: relinked"), || fully_linked(nodes)).await;
    drop(procs);
    eventually(&format!("round {round}: every entry gone"), || empty(nodes)).await;
}

#[test]
fn long_churn_leaves_memory_flat() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime");
    runtime.block_on(async {
        let a = start("a", &[]);
        let b = start("b", &[&a]);
        let mut c = start("c", &[&a, &b]);
        eventually("three nodes linked", || fully_linked(&[&a, &b, &c])).await;
        let meta = vec![7u8; META_BYTES];
        let linked = ALLOCATOR.allocated();
        let mut after = Vec::new();
        for round in 0..ROUNDS {
            // c restarts: a new incarnation replaces the old one on a and b.
            c.shutdown().await;
            c = start("c", &[&a, &b]);
            let nodes = [&a, &b, &c];
            eventually("relinked after the restart", || fully_linked(&nodes)).await;
            churn(&nodes, round, &meta).await;
            after.push(ALLOCATOR.allocated());
            println!("after round {round}: {}", mib(after[round]));
        }
        // Round 0 fills the logs to their bound; from round 1 on nothing should grow.
        let baseline = after[1];
        for (round, &bytes) in after.iter().enumerate().skip(2) {
            assert!(
                bytes <= baseline + TOLERANCE,
                "round {round} ends with {} more than round 1 ({} then {}): memory grows \
                 with churn",
                mib(bytes - baseline),
                mib(baseline),
                mib(bytes)
            );
        }
        // What the cluster holds after churn: each node's log within its budget (twice
        // it, for spare room in the log's slot array), plus read buffers and tables.
        let held = after.iter().max().expect("rounds").saturating_sub(linked);
        let bound = 3 * 2 * OP_LOG_BYTES + 4 * 1024 * 1024;
        assert!(
            held <= bound,
            "{} held after churn, over {}",
            mib(held),
            mib(bound)
        );
        for node in [a, b, c] {
            node.shutdown().await;
        }
    });
}
