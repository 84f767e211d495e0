//! Public configuration of the cluster layer.

use std::net::SocketAddr;
use std::time::Duration;

use super::driver::ClusterSettings;
use super::link_table::RedialPolicy;
use super::membership::MembershipConfig;
use crate::nodes::SplitBrainConfig;
#[cfg(doc)]
use crate::nodes::SplitBrainStrategy;
use crate::replication::core::CoreConfig;

/// The bounds of the cluster's intervals and backoffs: a shorter one would keep a task
/// busy, a longer one is as good as never and would overflow the clock's arithmetic.
const INTERVALS: (Duration, Duration) =
    (Duration::from_millis(1), Duration::from_secs(24 * 60 * 60));

/// `interval` within [`INTERVALS`].
fn bounded(interval: Duration) -> Duration {
    interval.clamp(INTERVALS.0, INTERVALS.1)
}

/// How fast failed nodes are detected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FailureDetection {
    /// SWIM tuned for a LAN (foca's `new_lan`): a dead node is declared down by every
    /// survivor within a few seconds, with few false positives under load. The default.
    #[default]
    Lan,
    /// Short probe periods and suspicion: down within about two seconds on loopback or a
    /// quiet LAN, at the price of more probes and more false suspicions. For tests.
    Fast,
}

/// How a node joins a cluster: its address, the seeds, the shared secret.
///
/// # Examples
///
/// ```
/// use roster::ClusterConfig;
///
/// let config = ClusterConfig::new("127.0.0.1:0".parse().unwrap(), "s3cret")
///     .seeds(["127.0.0.1:7400", "roster.internal:7400"])
///     .cluster_name("prod");
/// # let _ = config;
/// ```
#[derive(Clone)]
pub struct ClusterConfig {
    listen: SocketAddr,
    secret: Vec<u8>,
    seeds: Vec<String>,
    cluster_name: String,
    failure_detection: FailureDetection,
    announce_interval: Duration,
    anti_entropy_interval: Duration,
    op_log: usize,
    op_log_bytes: usize,
    max_queued_ops: usize,
    redial: RedialPolicy,
    split_brain: SplitBrainConfig,
    #[cfg(feature = "tls")]
    tls: Option<super::tls::TlsConfig>,
    busy_poll: Duration,
    read_poll: Duration,
}

impl ClusterConfig {
    /// Listens on `listen` (TCP for replication and UDP for membership, same port; port 0
    /// picks a free one) and authenticates peers with `secret`, which every node of the
    /// cluster shares and which never crosses the wire.
    pub fn new(listen: SocketAddr, secret: impl AsRef<[u8]>) -> Self {
        Self {
            listen,
            secret: secret.as_ref().to_vec(),
            seeds: Vec::new(),
            cluster_name: "roster".into(),
            failure_detection: FailureDetection::default(),
            announce_interval: Duration::from_secs(5),
            anti_entropy_interval: Duration::from_secs(2),
            op_log: CoreConfig::default().op_log,
            op_log_bytes: CoreConfig::default().op_log_bytes,
            max_queued_ops: CoreConfig::default().max_queued_ops,
            redial: RedialPolicy::default(),
            split_brain: SplitBrainConfig::default(),
            #[cfg(feature = "tls")]
            tls: None,
            busy_poll: DEFAULT_BUSY_POLL,
            read_poll: Duration::ZERO,
        }
    }

    /// Addresses (`host:port`) to announce to; DNS names are resolved again at every
    /// announce round, so a name that lists the cluster's nodes works as a seed.
    pub fn seeds<S: Into<String>>(mut self, seeds: impl IntoIterator<Item = S>) -> Self {
        self.seeds = seeds.into_iter().map(Into::into).collect();
        self
    }

    /// A name that must match on every node (default `"roster"`): links to nodes of another
    /// cluster are refused even with the same secret. Keep it short (a few dozen bytes): it
    /// travels in every handshake greeting, which peers cap at 8 KiB with the node name.
    pub fn cluster_name(mut self, name: impl Into<String>) -> Self {
        self.cluster_name = name.into();
        self
    }

