//! The node registry as a node's caller sees it: records of every node, this node's
//! status and application metrics, heartbeats kept in memory, the node monitor's view
//! (status, health, an immediate check) and the split-brain status.
//!
use std::sync::Arc;
use std::time::Duration;

use super::Cluster;
use crate::key::Pattern;
use crate::nodes::{
    ForgetError, Heartbeat, NodeEntry, NodeEvent, NodeRecord, NodeStatus, Offline, PartitionStatus,
};
use crate::pid::Incarnation;
use crate::runtime::{Judge, NodeShared};
use crate::subscription::Subscription;

/// A node as this node knows it.
#[derive(Debug, Clone, PartialEq)]
pub struct NodeInfo {
    /// The node's latest record (published by the node itself).
    pub record: NodeRecord,
    /// Its status as this node judges it, the same in every view of the node registry:
    /// `Offline` once membership declared it dead or it left; `Unreachable` while
    /// membership sees it but no link has reached it for
    /// [`HealthConfig::unreachable_after`](crate::nodes::HealthConfig::unreachable_after);
    /// else the status it published, but `Degraded` while this node misses its heartbeats.
    pub status: NodeStatus,
    /// When this node last heard from it, in milliseconds since the Unix epoch.
    pub last_seen_ms: u64,
    /// Why and since when it is offline.
    pub offline: Option<Offline>,
}

impl NodeInfo {
    fn judged(entry: NodeEntry, judge: &Judge) -> Self {
        Self {
            status: judge.status(&entry),
            record: entry.record,
            last_seen_ms: entry.last_seen_ms,
            offline: entry.offline,
        }
    }
}

/// Which nodes [`Nodes::list`] returns: every condition set must hold.
///
/// ```
/// use roster::NodeFilter;
/// use roster::nodes::NodeStatus;
///
/// let filter = NodeFilter::default().status(NodeStatus::Online).role("api").label("domain", "eu");
/// # let _ = filter;
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NodeFilter {
    status: Option<NodeStatus>,
    role: Option<String>,
    labels: Vec<(String, String)>,
    scope: Option<String>,
    external: Option<bool>,
}

impl NodeFilter {
    /// Only nodes with this status (as this node sees it).
    pub fn status(mut self, status: NodeStatus) -> Self {
        self.status = Some(status);
        self
    }

    /// Only nodes with this role.
    pub fn role(mut self, role: impl Into<String>) -> Self {
        self.role = Some(role.into());
        self
    }

    /// Only nodes with this label (several calls: all of them).
    pub fn label(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.labels.push((key.into(), value.into()));
        self
    }

    /// Only nodes connected to this scope (this node, and the linked peers that are).
    pub fn scope(mut self, scope: impl Into<String>) -> Self {
        self.scope = Some(scope.into());
        self
    }

    /// Only external nodes (`true`; see [`Nodes::ensure_external`]) or only members
    /// (`false`).
    pub fn external(mut self, external: bool) -> Self {
        self.external = Some(external);
        self
    }
}

/// The node monitor's view of one node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeLiveness {
    /// The node's name.
    pub name: String,
    /// Its incarnation.
    pub incarnation: Incarnation,
    /// Its status as this node judges it: as [`NodeInfo::status`], but `Degraded` when
    /// this node has missed its heartbeats (see [`HealthConfig::missed_heartbeats`](crate::nodes::HealthConfig::missed_heartbeats)).
    pub status: NodeStatus,
    /// When this node last heard from it, in milliseconds since the Unix epoch.
    pub last_seen_ms: u64,
}

/// The health of one node, as [`Nodes::health`] reports it.
#[derive(Debug, Clone, PartialEq)]
pub struct NodeHealth {
    /// Its status as this node judges it (see [`NodeLiveness::status`]).
    pub status: NodeStatus,
    /// Its last heartbeat kept here.
    pub last_heartbeat: Option<Heartbeat>,
    /// Why it is degraded: the reasons it published, and missed heartbeats seen here.
    pub degraded_reasons: Vec<String>,
    /// The round-trip time of this node's link to it (`None` for this node itself, or
    /// before a ping was answered).
    pub rtt: Option<Duration>,
}

/// What [`Nodes::watch`] returns.
#[derive(Debug)]
#[non_exhaustive]
pub struct NodeWatch {
    /// The matching nodes known at the instant the events start, by name.
    pub nodes: Vec<NodeInfo>,
    /// Every node event after that instant.
    pub events: Subscription<NodeEvent>,
}

