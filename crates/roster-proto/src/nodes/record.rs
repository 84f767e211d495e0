//! A node's record: who it is and its status, owned and published by the node itself.

use crate::vocab::pid::Incarnation;
use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The status of a node.
///
/// A node sets its own status to `Online`, `Degraded` or `Draining`; `Offline` is what its
/// peers record when membership declares it dead or it leaves.
///
/// ```
/// use roster_proto::nodes::NodeStatus;
///
/// assert_eq!(NodeStatus::Degraded.to_string(), "degraded");
/// assert!(NodeStatus::Online.is_up() && !NodeStatus::Offline.is_up());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum NodeStatus {
    /// Up and healthy.
    Online,
    /// Up, but over a health threshold (see the record's reason).
    Degraded,
    /// Up, and being taken out of service by its operator.
    Draining,
    /// Dead or gone, as its peers saw it.
    Offline,
    /// A member that membership still sees alive, but that no replication link has
    /// reached for longer than a grace: as this node judges it (a node never publishes it
    /// for itself). It counts on the other side of a partition.
    Unreachable,
}

impl NodeStatus {
    /// Whether the node is running and reached (neither `Offline` nor `Unreachable`).
    pub fn is_up(self) -> bool {
        !matches!(self, Self::Offline | Self::Unreachable)
    }
}

impl std::fmt::Display for NodeStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Online => "online",
            Self::Degraded => "degraded",
            Self::Draining => "draining",
            Self::Offline => "offline",
            Self::Unreachable => "unreachable",
        })
    }
}

/// A node's record, replicated to every peer.
///
/// The node owns it: only the node changes it (each change bumps `revision`); a restarted
/// node is a new incarnation whose record replaces the old one everywhere (as its link
/// replaces the old incarnation's, whatever the clocks say). The record of an *external*
/// node (a worker that is not a Roster member and reports to one, e.g. over HTTP) is
/// owned by its [`Keeper`] instead, which publishes it and its heartbeats for it.
///
/// ```
/// use roster_proto::nodes::{NodeRecord, NodeStatus};
/// use roster_proto::pid::Incarnation;
///
/// let record = NodeRecord::new("api-1", Incarnation::new(7), 1_700_000_000_000).with_role("api");
/// assert_eq!(record.status, NodeStatus::Online);
/// assert_eq!(record.role, "api");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeRecord {
    /// The node's name.
    pub name: String,
    /// The node's incarnation (its id in the cluster; new at each start).
    pub incarnation: Incarnation,
    /// What the node is for (free text, e.g. `"api"`, `"worker"`); empty if not set.
    pub role: String,
    /// Key/value labels (e.g. `domain = "eu"`).
    pub labels: BTreeMap<String, String>,
    /// The application's version.
    pub version: String,
    /// Addresses the node advertises (its cluster address first).
    pub addrs: Vec<String>,
    /// When the node started, in milliseconds since the Unix epoch.
    pub started_at_ms: u64,
    /// The node's status.
    pub status: NodeStatus,
    /// Why the status last changed.
    pub status_reason: String,
    /// When the status last changed, in milliseconds since the Unix epoch.
    pub status_changed_ms: u64,
    /// Bumped by every change; a peer keeps the highest revision of an incarnation.
    pub revision: u64,
    /// With status `Offline`: the node left on purpose (it is no longer part of the
    /// expected cluster). `false` for an external node its keeper judged dead (its
    /// heartbeats stopped).
    pub left: bool,
    /// For an external node, the member that keeps its record; `None` for a member, which
    /// speaks for itself.
    pub keeper: Option<Keeper>,
}

/// The member that keeps the record of an external node: it registered the node, takes
/// its heartbeats, marks it offline when they stop, and publishes all of it to its peers.
/// When the keeper goes offline, so do the nodes it keeps.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Keeper {
    /// The keeper's name.
    pub name: String,
    /// The keeper's incarnation.
    pub incarnation: Incarnation,
}

impl NodeRecord {
    /// The record of a node that starts now, online.
    pub fn new(name: &str, incarnation: Incarnation, started_at_ms: u64) -> Self {
        Self {
            name: name.to_owned(),
            incarnation,
            role: String::new(),
            labels: BTreeMap::new(),
            version: String::new(),
            addrs: Vec::new(),
            started_at_ms,
            status: NodeStatus::Online,
            status_reason: "started".to_owned(),
            status_changed_ms: started_at_ms,
            revision: 1,
            left: false,
            keeper: None,
        }
    }

    /// Whether this is an external node's record (kept by a member).
    pub fn is_external(&self) -> bool {
        self.keeper.is_some()
    }

    /// The record with `role`.
    pub fn with_role(mut self, role: &str) -> Self {
        self.role = role.to_owned();
        self
    }

    /// Checks the bounds every record must respect (a record from the network over them
    /// is refused).
    pub fn validate(&self) -> Result<(), String> {
        let text = |what: &str, s: &str, max: usize| {
            if s.len() > max {
                Err(format!("{what} of {} bytes exceeds {max}", s.len()))
            } else {
                Ok(())
            }
        };
        text("node name", &self.name, MAX_TEXT)?;
        text("role", &self.role, MAX_TEXT)?;
        text("version", &self.version, MAX_TEXT)?;
        text("status reason", &self.status_reason, MAX_REASON)?;
        if let Some(keeper) = &self.keeper {
            text("keeper name", &keeper.name, MAX_TEXT)?;
        }
        if self.labels.len() > MAX_LABELS {
            return Err(format!("{} labels exceed {MAX_LABELS}", self.labels.len()));
        }
        for (k, v) in &self.labels {
            text("label key", k, MAX_TEXT)?;
            text("label value", v, MAX_TEXT)?;
        }
        if self.addrs.len() > MAX_ADDRS {
            return Err(format!("{} addresses exceed {MAX_ADDRS}", self.addrs.len()));
        }
        self.addrs
            .iter()
            .try_for_each(|a| text("address", a, MAX_TEXT))
    }
}

/// Longest name, role, version, label key or value, or address of a record.
pub const MAX_TEXT: usize = 256;
/// Longest status reason.
pub const MAX_REASON: usize = 1024;
/// Most labels of a record.
pub const MAX_LABELS: usize = 64;
/// Most addresses of a record.
pub const MAX_ADDRS: usize = 16;
