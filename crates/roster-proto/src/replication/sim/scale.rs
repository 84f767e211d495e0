//! What the full mesh costs as clusters grow: the simulation at 25, 50 and 100 nodes.
//!
//! A measurement, not a check, so it is `#[ignore]`d and prints its figures:
//! `cargo test --release -p roster-proto --lib scale_figures -- --ignored --nocapture`.
//! For each size, with no faults: every node registers [`WRITES_PER_NODE`] names, and we
//! count the frames and encoded bytes all nodes put on links per write; then the cluster
//! is cut in two halves, each half writes as much again, and after the heal we measure
//! the simulated time until every node holds the same view; and the resident memory the
//! process grew by per node (cores, stores, link state and connections of the
//! simulation; a rough figure, from `/proc/self/statm`). The cores run the simulation's
//! small settings (frames of at most 8 ops, an op log of 64), so bytes per write are
//! those of small frames.

use std::time::Instant;

use super::Sim;
use super::invariants::view;
use crate::vocab::key::Key;
use crate::vocab::meta::Meta;

/// Names each node registers per phase.
const WRITES_PER_NODE: usize = 4;

/// Longest simulated time a phase may take to settle, ms.
const SETTLE_LIMIT_MS: u64 = 60_000;

/// Resident memory of this process, bytes (0 where `/proc` is missing).
fn resident_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1)?.parse::<u64>().ok())
        .map_or(0, |pages| pages * 4096)
}

/// Whether every node holds the same view of the default scope.
fn agreed(sim: &Sim) -> bool {
    let mut views = sim
        .nodes
        .iter()
        .flatten()
        .map(|n| view(n.stores.default_scope()));
    let Some(first) = views.next() else {
        return true;
    };
    views.all(|v| v.names == first.names && v.members == first.members)
}

/// Advances in 1 ms steps until `done` holds and nothing is in flight; returns the
/// simulated ms it took.
fn settle_until(sim: &mut Sim, done: impl Fn(&Sim) -> bool) -> u64 {
    let start = sim.elapsed_ms();
    while !(sim.net.in_flight() == 0 && done(sim)) {
        assert!(
            sim.elapsed_ms() - start < SETTLE_LIMIT_MS,
            "did not settle within {SETTLE_LIMIT_MS} ms"
        );
        sim.advance(1);
    }
    sim.elapsed_ms() - start
}

/// Every node in `nodes` registers [`WRITES_PER_NODE`] new names under `prefix`.
fn write(sim: &mut Sim, nodes: impl Iterator<Item = usize>, prefix: &str) -> usize {
    let mut writes = 0;
    for i in nodes {
        let node = sim.nodes[i].as_mut().expect("no node crashes here");
        for w in 0..WRITES_PER_NODE {
            let p = node.new_process();
            node.stores
                .default_scope()
                .register(&p, Key::from(format!("{prefix}/{i}/{w}")), Meta::EMPTY)
                .expect("a fresh name");
            node.expected.entry(p.pid).or_default();
            node.processes.push(p);
            writes += 1;
        }
        node.step(|core, host| core.handle_local_ops(host));
        sim.flush(i);
    }
    writes
}

#[test]
#[ignore = "a measurement that prints figures, not a check; see the module docs"]
fn scale_figures() {
    for n in [25, 50, 100] {
        let wall = Instant::now();
        let before = resident_bytes();
        let mut sim = Sim::with_nodes(1, Some(n));
        let linked_ms = settle_until(&mut sim, |s| s.check_links(true).is_empty());
        let per_node = resident_bytes().saturating_sub(before) / n as u64;

        sim.net.traffic = Some((0, 0));
        let writes = write(&mut sim, 0..n, "steady");
        settle_until(&mut sim, agreed);
        let (frames, bytes) = sim.net.traffic.take().expect("counting");

        let half = n / 2;
        for a in 0..half {
            for b in half..n {
                sim.net.cut.insert((a, b));
            }
        }
        let crossing: Vec<u64> = sim.net.conns.keys().copied().collect();
        for conn in crossing {
            sim.break_conn(conn);
        }
        write(&mut sim, 0..n, "split");
        sim.advance(100);
        sim.heal();
        let converge_ms = settle_until(&mut sim, |s| agreed(s) && s.check_links(true).is_empty());
        let problems = sim.check();
        assert!(problems.is_empty(), "{problems:?}");
        println!(
            "sim scale: {n} nodes: linked in {linked_ms} ms (simulated); per write: {:.1} frames, \
             {:.0} bytes ({:.1} bytes per peer); converged {converge_ms} ms (simulated) after \
             healing a split into halves; resident memory {:.0} KiB per node; \
             {:.1} s of wall time",
            frames as f64 / writes as f64,
            bytes as f64 / writes as f64,
            bytes as f64 / (writes * (n - 1)) as f64,
            per_node as f64 / 1024.0,
            wall.elapsed().as_secs_f64(),
        );
    }
}