/// A change of this node's record was refused: the record would be over the bounds of a
/// record ([`MAX_TEXT`](crate::nodes::MAX_TEXT) bytes per text,
/// [`MAX_LABELS`](crate::nodes::MAX_LABELS) labels). Nothing changed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid node record: {0}")]
pub struct RecordError(String);

/// [`Nodes::set_status`] was asked for a status a node cannot give itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error(
    "a node cannot set itself offline or unreachable: its peers judge that (offline when it dies or leaves: call Node::shutdown to leave the cluster)"
)]
pub struct StatusIsForPeers;

/// The node registry as this node sees it, from [`Node::nodes`](crate::Node::nodes):
/// every node's record, liveness, health and heartbeats, this node's own status and
/// application metrics, the split-brain status, and node events.
///
/// A cheap handle: take one where it is needed.
///
/// # Examples
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let node = roster::Node::builder().name("api-1").start().unwrap();
/// let nodes = node.nodes();
/// assert_eq!(nodes.get("api-1").unwrap().record.name, "api-1");
/// # }
/// ```
#[derive(Clone)]
pub struct Nodes {
    pub(super) shared: Arc<NodeShared>,
}

impl std::fmt::Debug for Nodes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Nodes")
            .field("node", &self.shared.name)
            .finish_non_exhaustive()
    }
}

impl Nodes {
    /// The node named `name`, as this node knows it.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// use roster::nodes::NodeStatus;
    ///
    /// let node = roster::Node::builder().name("api-1").role("api").start().unwrap();
    /// let me = node.nodes().get("api-1").unwrap();
    /// assert_eq!(me.status, NodeStatus::Online);
    /// assert_eq!(me.record.incarnation, node.incarnation());
    /// # }
    /// ```
    #[doc(alias = "node_info")]
    pub fn get(&self, name: &str) -> Option<NodeInfo> {
        let judge = self.shared.judge();
        self.shared
            .stores
            .nodes
            .get(name)
            .map(|entry| NodeInfo::judged(entry, &judge))
    }

    /// Every node this node knows (offline ones until their retention ends) that matches
    /// `filter`, by name.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// use roster::NodeFilter;
    ///
    /// let node = roster::Node::builder().name("w-1").role("worker").start().unwrap();
    /// assert_eq!(node.nodes().list(&NodeFilter::default().role("worker")).len(), 1);
    /// assert!(node.nodes().list(&NodeFilter::default().role("api")).is_empty());
    /// # }
    /// ```
    #[doc(alias = "list_nodes")]
    pub fn list(&self, filter: &NodeFilter) -> Vec<NodeInfo> {
        let judge = self.shared.judge();
        let in_scope: Option<Vec<String>> = filter.scope.as_ref().map(|scope| {
            let mut names: Vec<String> = Cluster {
                shared: self.shared.clone(),
            }
            .peers_in(scope)
            .into_iter()
            .map(|p| p.name)
            .collect();
            if self.shared.stores.get(scope).is_some() {
                names.push(self.shared.name.clone());
            }
            names
        });
        self.shared
            .stores
            .nodes
            .list()
            .into_iter()
            .map(|entry| NodeInfo::judged(entry, &judge))
            .filter(|n| filter.status.is_none_or(|s| s == n.status))
            .filter(|n| filter.role.as_ref().is_none_or(|r| *r == n.record.role))
            .filter(|n| filter.external.is_none_or(|x| x == n.record.is_external()))
            .filter(|n| {
                filter
                    .labels
                    .iter()
                    .all(|(k, v)| n.record.labels.get(k) == Some(v))
            })
            .filter(|n| {
                in_scope
                    .as_ref()
                    .is_none_or(|names| names.contains(&n.record.name))
            })
            .collect()
    }

    /// Sets this node's own status with a reason, and publishes it to every peer.
    /// `Degraded` set here stays until set again; the degraded thresholds
    /// only undo a `Degraded` they set themselves.
    ///
    /// # Errors
    ///
    /// [`StatusIsForPeers`] for [`NodeStatus::Offline`] and [`NodeStatus::Unreachable`].
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// use roster::nodes::NodeStatus;
    ///
    /// let node = roster::Node::builder().name("api-1").start().unwrap();
    /// node.nodes().set_status(NodeStatus::Draining, "deploying v2").unwrap();
    /// let me = node.nodes().get("api-1").unwrap();
    /// assert_eq!((me.status, me.record.status_reason.as_str()), (NodeStatus::Draining, "deploying v2"));
    /// assert!(node.nodes().set_status(NodeStatus::Offline, "bye").is_err());
    /// # }
    /// ```
    pub fn set_status(&self, status: NodeStatus, reason: &str) -> Result<(), StatusIsForPeers> {
        if matches!(status, NodeStatus::Offline | NodeStatus::Unreachable) {
            return Err(StatusIsForPeers);
        }
        self.shared.change_status(status, reason, false);
        Ok(())
    }

