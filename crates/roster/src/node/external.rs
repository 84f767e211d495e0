//! External nodes as a node's caller sees them: nodes that are not Roster members (a
//! worker reporting over HTTP, a websocket, a queue) registered, heartbeated and marked
//! offline through the member that keeps them, and listed, filtered, graphed and watched
//! like members everywhere.

use super::{NodeInfo, Nodes};
use crate::nodes::{ExternalError, ExternalNode, Heartbeat, NodeStatus};

impl Nodes {
    /// Registers the external node `name`, kept by this node, or updates its description
    /// (a new revision of its record; an offline one comes back online). Every node of the
    /// cluster lists it with its [`keeper`](crate::nodes::NodeRecord::keeper), with the
    /// same filters, graph (a link to its keeper) and events as a member. Its heartbeats
    /// come through [`Nodes::external_heartbeat`]; without one for
    /// [`HealthConfig::external_timeout`](crate::nodes::HealthConfig::external_timeout),
    /// this node marks it offline (`Down { left: false }`); when this node goes offline,
    /// every node marks the nodes it kept offline too.
    ///
    /// # Errors
    ///
    /// [`ExternalError::IsMember`] if a live member has the name,
    /// [`ExternalError::KeptElsewhere`] if another member keeps a live external node of
    /// that name, [`ExternalError::Invalid`] for an empty name or a record over the bounds.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// use roster::nodes::{ExternalNode, Heartbeat, NodeStatus};
    ///
    /// let node = roster::Node::builder().name("gateway-1").start().unwrap();
    /// let nodes = node.nodes();
    /// nodes.ensure_external("worker-7", ExternalNode::new().role("worker")).unwrap();
    /// nodes.external_heartbeat("worker-7", Heartbeat::at(1_700_000_000_000)).unwrap();
    /// let worker = nodes.get("worker-7").unwrap();
    /// assert_eq!(worker.status, NodeStatus::Online);
    /// assert_eq!(worker.record.keeper.unwrap().name, "gateway-1");
    /// nodes.set_external_status("worker-7", NodeStatus::Offline, "decommissioned").unwrap();
    /// assert_eq!(nodes.get("worker-7").unwrap().status, NodeStatus::Offline);
    /// assert!(nodes.ensure_external("gateway-1", ExternalNode::new()).is_err(), "a member's name");
    /// # }
    /// ```
    #[doc(alias = "ensure_node")]
    pub fn ensure_external(
        &self,
        name: &str,
        node: ExternalNode,
    ) -> Result<NodeInfo, ExternalError> {
        let record = self.shared.ensure_external(name, &node)?;
        // The registry holds it (it was applied there before this returns); the record
        // itself if the name went meanwhile.
        let fallback = NodeInfo {
            status: record.status,
            last_seen_ms: record.status_changed_ms,
            offline: None,
            record,
        };
        Ok(self.get(&fallback.record.name).unwrap_or(fallback))
    }

    /// Records a heartbeat of the external node `name`, which this node keeps, and sends
    /// it to every peer (its [`Heartbeat::at_ms`] is the worker's clock; windows are on
    /// each receiver's). An offline node comes back online with it (`Up { first_seen:
    /// false }`).
    ///
    /// # Errors
    ///
    /// [`ExternalError::NotKeptHere`] if this node does not keep `name` (register it with
    /// [`Nodes::ensure_external`]), [`ExternalError::IsMember`] or
    /// [`ExternalError::KeptElsewhere`] if it lost the name (a member of that name joined,
    /// or another keeper's older node of that name after a partition healed: this node
    /// then stops keeping it), [`ExternalError::Invalid`] for a heartbeat over the bounds.
    #[doc(alias = "mark_online")]
    pub fn external_heartbeat(
        &self,
        name: &str,
        heartbeat: Heartbeat,
    ) -> Result<(), ExternalError> {
        self.shared.external_heartbeat(name, heartbeat)
    }

    /// Sets the status of the external node `name`, which this node keeps, with a reason:
    /// `Offline` means it left on purpose (`Down { left: true }`), `Online`, `Degraded`
    /// and `Draining` are published as a member's own status is.
    ///
    /// # Errors
    ///
    /// [`ExternalError::Unsettable`] for `Unreachable`, else as
    /// [`Nodes::external_heartbeat`].
    #[doc(alias = "mark_offline")]
    pub fn set_external_status(
        &self,
        name: &str,
        status: NodeStatus,
        reason: &str,
    ) -> Result<(), ExternalError> {
        self.shared.set_external_status(name, status, reason)
    }
}