    /// How fast failed nodes are detected (default [`FailureDetection::Lan`]).
    pub fn failure_detection(mut self, detection: FailureDetection) -> Self {
        self.failure_detection = detection;
        self
    }

    /// How often seeds are re-announced to (default 5 s, clamped to between 1 ms and a
    /// day). This is also what re-merges the two sides of a healed partition.
    pub fn announce_interval(mut self, interval: Duration) -> Self {
        self.announce_interval = bounded(interval);
        self
    }

    /// How often peers compare digests of each other's entries (default 2 s, clamped to
    /// between 1 ms and a day). Shorter repairs divergence sooner for a little more
    /// traffic per scope and peer; a link silent for a few of these is closed.
    pub fn anti_entropy_interval(mut self, interval: Duration) -> Self {
        self.anti_entropy_interval = bounded(interval);
        self
    }

    /// Ops kept per scope for delta catch-up (default 65 536, at least 1): a peer that was
    /// away for fewer ops than this gets only what it missed, otherwise a snapshot.
    pub fn op_log(mut self, ops: usize) -> Self {
        self.op_log = ops.max(1);
        self
    }

    /// Bytes the ops kept per scope for delta catch-up may take, keys and metas included
    /// (default 16 MiB). The oldest ops go first when this or [`ClusterConfig::op_log`] is
    /// reached, so fewer ops with large metas are kept, and what the log keeps alive per
    /// scope stays within about this even after every entry is gone. A peer that was away
    /// for more than the log holds gets a snapshot; 0 keeps no op at all.
    ///
    /// ```
    /// use roster::ClusterConfig;
    ///
    /// // Entries carry metas of a few KiB: keep 64 MiB of ops per scope.
    /// let config = ClusterConfig::new("127.0.0.1:0".parse().unwrap(), "s3cret")
    ///     .op_log_bytes(64 * 1024 * 1024);
    /// # let _ = config;
    /// ```
    pub fn op_log_bytes(mut self, bytes: usize) -> Self {
        self.op_log_bytes = bytes;
        self
    }

    /// Live ops and messages that may wait for one peer's socket before its link is
    /// dropped as overloaded (default 1 000 000, at least 1). This bounds the memory a slow
    /// peer costs (about this many ops, plus one frame being written). Catch-up after a
    /// reconnect and snapshots are not counted: they are read from the op log or a
    /// snapshot as the peer's socket drains, so a dropped peer always catches up once it
    /// keeps up with the writes, whatever this limit.
    pub fn max_queued_ops(mut self, ops: usize) -> Self {
        self.max_queued_ops = ops.max(1);
        self
    }

    /// How long to wait before redialing a peer after a failed dial or a link that died
    /// young: from `initial`, doubling up to `max`, each wait scaled by a random factor in
    /// [0.5, 1] (defaults 20 ms and 2 s; each clamped to between 1 ms and a day, and `max`
    /// to at least `initial`). A link that lived at least `max` resets the wait: the next
    /// dial after losing it is immediate.
    pub fn redial_backoff(mut self, initial: Duration, max: Duration) -> Self {
        let initial = bounded(initial);
        self.redial = RedialPolicy {
            initial,
            max: bounded(max).max(initial),
        };
        self
    }

    /// How a partition is detected and handled (default: the expected nodes are those
    /// seen while healthy, [`SplitBrainStrategy::Majority`], advisory only). Checked every
    /// heartbeat interval ([`crate::nodes::HealthConfig::heartbeat_interval`]) and by
    /// [`Nodes::check_partition_now`](crate::Nodes::check_partition_now); see [`Nodes::partition`](crate::Nodes::partition).
    /// [`crate::NodeBuilder::start`] refuses a configuration that cannot work (a primary
    /// that is not among the expected nodes) with [`crate::StartError::SplitBrain`].
    ///
    /// ```
    /// use roster::ClusterConfig;
    /// use roster::nodes::{SplitBrainAction, SplitBrainConfig, SplitBrainStrategy};
    ///
    /// let config = ClusterConfig::new("127.0.0.1:0".parse().unwrap(), "s3cret")
    ///     .split_brain(
    ///         SplitBrainConfig::new()
    ///             .expected(["a", "b", "c"])
    ///             .strategy(SplitBrainStrategy::Majority)
    ///             .action(SplitBrainAction::Fence),
    ///     );
    /// # let _ = config;
    /// ```
    pub fn split_brain(mut self, config: SplitBrainConfig) -> Self {
        self.split_brain = config;
        self
    }

