//! Nodes as the cluster sees them: records, heartbeats, statuses and node events, the
//! health and split-brain settings, and partition verdicts.

mod external;
mod health;
mod split_brain;

pub use self::external::{ExternalError, ExternalNode};
pub use self::health::HealthConfig;
pub use self::split_brain::SplitBrainConfig;
pub use roster_proto::nodes::{
    ForgetError, HealthConfigError, Heartbeat, Keeper, LEFT_THE_CLUSTER, MAX_ADDRS,
    MAX_APP_METRICS, MAX_LABELS, MAX_PEER_SAMPLES, MAX_REASON, MAX_TEXT, NodeEvent, NodeRecord,
    NodeStatus, Offline, PartitionStatus, PeerSample, SplitBrainAction, SplitBrainConfigError,
    SplitBrainStrategy, Verdict,
};
pub(crate) use roster_proto::nodes::{
    HealthSettings, NodeEntry, PartitionChange, Reach, SplitBrainMonitor, SplitBrainSettings,
    Unreachable,
};
