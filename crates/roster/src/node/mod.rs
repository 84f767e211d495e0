//! The node: processes, scopes and messaging on one member of a cluster.

mod builder;
mod graph;
mod registry;

use std::ops::Deref;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;

pub use self::builder::NodeBuilder;
pub use self::graph::{ClusterGraph, GraphLink, GraphNode};
pub use self::registry::{
    NodeFilter, NodeHealth, NodeInfo, NodeLiveness, NodeWatch, OfflineIsForPeers,
};
use crate::cluster::{ClusterStats, PeerInfo};
use crate::error::{ScopeError, SendError};
use crate::event::ExitReason;
use crate::key::ScopeName;
use crate::pid::Pid;
use crate::process::Process;
use crate::runtime::NodeShared;
use crate::scope::{DEFAULT_SCOPE, Scope};
use crate::store::KindMismatch;

/// How long `shutdown` waits for the linked peers to have this node's leaving record.
const LEAVE_NOTICE_WAIT: Duration = Duration::from_secs(1);

/// A running Roster node.
///
/// A node owns local processes, the scopes it is connected to, and (with the cluster
/// layer) its links to peers. It dereferences to its default [`Scope`], so every name and
/// group operation is available on it directly. Handles are cheap to clone.
///
/// # Examples
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use roster::Node;
///
/// let node = Node::builder().name("api-1").start().unwrap();
/// let pid = node.spawn(|mut proc| async move {
///     proc.register("echo", &()).unwrap();
///     while let Ok(text) = proc.recv::<String>().await {
///         println!("{text}");
///     }
/// });
/// # let _ = pid;
/// # }
/// ```
#[derive(Clone)]
pub struct Node {
    shared: Arc<NodeShared>,
    default_scope: Scope,
}

impl Node {
    /// A builder with default settings.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let node = roster::Node::builder().start().unwrap();
    /// assert_eq!(node.name(), "roster");
    /// # }
    /// ```
    pub fn builder() -> NodeBuilder {
        NodeBuilder::default()
    }

    pub(crate) fn from_shared(shared: Arc<NodeShared>) -> Self {
        let default_scope = Scope::default_of(&shared);
        Node {
            shared,
            default_scope,
        }
    }

    /// The node's human name.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// assert_eq!(roster::Node::builder().name("n1").start().unwrap().name(), "n1");
    /// # }
    /// ```
    pub fn name(&self) -> &str {
        &self.shared.name
    }

    /// The node's incarnation: random per start, part of every local pid.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let node = roster::Node::builder().incarnation(5).start().unwrap();
    /// assert_eq!(node.incarnation(), 5);
    /// # }
    /// ```
    pub fn incarnation(&self) -> u64 {
        self.shared.incarnation
    }

    /// Creates a process handle owned by the caller (for an actor of any framework).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let node = roster::Node::builder().start().unwrap();
    /// let (a, b) = (node.process(), node.process());
    /// assert!(a.pid() < b.pid());
    /// # }
    /// ```
    pub fn process(&self) -> Process {
        Process::start(&self.shared)
    }

    /// Runs a new process in a tokio task and returns its pid. [`Node::kill`] aborts the
    /// task; a panic in it ends the process with [`ExitReason::Panicked`].
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let node = roster::Node::builder().start().unwrap();
    /// let pid = node.spawn(|proc| async move {
    ///     proc.join("workers", &()).unwrap();
    ///     std::future::pending::<()>().await;
    /// });
    /// tokio::task::yield_now().await;
    /// assert_eq!(node.members("workers").pids(), [pid]);
    /// assert!(node.kill(pid));
    /// assert!(node.members("workers").is_empty());
    /// # }
    /// ```
    pub fn spawn<F, Fut>(&self, f: F) -> Pid
    where
        F: FnOnce(Process) -> Fut,
        Fut: Future<Output = ()> + Send + 'static,
    {
        Process::start(&self.shared).spawn(f)
    }

    /// Kills a local process at once: its entries disappear for readers immediately, are
    /// removed with reason [`ExitReason::Killed`], and its task is aborted if it was
    /// spawned. Returns `false` if no such live process exists here.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let node = roster::Node::builder().start().unwrap();
    /// let p = node.process();
    /// p.register("k", &()).unwrap();
    /// assert!(node.kill(p.pid()));
    /// assert!(node.lookup("k").is_none());
    /// assert!(!node.kill(p.pid()));
    /// # }
    /// ```
    pub fn kill(&self, pid: Pid) -> bool {
        let Some(cell) = self.shared.stores.process(pid) else {
            return false;
        };
        // Only the caller that marks it dead kills it: it may be exiting on its own.
        if !self.shared.stores.exit(&cell, ExitReason::Killed) {
            return false;
        }
        cell.abort_task();
        self.shared.flush_local();
        true
    }

