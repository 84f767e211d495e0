//! Configuring and starting a node.

use std::collections::BTreeMap;
use std::sync::Arc;

use arc_swap::ArcSwapOption;

use super::Node;
use super::StartError;
use crate::clock::{Clock, wall_clock};
use crate::cluster::{Cluster, ClusterConfig};
use crate::conflict::ConflictRule;
use crate::key::Limits;
use crate::meta::Meta;
use crate::nodes::{HealthConfig, NodeRecord};
use crate::op::Outbox;
use crate::pid::Incarnation;
use crate::runtime::NodeShared;
use crate::runtime::external::Externals;
use crate::runtime::extract::{ExtractFn, Extracts};
use crate::runtime::log_level::{LogGate, LogLevel};
use crate::runtime::monitor::{Monitor, start_monitor};
use crate::store::ProcessTable;
use crate::store::{NodeStores, ScopeConfig};

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
    mailbox_bytes: usize,
    subscription_capacity: usize,
    incarnation: Option<u64>,
    conflict_rule: ConflictRule,
    kill_conflict_losers: bool,
    /// Local writes produce ops for a replication core (set by `cluster`).
    replicated: bool,
    clock: Option<Arc<dyn Clock>>,
    clock_floor: u64,
    cluster: Option<ClusterConfig>,
    role: String,
    labels: BTreeMap<String, String>,
    version: String,
    health: HealthConfig,
    // Read-side meta transform and log level (see the last block of setters).
    extract_meta: Option<ExtractFn>,
    log_level: LogLevel,
}

impl std::fmt::Debug for NodeBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodeBuilder")
            .field("name", &self.name)
            .field("limits", &self.limits)
            .field("mailbox_capacity", &self.mailbox_capacity)
            .field("mailbox_bytes", &self.mailbox_bytes)
            .field("subscription_capacity", &self.subscription_capacity)
            .field("conflict_rule", &self.conflict_rule)
            .finish_non_exhaustive()
    }
}

