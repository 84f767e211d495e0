//! The cluster as this node sees it: its linked peers, its address, the counters of its
//! links, their sessions, and the graph (`graph.rs`); the fault injection of tests and
//! chaos drills (feature `fault-injection`).

use std::net::SocketAddr;
use std::sync::Arc;
#[cfg(feature = "fault-injection")]
use std::time::Duration;

use crate::cluster::{ClusterStats, PeerInfo};
use crate::runtime::NodeShared;

/// The cluster matters of a node, from [`Node::cluster`](crate::Node::cluster): peers,
/// link counters and sessions, the graph. For a node started without a cluster every
/// list is empty and every counter `None`.
///
/// A cheap handle: take one where it is needed.
///
/// # Examples
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let node = roster::Node::builder().start().unwrap();
/// let cluster = node.cluster();
/// assert!(cluster.peers().is_empty());
/// assert!(cluster.addr().is_none() && cluster.stats().is_none());
/// # }
/// ```
#[derive(Clone)]
pub struct Cluster {
    pub(super) shared: Arc<NodeShared>,
}

impl Cluster {
    /// Peers this node has a live link to (completed handshake), sorted by name.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let node = roster::Node::builder().start().unwrap();
    /// assert!(node.cluster().peers().is_empty());
    /// # }
    /// ```
    #[doc(alias = "nodes")]
    pub fn peers(&self) -> Vec<PeerInfo> {
        self.shared.cluster().map(|c| c.peers()).unwrap_or_default()
    }

    /// Peers linked to this node that are connected to `scope`, sorted by name.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let node = roster::Node::builder().start().unwrap();
    /// assert!(node.cluster().peers_in("default").is_empty());
    /// # }
    /// ```
    pub fn peers_in(&self, scope: &str) -> Vec<PeerInfo> {
        let Some(cluster) = self.shared.cluster() else {
            return Vec::new();
        };
        let members = cluster.peers_in(scope);
        cluster
            .peers()
            .into_iter()
            .filter(|p| members.contains(&p.incarnation))
            .collect()
    }

    /// The address peers reach this node at; `None` without a cluster.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let config = roster::ClusterConfig::new("127.0.0.1:0".parse().unwrap(), "secret");
    /// let node = roster::Node::builder().cluster(config).start().unwrap();
    /// assert_ne!(node.cluster().addr().unwrap().port(), 0);
    /// node.shutdown().await;
    /// # }
    /// ```
    pub fn addr(&self) -> Option<SocketAddr> {
        self.shared.cluster().map(|c| c.addr())
    }

    /// Counters of the cluster layer (bytes on links, handshake failures, repairs...);
    /// `None` without a cluster.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let node = roster::Node::builder().start().unwrap();
    /// assert!(node.cluster().stats().is_none());
    /// # }
    /// ```
    pub fn stats(&self) -> Option<ClusterStats> {
        self.shared.cluster().map(|c| c.stats())
    }

    /// Closes every link to peers and refuses new ones for `duration`, without leaving the
    /// cluster: peers keep this node's entries and both sides resync by delta afterwards.
    /// A `duration` too long for the clock lasts as long as the process. No-op without a
    /// cluster.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let node = roster::Node::builder().start().unwrap();
    /// node.cluster().sever_links(std::time::Duration::from_millis(10)); // nothing to sever
    /// # }
    /// ```
    #[cfg(feature = "fault-injection")]
    pub fn sever_links(&self, duration: Duration) {
        if let Some(cluster) = self.shared.cluster() {
            cluster.sever_links(duration);
        }
    }

    /// Cuts this node off the cluster for `duration` (links severed and refused,
    /// membership datagrams dropped both ways), as a network partition would. The others
    /// declare it dead once their failure detection runs out
    /// ([`FailureDetection`](crate::FailureDetection)), and it them; when the time is up,
    /// membership finds the nodes again, links come back and each side catches up. A
    /// `duration` too long for the clock lasts as long as the process. No-op without a
    /// cluster.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let node = roster::Node::builder().start().unwrap();
    /// node.cluster().isolate(std::time::Duration::MAX); // nothing to cut off
    /// # }
    /// ```
    #[cfg(feature = "fault-injection")]
    pub fn isolate(&self, duration: Duration) {
        if let Some(cluster) = self.shared.cluster() {
            cluster.isolate(duration);
        }
    }

    /// Cuts this node off the members named `peers` for `duration`, as a partition between
    /// them would (links closed and refused, membership datagrams dropped both ways); the
    /// other members stay reachable. Call it on both sides for a clean split (membership
    /// also relays probes through the members both sides still reach). Returns how many of
    /// `peers` were live members and got cut off. No-op without a cluster.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let node = roster::Node::builder().start().unwrap();
    /// let cut = node.cluster().isolate_from(&["b"], std::time::Duration::from_secs(1));
    /// assert_eq!(cut, 0);
    /// # }
    /// ```
    #[cfg(feature = "fault-injection")]
    pub fn isolate_from(&self, peers: &[&str], duration: Duration) -> usize {
        self.shared
            .cluster()
            .map_or(0, |cluster| cluster.isolate_from(peers, duration))
    }
}

impl std::fmt::Debug for Cluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cluster")
            .field("addr", &self.addr())
            .finish_non_exhaustive()
    }
}