    /// Whether `pid` is a live process of this node.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let node = roster::Node::builder().start().unwrap();
    /// let p = node.process();
    /// assert!(node.is_alive(p.pid()));
    /// # }
    /// ```
    pub fn is_alive(&self, pid: Pid) -> bool {
        pid.incarnation() == self.shared.incarnation && self.shared.stores.processes.is_live(pid)
    }

    /// Peers this node has a live link to (completed handshake), sorted by name.
    /// Empty for a node without a cluster.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let node = roster::Node::builder().start().unwrap();
    /// assert!(node.nodes().is_empty());
    /// # }
    /// ```
    pub fn nodes(&self) -> Vec<PeerInfo> {
        self.shared.cluster().map(|c| c.peers()).unwrap_or_default()
    }

    /// Peers linked to this node that are connected to `scope`, sorted by name.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let node = roster::Node::builder().start().unwrap();
    /// assert!(node.nodes_in("default").is_empty());
    /// # }
    /// ```
    pub fn nodes_in(&self, scope: &str) -> Vec<PeerInfo> {
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

    /// The name of the node `pid` lives on: this node's own name for its processes, the
    /// name a linked peer announced in its handshake for theirs. `None` for a pid of a node
    /// this node has no live link to (not yet linked, restarted as a new incarnation, or
    /// gone), whatever entries of it are still held.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let node = roster::Node::builder().name("api-1").start().unwrap();
    /// let p = node.process();
    /// assert_eq!(node.node_name_of(p.pid()).as_deref(), Some("api-1"));
    /// assert_eq!(node.node_name_of(roster::Pid::new(node.incarnation() ^ 1, 1)), None);
    /// # }
    /// ```
    pub fn node_name_of(&self, pid: Pid) -> Option<String> {
        if pid.incarnation() == self.shared.incarnation {
            return Some(self.shared.name.clone());
        }
        self.nodes()
            .into_iter()
            .find(|peer| peer.incarnation == pid.incarnation())
            .map(|peer| peer.name)
    }

    /// The address peers reach this node at, when it is in a cluster.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let config = roster::ClusterConfig::new("127.0.0.1:0".parse().unwrap(), "secret");
    /// let node = roster::Node::builder().cluster(config).start().unwrap();
    /// assert_ne!(node.cluster_addr().unwrap().port(), 0);
    /// node.shutdown().await;
    /// # }
    /// ```
    pub fn cluster_addr(&self) -> Option<std::net::SocketAddr> {
        self.shared.cluster().map(|c| c.addr())
    }

    /// Counters of the cluster layer (bytes on links, handshake failures, repairs...);
    /// `None` for a node without a cluster.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let node = roster::Node::builder().start().unwrap();
    /// assert!(node.cluster_stats().is_none());
    /// # }
    /// ```
    pub fn cluster_stats(&self) -> Option<ClusterStats> {
        self.shared.cluster().map(|c| c.stats())
    }

    /// Closes every link to peers and refuses new ones for `duration`, without leaving the
    /// cluster: peers keep this node's entries and both sides resync by delta afterwards.
    /// For maintenance and fault-injection tests.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let node = roster::Node::builder().start().unwrap();
    /// node.sever_links(std::time::Duration::from_millis(10)); // no cluster: nothing to do
    /// # }
    /// ```
    pub fn sever_links(&self, duration: std::time::Duration) {
        if let Some(cluster) = self.shared.cluster() {
            cluster.sever_links(duration);
        }
    }

    /// Fault injection for tests and chaos drills: cuts this node off the cluster for
    /// `duration` (links severed and refused, membership datagrams dropped both ways), as
    /// a network partition would. The others declare it dead once their failure detection
    /// runs out ([`crate::FailureDetection`]), and it them; when the time is up, membership
    /// finds the nodes again, links come back and each side catches up. No-op without a
    /// cluster.
    pub fn isolate(&self, duration: std::time::Duration) {
        if let Some(cluster) = self.shared.cluster() {
            cluster.isolate(duration);
        }
    }

    /// Fault injection for tests and chaos drills: cuts this node off the members named
    /// `peers` for `duration`, as a partition between them would (links closed and
    /// refused, membership datagrams dropped both ways); the other members stay reachable.
    /// Call it on both sides for a clean split (membership also relays probes through the
    /// members both sides still reach). Returns how many of `peers` were live members and
    /// got cut off. No-op without a cluster.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let node = roster::Node::builder().start().unwrap();
    /// assert_eq!(node.isolate_from(&["b"], std::time::Duration::from_secs(1)), 0);
    /// # }
    /// ```
    pub fn isolate_from(&self, peers: &[&str], duration: std::time::Duration) -> usize {
        self.shared
            .cluster()
            .map_or(0, |cluster| cluster.isolate_from(peers, duration))
    }

    /// Leaves the cluster (peers see this node down at once) and stops its tasks. Local
    /// processes and scopes stay usable as a single node. First it publishes its record
    /// as `Offline` ("left the cluster") and waits, at most a second, until every linked
    /// peer has it, so that peers know it left on purpose (see
    /// [`crate::nodes::SplitBrainConfig::expected`]).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let node = roster::Node::builder().start().unwrap();
    /// node.shutdown().await; // nothing to leave
    /// # }
    /// ```
    pub async fn shutdown(&self) {
        if let Some(cluster) = self.shared.cluster() {
            // Peers that get this record know the node left on purpose: it leaves the
            // expected cluster of their split-brain checks. A round trip to each linked
            // peer behind it tells when they have it; a peer that does not answer within
            // the bound learns of the leave from membership only (as a death).
            self.shared
                .change_status(crate::nodes::NodeStatus::Offline, "left the cluster", false);
            let delivered = cluster.with_core(|core, _| core.barrier(DEFAULT_SCOPE));
            let _ = tokio::time::timeout(LEAVE_NOTICE_WAIT, delivered.reached()).await;
        }
        if let Some(cluster) = self.shared.cluster.swap(None) {
            if let Some(outbox) = self.shared.outbox() {
                outbox.close();
            }
            cluster.shutdown().await;
        }
    }

    /// Number of live local processes.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let node = roster::Node::builder().start().unwrap();
    /// let _p = node.process();
    /// assert_eq!(node.process_count(), 1);
    /// # }
    /// ```
    pub fn process_count(&self) -> usize {
        self.shared.stores.processes.cells.len()
    }

    /// Sends a message to a local process, without a sender. Never waits.
    ///
    /// # Errors
    ///
    /// [`SendError::NoProcess`], [`SendError::MailboxFull`], [`SendError::Encode`].
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let node = roster::Node::builder().start().unwrap();
    /// let mut p = node.process();
    /// node.send(p.pid(), &"hi").unwrap();
    /// assert_eq!(p.recv::<String>().await.unwrap(), "hi");
    /// # }
    /// ```
    pub fn send<T: Serialize + ?Sized>(&self, to: Pid, message: &T) -> Result<(), SendError> {
        self.shared.send_from(None, to, message)
    }

    /// Connects this node to a replicated scope (creating it locally if needed) and returns
    /// a handle. Connecting again returns the same scope.
    ///
    /// # Errors
    ///
    /// [`ScopeError::InvalidName`], or [`ScopeError::KindMismatch`] if it is connected as
    /// local-only.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let node = roster::Node::builder().start().unwrap();
    /// let chat = node.connect("chat").unwrap();
    /// assert_eq!(node.scope("chat").unwrap().scope_name(), chat.scope_name());
    /// # }
    /// ```
    pub fn connect(&self, scope: &str) -> Result<Scope, ScopeError> {
        self.connect_kind(scope, false)
    }

    /// Connects a local-only scope: it never replicates (Elixir `Registry` semantics, with
    /// unique names and duplicate keys as groups, dispatch, select and count).
    ///
    /// # Errors
    ///
    /// As [`Node::connect`].
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let node = roster::Node::builder().start().unwrap();
    /// let local = node.connect_local("conn-cache").unwrap();
    /// assert!(local.is_local_only());
    /// # }
    /// ```
    pub fn connect_local(&self, scope: &str) -> Result<Scope, ScopeError> {
        self.connect_kind(scope, true)
    }

    /// Connects a replicated scope with a lease: every `ttl`, if this node holds no names,
    /// memberships or subscriptions in it, it disconnects; otherwise the lease is extended
    /// by another `ttl`.
    ///
    /// # Errors
    ///
    /// As [`Node::connect`], and [`ScopeError::DefaultScope`] for the default scope, which
    /// can never be disconnected.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// use std::time::Duration;
    /// let node = roster::Node::builder().start().unwrap();
    /// node.connect_with_ttl("jobs", Duration::from_secs(5)).unwrap();
    /// tokio::time::sleep(Duration::from_secs(6)).await;
    /// assert!(node.scope("jobs").is_err());
    /// # }
    /// ```
    pub fn connect_with_ttl(&self, scope: &str, ttl: Duration) -> Result<Scope, ScopeError> {
        if scope == DEFAULT_SCOPE {
            return Err(ScopeError::DefaultScope);
        }
        let handle = self.connect_kind(scope, false)?;
        handle
            .state
            .set_lease(ttl, tokio::time::Instant::now().into_std());
        self.shared.lease_timer();
        Ok(handle)
    }

    fn connect_kind(&self, scope: &str, local_only: bool) -> Result<Scope, ScopeError> {
        self.shared
            .limits
            .write_key(scope)
            .map_err(ScopeError::InvalidName)?;
        let (state, created) = self
            .shared
            .stores
            .connect(scope, local_only)
            .map_err(|KindMismatch| ScopeError::KindMismatch(scope.into()))?;
        if created
            && !local_only
            && let Some(cluster) = self.shared.cluster()
        {
            cluster.on_scope_connected(&state.name);
        }
        Ok(Scope {
            state,
            node: self.shared.clone(),
        })
    }

    /// A handle to a connected scope.
    ///
    /// # Errors
    ///
    /// [`ScopeError::NotConnected`] if this node is not connected to it.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let node = roster::Node::builder().start().unwrap();
    /// assert!(node.scope("nope").is_err());
    /// assert!(node.scope("default").is_ok());
    /// # }
    /// ```
    pub fn scope(&self, scope: &str) -> Result<Scope, ScopeError> {
        let state = self
            .shared
            .stores
            .get(scope)
            .ok_or_else(|| ScopeError::NotConnected(scope.into()))?;
        Ok(Scope {
            state,
            node: self.shared.clone(),
        })
    }

    /// The scopes this node is connected to, sorted.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let node = roster::Node::builder().start().unwrap();
    /// node.connect("b").unwrap();
    /// assert_eq!(node.scopes(), ["b", "default"]);
    /// # }
    /// ```
    pub fn scopes(&self) -> Vec<ScopeName> {
        let mut names: Vec<ScopeName> = self
            .shared
            .stores
            .all()
            .iter()
            .map(|s| s.name.clone())
            .collect();
        names.sort_unstable();
        names
    }

    /// Disconnects from a scope: drops the local view of it, emitting `Unregistered`/`Left`
    /// with reason [`crate::Reason::ScopeDisconnected`] as one final batch per subscription,
    /// and ends its subscriptions. Later writes through old handles fail with
    /// [`crate::RegistryError::ScopeNotConnected`].
    ///
    /// # Errors
    ///
    /// [`ScopeError::NotConnected`], or [`ScopeError::DefaultScope`] for the default scope.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let node = roster::Node::builder().start().unwrap();
    /// let chat = node.connect("chat").unwrap();
    /// let p = node.process();
    /// chat.register(&p, "k", &()).unwrap();
    /// node.disconnect("chat").unwrap();
    /// assert!(chat.lookup("k").is_none());
    /// assert!(chat.register(&p, "k", &()).is_err());
    /// # }
    /// ```
    pub fn disconnect(&self, scope: &str) -> Result<(), ScopeError> {
        if scope == DEFAULT_SCOPE {
            return Err(ScopeError::DefaultScope);
        }
        let state = self.scope(scope)?.state;
        self.shared.disconnect_state(&state);
        Ok(())
    }
}

impl Deref for Node {
    type Target = Scope;

    /// The default scope.
    fn deref(&self) -> &Scope {
        &self.default_scope
    }
}

impl std::fmt::Debug for Node {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Node")
            .field("name", &self.shared.name)
            .field(
                "incarnation",
                &format_args!("{:016x}", self.shared.incarnation),
            )
            .finish()
    }
}

impl Process {
    /// The node this process lives on.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let node = roster::Node::builder().name("api-1").start().unwrap();
    /// assert_eq!(node.process().node().name(), "api-1");
    /// # }
    /// ```
    pub fn node(&self) -> Node {
        Node::from_shared(self.node_shared().clone())
    }
}
