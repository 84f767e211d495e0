//! The simulation's setup: a cluster drawn from a seed, its nodes booted (again, as new
//! incarnations, after a crash), their clocks, and which of them are alive.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::VANISH_GRACE;
use super::network::Network;
use super::nodes;
use super::rules::SimRule;
use super::{Fenced, Sim, SimNode};
use crate::link_table::RedialPolicy;
use crate::nodes::Reach;
use crate::replication::core::{Core, CoreConfig};
use crate::replication::tests::pair::ManualClock;
use crate::store::test_support::replicating_stores_ruled;
use crate::vocab::key::Limits;
use crate::vocab::pid::Incarnation;

impl Sim {
    pub(super) fn new(seed: u64) -> Self {
        Self::with_nodes(seed, None)
    }

    /// A simulation of `count` nodes (drawn from the seed if `None`), with the seed's
    /// conflict rule.
    pub(super) fn with_nodes(seed: u64, count: Option<usize>) -> Self {
        Self::with_rule(seed, count, SimRule::of_seed(seed))
    }

    /// A simulation of `count` nodes (drawn from the seed if `None`) deciding conflicts by
    /// `rule`.
    pub(super) fn with_rule(seed: u64, count: Option<usize>, rule: SimRule) -> Self {
        let mut rng = StdRng::seed_from_u64(seed);
        let drawn = rng.random_range(2..=5);
        let count = count.unwrap_or(drawn);
        let max_delay_ms = rng.random_range(1..=20);
        let fault_rate = rng.random_range(0.0..0.08);
        let now = Instant::now();
        let mut sim = Self {
            rng,
            start: now,
            now,
            nodes: Vec::new(),
            net: Network::default(),
            pending_deaths: Vec::new(),
            pending_exits: Vec::new(),
            next_incarnation: 1,
            max_delay_ms,
            fault_rate,
            scopes: vec![BTreeSet::new(); count],
            log: Vec::new(),
            strategy: 0,
            last_beat: 0,
            fenced_steps: Fenced::default(),
            rule,
            decisions: Arc::default(),
            conflict_losers: 0,
        };
        sim.strategy = sim.rng.random_range(0..3);
        for i in 0..count {
            let node = sim.boot(i);
            sim.nodes.push(Some(node));
        }
        for i in 0..count {
            sim.publish_record(i);
            sim.announce(i, false);
        }
        sim.log.push(format!(
            "SEED={seed} nodes={count} max_delay_ms={max_delay_ms} fault_rate={fault_rate:.3} rule={rule:?}"
        ));
        sim
    }

    pub(super) fn elapsed_ms(&self) -> u64 {
        (self.now - self.start).as_millis() as u64
    }

    pub(super) fn boot(&mut self, index: usize) -> SimNode {
        let incarnation = Incarnation::new(self.next_incarnation);
        self.next_incarnation += 1;
        let skew_ms = self.rng.random_range(-500i64..=500);
        let clock = Arc::new(ManualClock::default());
        let stores = replicating_stores_ruled(
            incarnation.get(),
            clock.clone(),
            self.rule.conflict_rule(&self.decisions),
        );
        let mut sim_node = SimNode {
            name: format!("n{index}"),
            incarnation,
            stores,
            core: Core::new(
                incarnation,
                CoreConfig {
                    op_log: 64,
                    op_log_bytes: 4096,
                    max_ops_per_frame: 8,
                    max_queued_ops: 10_000,
                    anti_entropy_interval: Duration::from_millis(500),
                    silence: Duration::from_millis(2500),
                    limits: Limits::DEFAULT,
                    redial: RedialPolicy::default(),
                    max_handshakes: 4,
                    vanish_grace: VANISH_GRACE,
                },
            ),
            clock,
            skew_ms,
            processes: Vec::new(),
            expected: BTreeMap::new(),
            monitor: self.monitor(),
            reach: Reach::new(nodes::UNREACHABLE_AFTER_MS),
        };
        self.set_clock(&mut sim_node);
        for scope in self.scopes[index].clone() {
            sim_node
                .stores
                .connect(scope, false)
                .expect("a replicated scope");
        }
        sim_node
    }

    pub(super) fn set_clock(&self, node: &mut SimNode) {
        let base = 1_000_000_000 + self.elapsed_ms() as i64 + node.skew_ms;
        node.clock.0.store(base as u64, Ordering::Relaxed);
    }

    pub(super) fn alive(&self) -> Vec<usize> {
        (0..self.nodes.len())
            .filter(|i| self.nodes[*i].is_some())
            .collect()
    }

    /// The incarnations of the live nodes, as the stores name entries' origins.
    pub(super) fn live_origins(&self) -> Vec<u64> {
        self.nodes
            .iter()
            .flatten()
            .map(|n| n.incarnation.get())
            .collect()
    }

    pub(super) fn index_of(&self, incarnation: Incarnation) -> Option<usize> {
        self.nodes
            .iter()
            .position(|n| n.as_ref().is_some_and(|n| n.incarnation == incarnation))
    }
}
