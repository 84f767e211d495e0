//! The node registry in the simulation: every node publishes its record at boot and on
//! status changes, heartbeats on an interval, and runs a split-brain monitor that fences
//! it on the losing side of a partition. Checked: after the heal every node holds every
//! live node's current record, online; no fenced node accepts a new name; no node stays
//! fenced after the heal.

use rand::Rng;

use super::Sim;
use crate::nodes::{
    Heartbeat, NodeRecord, NodeStatus, SplitBrainAction, SplitBrainMonitor, SplitBrainSettings,
    SplitBrainStrategy,
};
use crate::vocab::pid::Incarnation;

/// How often each node publishes a heartbeat, in simulated milliseconds.
pub(super) const HEARTBEAT_MS: u64 = 300;

/// How long a member no link reaches stays reachable for the split-brain check: a node
/// whose links are severed (membership untouched) longer than this is on the other side.
pub(super) const UNREACHABLE_AFTER_MS: u64 = 3 * HEARTBEAT_MS;

impl Sim {
    /// The split-brain monitor a node boots with (strategy drawn per seed).
    pub(super) fn monitor(&self) -> SplitBrainMonitor {
        let strategy = match self.strategy {
            0 => SplitBrainStrategy::Majority,
            1 => SplitBrainStrategy::OldestNode,
            _ => SplitBrainStrategy::ConfiguredPrimary("n0".to_owned()),
        };
        SplitBrainMonitor::new(SplitBrainSettings {
            expected: None,
            strategy,
            action: SplitBrainAction::Fence,
        })
    }

    /// Publishes the record of a node that just booted.
    pub(super) fn publish_record(&mut self, index: usize) {
        let node = self.nodes[index].as_mut().expect("alive");
        let record = NodeRecord::new(
            &node.name,
            node.incarnation,
            node.stores.clock().now_millis(),
        );
        node.step(|core, host| core.set_own_record(host, record));
        self.flush(index);
    }

    /// A node changes its own status (an operator drains it, a threshold trips).
    pub(super) fn change_status(&mut self, index: usize) {
        let status = match self.rng.random_range(0..3) {
            0 => NodeStatus::Online,
            1 => NodeStatus::Degraded,
            _ => NodeStatus::Draining,
        };
        let node = self.nodes[index].as_mut().expect("alive");
        let Some(mut record) = node.stores.nodes.get(&node.name).map(|e| e.record) else {
            return;
        };
        if record.status == status {
            return;
        }
        record.status = status;
        record.status_reason = format!("simulated {status}");
        record.status_changed_ms = node.stores.clock().now_millis();
        record.revision += 1;
        node.step(|core, host| core.set_own_record(host, record));
        self.flush(index);
    }

    /// Heartbeats and split-brain checks, once per heartbeat interval.
    pub(super) fn node_duties(&mut self) {
        let beat = self.elapsed_ms() / HEARTBEAT_MS != self.last_beat / HEARTBEAT_MS;
        self.last_beat = self.elapsed_ms();
        if !beat {
            return;
        }
        for i in self.alive() {
            // The members its membership sees alive, judged by its links, as a real node
            // does: a sever that membership does not see puts the others out of reach.
            let members: Vec<(String, Incarnation)> = self
                .alive()
                .into_iter()
                .filter(|&j| j != i)
                .filter_map(|j| {
                    let peer = self.nodes[j].as_ref().expect("alive");
                    self.member(i, peer.incarnation)
                        .then(|| (peer.name.clone(), peer.incarnation))
                })
                .collect();
            let sees_everyone = members.len() + 1 == self.alive().len();
            let node = self.nodes[i].as_mut().expect("alive");
            let now_ms = node.stores.clock().now_millis();
            let core = &node.core;
            let mut reachable =
                node.reach
                    .update(&members, |peer| core.link(peer).is_some(), now_ms);
            reachable.insert(node.name.clone());
            let link_cut = !node.reach.unreachable().is_empty();
            let mut heartbeat = Heartbeat::at(now_ms);
            heartbeat.peers = node.core.peer_samples();
            heartbeat.processes = node.processes.len() as u64;
            node.step(|core, host| core.publish_heartbeat(host, heartbeat));
            let name = node.name.clone();
            let (status, _) = node.monitor.check(
                &name,
                &reachable,
                &node.stores.nodes,
                node.stores.fence(),
                now_ms,
            );
            if status.fenced {
                self.fenced_steps.steps += 1;
                if sees_everyone && link_cut {
                    self.fenced_steps.by_links_alone += 1;
                }
            }
            self.flush(i);
        }
    }

    /// After the heal: every node holds every live node's current record, online, with
    /// heartbeats; nobody is fenced.
    pub(super) fn check_nodes(&self) -> Vec<String> {
        let mut problems = Vec::new();
        let live: Vec<(String, NodeRecord)> = self
            .nodes
            .iter()
            .flatten()
            .map(|n| {
                let own = n
                    .stores
                    .nodes
                    .get(&n.name)
                    .expect("a node knows itself")
                    .record;
                (n.name.clone(), own)
            })
            .collect();
        for node in self.nodes.iter().flatten() {
            if let Some(fenced) = node.stores.fence().current() {
                problems.push(format!(
                    "{} is still fenced after the heal: {fenced:?}",
                    node.name
                ));
            }
            for (name, own) in &live {
                match node.stores.nodes.get(name) {
                    None => problems.push(format!("{} does not know {name}", node.name)),
                    Some(entry) => {
                        if entry.record != *own || entry.offline.is_some() {
                            problems.push(format!(
                                "{}'s record of {name} is {:?} (offline {:?}), not {:?}",
                                node.name, entry.record, entry.offline, own
                            ));
                        }
                        if name != &node.name && entry.heartbeats.is_empty() {
                            problems.push(format!("{} has no heartbeat of {name}", node.name));
                        }
                    }
                }
            }
        }
        problems
    }
}