impl Default for NodeBuilder {
    fn default() -> Self {
        Self {
            name: "roster".into(),
            limits: Limits::DEFAULT,
            mailbox_capacity: 1024,
            mailbox_bytes: 64 << 20,
            subscription_capacity: 65_536,
            incarnation: None,
            conflict_rule: ConflictRule::default(),
            kill_conflict_losers: true,
            replicated: false,
            clock: None,
            clock_floor: 0,
            cluster: None,
            role: String::new(),
            labels: BTreeMap::new(),
            version: String::new(),
            health: HealthConfig::default(),
            extract_meta: None,
            log_level: LogLevel::Info,
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
    /// [`crate::SendError::TooLarge`]; so is a message to a process on a peer whose own limit is
    /// smaller.
    pub fn max_message_bytes(mut self, max: usize) -> Self {
        self.limits.max_message_bytes = max;
        self
    }

    /// Messages a process's mailbox holds before sends to it fail with
    /// [`crate::SendError::MailboxFull`] (default 1024, at least 1).
    pub fn mailbox_capacity(mut self, capacity: usize) -> Self {
        self.mailbox_capacity = capacity.max(1);
        self
    }

    /// Bytes of queued messages a process's mailbox holds (default 64 MiB): a message that
    /// would take it over the bound is refused with [`crate::SendError::MailboxFull`], as
    /// when the mailbox holds `mailbox_capacity` messages (a dispatch counts it in
    /// [`crate::Dispatched::mailbox_full`]; a message from a peer is dropped). A message
    /// counts its encoded size; its bytes are released when the process receives it. Each
    /// mailbox counts a dispatched message in full, though its receivers share one copy.
    ///
    /// Must be at least `max_message_bytes`, or [`NodeBuilder::start`] fails with
    /// [`StartError::MailboxBytes`]. Memory held by mailboxes is at most this times the
    /// number of processes whose receivers fall behind.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// use roster::StartError;
    /// let node = roster::Node::builder().mailbox_bytes(8 << 20).start().unwrap();
    /// assert!(matches!(
    ///     roster::Node::builder().mailbox_bytes(0).start(),
    ///     Err(StartError::MailboxBytes { bytes: 0, .. })
    /// ));
    /// # }
    /// ```
    pub fn mailbox_bytes(mut self, bytes: usize) -> Self {
        self.mailbox_bytes = bytes;
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
    pub fn incarnation(mut self, incarnation: Incarnation) -> Self {
        self.incarnation = Some(incarnation.get());
        self
    }

    /// How name conflicts between nodes are decided (default
    /// [`ConflictRule::KeepOldest`]). Every node of a cluster must use the same rule.
    pub fn conflict_rule(mut self, rule: ConflictRule) -> Self {
        self.conflict_rule = rule;
        self
    }

    /// What happens to a local process that loses a name in a conflict between nodes
    /// (default `true`): it is ended with [`crate::ExitReason::Conflict`] (a spawned one has its
    /// task aborted), as syn does. With `false` it keeps running without the name, and
    /// finds the names it lost with [`crate::Process::lost_names`]; either way subscribers see
    /// `ConflictResolved`, then `Unregistered`, with [`crate::Reason::Conflict`] (the
    /// winner's node sees the `ConflictResolved` too; see [`crate::EventKind`]).
    pub fn kill_conflict_losers(mut self, kill: bool) -> Self {
        self.kill_conflict_losers = kill;
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

    /// Starts the node's clocks past `reading`, a [`Node::clock_reading`] the node's
    /// previous run saved (the `roster` agent keeps one in its data directory): the new
    /// incarnation then mints no fencing token below one the old one minted or showed,
    /// even before it links to a peer, and even if the cluster's clocks had run ahead of
    /// this machine's wall clock.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let before = roster::Node::builder().start().unwrap();
    /// let token = before.new_process().register("k", &()).unwrap().token;
    /// let saved = before.clock_reading();
    /// assert!(saved >= token);
    ///
    /// let after = roster::Node::builder().clock_floor(saved).start().unwrap();
    /// assert!(after.new_process().register("k", &()).unwrap().token > saved);
    /// # }
    /// ```
    pub fn clock_floor(mut self, reading: u64) -> Self {
        self.clock_floor = reading;
        self
    }

    /// What the node is for, in its node record (e.g. `"api"`; default empty). See
    /// [`Nodes::get`](crate::Nodes::get).
    pub fn role(mut self, role: impl Into<String>) -> Self {
        self.role = role.into();
        self
    }

    /// Adds a label to the node record (e.g. `domain = "eu"`; at most 64, each key and
    /// value at most 256 bytes, or `start` fails with [`StartError::InvalidRecord`]).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let node = roster::Node::builder()
    ///     .name("api-1")
    ///     .role("api")
    ///     .label("domain", "eu")
    ///     .version("2.4.1")
    ///     .start()
    ///     .unwrap();
    /// let me = node.nodes().get("api-1").unwrap();
    /// assert_eq!((me.record.role.as_str(), me.record.labels["domain"].as_str()), ("api", "eu"));
    /// # }
    /// ```
    pub fn label(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.labels.insert(key.into(), value.into());
        self
    }

    /// The application's version, in the node record (default empty).
    pub fn version(mut self, version: impl Into<String>) -> Self {
        self.version = version.into();
        self
    }

    /// Heartbeats, retention of dead nodes' records and degraded thresholds (see
    /// [`HealthConfig`] for the defaults). A configuration that cannot work makes `start`
    /// fail with [`StartError::Health`].
    pub fn health(mut self, health: HealthConfig) -> Self {
        self.health = health;
        self
    }

    /// Starts the node on the current tokio runtime.
    ///
    /// # Errors
    ///
    /// [`StartError::NoRuntime`] outside a tokio runtime; [`StartError::InvalidName`] for an
    /// empty or over-long name; [`StartError::MailboxBytes`] for a `mailbox_bytes` below
    /// `max_message_bytes`; [`StartError::Health`], [`StartError::SplitBrain`] or
    /// [`StartError::InvalidRecord`] for settings that cannot work; [`StartError::Bind`] if
    /// the cluster address cannot be bound.
    pub fn start(self) -> Result<Node, StartError> {
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| StartError::NoRuntime)?;
        let limits = self.limits.clamped();
        limits
            .write_key(&self.name)
            .map_err(StartError::InvalidName)?;
        if self.mailbox_bytes < limits.max_message_bytes {
            return Err(StartError::MailboxBytes {
                bytes: self.mailbox_bytes,
                min: limits.max_message_bytes,
            });
        }
        self.health.validate()?;
        let split_brain = self
            .cluster
            .as_ref()
            .map(|c| c.split_brain_config().clone())
            .unwrap_or_default();
        split_brain.validate()?;
        let incarnation = self.incarnation.unwrap_or_else(rand::random);
        let clock = self.clock.unwrap_or_else(wall_clock);
        let mut record = NodeRecord::new(
            &self.name,
            Incarnation::new(incarnation),
            clock.now_millis(),
        );
        record.role = self.role;
        record.labels = self.labels;
        record.version = self.version;
        record.validate().map_err(StartError::InvalidRecord)?;
        let outbox = self.replicated.then(|| Arc::new(Outbox::default()));
        let scope_config = ScopeConfig {
            locals: Arc::new(ProcessTable::new(incarnation)),
            rule: self.conflict_rule,
            outbox,
            clock,
            fence: Arc::default(),
            resolver_panics: Arc::default(),
            end_conflict_losers: self.kill_conflict_losers,
        };
        let stores = NodeStores::new(scope_config);
        stores.start_clocks_past(self.clock_floor);
        stores
            .nodes
            .set_ring(self.health.settings().heartbeats_kept);
        let shared = Arc::new(NodeShared {
            name: self.name,
            incarnation,
            limits,
            mailbox_capacity: self.mailbox_capacity,
            mailbox_bytes: self.mailbox_bytes,
            subscription_capacity: self.subscription_capacity,
            stores,
            cluster: ArcSwapOption::empty(),
            runtime,
            lease_timer: std::sync::OnceLock::new(),
            monitor: Monitor::new(
                self.health.settings().clone(),
                record.clone(),
                split_brain.settings().clone(),
                split_brain.checks_every(),
            ),
            extracts: Extracts::new(self.extract_meta),
            log_level: LogGate::default(),
            externals: Externals::default(),
        });
        shared.set_log_level(self.log_level);
        shared.extracts.adopt(shared.stores.default_scope());
        if let Some(config) = self.cluster {
            let cluster = Cluster::start(shared.clone(), shared.name.clone(), config.settings())
                .map_err(|e| StartError::Bind {
                    addr: config.listen().to_string(),
                    reason: e.to_string(),
                })?;
            shared.monitor.set_addrs(vec![cluster.addr().to_string()]);
            shared.cluster.store(Some(cluster));
        }
        shared.publish_record(shared.monitor.record());
        start_monitor(&shared);
        Ok(Node::from_shared(shared))
    }
}

/// The read-side meta transform and the node's own log level.
impl NodeBuilder {
    /// A transform of the meta that this node's reads return, for every scope without its
    /// own ([`ScopeOptions::extract_meta`](crate::ScopeOptions::extract_meta), which wins):
    /// Phoenix `Group`'s `extract_meta`. It is given each entry's key and stored meta and
    /// returns the meta the caller sees, e.g. without internal fields, or one field of it.
    ///
    /// It applies to [`Scope::lookup`](crate::Scope::lookup), [`Scope::names`](crate::Scope::names),
    /// [`Scope::members`](crate::Scope::members) and its relatives (`members_limited`,
    /// `local_members*`), and [`Scope::select`](crate::Scope::select) and its relatives
    /// (`count_match`, `select_as`, `count_match_as`: the predicate sees the transformed
    /// meta). Writes, their results and errors, replication, subscriptions and watches
    /// (initial entries and events) see the stored meta, which the transform never
    /// changes: apply it to those with [`Scope::extract_meta`](crate::Scope::extract_meta).
    /// Counts never call it.
    ///
    /// The signature takes `&str, &Meta` and returns a [`Meta`]: the key lets one
    /// transform treat key spaces apart, and a `Meta` is what reads hand out, so there is
    /// no error to decide: keep the stored meta with `meta.clone()` (a reference count)
    /// when it does not decode. It runs in the reading thread, outside every store lock,
    /// once per entry returned (or visited, for `select`); a read without a transform
    /// configured pays one relaxed atomic load. If it panics, the read returns the stored
    /// meta of that entry, the panic is counted in
    /// [`Node::extract_meta_panics`](crate::Node::extract_meta_panics) and logged once per
    /// node, and the scope is unaffected.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// use std::collections::BTreeMap;
    /// use roster::Meta;
    ///
    /// // Sessions store their region and an internal token; readers see the region only.
    /// let node = roster::Node::builder()
    ///     .extract_meta(|_key, meta| match meta.decode::<BTreeMap<String, String>>() {
    ///         Ok(fields) => Meta::encode(&fields.get("region")).unwrap(),
    ///         Err(_) => meta.clone(),
    ///     })
    ///     .start()
    ///     .unwrap();
    /// let p = node.new_process();
    /// let stored = BTreeMap::from([("region", "eu"), ("token", "s3cr3t")]);
    /// p.register("session/1", &stored).unwrap();
    /// let seen = node.default_scope().lookup("session/1").unwrap().meta;
    /// assert_eq!(seen.decode::<String>().unwrap(), "eu");
    /// # }
    /// ```
    pub fn extract_meta<F>(mut self, extract: F) -> Self
    where
        F: Fn(&str, &Meta) -> Meta + Send + Sync + 'static,
    {
        self.extract_meta = Some(Arc::new(extract));
        self
    }

    /// How much the node logs of itself (default [`LogLevel::Info`]); see [`LogLevel`],
    /// and [`Node::set_log_level`](crate::Node::set_log_level) to change it while running.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// use roster::LogLevel;
    /// let node = roster::Node::builder().log_level(LogLevel::Verbose).start().unwrap();
    /// assert_eq!(node.log_level(), LogLevel::Verbose);
    /// # }
    /// ```
    pub fn log_level(mut self, level: LogLevel) -> Self {
        self.log_level = level;
        self
    }
}
