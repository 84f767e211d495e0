//! The node: processes, scopes and messaging on one member of a cluster.

use std::ops::Deref;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use serde::Serialize;

use arc_swap::ArcSwapOption;

use crate::clock::{Clock, wall_clock};
use crate::cluster::{Cluster, ClusterConfig, ClusterStats, PeerInfo};
use crate::conflict::ConflictRule;
use crate::error::{ScopeError, SendError, StartError};
use crate::event::ExitReason;
use crate::key::{Limits, ScopeName};
use crate::meta::Meta;
use crate::op::{Outbox, Outgoing};
use crate::pid::Pid;
use crate::process::{Envelope, Holding, Locals, Process, ProcessCell};
use crate::replication::core::Unsent;
use crate::replication::host::ReplicaHost;
use crate::replication::wire::Frame;
use crate::scope::{DEFAULT_SCOPE, Scope};
use crate::store::{Applied, ScopeConfig, ScopeState};

type ScopeMap = papaya::HashMap<ScopeName, Arc<ScopeState>, foldhash::fast::RandomState>;

/// Configures and starts a [`Node`].
///
/// # Examples
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let node = roster::Node::builder()
///     .name("api-1")
///     .max_key_bytes(256)
///     .mailbox_capacity(64)
///     .start()
///     .unwrap();
/// assert_eq!(node.name(), "api-1");
/// # }
/// ```
#[derive(Clone)]
#[must_use = "a builder does nothing until start() is called"]
pub struct NodeBuilder {
    name: String,
    limits: Limits,
    mailbox_capacity: usize,
    subscription_capacity: usize,
    incarnation: Option<u64>,
    conflict_rule: ConflictRule,
    kill_conflict_losers: bool,
    replicated: bool,
    clock: Option<Arc<dyn Clock>>,
    cluster: Option<ClusterConfig>,
}

impl std::fmt::Debug for NodeBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodeBuilder")
            .field("name", &self.name)
            .field("limits", &self.limits)
            .field("mailbox_capacity", &self.mailbox_capacity)
            .field("subscription_capacity", &self.subscription_capacity)
            .field("conflict_rule", &self.conflict_rule)
            .finish_non_exhaustive()
    }
}

impl Default for NodeBuilder {
    fn default() -> Self {
        NodeBuilder {
            name: "roster".into(),
            limits: Limits::DEFAULT,
            mailbox_capacity: 1024,
            subscription_capacity: 65_536,
            incarnation: None,
            conflict_rule: ConflictRule::default(),
            kill_conflict_losers: true,
            replicated: false,
            clock: None,
            cluster: None,
        }
    }
}

impl NodeBuilder {
    /// The node's human name, e.g. `"api-1"` (default `"roster"`).
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// Longest key or prefix accepted, in bytes (default 1024). Longer keys are refused with
    /// [`crate::KeyError::TooLong`]; every node of a cluster should use the same limit.
    pub fn max_key_bytes(mut self, max: usize) -> Self {
        self.limits.max_key_bytes = max;
        self
    }

    /// Largest encoded meta accepted, in bytes (default 64 KiB, at most 16 MiB). Larger
    /// meta is refused with [`crate::MetaError::TooLarge`]. Meta is copied to every node of
    /// a scope: keep it small. Nodes may differ: a write to a replicated scope must also
    /// fit the limit of every linked peer, and a node skips (and counts) entries from peers
    /// that are over its own limit.
    pub fn max_meta_bytes(mut self, max: usize) -> Self {
        self.limits.max_meta_bytes = max;
        self
    }

    /// Largest encoded message accepted by `send` and `dispatch`, in bytes (default
    /// 1 MiB, at most 16 MiB). A larger message is refused with
    /// [`SendError::TooLarge`]; so is a message to a process on a peer whose own limit is
    /// smaller.
    pub fn max_message_bytes(mut self, max: usize) -> Self {
        self.limits.max_message_bytes = max;
        self
    }

