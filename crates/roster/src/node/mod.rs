//! The node: processes, scopes and messaging on one member of a cluster.

mod builder;
mod cluster;
mod external;
mod graph;
mod registry;
mod scopes;
mod start_error;

use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;

pub use self::builder::NodeBuilder;
pub use self::cluster::Cluster;
pub use self::graph::{ClusterGraph, GraphLink, GraphNode};
pub use self::registry::{
    NodeFilter, NodeHealth, NodeInfo, NodeLiveness, NodeWatch, Nodes, RecordError, StatusIsForPeers,
};
pub use self::scopes::{MIN_SCOPE_TTL, ScopeOptions};
pub use self::start_error::StartError;
use crate::error::SendError;
use crate::event::ExitReason;
use crate::pid::Incarnation;
use crate::pid::Pid;
use crate::process::Process;
use crate::runtime::NodeShared;
use crate::runtime::log_level::LogLevel;
use crate::scope::{DEFAULT_SCOPE, Scope};

/// How long `shutdown` waits for the linked peers to have this node's leaving record.
const LEAVE_NOTICE_WAIT: Duration = Duration::from_secs(1);

/// A running Roster node.
///
/// A node owns local processes, the scopes it is connected to, and (with the cluster
/// layer) its links to peers. Handles are cheap to clone.
///
/// Its calls are grouped the way tokio groups a runtime's metrics behind
/// `Handle::metrics()`:
///
/// - on `Node` itself: processes ([`Node::new_process`], [`Node::spawn`], [`Node::kill`],
///   [`Node::send`]) and scopes ([`Node::connect`], [`Node::scope`], ...);
/// - names and groups live on a [`Scope`]: [`Node::default_scope`] is the scope every node
///   is in, [`Node::connect`] gives others. The default scope is an explicit handle, not a
///   `Deref` of the node, so that every registry call names the scope it acts on, and a
///   call written for the default scope reads the same as one for any other;
/// - [`Node::cluster`]: peers, link counters and sessions, the cluster graph;
/// - [`Node::nodes`]: the node registry (records, liveness, health, heartbeats, this
///   node's status and application metrics, split brain, node events).
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
        Self {
            shared,
            default_scope,
        }
    }

    /// The default scope: the one every node of the cluster is connected to, and the one
    /// [`Process::register`] and [`Process::join`] write to.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let node = roster::Node::builder().start().unwrap();
    /// let registry = node.default_scope();
    /// let p = node.new_process();
    /// p.register("session/1", &()).unwrap();
    /// assert_eq!(registry.whereis("session/1"), Some(p.pid()));
    /// assert_eq!(registry.scope_name(), roster::DEFAULT_SCOPE);
    /// # }
    /// ```
    pub fn default_scope(&self) -> &Scope {
        &self.default_scope
    }

    /// The cluster as this node sees it: peers, link counters and sessions, the graph.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let node = roster::Node::builder().start().unwrap();
    /// assert!(node.cluster().peers().is_empty()); // a single node
    /// # }
    /// ```
    pub fn cluster(&self) -> Cluster {
        Cluster {
            shared: self.shared.clone(),
        }
    }

    /// The node registry: every node's record, liveness, health and heartbeats, this
    /// node's own status and application metrics, split brain, node events.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let node = roster::Node::builder().name("api-1").start().unwrap();
    /// assert_eq!(node.nodes().liveness()[0].name, "api-1");
    /// # }
    /// ```
    pub fn nodes(&self) -> Nodes {
        Nodes {
            shared: self.shared.clone(),
        }
    }

    /// The highest reading of the node's hybrid logical clocks: no fencing token the node
    /// minted or showed is above it. Save it now and then and give it to
    /// [`NodeBuilder::clock_floor`](crate::NodeBuilder::clock_floor) when the node starts
    /// again, so that its tokens keep growing across the restart.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let node = roster::Node::builder().start().unwrap();
    /// let token = node.new_process().register("k", &()).unwrap().token;
    /// assert!(node.clock_reading() >= token);
    /// # }
    /// ```
    pub fn clock_reading(&self) -> u64 {
        self.shared.stores.clock_reading()
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
    /// use roster::Incarnation;
    /// let node = roster::Node::builder().incarnation(Incarnation::new(5)).start().unwrap();
    /// assert_eq!(node.incarnation(), Incarnation::new(5));
    /// # }
    /// ```
    pub fn incarnation(&self) -> Incarnation {
        Incarnation::new(self.shared.incarnation)
    }

    /// Creates a new process: a handle owned by the caller (an actor of any framework can
    /// own one), alive until it is dropped or killed. [`Node::spawn`] runs one in a task.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let node = roster::Node::builder().start().unwrap();
    /// let (a, b) = (node.new_process(), node.new_process());
    /// assert!(a.pid() < b.pid());
    /// # }
    /// ```
    #[doc(alias = "self")]
    #[doc(alias = "process")]
    pub fn new_process(&self) -> Process {
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
    /// assert_eq!(node.default_scope().members("workers").pids(), [pid]);
    /// assert!(node.kill(pid));
    /// assert!(node.default_scope().members("workers").is_empty());
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
    /// let p = node.new_process();
    /// p.register("k", &()).unwrap();
    /// assert!(node.kill(p.pid()));
    /// assert!(node.default_scope().lookup("k").is_none());
    /// assert!(!node.kill(p.pid()));
    /// # }
    /// ```
    pub fn kill(&self, pid: Pid) -> bool {
        self.end_process(pid, ExitReason::Killed)
    }

    /// Ends local process `pid` as [`Node::kill`] does, with [`ExitReason::Shutdown`] of
    /// `reason`: its entries are removed on every node with that reason (an agent ends a
    /// lapsed session with `session_expired`). Returns `Ok(false)` if no such live process
    /// exists here.
    ///
    /// # Errors
    ///
    /// [`ExitReasonTooLong`](crate::ExitReasonTooLong) for a reason over
    /// [`ExitReason::MAX_SHUTDOWN_BYTES`]; the process is left alone.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// use roster::{Delivery, ExitReason, Pattern, Reason};
    ///
    /// let node = roster::Node::builder().start().unwrap();
    /// let mut events = node.default_scope().subscribe(Pattern::from("k")).unwrap();
    /// let p = node.new_process();
    /// p.register("k", &()).unwrap();
    /// assert!(node.kill_with(p.pid(), "session_expired").unwrap());
    /// let mut seen = Vec::new();
    /// while seen.len() < 2 {
    ///     if let Some(Delivery::Events(batch)) = events.recv().await {
    ///         seen.extend(batch);
    ///     }
    /// }
    /// let expired = Reason::Exit(ExitReason::Shutdown("session_expired".into()));
    /// assert_eq!(seen[1].reason, expired);
    /// assert!(node.kill_with(p.pid(), &"x".repeat(65)).is_err());
    /// # }
    /// ```
    pub fn kill_with(&self, pid: Pid, reason: &str) -> Result<bool, crate::ExitReasonTooLong> {
        if reason.len() > ExitReason::MAX_SHUTDOWN_BYTES {
            return Err(crate::ExitReasonTooLong {
                len: reason.len(),
                max: ExitReason::MAX_SHUTDOWN_BYTES,
            });
        }
        Ok(self.end_process(pid, ExitReason::Shutdown(reason.to_owned())))
    }

    fn end_process(&self, pid: Pid, reason: ExitReason) -> bool {
        let Some(cell) = self.shared.stores.process(pid) else {
            return false;
        };
        // Only the caller that marks it dead kills it: it may be exiting on its own.
        if !self.shared.stores.exit(&cell, reason) {
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
    /// let p = node.new_process();
    /// assert!(node.is_alive(p.pid()));
    /// # }
    /// ```
    pub fn is_alive(&self, pid: Pid) -> bool {
        pid.incarnation() == Incarnation::new(self.shared.incarnation)
            && self.shared.stores.processes.is_live(pid)
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
    /// let p = node.new_process();
    /// assert_eq!(node.node_name_of(p.pid()).as_deref(), Some("api-1"));
    /// let stranger = roster::Incarnation::new(node.incarnation().get() ^ 1);
    /// assert_eq!(node.node_name_of(roster::Pid::new(stranger, 1)), None);
    /// # }
    /// ```
    pub fn node_name_of(&self, pid: Pid) -> Option<String> {
        if pid.incarnation() == Incarnation::new(self.shared.incarnation) {
            return Some(self.shared.name.clone());
        }
        self.cluster()
            .peers()
            .into_iter()
            .find(|peer| peer.incarnation == pid.incarnation())
            .map(|peer| peer.name)
    }

    /// Leaves the cluster (peers see this node down at once) and stops its tasks. Local
    /// processes and scopes stay usable as a single node. First it publishes its record
    /// as `Offline` ("left the cluster") and waits, at most a second, until every linked
    /// peer has it; then it leaves membership with a leave notice that gossip spreads with
    /// its down, so that every peer knows it left on purpose, whether or not its record
    /// arrived (see [`SplitBrainConfig::expected`](crate::nodes::SplitBrainConfig::expected)).
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
            // the bound learns of the leave from membership's leave notice.
            self.shared.change_status(
                crate::nodes::NodeStatus::Offline,
                crate::nodes::LEFT_THE_CLUSTER,
                false,
            );
            let delivered = cluster.with_core(|core, host| core.barrier(host, DEFAULT_SCOPE));
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
    /// let _p = node.new_process();
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
    /// let mut p = node.new_process();
    /// node.send(p.pid(), &"hi").unwrap();
    /// assert_eq!(p.recv::<String>().await.unwrap(), "hi");
    /// # }
    /// ```
    pub fn send<T: Serialize + ?Sized>(&self, to: Pid, message: &T) -> Result<(), SendError> {
        self.shared.send_from(None, to, message)
    }

    /// How much this node logs of itself (see [`LogLevel`]).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let node = roster::Node::builder().start().unwrap();
    /// assert_eq!(node.log_level(), roster::LogLevel::Info);
    /// # }
    /// ```
    pub fn log_level(&self) -> LogLevel {
        self.shared.log_level.get()
    }

    /// Changes how much this node logs of itself, at once and for this node only (as
    /// Phoenix's `Group.log_level/2`); see [`LogLevel`].
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// use roster::LogLevel;
    /// let node = roster::Node::builder().start().unwrap();
    /// node.set_log_level(LogLevel::Verbose);
    /// node.new_process().register("k", &()).unwrap(); // logs "registered"
    /// node.set_log_level(LogLevel::Off);
    /// assert_eq!(node.log_level(), LogLevel::Off);
    /// # }
    /// ```
    pub fn set_log_level(&self, level: LogLevel) {
        self.shared.set_log_level(level);
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
    /// assert_eq!(node.new_process().node().name(), "api-1");
    /// # }
    /// ```
    pub fn node(&self) -> Node {
        Node::from_shared(self.node_shared().clone())
    }
}
