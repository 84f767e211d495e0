//! The node monitor: every heartbeat interval (and at once on `Nodes::check_now`) it
//! samples this node's metrics, judges its own health against the degraded thresholds
//! (publishing `Degraded` with the reasons in its record, and `Online` again once
//! healthy), publishes the heartbeat, drops the records of nodes dead for longer than the
//! retention, and runs the split-brain check that may fence the node.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Duration;

use tokio::sync::Notify;

use super::NodeShared;
use super::host_metrics::HostSampler;
use crate::clock::saturating_millis;
use crate::nodes::{
    HealthSettings, Heartbeat, NodeEvent, NodeRecord, NodeStatus, PartitionChange, PartitionStatus,
    Reach, SplitBrainMonitor, SplitBrainSettings, Unreachable,
};
use crate::pid::Incarnation;
use crate::replication::host::ReplicaHost;

/// The node's own record and health state, and its split-brain monitor.
pub(crate) struct Monitor {
    pub(crate) health: HealthSettings,
    /// This node's record as it last published it.
    record: Mutex<NodeRecord>,
    /// The current `Degraded` status was set by the thresholds (not by the user), so a
    /// healthy heartbeat turns it back `Online`.
    auto_degraded: AtomicBool,
    /// Application metrics added to every heartbeat.
    app: Mutex<BTreeMap<String, f64>>,
    split_brain: Mutex<SplitBrainMonitor>,
    /// The members this node reaches: alive for membership, and linked (or not for less
    /// than `unreachable_after`).
    reach: Mutex<Reach>,
    /// How often the split-brain check runs (its own timer, apart from the heartbeats).
    partition_interval: Duration,
    /// Wakes the split-brain check at once (membership changed).
    pub(crate) partition_wake: Arc<Notify>,
    host: Mutex<HostSampler>,
    /// Wakes the monitor task for an immediate check.
    pub(crate) wake: Arc<Notify>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // No critical section here leaves state half-written before a panic could occur.
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

impl Monitor {
    pub(crate) fn new(
        health: HealthSettings,
        record: NodeRecord,
        split_brain: SplitBrainSettings,
        partition_interval: Duration,
    ) -> Self {
        let grace = saturating_millis(health.unreachable_after);
        Self {
            health,
            record: Mutex::new(record),
            auto_degraded: AtomicBool::new(false),
            app: Mutex::new(BTreeMap::new()),
            split_brain: Mutex::new(SplitBrainMonitor::new(split_brain)),
            reach: Mutex::new(Reach::new(grace)),
            partition_interval,
            partition_wake: Arc::new(Notify::new()),
            host: Mutex::new(HostSampler::new()),
            wake: Arc::new(Notify::new()),
        }
    }

    /// This node's record.
    pub(crate) fn record(&self) -> NodeRecord {
        lock(&self.record).clone()
    }

    /// Sets the addresses of the record (before it is first published).
    pub(crate) fn set_addrs(&self, addrs: Vec<String>) {
        lock(&self.record).addrs = addrs;
    }

    /// Sets an application metric for the next heartbeats (`None` removes it).
    pub(crate) fn set_app_metric(&self, name: &str, value: Option<f64>) {
        let mut app = lock(&self.app);
        match value {
            Some(value) => app.insert(name.to_owned(), value),
            None => app.remove(name),
        };
    }

    /// The status of the last split-brain check.
    pub(crate) fn partition_status(&self) -> Option<PartitionStatus> {
        lock(&self.split_brain).status().cloned()
    }
}

impl NodeShared {
    /// Changes this node's own status and publishes its record. `by_thresholds`: set by
    /// the degraded thresholds rather than the user.
    pub(crate) fn change_status(&self, status: NodeStatus, reason: &str, by_thresholds: bool) {
        let record = {
            let mut record = lock(&self.monitor.record);
            if record.status == status && record.status_reason == reason {
                return;
            }
            record.status = status;
            record.status_reason = reason.to_owned();
            record.status_changed_ms = self.stores.now_ms();
            // A node only ever publishes itself offline when it leaves.
            record.left = status == NodeStatus::Offline;
            record.revision += 1;
            record.clone()
        };
        self.monitor.auto_degraded.store(
            by_thresholds && status == NodeStatus::Degraded,
            Ordering::Relaxed,
        );
        if self.logs_info() {
            tracing::info!(status = %status, reason, "node status changed");
        }
        self.publish_record(record);
    }