    pub(crate) fn split_brain_config(&self) -> &SplitBrainConfig {
        &self.split_brain
    }

    /// Encrypts and mutually authenticates links with TLS (feature `tls`). The cluster
    /// secret handshake still runs, inside the TLS stream. Every node must use TLS.
    #[cfg(feature = "tls")]
    pub fn tls(mut self, tls: super::tls::TlsConfig) -> Self {
        self.tls = Some(tls);
        self
    }

    pub(crate) fn listen(&self) -> SocketAddr {
        self.listen
    }

    pub(crate) fn settings(&self) -> ClusterSettings {
        let mut membership = match self.failure_detection {
            FailureDetection::Lan => MembershipConfig::default(),
            FailureDetection::Fast => MembershipConfig::fast_for_tests(),
        };
        membership.seeds = self.seeds.clone();
        membership.announce_interval = self.announce_interval;
        membership.secret = self.secret.clone();
        membership.cluster = self.cluster_name.clone();
        ClusterSettings {
            listen: self.listen,
            cluster: self.cluster_name.clone(),
            secret: self.secret.clone(),
            membership,
            #[cfg(feature = "tls")]
            tls: self.tls.clone(),
            busy_poll: self.busy_poll,
            read_poll: self.read_poll,
            core: CoreConfig {
                op_log: self.op_log,
                op_log_bytes: self.op_log_bytes,
                max_queued_ops: self.max_queued_ops,
                anti_entropy_interval: self.anti_entropy_interval,
                silence: (self.anti_entropy_interval * SILENT_INTERVALS).max(MIN_SILENCE),
                redial: self.redial,
                vanish_grace: match self.failure_detection {
                    FailureDetection::Lan => Duration::from_secs(15),
                    FailureDetection::Fast => Duration::from_secs(3),
                },
                ..CoreConfig::default()
            },
        }
    }
}

/// A link whose peer sent nothing for this many anti-entropy intervals is closed (every
/// linked peer is pinged at least once per interval)...
const SILENT_INTERVALS: u32 = 5;

/// ... but never sooner than this, so a loaded machine with a short interval does not
/// close healthy links.
const MIN_SILENCE: Duration = Duration::from_secs(2);

/// The default of [`ClusterConfig::busy_poll`]: 1 ms. Chosen by measurement (roster-bench
/// D1, both configurations in the same process, four runs per window on a shared 2-vCPU
/// AMD EPYC VM at load 4.5-6.5, medians of the per-run ratios against busy polling off):
/// with 1 ms the replication p50 0.53x, p99 0.45x, the register call with a peer linked
/// 0.38x (2.3 against 8.1 µs), CPU per replicated write 1.06x and per idle second
/// unchanged; with 200 µs 0.88x, 0.83x, 0.42x, 0.93x. Idle, it costs nothing: the flusher
/// polls only after a flush that moved ops.
const DEFAULT_BUSY_POLL: Duration = Duration::from_millis(1);

/// Latency mode.
impl ClusterConfig {
    /// After it sent local writes to the peers, the node's flusher thread keeps polling
    /// for the next write for `window` before it parks (default: 1 ms; zero turns it off).
    ///
    /// A write that finds the flusher parked pays a thread wake-up (a futex call and, on
    /// a virtual machine, often an inter-processor interrupt: a few microseconds for the
    /// caller and tens before the flusher runs); one that finds it polling pays an atomic
    /// swap and is sent at once. The price is CPU, never while the node is idle: up to
    /// `window` of one core after each write that no other follows within `window`, and
    /// one core while writes keep coming less than `window` apart. The flusher yields its
    /// CPU between polls, but it stays runnable, so the threads it competes with on a
    /// machine with few cores can wait for it: the repository's `docs/performance.md` has
    /// the measurements of both settings. Zero suits a node whose writes come steadily
    /// at a few thousand per second or less and whose CPU matters more than the latency
    /// of each write: the flusher then parks after a few yields, so that only bursts of
    /// writes find it awake. A window is clamped to at most one second (longer would keep
    /// a core busy for nothing).
    pub fn busy_poll(mut self, window: Duration) -> Self {
        self.busy_poll = window.min(Duration::from_secs(1));
        self
    }

