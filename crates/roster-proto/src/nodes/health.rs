//! Health settings of a node (heartbeats, retention of dead nodes, degraded thresholds)
//! and the pure rules that turn a heartbeat into degraded reasons.

use std::time::Duration;

use super::heartbeat::Heartbeat;

/// A threshold on an application metric: over `above`, the node is degraded.
#[derive(Debug, Clone, PartialEq)]
pub struct AppThreshold {
    /// The metric's name (as given to `Nodes::set_app_metric` in `roster`).
    pub metric: String,
    /// The node is degraded while the metric is above this.
    pub above: f64,
}

/// When a node counts as degraded. A node judges its own heartbeat against these and
/// publishes `Degraded` with the reasons in its record, so every view agrees; missed
/// heartbeats can only be judged by the nodes that miss them.
#[derive(Debug, Clone, PartialEq)]
pub struct DegradedThresholds {
    /// Largest round-trip time to any peer (default 250 ms; `None`: not checked).
    pub max_rtt: Option<Duration>,
    /// Longest queue of live ops and messages to any peer (default 100 000; `None`: not
    /// checked).
    pub max_queued: Option<u64>,
    /// Heartbeat intervals without news from a node after which the nodes that miss them
    /// report it degraded (default 3; 0: not checked).
    pub missed_heartbeats: u32,
    /// Thresholds on application metrics (default none).
    pub app: Vec<AppThreshold>,
}

impl Default for DegradedThresholds {
    fn default() -> Self {
        Self {
            max_rtt: Some(Duration::from_millis(250)),
            max_queued: Some(100_000),
            missed_heartbeats: 3,
            app: Vec::new(),
        }
    }
}

impl DegradedThresholds {
    /// Why `heartbeat` makes its node degraded (empty: healthy).
    ///
    /// ```
    /// use roster_proto::nodes::{AppThreshold, DegradedThresholds, Heartbeat};
    ///
    /// let thresholds = DegradedThresholds {
    ///     app: vec![AppThreshold { metric: "backlog".into(), above: 100.0 }],
    ///     ..DegradedThresholds::default()
    /// };
    /// let mut beat = Heartbeat::at(0);
    /// beat.app.insert("backlog".into(), 250.0);
    /// assert_eq!(thresholds.reasons(&beat), vec!["backlog is 250 (over 100)".to_owned()]);
    /// ```
    pub fn reasons(&self, heartbeat: &Heartbeat) -> Vec<String> {
        let mut reasons = Vec::new();
        if let Some(max) = self.max_rtt {
            for peer in &heartbeat.peers {
                if let Some(rtt) = peer.rtt_us.map(Duration::from_micros)
                    && rtt > max
                {
                    reasons.push(format!(
                        "round trip to {} is {} ms (over {} ms)",
                        peer.name,
                        rtt.as_millis(),
                        max.as_millis()
                    ));
                }
            }
        }
        if let Some(max) = self.max_queued {
            for peer in heartbeat.peers.iter().filter(|p| p.queued > max) {
                reasons.push(format!(
                    "{} ops queued for {} (over {max})",
                    peer.queued, peer.name
                ));
            }
        }
        for threshold in &self.app {
            if let Some(value) = heartbeat.app.get(&threshold.metric)
                && *value > threshold.above
            {
                reasons.push(format!(
                    "{} is {value} (over {})",
                    threshold.metric, threshold.above
                ));
            }
        }
        reasons
    }
}

/// How a node watches its own health and its peers'.
///
/// ```
/// use roster_proto::nodes::HealthSettings;
/// use std::time::Duration;
///
/// let config = HealthSettings { heartbeat_interval: Duration::from_millis(500), ..HealthSettings::default() };
/// assert!(config.validate().is_ok());
/// assert!(HealthSettings { heartbeat_interval: Duration::ZERO, ..config }.validate().is_err());
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct HealthSettings {
    /// How often the node samples and publishes a heartbeat (default 1 s).
    pub heartbeat_interval: Duration,
    /// How long a member that membership sees alive may go without a replication link
    /// before it is judged unreachable (default 5 s; see `nodes::Reach`).
    pub unreachable_after: Duration,
    /// Heartbeats kept in memory per node (default 120: two minutes at the default
    /// interval).
    pub heartbeats_kept: usize,
    /// How long the record of a dead node is kept, offline, before it is dropped (default
    /// 10 minutes).
    pub offline_retention: Duration,
    /// When a node counts as degraded.
    pub degraded: DegradedThresholds,
    /// How long an external node may go without a heartbeat before its keeper marks it
    /// offline (default 15 s).
    pub external_timeout: Duration,
}

impl Default for HealthSettings {
    fn default() -> Self {
        Self {
            heartbeat_interval: Duration::from_secs(1),
            unreachable_after: Duration::from_secs(5),
            heartbeats_kept: 120,
            offline_retention: Duration::from_secs(600),
            degraded: DegradedThresholds::default(),
            external_timeout: Duration::from_secs(15),
        }
    }
}

/// A health configuration that cannot work.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HealthConfigError {
    /// The heartbeat interval is zero.
    #[error("the heartbeat interval is zero: set HealthSettings::heartbeat_interval (default 1 s)")]
    ZeroInterval,
    /// No heartbeat would be kept.
    #[error("heartbeats_kept is zero: keep at least one (default 120)")]
    NoHeartbeatsKept,
    /// An application threshold is not a finite number.
    #[error("the threshold of application metric {0:?} is not a finite number")]
    BadAppThreshold(String),
}

impl HealthSettings {
    /// Checks that the configuration can work.
    pub fn validate(&self) -> Result<(), HealthConfigError> {
        if self.heartbeat_interval.is_zero() {
            return Err(HealthConfigError::ZeroInterval);
        }
        if self.heartbeats_kept == 0 {
            return Err(HealthConfigError::NoHeartbeatsKept);
        }
        if let Some(bad) = self.degraded.app.iter().find(|t| !t.above.is_finite()) {
            return Err(HealthConfigError::BadAppThreshold(bad.metric.clone()));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nodes::PeerSample;
    use crate::vocab::pid::Incarnation;

    #[test]
    fn slow_and_backed_up_links_are_reasons() {
        let mut beat = Heartbeat::at(0);
        beat.peers = vec![
            PeerSample {
                name: "b".into(),
                incarnation: Incarnation::new(2),
                session: 1,
                rtt_us: Some(300_000),
                queued: 5,
            },
            PeerSample {
                name: "c".into(),
                incarnation: Incarnation::new(3),
                session: 2,
                rtt_us: Some(100),
                queued: 200_000,
            },
        ];
        assert_eq!(
            DegradedThresholds::default().reasons(&beat),
            vec![
                "round trip to b is 300 ms (over 250 ms)".to_owned(),
                "200000 ops queued for c (over 100000)".to_owned(),
            ]
        );
        let off = DegradedThresholds {
            max_rtt: None,
            max_queued: None,
            ..DegradedThresholds::default()
        };
        assert!(off.reasons(&beat).is_empty());
    }
}