    /// Changes this node's record with `change` (role, labels, version) and publishes it as
    /// a new revision; a record over the bounds of a record is refused, unchanged.
    pub(crate) fn update_record(&self, change: impl FnOnce(&mut NodeRecord)) -> Result<(), String> {
        let record = {
            let mut record = lock(&self.monitor.record);
            let mut changed = record.clone();
            change(&mut changed);
            changed.validate()?;
            if changed == *record {
                return Ok(());
            }
            changed.revision += 1;
            *record = changed.clone();
            changed
        };
        self.publish_record(record);
        Ok(())
    }

    /// Publishes this node's record: to the peers through the replication core when
    /// clustered, and into its own registry.
    pub(crate) fn publish_record(&self, record: NodeRecord) {
        match self.cluster() {
            Some(cluster) => cluster.with_core(|core, host| core.set_own_record(host, record)),
            None => {
                self.stores.nodes.apply_record(record, self.stores.now_ms());
            }
        }
    }

    /// One round of the monitor; see the [module docs](self).
    pub(crate) fn run_checks(&self) {
        let heartbeat = self.sample();
        self.judge_own_health(&heartbeat);
        match self.cluster() {
            Some(cluster) => cluster.with_core(|core, host| {
                core.publish_heartbeat(host, heartbeat);
                core.probe(std::time::Instant::now());
            }),
            None => {
                self.stores.nodes.apply_heartbeat(
                    self.incarnation,
                    heartbeat,
                    self.stores.now_ms(),
                );
            }
        }
        self.check_externals();
        let retention = saturating_millis(self.monitor.health.offline_retention);
        for name in self.stores.nodes.expire(self.stores.now_ms(), retention) {
            if self.logs_info() {
                tracing::info!(node = %name, "dropped the record of a node offline past the retention");
            }
        }
    }

    /// Re-evaluates the split-brain verdict (only clustered nodes have one).
    pub(crate) fn check_partition(&self) -> Option<PartitionStatus> {
        let cluster = self.cluster()?;
        let now_ms = self.stores.now_ms();
        let (members, linked) = cluster.member_links();
        let (mut reachable, before, after) = {
            let mut reach = lock(&self.monitor.reach);
            let before = reach.unreachable().clone();
            let reachable = reach.update(&members, |inc| linked.contains(&inc), now_ms);
            (reachable, before, reach.unreachable().clone())
        };
        self.publish_reach_changes(&before, &after);
        reachable.insert(self.name.clone());
        let (status, change) = lock(&self.monitor.split_brain).check(
            &self.name,
            &reachable,
            &self.stores.nodes,
            self.stores.fence(),
            now_ms,
        );
        let node = self.name.clone();
        match change {
            Some(PartitionChange::Detected(status)) => {
                tracing::warn!(
                    unreachable = ?status.unreachable,
                    verdict = %status.verdict.reason,
                    fenced = status.fenced,
                    "partition suspected"
                );
                self.stores
                    .nodes
                    .publish(NodeEvent::PartitionDetected { node, status });
            }
            Some(PartitionChange::Healed(status)) => {
                if self.logs_info() {
                    tracing::info!("partition healed");
                }
                self.stores
                    .nodes
                    .publish(NodeEvent::PartitionHealed { node, status });
            }
            None => {}
        }
        Some(status)
    }

    /// The members no link has reached for longer than the grace, as of the last check.
    pub(crate) fn unreachable(&self) -> BTreeMap<Incarnation, Unreachable> {
        lock(&self.monitor.reach).unreachable().clone()
    }

    /// Tells node subscribers of the members that became unreachable, or reachable again,
    /// between two checks: a status change as this node judges it.
    fn publish_reach_changes(
        &self,
        before: &BTreeMap<Incarnation, Unreachable>,
        after: &BTreeMap<Incarnation, Unreachable>,
    ) {
        for (inc, gone) in after.iter().filter(|(inc, _)| !before.contains_key(inc)) {
            let old = self
                .stores
                .nodes
                .get(&gone.name)
                .filter(|e| e.record.incarnation == *inc)
                .map_or(NodeStatus::Online, |e| e.status());
            tracing::warn!(node = %gone.name, "membership sees it alive, but no link reaches it: unreachable");
            self.stores.nodes.publish(NodeEvent::Status {
                name: gone.name.clone(),
                old,
                new: NodeStatus::Unreachable,
                reason: "membership sees it alive, but no link reaches it".to_owned(),
            });
        }
        for (inc, back) in before.iter().filter(|(inc, _)| !after.contains_key(inc)) {
            // Back through a link, or gone from membership (then its Down says so).
            let Some(entry) = self
                .stores
                .nodes
                .get(&back.name)
                .filter(|e| e.record.incarnation == *inc && e.offline.is_none())
            else {
                continue;
            };
            if self.logs_info() {
                tracing::info!(node = %back.name, "a link reaches it again");
            }
            self.stores.nodes.publish(NodeEvent::Status {
                name: back.name.clone(),
                old: NodeStatus::Unreachable,
                new: entry.status(),
                reason: "a link reaches it again".to_owned(),
            });
        }
    }

