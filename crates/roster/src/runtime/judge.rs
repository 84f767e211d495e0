//! One status per node, as this node judges it: from the node's own record, from
//! membership (offline), from the replication links (unreachable: see
//! `roster_proto::nodes::Reach`) and from the heartbeats it misses (degraded). An
//! external node's status is the one its keeper publishes. Every view
//! of the node registry (a node's info, the list and its filters, liveness, health, the
//! graph) reads statuses through one [`Judge`], so they cannot disagree.

use std::collections::BTreeMap;

use super::NodeShared;
use crate::clock::saturating_millis;
use crate::nodes::{NodeEntry, NodeStatus, Unreachable};
use crate::pid::Incarnation;
use crate::replication::host::ReplicaHost;

/// What this node knows at one instant to judge the status of every node.
pub(crate) struct Judge {
    unreachable: BTreeMap<Incarnation, Unreachable>,
    now_ms: u64,
    /// Missed heartbeat intervals from which a node is degraded (0: never).
    missed_threshold: u64,
    interval_ms: u64,
    me: String,
}

impl NodeShared {
    /// A judge of node statuses as of now.
    pub(crate) fn judge(&self) -> Judge {
        let health = &self.monitor.health;
        Judge {
            unreachable: self.unreachable(),
            now_ms: self.stores.now_ms(),
            missed_threshold: u64::from(health.degraded.missed_heartbeats),
            interval_ms: saturating_millis(health.heartbeat_interval).max(1),
            me: self.name.clone(),
        }
    }
}

impl Judge {
    /// The status of `entry`'s node: `Offline` while offline; `Unreachable` while
    /// membership sees it but no link has reached it for the grace; its own status, but
    /// `Degraded` for an `Online` node whose heartbeats this node misses.
    pub(crate) fn status(&self, entry: &NodeEntry) -> NodeStatus {
        match entry.status() {
            NodeStatus::Offline => NodeStatus::Offline,
            _ if self.unreachable_since(entry).is_some() => NodeStatus::Unreachable,
            NodeStatus::Online if self.missed_heartbeats(entry).is_some() => NodeStatus::Degraded,
            status => status,
        }
    }

    /// Since when no link reaches `entry`'s node, if it is judged unreachable.
    pub(crate) fn unreachable_since(&self, entry: &NodeEntry) -> Option<u64> {
        self.unreachable
            .get(&entry.record.incarnation)
            .map(|u| u.since_ms)
    }

    /// How many heartbeat intervals `entry`'s node has been silent, if at least the
    /// threshold (and it is an up member other than this node: an external node's
    /// heartbeats come at its own pace, and its keeper judges them).
    pub(crate) fn missed_heartbeats(&self, entry: &NodeEntry) -> Option<u64> {
        if self.missed_threshold == 0
            || entry.offline.is_some()
            || entry.record.name == self.me
            || entry.record.is_external()
        {
            return None;
        }
        let missed = self.now_ms.saturating_sub(entry.last_seen_ms) / self.interval_ms;
        (missed >= self.missed_threshold).then_some(missed)
    }
}