    /// Messages a process's mailbox holds before sends to it fail with
    /// [`SendError::MailboxFull`] (default 1024, at least 1).
    pub fn mailbox_capacity(mut self, capacity: usize) -> Self {
        self.mailbox_capacity = capacity.max(1);
        self
    }

    /// Undelivered events a subscription holds before it lags (default 65 536, at least 1);
    /// see [`crate::Subscription`].
    pub fn subscription_capacity(mut self, capacity: usize) -> Self {
        self.subscription_capacity = capacity.max(1);
        self
    }

    /// Fixes the incarnation instead of drawing a random one (for tests and simulations:
    /// two live nodes must never share one).
    pub fn incarnation(mut self, incarnation: u64) -> Self {
        self.incarnation = Some(incarnation);
        self
    }

    /// How name conflicts between nodes are decided (default
    /// [`ConflictRule::KeepOldest`]). Every node of a cluster must use the same rule.
    pub fn conflict_rule(mut self, rule: ConflictRule) -> Self {
        self.conflict_rule = rule;
        self
    }

    /// What happens to a local process that loses a name in a conflict between nodes
    /// (default `true`): it is ended with [`ExitReason::Conflict`] (a spawned one has its
    /// task aborted), as syn does. With `false` it keeps running without the name, and
    /// finds the names it lost with [`Process::lost_names`]; either way subscribers see
    /// `Unregistered` with [`crate::Reason::Conflict`].
    pub fn kill_conflict_losers(mut self, kill: bool) -> Self {
        self.kill_conflict_losers = kill;
        self
    }

    /// Makes local writes produce ops for a replication core (set by the cluster layer and
    /// the simulation harness).
    #[cfg_attr(not(test), allow(dead_code))]
    pub(crate) fn replicated(mut self) -> Self {
        self.replicated = true;
        self
    }

    /// Joins a cluster: listens on the configured address, finds peers through SWIM
    /// membership and the seeds, and replicates every replicated scope with them.
    pub fn cluster(mut self, config: ClusterConfig) -> Self {
        self.cluster = Some(config);
        self.replicated = true;
        self
    }

    /// Replaces the wall clock that feeds the hybrid logical clock (simulations and tests
    /// use a virtual one).
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = Some(clock);
        self
    }

    /// Starts the node on the current tokio runtime.
    ///
    /// # Errors
    ///
    /// [`StartError::NoRuntime`] outside a tokio runtime; [`StartError::InvalidName`] for an
    /// empty or over-long name; [`StartError::Bind`] if the cluster address cannot be bound.
    pub fn start(self) -> Result<Node, StartError> {
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| StartError::NoRuntime)?;
        let limits = self.limits.clamped();
        limits
            .write_key(&self.name)
            .map_err(StartError::InvalidName)?;
        let incarnation = self.incarnation.unwrap_or_else(rand::random);
        let outbox = self.replicated.then(|| Arc::new(Outbox::default()));
        let locals = Arc::new(Locals::new(incarnation));
        let scope_config = ScopeConfig {
            locals: locals.clone(),
            rule: self.conflict_rule,
            outbox: outbox.clone(),
            clock: self.clock.unwrap_or_else(wall_clock),
        };
        let default_scope = ScopeState::new(DEFAULT_SCOPE.into(), false, scope_config.clone());
        let scopes = ScopeMap::default();
        scopes
            .pin()
            .insert(DEFAULT_SCOPE.into(), default_scope.clone());
        let shared = Arc::new(NodeShared {
            name: self.name,
            incarnation,
            limits,
            mailbox_capacity: self.mailbox_capacity,
            subscription_capacity: self.subscription_capacity,
            kill_conflict_losers: self.kill_conflict_losers,
            next_serial: AtomicU64::new(1),
            locals,
            scopes,
            default_scope,
            scope_config,
            outbox,
            cluster: ArcSwapOption::empty(),
            runtime,
        });
        if let Some(config) = self.cluster {
            let cluster = Cluster::start(shared.clone(), shared.name.clone(), config.settings())
                .map_err(|e| StartError::Bind {
                    addr: config.listen().to_string(),
                    reason: e.to_string(),
                })?;
            shared.cluster.store(Some(cluster));
        }
        Ok(Node::from_shared(shared))
    }
}

