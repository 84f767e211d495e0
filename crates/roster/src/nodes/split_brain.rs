//! The split-brain settings of a cluster, as a builder.

use std::time::Duration;

use roster_proto::nodes::{
    SplitBrainAction, SplitBrainConfigError, SplitBrainSettings, SplitBrainStrategy,
};

/// How split brain is detected and handled: the nodes the cluster should have, which side
/// keeps writing, and what the losing side does. Given to
/// [`ClusterConfig::split_brain`](crate::ClusterConfig::split_brain).
///
/// ```
/// use roster::nodes::{SplitBrainAction, SplitBrainConfig, SplitBrainStrategy};
///
/// let config = SplitBrainConfig::new()
///     .expected(["a", "b", "c"])
///     .strategy(SplitBrainStrategy::ConfiguredPrimary("a".into()))
///     .action(SplitBrainAction::Fence);
/// assert!(config.validate().is_ok());
/// assert!(config.strategy(SplitBrainStrategy::ConfiguredPrimary("z".into())).validate().is_err());
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SplitBrainConfig {
    settings: SplitBrainSettings,
    check_interval: Duration,
}

impl Default for SplitBrainConfig {
    fn default() -> Self {
        Self {
            settings: SplitBrainSettings::default(),
            check_interval: Duration::from_secs(1),
        }
    }
}

impl SplitBrainConfig {
    /// The defaults: the expected nodes learnt while healthy, the majority keeps writing,
    /// advisory only.
    pub fn new() -> Self {
        Self::default()
    }

    /// The names of the nodes the cluster should have. Unset: the nodes seen while
    /// healthy (every known node that did not leave on purpose; a dead node counts until
    /// its record's retention ends). Must not be empty.
    pub fn expected<S: Into<String>>(mut self, nodes: impl IntoIterator<Item = S>) -> Self {
        self.settings.expected = Some(nodes.into_iter().map(Into::into).collect());
        self
    }

    /// Which side keeps writing (default [`SplitBrainStrategy::Majority`]).
    pub fn strategy(mut self, strategy: SplitBrainStrategy) -> Self {
        self.settings.strategy = strategy;
        self
    }

    /// How often the check runs (default 1 s, clamped to between 1 ms and a day), apart
    /// from the heartbeats: a partition is reported, and the losing side fenced, at most
    /// this long after membership or the links show it.
    pub fn check_interval(mut self, interval: Duration) -> Self {
        self.check_interval = interval.clamp(Duration::from_millis(1), Duration::from_secs(86_400));
        self
    }

    /// What the losing side does (default [`SplitBrainAction::Advisory`]).
    pub fn action(mut self, action: SplitBrainAction) -> Self {
        self.settings.action = action;
        self
    }

    /// Checks that the settings can work; starting a node calls it.
    ///
    /// # Errors
    ///
    /// [`SplitBrainConfigError`]: an empty expected list, or a configured primary that is
    /// not expected.
    pub fn validate(&self) -> Result<(), SplitBrainConfigError> {
        self.settings.validate()
    }

    /// How often the check runs.
    pub(crate) fn checks_every(&self) -> Duration {
        self.check_interval
    }

    /// The settings the split-brain monitor works with.
    pub(crate) fn settings(&self) -> &SplitBrainSettings {
        &self.settings
    }
}