    /// Changes this node's role, and publishes it to every peer as a new revision of its
    /// record (peers emit [`NodeEvent::Updated`]).
    ///
    /// # Errors
    ///
    /// [`RecordError`] if the role is longer than [`MAX_TEXT`](crate::nodes::MAX_TEXT)
    /// bytes; nothing changes.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let node = roster::Node::builder().name("api-1").role("api").start().unwrap();
    /// node.nodes().set_role("gateway").unwrap();
    /// node.nodes().set_label("domain", "eu").unwrap();
    /// node.nodes().set_version("2.5.0").unwrap();
    /// let me = node.nodes().get("api-1").unwrap().record;
    /// assert_eq!((me.role.as_str(), me.version.as_str()), ("gateway", "2.5.0"));
    /// assert_eq!(me.labels["domain"], "eu");
    /// node.nodes().remove_label("domain").unwrap();
    /// assert!(node.nodes().get("api-1").unwrap().record.labels.is_empty());
    /// assert!(node.nodes().set_role(&"x".repeat(10_000)).is_err());
    /// # }
    /// ```
    pub fn set_role(&self, role: &str) -> Result<(), RecordError> {
        self.update(|record| record.role = role.to_owned())
    }

    /// Sets a label of this node (replacing its value), published as [`Nodes::set_role`]
    /// is.
    ///
    /// # Errors
    ///
    /// [`RecordError`] if the key or value is longer than
    /// [`MAX_TEXT`](crate::nodes::MAX_TEXT) bytes or the node would have more than
    /// [`MAX_LABELS`](crate::nodes::MAX_LABELS) labels; nothing changes.
    pub fn set_label(&self, key: &str, value: &str) -> Result<(), RecordError> {
        self.update(|record| {
            record.labels.insert(key.to_owned(), value.to_owned());
        })
    }

    /// Removes a label of this node (nothing if it has none of that key), published as
    /// [`Nodes::set_role`] is.
    ///
    /// # Errors
    ///
    /// None today: the signature leaves room for a bound.
    pub fn remove_label(&self, key: &str) -> Result<(), RecordError> {
        self.update(|record| {
            record.labels.remove(key);
        })
    }

    /// Changes this node's version, published as [`Nodes::set_role`] is.
    ///
    /// # Errors
    ///
    /// [`RecordError`] if the version is longer than [`MAX_TEXT`](crate::nodes::MAX_TEXT)
    /// bytes; nothing changes.
    pub fn set_version(&self, version: &str) -> Result<(), RecordError> {
        self.update(|record| record.version = version.to_owned())
    }

    fn update(&self, change: impl FnOnce(&mut NodeRecord)) -> Result<(), RecordError> {
        self.shared.update_record(change).map_err(RecordError)
    }

    /// Adds (or updates) an application metric carried by this node's heartbeats from the
    /// next one on; a [`HealthConfig::app_threshold`](crate::nodes::HealthConfig::app_threshold) on it can make the node degraded.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let node = roster::Node::builder().name("api-1").start().unwrap();
    /// node.nodes().set_app_metric("open_sessions", 42.0);
    /// node.nodes().check_now();
    /// let beat = node.nodes().heartbeats("api-1", 0).pop().unwrap();
    /// assert_eq!(beat.app["open_sessions"], 42.0);
    /// # }
    /// ```
    pub fn set_app_metric(&self, name: &str, value: f64) {
        self.shared.monitor.set_app_metric(name, Some(value));
    }

    /// Removes an application metric from the next heartbeats.
    pub fn remove_app_metric(&self, name: &str) {
        self.shared.monitor.set_app_metric(name, None);
    }