/// State shared by every handle of a node and by its processes.
pub(crate) struct NodeShared {
    name: String,
    pub(crate) incarnation: u64,
    pub(crate) limits: Limits,
    mailbox_capacity: usize,
    pub(crate) subscription_capacity: usize,
    kill_conflict_losers: bool,
    next_serial: AtomicU64,
    locals: Arc<Locals>,
    scopes: ScopeMap,
    default_scope: Arc<ScopeState>,
    scope_config: ScopeConfig,
    outbox: Option<Arc<Outbox>>,
    /// The cluster layer; `None` for a single node (and after shutdown).
    cluster: ArcSwapOption<Cluster>,
    runtime: tokio::runtime::Handle,
}

impl NodeShared {
    pub(crate) fn default_scope(self: &Arc<Self>) -> Scope {
        Scope {
            state: self.default_scope.clone(),
            node: self.clone(),
        }
    }

    pub(crate) fn new_process(self: &Arc<Self>) -> Process {
        let serial = self.next_serial.fetch_add(1, Ordering::Relaxed);
        let pid = Pid::new(self.incarnation, serial);
        let process = Process::new(self.clone(), &self.locals.live, pid, self.mailbox_capacity);
        self.locals.cells.pin().insert(pid, process.cell().clone());
        process
    }

