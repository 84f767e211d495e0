//! The health settings of a node, as a builder.

use std::time::Duration;

use roster_proto::nodes::{AppThreshold, HealthConfigError, HealthSettings};

/// How a node watches its own health and its peers': the heartbeat interval, what is kept,
/// and when a node counts as degraded. Given to [`NodeBuilder::health`](crate::NodeBuilder::health).
///
/// A node judges its own heartbeat against the degraded thresholds and publishes
/// `Degraded` with the reasons in its record, so every view agrees; missed heartbeats can
/// only be judged by the nodes that miss them.
///
/// ```
/// use std::time::Duration;
/// use roster::nodes::HealthConfig;
///
/// let health = HealthConfig::new()
///     .heartbeat_interval(Duration::from_millis(500))
///     .max_rtt(Some(Duration::from_millis(100)))
///     .app_threshold("backlog", 1_000.0);
/// assert!(health.validate().is_ok());
/// assert!(HealthConfig::new().heartbeat_interval(Duration::ZERO).validate().is_err());
/// ```
#[derive(Debug, Clone, PartialEq, Default)]
pub struct HealthConfig {
    settings: HealthSettings,
}

impl HealthConfig {
    /// The defaults: a heartbeat every second, 120 kept per node, offline records kept 10
    /// minutes, degraded over 250 ms of round trip, 100,000 queued ops or 3 missed
    /// heartbeats.
    pub fn new() -> Self {
        Self::default()
    }

    /// How often the node samples and publishes a heartbeat, pings its peers and checks
    /// for split brain (default 1 s). Must not be zero; a value too long for the clock
    /// means never.
    pub fn heartbeat_interval(mut self, interval: Duration) -> Self {
        self.settings.heartbeat_interval = interval;
        self
    }

    /// How long a member that membership sees alive may go without a replication link
    /// before this node judges it [`Unreachable`](crate::nodes::NodeStatus::Unreachable)
    /// (default 5 s): the cut of a link that membership does not see (its TCP blocked, its
    /// UDP not). An unreachable node counts on the other side of a partition for the
    /// split-brain check. Shorter notices sooner, at the price of calling a node
    /// unreachable while its link is redialed after an ordinary loss.
    pub fn unreachable_after(mut self, grace: Duration) -> Self {
        self.settings.unreachable_after = grace;
        self
    }

    /// Heartbeats kept in memory per node (default 120: two minutes at the default
    /// interval). At least one; memory grows with it (a heartbeat is a few hundred bytes).
    pub fn heartbeats_kept(mut self, count: usize) -> Self {
        self.settings.heartbeats_kept = count;
        self
    }

    /// How long the record of a dead node is kept, offline, before it is dropped (default
    /// 10 minutes). Zero drops it at the next check; a value too long for the clock keeps
    /// it for as long as the process runs.
    pub fn offline_retention(mut self, retention: Duration) -> Self {
        self.settings.offline_retention = retention;
        self
    }

    /// How long an external node (see [`Nodes::ensure_external`](crate::Nodes::ensure_external))
    /// may go without a heartbeat before the node that keeps it marks it offline (default
    /// 15 s; checked every heartbeat interval). A value too long for the clock means never.
    pub fn external_timeout(mut self, timeout: Duration) -> Self {
        self.settings.external_timeout = timeout;
        self
    }

    /// Degraded while the round trip to some peer is over `max` (default 250 ms; `None`:
    /// not checked).
    pub fn max_rtt(mut self, max: Option<Duration>) -> Self {
        self.settings.degraded.max_rtt = max;
        self
    }

    /// Degraded while more than `max` live ops and messages are queued for some peer
    /// (default 100,000; `None`: not checked).
    pub fn max_queued(mut self, max: Option<u64>) -> Self {
        self.settings.degraded.max_queued = max;
        self
    }

    /// Heartbeat intervals without news from a node after which the nodes that miss them
    /// report it degraded (default 3; 0: not checked).
    pub fn missed_heartbeats(mut self, count: u32) -> Self {
        self.settings.degraded.missed_heartbeats = count;
        self
    }

    /// Degraded while the application metric `metric` (see
    /// [`Nodes::set_app_metric`](crate::Nodes::set_app_metric)) is above `above`, which
    /// must be a finite number. Several calls add several thresholds.
    pub fn app_threshold(mut self, metric: impl Into<String>, above: f64) -> Self {
        self.settings.degraded.app.push(AppThreshold {
            metric: metric.into(),
            above,
        });
        self
    }

    /// Checks that the settings can work; [`NodeBuilder::start`](crate::NodeBuilder::start)
    /// calls it.
    ///
    /// # Errors
    ///
    /// [`HealthConfigError`] says which setting cannot work and why.
    pub fn validate(&self) -> Result<(), HealthConfigError> {
        self.settings.validate()
    }

    /// The settings the node monitor works with.
    pub(crate) fn settings(&self) -> &HealthSettings {
        &self.settings
    }
}