    /// The heartbeats of `name` this node keeps in memory (the latest
    /// [`HealthConfig::heartbeats_kept`](crate::nodes::HealthConfig::heartbeats_kept))
    /// that it received at or after `since_ms` (milliseconds since the Unix epoch on this
    /// node's clock, so a window such as "the last minute" holds whatever the sender's
    /// clock says; [`Heartbeat::at_ms`] is the sender's), oldest first.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let node = roster::Node::builder().name("api-1").start().unwrap();
    /// node.nodes().check_now();
    /// let beats = node.nodes().heartbeats("api-1", 0);
    /// assert!(beats.last().is_some_and(|b| b.processes == 0 && b.mem_total_bytes >= b.mem_used_bytes));
    /// # }
    /// ```
    pub fn heartbeats(&self, name: &str, since_ms: u64) -> Vec<Heartbeat> {
        self.shared.stores.nodes.heartbeats(name, since_ms)
    }

    /// Every known node with its status as this node judges it (see
    /// [`NodeLiveness::status`]), last-seen time and incarnation. [`Nodes::list`] gives
    /// the records; [`Nodes::check_now`] judges anew first.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// use roster::nodes::NodeStatus;
    ///
    /// let node = roster::Node::builder().name("api-1").start().unwrap();
    /// let status = node.nodes().liveness();
    /// assert_eq!((status[0].name.as_str(), status[0].status), ("api-1", NodeStatus::Online));
    /// # }
    /// ```
    #[doc(alias = "node_status")]
    pub fn liveness(&self) -> Vec<NodeLiveness> {
        let judge = self.shared.judge();
        self.shared
            .stores
            .nodes
            .list()
            .into_iter()
            .map(|entry| NodeLiveness {
                status: judge.status(&entry),
                name: entry.record.name,
                incarnation: entry.record.incarnation,
                last_seen_ms: entry.last_seen_ms,
            })
            .collect()
    }

    /// The health of `name`: status, last heartbeat, why it is degraded, and the
    /// round-trip time of this node's link to it.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// use roster::nodes::NodeStatus;
    ///
    /// let node = roster::Node::builder().name("api-1").start().unwrap();
    /// node.nodes().set_status(NodeStatus::Degraded, "disk almost full").unwrap();
    /// let health = node.nodes().health("api-1").unwrap();
    /// assert_eq!(health.degraded_reasons, vec!["disk almost full".to_owned()]);
    /// assert!(node.nodes().health("nobody").is_none());
    /// # }
    /// ```
    #[doc(alias = "node_health")]
    pub fn health(&self, name: &str) -> Option<NodeHealth> {
        let entry = self.shared.stores.nodes.get(name)?;
        let judge = self.shared.judge();
        let status = judge.status(&entry);
        let mut degraded_reasons = Vec::new();
        if entry.status() == NodeStatus::Degraded {
            degraded_reasons.extend(entry.record.status_reason.split("; ").map(str::to_owned));
        }
        if let Some(since) = judge.unreachable_since(&entry) {
            degraded_reasons.push(format!(
                "no link reaches it since {since} ms after the Unix epoch"
            ));
        }
        if let Some(missed) = judge.missed_heartbeats(&entry) {
            degraded_reasons.push(format!("missed {missed} heartbeats"));
        }
        let rtt = self
            .shared
            .cluster()
            .and_then(|cluster| cluster.read_core(|core| core.rtt(entry.record.incarnation)));
        Some(NodeHealth {
            status,
            last_heartbeat: entry.heartbeats.back().map(|(_, beat)| beat.clone()),
            degraded_reasons,
            rtt,
        })
    }

    /// Forgets the offline node `name` now, before its record's retention ends
    /// ([`HealthConfig::offline_retention`](crate::nodes::HealthConfig::offline_retention)):
    /// it leaves the expected cluster that the split-brain check learns from the records
    /// (without [`SplitBrainConfig::expected`](crate::nodes::SplitBrainConfig::expected)),
    /// and the check runs again at once. For a node that crashed and will not come back:
    /// with `Fence`, the survivors otherwise count it as unreachable until its retention
    /// ends. It is this node's view only: call it on every node that should forget it.
    ///
    /// # Errors
    ///
    /// [`ForgetError`](crate::nodes::ForgetError): no such node, or it is not offline.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// use roster::nodes::ForgetError;
    /// let node = roster::Node::builder().name("api-1").start().unwrap();
    /// assert_eq!(node.nodes().forget("api-1"), Err(ForgetError::Up("api-1".into())));
    /// assert_eq!(node.nodes().forget("gone"), Err(ForgetError::Unknown("gone".into())));
    /// # }
    /// ```
    pub fn forget(&self, name: &str) -> Result<(), ForgetError> {
        self.shared.stores.nodes.forget(name)?;
        self.shared.check_partition();
        Ok(())
    }