    pub(crate) fn spawn_process<F, Fut>(self: &Arc<Self>, process: Process, f: F) -> Pid
    where
        F: FnOnce(Process) -> Fut,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let cell = process.cell().clone();
        let task = self.runtime.spawn(f(process));
        cell.set_task(task.abort_handle());
        cell.pid
    }

    pub(crate) fn process_cell(&self, pid: Pid) -> Option<Arc<ProcessCell>> {
        self.locals.cells.pin().get(&pid).cloned()
    }

    /// Ends a process: marks it dead, then removes its entries scope by scope (one event
    /// batch per subscriber and scope). Does nothing and returns `false` if it had already
    /// exited.
    pub(crate) fn exit(&self, cell: &ProcessCell, reason: ExitReason) -> bool {
        let Some(mut holdings) = cell.mark_dead(reason.clone()) else {
            return false;
        };
        holdings.sort_by_key(|h| Arc::as_ptr(&h.scope));
        for same_scope in holdings.chunk_by(|a, b| Arc::ptr_eq(&a.scope, &b.scope)) {
            let refs: Vec<&Holding> = same_scope.iter().collect();
            same_scope[0].scope.remove_exited(cell.pid, &refs, &reason);
        }
        // Kept in the table until now so that a writer replacing one of its entries can
        // still read its exit reason.
        self.locals.cells.pin().remove(&cell.pid);
        true
    }

    pub(crate) fn deliver(&self, to: Pid, envelope: Envelope) -> Result<(), SendError> {
        let cells = self.locals.cells.pin();
        let cell = cells.get(&to).ok_or(SendError::NoProcess(to))?;
        cell.deliver(envelope)
    }

    pub(crate) fn send_from<T: Serialize + ?Sized>(
        &self,
        from: Option<Pid>,
        to: Pid,
        message: &T,
    ) -> Result<(), SendError> {
        let payload = self.encode_message(message)?;
        if to.incarnation() == self.incarnation {
            return self.deliver(to, Envelope::new(from, payload));
        }
        let len = payload.encoded_len();
        let cluster = self.cluster.load();
        let Some(cluster) = cluster.as_ref() else {
            return Err(SendError::NodeUnreachable(to));
        };
        match cluster.send(to.incarnation(), Frame::Message { to, from, payload }) {
            Ok(()) => Ok(()),
            Err(Unsent::NoLink) => Err(SendError::NodeUnreachable(to)),
            Err(Unsent::TooLarge { max }) => Err(SendError::TooLarge { len, max }),
        }
    }

    /// Encodes a message, within this node's `max_message_bytes`.
    pub(crate) fn encode_message<T: Serialize + ?Sized>(
        &self,
        message: &T,
    ) -> Result<Meta, SendError> {
        let payload = Meta::encode(message)?;
        let (len, max) = (payload.encoded_len(), self.limits.max_message_bytes);
        if len > max {
            return Err(SendError::TooLarge { len, max });
        }
        Ok(payload)
    }

    /// The smallest limits among the linked peers; `None` when no peer is linked.
    pub(crate) fn peer_limits(&self) -> Option<Limits> {
        self.cluster.load().as_ref().and_then(|c| c.peer_limits())
    }

    /// Hands the ops of local writes to the cluster layer, if there are any. Called after
    /// every local write from the public API (never from inside the replication core).
    pub(crate) fn flush_local(&self) {
        if self.outbox.as_ref().is_some_and(|o| !o.is_empty())
            && let Some(cluster) = self.cluster.load().as_ref()
        {
            cluster.on_local_ops();
        }
    }

    /// Sends a dispatch to every other node that hosts one of `targets`, one frame per node;
    /// returns to how many nodes it was sent, and how many refused it as larger than their
    /// `max_message_bytes`.
    pub(crate) fn dispatch_to_peers(
        &self,
        scope: &ScopeName,
        key: &str,
        targets: &[Pid],
        payload: &Meta,
    ) -> (usize, usize) {
        let cluster = self.cluster.load();
        let Some(cluster) = cluster.as_ref() else {
            return (0, 0);
        };
        let mut nodes: Vec<u64> = targets
            .iter()
            .map(|p| p.incarnation())
            .filter(|&i| i != self.incarnation)
            .collect();
        nodes.sort_unstable();
        nodes.dedup();
        let (mut sent, mut too_large) = (0, 0);
        for peer in nodes {
            let frame = Frame::Dispatch {
                scope: scope.clone(),
                key: key.into(),
                payload: payload.clone(),
            };
            match cluster.send(peer, frame) {
                Ok(()) => sent += 1,
                Err(Unsent::TooLarge { .. }) => too_large += 1,
                Err(Unsent::NoLink) => {}
            }
        }
        (sent, too_large)
    }

    pub(crate) fn cluster(&self) -> Option<Arc<Cluster>> {
        self.cluster.load_full()
    }

    /// The outbox of local ops, when the node replicates.
    pub(crate) fn outbox(&self) -> Option<&Outbox> {
        self.outbox.as_deref()
    }

    /// Takes the ops of local writes not yet handed to the replication core.
    pub(crate) fn take_local_ops(&self) -> Vec<Outgoing> {
        self.outbox.as_deref().map(Outbox::take).unwrap_or_default()
    }

    /// Local processes lost names in conflicts (the names are already removed): each is
    /// ended with [`ExitReason::Conflict`], or told through `Process::lost_names` when the
    /// node is configured not to kill losers.
    pub(crate) fn conflicts_lost(&self, applied: Applied) {
        for (loser, key, winner) in applied.lost {
            let Some(cell) = self.process_cell(loser) else {
                continue;
            };
            if !self.kill_conflict_losers {
                cell.lost_name(key, winner);
            } else if self.exit(&cell, ExitReason::Conflict { key, winner }) {
                cell.abort_task();
            }
        }
    }

    /// Delivers a message that came from another node to a local process. A message for
    /// a process that is gone is dropped, as in Erlang.
    pub(crate) fn deliver_remote(&self, to: Pid, from: Option<Pid>, payload: Meta) {
        let _ = self.deliver(to, Envelope::new(from, payload));
    }

    /// Delivers a dispatch that came from another node to the local owner and members of
    /// `key` in `scope`.
    pub(crate) fn dispatch_remote(&self, scope: &str, key: &str, payload: Meta) {
        if let Some(state) = self.scopes.pin().get(scope) {
            let envelope = Envelope::new(None, payload);
            for pid in state.local_targets(key) {
                let _ = self.deliver(pid, envelope.clone());
            }
        }
    }

    fn disconnect_state(&self, state: &Arc<ScopeState>) {
        let scopes = self.scopes.pin();
        let removed = scopes.remove_if(&state.name, |_, current| Arc::ptr_eq(current, state));
        if !matches!(removed, Ok(Some(_))) {
            return;
        }
        drop(scopes);
        for pid in state.close() {
            if let Some(cell) = self.process_cell(pid) {
                state.forget_all_holdings(&cell);
            }
        }
        if !state.local_only
            && let Some(cluster) = self.cluster()
        {
            cluster.on_scope_disconnected(&state.name);
        }
    }
}

