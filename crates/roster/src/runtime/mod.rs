//! The state a node shares with its handles, scopes and processes ([`NodeShared`]), and
//! what it does below the public API: message routing, the host of its replication core
//! and cluster layer, scope disconnects that the peers hear of, and the timer of its scope
//! leases. Processes and their exits belong to the store (`NodeStores`).
//! The public `Node`, `Scope` and `Process` handles sit above it.

pub(crate) mod external;
pub(crate) mod extract;
mod host_metrics;
mod judge;
pub(crate) use judge::Judge;
mod leases;
pub(crate) mod log_level;
pub(crate) mod monitor;
mod replica_host;
mod routing;
mod scopes;

use std::sync::Arc;

use arc_swap::ArcSwapOption;

use crate::cluster::Cluster;
use crate::key::Limits;
use crate::store::NodeStores;

/// State shared by every handle of a node and by its processes.
pub(crate) struct NodeShared {
    pub(crate) name: String,
    pub(crate) incarnation: u64,
    pub(crate) limits: Limits,
    pub(crate) mailbox_capacity: usize,
    /// Bytes of queued messages a mailbox holds at most.
    pub(crate) mailbox_bytes: usize,
    pub(crate) subscription_capacity: usize,
    /// Every store of this node: scopes, process table, outbox.
    pub(crate) stores: NodeStores,
    /// The cluster layer; `None` for a single node (and after shutdown).
    pub(crate) cluster: ArcSwapOption<Cluster>,
    pub(crate) runtime: tokio::runtime::Handle,
    /// Wakes the lease timer (see `leases.rs`); `None` until a lease is taken.
    pub(crate) lease_timer: std::sync::OnceLock<Arc<tokio::sync::Notify>>,
    /// This node's record, health and split-brain state (see `monitor.rs`).
    pub(crate) monitor: monitor::Monitor,
    /// The transforms of the meta that reads return (see `extract.rs`).
    pub(crate) extracts: extract::Extracts,
    /// What this node logs of itself (see `log_level.rs`).
    pub(crate) log_level: log_level::LogGate,
    /// The external nodes this node keeps (see `external.rs`).
    pub(crate) externals: external::Externals,
}
