//! The node as the host of its replication core: what the core reads (the replicated
//! stores), the local ops handed to it, and what the node does with the core's events
//! (names lost in conflicts).

use std::sync::Arc;

use super::NodeShared;
use crate::cluster::Cluster;
use crate::event::ExitReason;
use crate::key::Limits;
use crate::op::{Outbox, Outgoing};
use crate::replication::host::ReplicaHost;
use crate::store::{ApplyOutcome, ScopeStore};

impl NodeShared {
    /// The smallest limits among the linked peers; `None` when no peer is linked.
    pub(crate) fn peer_limits(&self) -> Option<Limits> {
        self.cluster.load().as_ref().and_then(|c| c.peer_limits())
    }

    /// Hands the ops of local writes to the cluster layer, if there are any. Called after
    /// every local write from the public API (never from inside the replication core).
    pub(crate) fn flush_local(&self) {
        if self.outbox.as_ref().is_some_and(|o| !o.is_empty())
            && let Some(cluster) = self.cluster.load().as_ref()
        {
            cluster.on_local_ops();
        }
    }

    pub(crate) fn cluster(&self) -> Option<Arc<Cluster>> {
        self.cluster.load_full()
    }

    /// The outbox of local ops, when the node replicates.
    pub(crate) fn outbox(&self) -> Option<&Outbox> {
        self.outbox.as_deref()
    }

    /// Takes the ops of local writes not yet handed to the replication core.
    pub(crate) fn take_local_ops(&self) -> Vec<Outgoing> {
        self.outbox.as_deref().map(Outbox::take).unwrap_or_default()
    }

    /// Local processes lost names in conflicts (the names are already removed): each is
    /// ended with [`ExitReason::Conflict`], or told through `Process::lost_names` when the
    /// node is configured not to kill losers.
    pub(crate) fn conflicts_lost(&self, applied: ApplyOutcome) {
        for (loser, key, winner) in applied.lost {
            let Some(cell) = self.process_cell(loser) else {
                continue;
            };
            if !self.kill_conflict_losers {
                cell.lost_name(key, winner);
            } else if self.exit(&cell, ExitReason::Conflict { key, winner }) {
                cell.abort_task();
            }
        }
    }
}

impl ReplicaHost for NodeShared {
    fn replicated_scope(&self, name: &str) -> Option<Arc<ScopeStore>> {
        self.scopes
            .pin()
            .get(name)
            .filter(|s| !s.local_only && s.is_connected())
            .cloned()
    }

    fn replicated_scopes(&self) -> Vec<Arc<ScopeStore>> {
        let mut scopes: Vec<Arc<ScopeStore>> = self
            .scopes
            .pin()
            .values()
            .filter(|s| !s.local_only && s.is_connected())
            .cloned()
            .collect();
        scopes.sort_by(|a, b| a.name.cmp(&b.name));
        scopes
    }

    fn local_ops_pending(&self) -> bool {
        self.outbox.as_ref().is_some_and(|o| !o.is_empty())
    }
}
