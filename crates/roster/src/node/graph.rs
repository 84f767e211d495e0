//! The cluster graph: every node this node knows, and one link per connected pair, from
//! the node registry (records, and the links each node reports in its heartbeats) and this
//! node's own live links.

use std::collections::BTreeMap;
use std::time::Duration;

use super::Cluster;
use crate::clock::saturating_millis;
use crate::cluster::{LinkKind, LinkSession};
use crate::nodes::NodeStatus;
use crate::pid::Incarnation;
use crate::replication::host::ReplicaHost;

/// The cluster as a graph, from [`Cluster::graph`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterGraph {
    /// Every node this node knows, by name (as [`Nodes::list`](crate::Nodes::list) lists them).
    pub nodes: Vec<GraphNode>,
    /// One link per connected pair of nodes that are both up.
    pub links: Vec<GraphLink>,
}

/// A node of the [`ClusterGraph`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GraphNode {
    /// The node's incarnation.
    pub id: Incarnation,
    /// Its name.
    pub name: String,
    /// Its role.
    pub role: String,
    /// Its status as this node sees it.
    pub status: NodeStatus,
    /// Its labels (e.g. `domain`).
    pub labels: BTreeMap<String, String>,
    /// For an external node, the member that keeps it.
    pub keeper: Option<String>,
}

/// A link of the [`ClusterGraph`]: a live connection between two nodes, reported by
/// the node with the smaller incarnation (the one that dialed) when it can be; or the tie
/// of an external node to its keeper ([`LinkKind::External`], session 0, no round-trip
/// time).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GraphLink {
    /// The reporting node's name.
    pub source: String,
    /// The other end's name.
    pub target: String,
    /// How it is carried (every node of a cluster uses the same).
    pub kind: LinkKind,
    /// The session id on the reporting node.
    pub session: u64,
    /// Its round-trip time as the reporting node measured it.
    pub rtt: Option<Duration>,
    /// The reporting node has missed a heartbeat here: the link is as of its last one,
    /// and may be gone. This node's own links are never stale.
    pub stale: bool,
}

impl Cluster {
    /// The cluster graph: nodes and the links between them, consistent with
    /// [`Nodes::list`](crate::Nodes::list) (the same statuses; a node that is not up has no
    /// link). This node's own links are authoritative: a link to it that another node
    /// still reports but that this node knows is closed is not in the graph. The others'
    /// links are as of their last heartbeat, so a closed link leaves the graph within a
    /// heartbeat interval; those of a node that has missed a heartbeat here are marked
    /// [`GraphLink::stale`].
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let node = roster::Node::builder().name("solo").role("api").start().unwrap();
    /// let graph = node.cluster().graph();
    /// assert_eq!(graph.nodes[0].name, "solo");
    /// assert!(graph.links.is_empty());
    /// # }
    /// ```
    pub fn graph(&self) -> ClusterGraph {
        let known = self.shared.stores.nodes.list();
        let judge = self.shared.judge();
        let up: BTreeMap<&str, Incarnation> = known
            .iter()
            .filter(|e| judge.status(e).is_up())
            .map(|e| (e.record.name.as_str(), e.record.incarnation))
            .collect();
        let nodes = known
            .iter()
            .map(|e| GraphNode {
                id: e.record.incarnation,
                name: e.record.name.clone(),
                role: e.record.role.clone(),
                status: judge.status(e),
                labels: e.record.labels.clone(),
                keeper: e.record.keeper.as_ref().map(|k| k.name.clone()),
            })
            .collect();
        let kind = self
            .shared
            .cluster()
            .map_or(LinkKind::Tcp, |c| c.link_kind());
        // Candidate links by unordered pair; the dialer's report wins.
        let mut pairs: BTreeMap<(String, String), (u64, GraphLink)> = BTreeMap::new();
        let mut offer = |source: &str, source_id: u64, link: GraphLink| {
            let Some(&target_id) = up.get(link.target.as_str()) else {
                return;
            };
            if !up.contains_key(source) {
                return;
            }
            let pair = if source < link.target.as_str() {
                (source.to_owned(), link.target.clone())
            } else {
                (link.target.clone(), source.to_owned())
            };
            let dialer = source_id < target_id.get();
            match pairs.get(&pair) {
                Some((_, _)) if !dialer => {}
                _ => {
                    pairs.insert(pair, (source_id, link));
                }
            }
        };
        let me = self.shared.name.as_str();
        let own: Vec<LinkSession> = self
            .link_sessions()
            .into_iter()
            .filter(|s| s.closed.is_none())
            .collect();
        for session in own {
            offer(
                me,
                self.shared.incarnation,
                GraphLink {
                    source: me.to_owned(),
                    target: session.peer,
                    kind: session.kind,
                    session: session.session,
                    rtt: session.rtt,
                    stale: false,
                },
            );
        }
        let now_ms = self.shared.stores.now_ms();
        let interval_ms = saturating_millis(self.shared.monitor.health.heartbeat_interval);
        for entry in known.iter().filter(|e| e.record.name != me) {
            // Its next heartbeat was due an interval after the last: missed after two.
            let stale = now_ms.saturating_sub(entry.last_seen_ms) > interval_ms.saturating_mul(2);
            let Some(beat) = self
                .shared
                .stores
                .nodes
                .heartbeats(&entry.record.name, 0)
                .pop()
            else {
                continue;
            };
            // This node knows its own links: another's report of a link to it is not news.
            for peer in beat.peers.into_iter().filter(|p| p.name != me) {
                offer(
                    &entry.record.name,
                    entry.record.incarnation.get(),
                    GraphLink {
                        source: entry.record.name.clone(),
                        target: peer.name,
                        kind,
                        session: peer.session,
                        rtt: peer.rtt_us.map(Duration::from_micros),
                        stale,
                    },
                );
            }
        }
        // An external node hangs off its keeper.
        for entry in known.iter() {
            if let Some(keeper) = &entry.record.keeper {
                offer(
                    &keeper.name,
                    keeper.incarnation.get(),
                    GraphLink {
                        source: keeper.name.clone(),
                        target: entry.record.name.clone(),
                        kind: LinkKind::External,
                        session: 0,
                        rtt: None,
                        stale: false,
                    },
                );
            }
        }
        ClusterGraph {
            nodes,
            links: pairs.into_values().map(|(_, link)| link).collect(),
        }
    }

    /// This node's link sessions: every live link (by peer name) with what crossed it,
    /// then the last 64 that closed, oldest first, with when and why. Empty without a
    /// cluster.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let node = roster::Node::builder().start().unwrap();
    /// assert!(node.cluster().link_sessions().is_empty());
    /// # }
    /// ```
    pub fn link_sessions(&self) -> Vec<LinkSession> {
        self.shared
            .cluster()
            .map(|c| c.link_sessions())
            .unwrap_or_default()
    }
}