    /// This node's heartbeat now.
    fn sample(&self) -> Heartbeat {
        let host = lock(&self.monitor.host).sample();
        let mut heartbeat = Heartbeat::at(self.stores.now_ms());
        heartbeat.cpu_load = host.cpu_load;
        heartbeat.mem_used_bytes = host.mem_used_bytes;
        heartbeat.mem_total_bytes = host.mem_total_bytes;
        heartbeat.processes = self.stores.processes.cells.len() as u64;
        for scope in self.stores.all() {
            heartbeat.names += scope.registry_count(false) as u64;
            heartbeat.memberships += scope.membership_count(false) as u64;
        }
        heartbeat.members = 1;
        if let Some(cluster) = self.cluster() {
            heartbeat.members += cluster.member_count() as u64;
            let scopes: Vec<_> = self.stores.replicated().map(|s| s.name.clone()).collect();
            cluster.read_core(|core| {
                heartbeat.peers = core.peer_samples();
                heartbeat.op_log_position = scopes.iter().map(|s| core.own_seq(s)).sum();
            });
        }
        heartbeat.app = lock(&self.monitor.app).clone();
        heartbeat
    }

    /// Turns this node `Degraded` when its heartbeat is over a threshold, and back
    /// `Online` when it recovers (a status the user set is left alone).
    fn judge_own_health(&self, heartbeat: &Heartbeat) {
        let reasons = self.monitor.health.degraded.reasons(heartbeat);
        let status = lock(&self.monitor.record).status;
        let auto = self.monitor.auto_degraded.load(Ordering::Relaxed);
        match (status, reasons.is_empty()) {
            (NodeStatus::Online, false) => {
                self.change_status(NodeStatus::Degraded, &reasons.join("; "), true);
            }
            (NodeStatus::Degraded, false) if auto => {
                self.change_status(NodeStatus::Degraded, &reasons.join("; "), true);
            }
            (NodeStatus::Degraded, true) if auto => {
                self.change_status(NodeStatus::Online, "recovered: every threshold met", false);
            }
            _ => {}
        }
    }
}

/// Runs the monitor every heartbeat interval, or at once when woken, until the node is
/// gone.
pub(crate) async fn monitor_loop(node: Weak<NodeShared>) {
    loop {
        let (interval, wake) = {
            let Some(node) = node.upgrade() else {
                return;
            };
            (
                node.monitor.health.heartbeat_interval,
                node.monitor.wake.clone(),
            )
        };
        tokio::select! {
            () = tokio::time::sleep(interval) => {}
            () = wake.notified() => {}
        }
        let Some(node) = node.upgrade() else {
            return;
        };
        node.run_checks();
    }
}

/// Runs the split-brain check every check interval, and at once when membership changes,
/// until the node is gone or leaves the cluster (a node without a cluster has no check).
async fn partition_loop(node: Weak<NodeShared>) {
    loop {
        let Some(strong) = node.upgrade() else {
            return;
        };
        let interval = strong.monitor.partition_interval;
        // The node is not held while waiting (a wake-up before the wait is kept by
        // `Notify` as a permit).
        let wake = strong.monitor.partition_wake.clone();
        drop(strong);
        tokio::select! {
            () = tokio::time::sleep(interval) => {}
            () = wake.notified() => {}
        }
        let Some(node) = node.upgrade() else {
            return;
        };
        if node.check_partition().is_none() {
            return;
        }
    }
}

/// Starts the monitor tasks of a node: heartbeats and health, and the split-brain check.
pub(crate) fn start_monitor(node: &Arc<NodeShared>) {
    node.runtime.spawn(monitor_loop(Arc::downgrade(node)));
    if node.cluster().is_some() {
        // The first check at once: the verdict is known from the start.
        node.check_partition();
        node.runtime.spawn(partition_loop(Arc::downgrade(node)));
    }
}
