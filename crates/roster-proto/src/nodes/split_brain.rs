//! The split-brain monitor of one node: compares the nodes it reaches with the expected
//! cluster, reports a partition status, and under [`SplitBrainAction::Fence`] raises the
//! node's fence on the losing side and lowers it when the partition heals. Pure: the
//! caller passes the reachable nodes and the time.

use std::collections::BTreeSet;

use super::fence::{Fence, Fenced};
use super::partition::{SplitBrainStrategy, Verdict, verdict};
use super::registry::NodeRegistry;

/// What a node does on the losing side of a partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SplitBrainAction {
    /// Report only (partition status and events).
    #[default]
    Advisory,
    /// Also refuse new unique registrations in replicated scopes until the partition
    /// heals ([`crate::vocab::error::RegistryError::Fenced`]).
    Fence,
}

/// How split brain is detected and handled.
///
/// ```
/// use roster_proto::nodes::{SplitBrainAction, SplitBrainSettings, SplitBrainStrategy};
///
/// let config = SplitBrainSettings {
///     expected: Some(vec!["a".into(), "b".into(), "c".into()]),
///     strategy: SplitBrainStrategy::ConfiguredPrimary("a".into()),
///     action: SplitBrainAction::Fence,
/// };
/// assert!(config.validate().is_ok());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SplitBrainSettings {
    /// The names of the nodes the cluster should have. `None`: the nodes seen while
    /// healthy (every known node that did not leave on purpose; a dead node counts until
    /// its record's retention ends).
    pub expected: Option<Vec<String>>,
    /// Which side keeps writing.
    pub strategy: SplitBrainStrategy,
    /// What the losing side does.
    pub action: SplitBrainAction,
}

/// A split-brain configuration that cannot work.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SplitBrainConfigError {
    /// The configured primary is not among the expected nodes.
    #[error(
        "the configured primary {primary:?} is not in the expected nodes {expected:?}: add it or pick another primary"
    )]
    PrimaryNotExpected {
        /// The primary.
        primary: String,
        /// The expected nodes.
        expected: Vec<String>,
    },
    /// The expected node list is empty.
    #[error(
        "the expected node list is empty: list the cluster's nodes, or leave it unset to learn them"
    )]
    NoExpectedNodes,
}

impl SplitBrainSettings {
    /// Checks that the configuration can work.
    pub fn validate(&self) -> Result<(), SplitBrainConfigError> {
        let Some(expected) = &self.expected else {
            return Ok(());
        };
        if expected.is_empty() {
            return Err(SplitBrainConfigError::NoExpectedNodes);
        }
        if let SplitBrainStrategy::ConfiguredPrimary(primary) = &self.strategy
            && !expected.contains(primary)
        {
            return Err(SplitBrainConfigError::PrimaryNotExpected {
                primary: primary.clone(),
                expected: expected.clone(),
            });
        }
        Ok(())
    }
}

/// What a node concluded at its last check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionStatus {
    /// Whether some expected node is unreachable.
    pub partition_suspected: bool,
    /// The expected nodes this node cannot reach.
    pub unreachable: Vec<String>,
    /// This node's side: itself and the expected nodes it reaches.
    pub side: Vec<String>,
    /// The strategy the verdict comes from.
    pub strategy: SplitBrainStrategy,
    /// Whether this side keeps accepting new unique registrations, and why.
    pub verdict: Verdict,
    /// Whether this node is fenced now.
    pub fenced: bool,
    /// When it checked, in milliseconds since the Unix epoch.
    pub last_check_ms: u64,
}

/// A change of partition state, for events.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PartitionChange {
    /// A partition is now suspected, or what is suspected changed (other unreachable
    /// nodes, another verdict, fenced or not): as membership notices the split one node
    /// at a time, the first report may not be the last.
    Detected(PartitionStatus),
    /// No partition is suspected any more.
    Healed(PartitionStatus),
}

/// The split-brain monitor of one node; see the module docs of `nodes::split_brain`.
#[derive(Debug)]
pub struct SplitBrainMonitor {
    config: SplitBrainSettings,
    last: Option<PartitionStatus>,
}

impl SplitBrainMonitor {
    /// A monitor with `config` (validated by the caller).
    pub fn new(config: SplitBrainSettings) -> Self {
        Self { config, last: None }
    }

    /// The status of the last check.
    pub fn status(&self) -> Option<&PartitionStatus> {
        self.last.as_ref()
    }

