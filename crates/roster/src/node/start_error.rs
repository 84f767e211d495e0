//! Why a node could not start.

use thiserror::Error;

use crate::key::KeyError;

/// The node could not start.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum StartError {
    /// `start` was called outside a tokio runtime.
    #[error(
        "Node::start must be called inside a tokio runtime (it spawns processes and timers on it)"
    )]
    NoRuntime,
    /// The node name is invalid.
    #[error("invalid node name: {0}")]
    InvalidName(KeyError),
    /// `NodeBuilder::mailbox_bytes` is below `max_message_bytes` (zero included): a message
    /// the node accepts could never be queued.
    #[error(
        "mailbox_bytes is {bytes}, below max_message_bytes ({min}): a message within the limit could never be queued; set NodeBuilder::mailbox_bytes to at least {min} (default 64 MiB)"
    )]
    MailboxBytes {
        /// The configured bound.
        bytes: usize,
        /// The smallest bound accepted: the node's `max_message_bytes`.
        min: usize,
    },
    /// The health settings cannot work.
    #[error("invalid health settings: {0}")]
    Health(#[from] crate::nodes::HealthConfigError),
    /// The split-brain settings cannot work.
    #[error("invalid split-brain settings: {0}")]
    SplitBrain(#[from] crate::nodes::SplitBrainConfigError),
    /// The node record (role, labels, version) is over the bounds of a record.
    #[error("invalid node record: {0}")]
    InvalidRecord(String),
    /// The cluster address could not be bound.
    #[error("cannot listen on {addr}: {reason} (is another node using this port?)")]
    Bind {
        /// The configured address.
        addr: String,
        /// What the OS said.
        reason: String,
    },
}