impl ReplicaHost for NodeShared {
    fn replicated_scope(&self, name: &str) -> Option<Arc<ScopeState>> {
        self.scopes
            .pin()
            .get(name)
            .filter(|s| !s.local_only && s.is_connected())
            .cloned()
    }

    fn replicated_scopes(&self) -> Vec<Arc<ScopeState>> {
        let mut scopes: Vec<Arc<ScopeState>> = self
            .scopes
            .pin()
            .values()
            .filter(|s| !s.local_only && s.is_connected())
            .cloned()
            .collect();
        scopes.sort_by(|a, b| a.name.cmp(&b.name));
        scopes
    }

    fn local_ops_pending(&self) -> bool {
        self.outbox.as_ref().is_some_and(|o| !o.is_empty())
    }
}

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
        let default_scope = shared.default_scope();
        Node {
            shared,
            default_scope,
        }
    }

    #[cfg(test)]
    pub(crate) fn shared(&self) -> &Arc<NodeShared> {
        &self.shared
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
        self.shared.new_process()
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
        let process = self.shared.new_process();
        self.shared.spawn_process(process, f)
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
        let Some(cell) = self.shared.process_cell(pid) else {
            return false;
        };
        // Only the caller that marks it dead kills it: it may be exiting on its own.
        if !self.shared.exit(&cell, ExitReason::Killed) {
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
        pid.incarnation() == self.shared.incarnation && self.shared.locals.is_live(pid)
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

    /// Leaves the cluster (peers see this node down at once) and stops its tasks. Local
    /// processes and scopes stay usable as a single node.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let node = roster::Node::builder().start().unwrap();
    /// node.shutdown().await; // nothing to leave
    /// # }
    /// ```
    pub async fn shutdown(&self) {
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
        self.shared.locals.cells.len()
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
        let state = handle.state.clone();
        let node: Weak<NodeShared> = Arc::downgrade(&self.shared);
        self.shared.runtime.spawn(async move {
            loop {
                tokio::time::sleep(ttl).await;
                let Some(node) = node.upgrade() else { return };
                if !state.is_connected() {
                    return;
                }
                if !state.has_local_state() {
                    node.disconnect_state(&state);
                    return;
                }
            }
        });
        Ok(handle)
    }

    fn connect_kind(&self, scope: &str, local_only: bool) -> Result<Scope, ScopeError> {
        self.shared
            .limits
            .write_key(scope)
            .map_err(ScopeError::InvalidName)?;
        let scopes = self.shared.scopes.pin();
        let mut created = false;
        let state = scopes.get_or_insert_with(scope.into(), || {
            created = true;
            ScopeState::new(scope.into(), local_only, self.shared.scope_config.clone())
        });
        if state.local_only != local_only {
            return Err(ScopeError::KindMismatch(scope.into()));
        }
        let state = state.clone();
        drop(scopes);
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
        let scopes = self.shared.scopes.pin();
        let state = scopes
            .get(scope)
            .ok_or_else(|| ScopeError::NotConnected(scope.into()))?;
        Ok(Scope {
            state: state.clone(),
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
        let mut names: Vec<ScopeName> = self.shared.scopes.pin().keys().cloned().collect();
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