    /// Re-evaluates: `me` reaches the nodes named in `reachable` (itself included or
    /// not); the registry gives the learned expected nodes and the oldest node. Raises or
    /// lowers `fence` as the action says; returns the status and what changed.
    pub fn check(
        &mut self,
        me: &str,
        reachable: &BTreeSet<String>,
        registry: &NodeRegistry,
        fence: &Fence,
        now_ms: u64,
    ) -> (PartitionStatus, Option<PartitionChange>) {
        // External nodes are not members: a partition is between members only.
        let known: Vec<_> = registry
            .list()
            .into_iter()
            .filter(|e| !e.record.is_external())
            .collect();
        let mut expected: BTreeSet<String> = match &self.config.expected {
            Some(names) => names.iter().cloned().collect(),
            None => known
                .iter()
                .filter(|e| !e.offline.as_ref().is_some_and(|o| o.left))
                .map(|e| e.record.name.clone())
                .collect(),
        };
        if self.config.expected.is_none() {
            expected.insert(me.to_owned());
        }
        let mut side: BTreeSet<String> = reachable.intersection(&expected).cloned().collect();
        if expected.contains(me) {
            side.insert(me.to_owned());
        }
        let oldest = known
            .iter()
            .filter(|e| expected.contains(&e.record.name))
            .min_by_key(|e| (e.record.started_at_ms, e.record.incarnation))
            .map(|e| e.record.name.as_str());
        let verdict = verdict(&self.config.strategy, &expected, &side, oldest);
        let unreachable: Vec<String> = expected.difference(&side).cloned().collect();
        let suspected = !unreachable.is_empty();
        let fenced =
            self.config.action == SplitBrainAction::Fence && suspected && !verdict.keeps_writing;
        if fenced {
            if fence.current().is_none() {
                fence.raise(Fenced {
                    reason: verdict.reason.clone(),
                    since_ms: now_ms,
                });
            }
        } else {
            fence.lower();
        }
        let status = PartitionStatus {
            partition_suspected: suspected,
            unreachable,
            side: side.into_iter().collect(),
            strategy: self.config.strategy.clone(),
            verdict,
            fenced,
            last_check_ms: now_ms,
        };
        let was_suspected = self.last.as_ref().is_some_and(|s| s.partition_suspected);
        let changed = self.last.as_ref().is_none_or(|last| {
            last.unreachable != status.unreachable
                || last.verdict != status.verdict
                || last.fenced != status.fenced
        });
        let change = match (was_suspected, suspected) {
            (_, true) if changed => Some(PartitionChange::Detected(status.clone())),
            (true, false) => Some(PartitionChange::Healed(status.clone())),
            _ => None,
        };
        self.last = Some(status.clone());
        (status, change)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nodes::NodeRecord;
    use crate::vocab::pid::Incarnation;

    fn names(list: &[&str]) -> BTreeSet<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn the_minority_side_is_fenced_and_unfenced_at_heal() {
        let registry = NodeRegistry::new(1);
        for (i, name) in ["a", "b", "c"].iter().enumerate() {
            registry.apply_record(
                NodeRecord::new(name, Incarnation::new(i as u64 + 1), 10 * i as u64),
                0,
            );
        }
        let fence = Fence::default();
        let mut monitor = SplitBrainMonitor::new(SplitBrainSettings {
            action: SplitBrainAction::Fence,
            ..SplitBrainSettings::default()
        });
        let (status, change) = monitor.check("c", &names(&[]), &registry, &fence, 5);
        assert!(status.partition_suspected && status.fenced && !status.verdict.keeps_writing);
        assert_eq!(status.unreachable, vec!["a".to_owned(), "b".to_owned()]);
        assert!(matches!(change, Some(PartitionChange::Detected(_))));
        assert!(fence.check().is_err());
        let (status, change) = monitor.check("c", &names(&["a", "b"]), &registry, &fence, 6);
        assert!(!status.partition_suspected && !status.fenced);
        assert!(matches!(change, Some(PartitionChange::Healed(_))));
        assert!(fence.check().is_ok());
    }

    #[test]
    fn a_node_that_left_is_not_expected() {
        let registry = NodeRegistry::new(1);
        registry.apply_record(NodeRecord::new("a", Incarnation::new(1), 0), 0);
        let mut gone = NodeRecord::new("b", Incarnation::new(2), 0);
        gone.status = crate::nodes::NodeStatus::Offline;
        gone.status_reason = "left the cluster".into();
        gone.left = true;
        registry.apply_record(gone, 0);
        let mut monitor = SplitBrainMonitor::new(SplitBrainSettings::default());
        let (status, _) = monitor.check("a", &names(&[]), &registry, &Fence::default(), 1);
        assert!(!status.partition_suspected, "{status:?}");
    }

    #[test]
    fn a_primary_outside_the_expected_nodes_is_refused() {
        let config = SplitBrainSettings {
            expected: Some(vec!["a".into(), "b".into()]),
            strategy: SplitBrainStrategy::ConfiguredPrimary("z".into()),
            action: SplitBrainAction::Advisory,
        };
        assert!(matches!(
            config.validate(),
            Err(SplitBrainConfigError::PrimaryNotExpected { .. })
        ));
    }
}