    /// Runs the node monitor now instead of at the next heartbeat interval: samples and
    /// publishes this node's heartbeat, judges its own health, pings every peer, drops
    /// records past their retention and re-checks for split brain; returns the node
    /// liveness (as [`Nodes::liveness`]). Answers to the pings arrive afterwards.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let node = roster::Node::builder().name("api-1").start().unwrap();
    /// assert_eq!(node.nodes().check_now().len(), 1);
    /// assert_eq!(node.nodes().heartbeats("api-1", 0).len(), 1, "one heartbeat, sampled now");
    /// # }
    /// ```
    #[doc(alias = "check_nodes_now")]
    pub fn check_now(&self) -> Vec<NodeLiveness> {
        self.shared.run_checks();
        self.shared.check_partition();
        self.liveness()
    }

    /// The result of the last split-brain check; `None` for a node without a cluster.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let config = roster::ClusterConfig::new("127.0.0.1:0".parse().unwrap(), "s3cret");
    /// let node = roster::Node::builder().name("a").cluster(config).start().unwrap();
    /// let status = node.nodes().check_partition_now().unwrap();
    /// assert!(!status.partition_suspected && status.verdict.keeps_writing);
    /// assert_eq!(node.nodes().partition(), Some(status));
    /// assert!(roster::Node::builder().start().unwrap().nodes().partition().is_none());
    /// # node.shutdown().await;
    /// # }
    /// ```
    #[doc(alias = "partition_status")]
    pub fn partition(&self) -> Option<PartitionStatus> {
        self.shared.monitor.partition_status()
    }

    /// Re-evaluates the split-brain verdict now and returns it (raising or lowering the
    /// fence at once); `None` for a node without a cluster.
    pub fn check_partition_now(&self) -> Option<PartitionStatus> {
        self.shared.check_partition()
    }

    /// Subscribes to node events (records, status, links, partitions; heartbeats too if
    /// `heartbeats`) of the nodes whose names match `pattern`: the same bounded, batched
    /// stream as registry events, with the same lag notices. A subscriber to nodes gets no
    /// registry events. To start from the nodes known now, use [`Nodes::watch`].
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// use roster::nodes::{NodeEvent, NodeStatus};
    /// use roster::Pattern;
    ///
    /// let node = roster::Node::builder().name("api-1").start().unwrap();
    /// let mut events = node.nodes().subscribe(Pattern::All, false);
    /// node.nodes().set_status(NodeStatus::Draining, "deploy").unwrap();
    /// let batch = events.recv().await.unwrap().into_events().unwrap();
    /// assert!(matches!(&batch[0], NodeEvent::Status { new: NodeStatus::Draining, .. }));
    /// # }
    /// ```
    #[doc(alias = "subscribe_nodes")]
    pub fn subscribe(
        &self,
        pattern: impl Into<Pattern>,
        heartbeats: bool,
    ) -> Subscription<NodeEvent> {
        self.watch_with(pattern, heartbeats).events
    }

    /// The nodes whose names match `pattern` as known now, and every node event after
    /// that instant (list-then-watch: each change is in the list or an event after it,
    /// never both, never neither). Heartbeats are not included; see
    /// [`Nodes::subscribe`].
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let node = roster::Node::builder().name("api-1").start().unwrap();
    /// let watch = node.nodes().watch(roster::Pattern::All);
    /// assert_eq!(watch.nodes[0].record.name, "api-1");
    /// # }
    /// ```
    #[doc(alias = "watch_nodes")]
    pub fn watch(&self, pattern: impl Into<Pattern>) -> NodeWatch {
        self.watch_with(pattern, false)
    }

    /// [`Nodes::watch`], with heartbeats among the events if `heartbeats` (as
    /// [`Nodes::subscribe`] gives them): for a consumer that needs both the nodes known now
    /// and every event after, heartbeats included.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let node = roster::Node::builder().name("api-1").start().unwrap();
    /// let watch = node.nodes().watch_with(roster::Pattern::All, true);
    /// assert_eq!(watch.nodes[0].record.name, "api-1");
    /// # }
    /// ```
    pub fn watch_with(&self, pattern: impl Into<Pattern>, heartbeats: bool) -> NodeWatch {
        let judge = self.shared.judge();
        let (nodes, events) = self.shared.stores.nodes.subscribe(
            vec![pattern.into()],
            self.shared.subscription_capacity,
            heartbeats,
        );
        NodeWatch {
            nodes: nodes
                .into_iter()
                .map(|entry| NodeInfo::judged(entry, &judge))
                .collect(),
            events,
        }
    }
}