    /// After a link's reader received writes or messages from its peer, it keeps polling
    /// the socket for the next frame for `window` before it waits for the runtime's IO
    /// driver (default: zero, off). Plain TCP links only; TLS links never poll.
    ///
    /// A frame that comes while the reader waits wakes a runtime worker parked in
    /// `epoll_wait` (tens of microseconds on a virtual machine before the frame is read);
    /// one that comes while it polls is read at once. The price is CPU, never while the
    /// node is idle (pings, heartbeats and digests do not start a window): up to `window`
    /// of one runtime worker after each frame that no other follows within `window`. The
    /// reader lets the tasks its frames woke run first and yields its CPU between polls,
    /// but during the window it holds a worker of the runtime the node was started in,
    /// one per link that carries traffic: unlike the flusher (`busy_poll`), which is a
    /// thread of its own, it takes that worker from the application's tasks, hence off by
    /// default. On the project's shared two-vCPU machine it lowered the median replication
    /// latency in most runs and raised it in others, as the machine's load went (the
    /// repository's `docs/performance.md` has the measurements). For nodes with few peers
    /// and cores to spare whose replication latency matters more than their CPU. A window
    /// is clamped to at most one second.
    pub fn read_poll(mut self, window: Duration) -> Self {
        self.read_poll = window.min(Duration::from_secs(1));
        self
    }
}

impl std::fmt::Debug for ClusterConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClusterConfig")
            .field("listen", &self.listen)
            .field("seeds", &self.seeds)
            .field("cluster_name", &self.cluster_name)
            .field("failure_detection", &self.failure_detection)
            .field("busy_poll", &self.busy_poll)
            .field("read_poll", &self.read_poll)
            .field("secret", &"<redacted>")
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cluster_name_reaches_the_handshake_and_membership() {
        let settings = ClusterConfig::new("127.0.0.1:0".parse().unwrap(), "s3cret")
            .cluster_name("prod")
            .settings();
        assert_eq!(settings.cluster, "prod");
        assert_eq!(settings.membership.cluster, "prod");
        assert_eq!(settings.membership.secret, b"s3cret");
    }

    #[test]
    fn the_op_log_bounds_reach_the_core() {
        let settings = ClusterConfig::new("127.0.0.1:0".parse().unwrap(), "s3cret")
            .op_log(100)
            .op_log_bytes(4096)
            .settings();
        assert_eq!(settings.core.op_log, 100);
        assert_eq!(settings.core.op_log_bytes, 4096);
        let defaults = ClusterConfig::new("127.0.0.1:0".parse().unwrap(), "s3cret").settings();
        assert_eq!(
            defaults.core.op_log_bytes,
            CoreConfig::default().op_log_bytes
        );
    }

    #[test]
    fn the_busy_poll_window_reaches_the_cluster_layer() {
        let config = ClusterConfig::new("127.0.0.1:0".parse().unwrap(), "s3cret");
        assert_eq!(config.settings().busy_poll, DEFAULT_BUSY_POLL);
        let off = config.busy_poll(Duration::ZERO).settings();
        assert_eq!(off.busy_poll, Duration::ZERO);
    }

    #[test]
    fn the_read_poll_window_reaches_the_cluster_layer_and_is_off_by_default() {
        let config = ClusterConfig::new("127.0.0.1:0".parse().unwrap(), "s3cret");
        assert_eq!(config.settings().read_poll, Duration::ZERO);
        let on = config.read_poll(Duration::from_millis(1)).settings();
        assert_eq!(on.read_poll, Duration::from_millis(1));
    }
}
