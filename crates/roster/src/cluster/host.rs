//! What the cluster layer needs of the node it runs for: its stores, and somewhere to put
//! what arrives for local processes. The node implements it; the cluster never names the
//! node's types.

use crate::key::{Limits, ScopeName};
use crate::meta::Meta;
use crate::pid::Pid;
use crate::store::NodeStores;

/// The node, as its cluster layer sees it.
pub(crate) trait ClusterHost: Send + Sync + 'static {
    /// The node's stores (the replication core's host).
    fn stores(&self) -> &NodeStores;

    /// The node's incarnation.
    fn incarnation(&self) -> u64;

    /// The node's limits, announced to peers.
    fn limits(&self) -> Limits;

    /// A peer sent a message for local process `to`.
    fn deliver_remote(&self, to: Pid, from: Option<Pid>, payload: Meta);

    /// A peer dispatched a message to the local owner and members of `key` in `scope`.
    fn dispatch_remote(&self, scope: &ScopeName, key: &str, payload: Meta);

    /// Whether the node logs its info-level lines (its log level is not `Off`).
    fn logs_info(&self) -> bool;

    /// Membership saw a member come or go: the split-brain check should run now.
    fn members_changed(&self);
}
