//! Nodes as the cluster sees them: each node's replicated record and heartbeats, the
//! registry that keeps them on every node, and the split-brain verdicts.

mod fence;
mod health;
mod heartbeat;
mod partition;
mod reach;
mod record;
mod registry;
mod split_brain;

pub use fence::{Fence, Fenced};
pub use health::{AppThreshold, DegradedThresholds, HealthConfigError, HealthSettings};
pub use heartbeat::{Heartbeat, MAX_APP_METRICS, MAX_PEER_SAMPLES, PeerSample};
pub use partition::{SplitBrainStrategy, Verdict, verdict};
pub use reach::{Reach, Unreachable};
pub use record::{Keeper, MAX_ADDRS, MAX_LABELS, MAX_REASON, MAX_TEXT, NodeRecord, NodeStatus};
pub use registry::{ForgetError, LEFT_THE_CLUSTER, NodeEntry, NodeEvent, NodeRegistry, Offline};
pub use split_brain::{
    PartitionChange, PartitionStatus, SplitBrainAction, SplitBrainConfigError, SplitBrainMonitor,
    SplitBrainSettings,
};
