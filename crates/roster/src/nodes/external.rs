//! What describes an external node, and why a change of one is refused.

use std::collections::BTreeMap;

use super::{NodeRecord, NodeStatus};

/// How to describe an external node to [`Nodes::ensure_external`](crate::Nodes::ensure_external):
/// a worker that is not a Roster member (it reports over HTTP, a websocket, a queue...)
/// but should be listed, filtered, graphed and watched like one.
///
/// ```
/// use roster::nodes::ExternalNode;
///
/// let worker = ExternalNode::new().role("gpu-worker").label("zone", "eu-1").version("3.2.0");
/// # let _ = worker;
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExternalNode {
    role: String,
    labels: BTreeMap<String, String>,
    version: String,
    addrs: Vec<String>,
}

impl ExternalNode {
    /// A node with no role, label, version or address.
    pub fn new() -> Self {
        Self::default()
    }

    /// What the node is for (free text, e.g. `"worker"`).
    pub fn role(mut self, role: impl Into<String>) -> Self {
        self.role = role.into();
        self
    }

    /// A label (several calls: several labels).
    pub fn label(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.labels.insert(key.into(), value.into());
        self
    }

    /// The node's application version.
    pub fn version(mut self, version: impl Into<String>) -> Self {
        self.version = version.into();
        self
    }

    /// An address the node can be reached at (several calls: several addresses).
    pub fn addr(mut self, addr: impl Into<String>) -> Self {
        self.addrs.push(addr.into());
        self
    }

    /// Writes this description into `record`.
    pub(crate) fn describe(&self, record: &mut NodeRecord) {
        record.role.clone_from(&self.role);
        record.labels.clone_from(&self.labels);
        record.version.clone_from(&self.version);
        record.addrs.clone_from(&self.addrs);
    }
}

/// A call about an external node was refused; nothing changed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ExternalError {
    /// The record would be over the bounds of a record (or the name is empty).
    #[error("invalid external node: {0}")]
    Invalid(String),
    /// A live Roster member has that name: an external node cannot take it.
    #[error(
        "{0:?} is the name of a live member of the cluster: choose another name for the external node"
    )]
    IsMember(String),
    /// Another member keeps a live external node of that name; ask that one, or wait
    /// until it is offline.
    #[error(
        "the external node {name:?} is kept by {keeper}: send its heartbeats there, or wait until it is offline"
    )]
    KeptElsewhere {
        /// The external node's name.
        name: String,
        /// The member that keeps it.
        keeper: String,
    },
    /// This node does not keep an external node of that name: register it first with
    /// `ensure_external`.
    #[error("this node keeps no external node named {0:?}: register it first with ensure_external")]
    NotKeptHere(String),
    /// `Unreachable` is judged by each node, never set.
    #[error("an external node cannot be set {0}: that status is judged by each node, not set")]
    Unsettable(NodeStatus),
}
