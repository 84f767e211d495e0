//! The node as the host of its replication core: what the core reads (the replicated
//! stores), the local ops handed to it, and what the node does with the core's events.

use std::sync::Arc;

use super::NodeShared;
use crate::cluster::Cluster;
use crate::cluster::host::ClusterHost;
use crate::key::{Limits, ScopeName};
use crate::meta::Meta;
use crate::op::Outbox;
use crate::pid::Pid;
use crate::store::NodeStores;

impl NodeShared {
    /// The smallest limits among the linked peers; `None` when no peer is linked.
    pub(crate) fn peer_limits(&self) -> Option<Limits> {
        self.cluster.load().as_ref().and_then(|c| c.peer_limits())
    }

    /// Hands the ops of local writes to the cluster layer, if there are any. Called after
    /// every local write from the public API (never from inside the replication core).
    pub(crate) fn flush_local(&self) {
        if self.stores.outbox().is_some_and(|o| !o.is_empty())
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
        self.stores.outbox()
    }
}

impl ClusterHost for NodeShared {
    fn stores(&self) -> &NodeStores {
        &self.stores
    }

    fn logs_info(&self) -> bool {
        Self::logs_info(self)
    }

    fn members_changed(&self) {
        self.monitor.partition_wake.notify_one();
    }

    fn incarnation(&self) -> u64 {
        self.incarnation
    }

    fn limits(&self) -> Limits {
        self.limits
    }

    fn deliver_remote(&self, to: Pid, from: Option<Pid>, payload: Meta) {
        Self::deliver_remote(self, to, from, payload);
    }

    fn dispatch_remote(&self, scope: &ScopeName, key: &str, payload: Meta) {
        Self::dispatch_remote(self, scope, key, payload);
    }
}
