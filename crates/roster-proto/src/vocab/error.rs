//! The composite error types, whose variants wrap the leaf errors of each concept
//! ([`KeyError`] beside keys, [`MetaError`] beside meta). Every error says what went wrong
//! and, where it helps, what to do.

use thiserror::Error;

use crate::vocab::key::{Key, KeyError, ScopeName};
use crate::vocab::meta::{Meta, MetaError};
use crate::vocab::pid::Pid;

/// Why a registration, unregistration, join or leave was refused. Nothing was changed.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum RegistryError {
    /// The key is invalid.
    #[error(transparent)]
    InvalidKey(#[from] KeyError),
    /// The meta is invalid.
    #[error(transparent)]
    InvalidMeta(#[from] MetaError),
    /// Another live process holds this name.
    #[error("name {key:?} is taken by {owner}")]
    Taken {
        /// The contested name.
        key: Key,
        /// The process that holds it.
        owner: Pid,
        /// The owner's meta.
        meta: Meta,
    },
    /// The name is not registered.
    #[error("name {key:?} is not registered")]
    NotRegistered {
        /// The name.
        key: Key,
    },
    /// The name is registered by another process; only the owner can unregister it.
    #[error("name {key:?} is registered by {owner}, not by the caller")]
    NotOwner {
        /// The name.
        key: Key,
        /// Its owner.
        owner: Pid,
    },
    /// The process is not a member of the group.
    #[error("process is not a member of group {key:?}")]
    NotInGroup {
        /// The group key.
        key: Key,
    },
    /// The process has exited (dropped or killed); it can no longer own entries.
    #[error("process {pid} has exited")]
    ProcessDead {
        /// The exited process.
        pid: Pid,
    },
    /// The process belongs to another node (or another incarnation of this node).
    #[error("process {pid} belongs to another node; entries are written by their owner's node")]
    ForeignProcess {
        /// The foreign pid.
        pid: Pid,
    },
    /// The node is not connected to the scope (or disconnected since the handle was taken).
    #[error("this node is not connected to scope {scope:?}: call Node::connect first")]
    ScopeNotConnected {
        /// The scope.
        scope: ScopeName,
    },
    /// This node is on the losing side of a suspected partition and the split-brain action
    /// is to fence: new unique registrations in replicated scopes are refused until the
    /// partition heals (reads, groups and names already held keep working).
    #[error(
        "this node is fenced since {since_ms} ms after the Unix epoch ({reason}): new names are refused until the partition heals; see node.nodes().partition()"
    )]
    Fenced {
        /// The split-brain verdict, in words.
        reason: String,
        /// When the fence was raised, in milliseconds since the Unix epoch.
        since_ms: u64,
    },
}

/// A message could not be delivered to a process.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum SendError {
    /// No live process with this pid on this node.
    #[error("no live process {0} on this node")]
    NoProcess(Pid),
    /// The process's mailbox is full: it holds `mailbox_capacity` messages, or the message
    /// would take its queued bytes over `mailbox_bytes`. The message was not queued.
    #[error(
        "mailbox of {0} is full (by message count or by bytes): the receiver is not keeping up (raise NodeBuilder::mailbox_capacity or NodeBuilder::mailbox_bytes, or slow the sender)"
    )]
    MailboxFull(Pid),
    /// The process lives on a live node of the cluster that this node has no link to right
    /// now (partitioned, or the link is being re-established); the message was not sent.
    #[error("no link to the node of {0}: it is not reachable from this node right now")]
    NodeUnreachable(Pid),
    /// No live node of the cluster runs the process: its node is offline, restarted since
    /// (a new incarnation), or was never a member seen by this node. The process is gone for
    /// good; the message was not sent.
    #[error(
        "no live node of the cluster runs {0}: its node is offline, restarted since, or was never a member"
    )]
    NodeGone(Pid),
    /// The message is larger than this node's `max_message_bytes`, or than that of the
    /// receiving node; it was not sent.
    #[error(
        "message is {len} bytes encoded, the limit is {max} (the sender's or the receiving node's max_message_bytes): send less or raise the limit"
    )]
    TooLarge {
        /// Encoded length in bytes.
        len: usize,
        /// The limit that refused it.
        max: usize,
    },
    /// The message could not be encoded.
    #[error(transparent)]
    Encode(#[from] MetaError),
}

/// The text of an exit reason is longer than
/// [`ExitReason::MAX_SHUTDOWN_BYTES`](crate::vocab::event::ExitReason::MAX_SHUTDOWN_BYTES).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("an exit reason of {len} bytes is too long: give at most {max} bytes")]
pub struct ExitReasonTooLong {
    /// Its length in bytes.
    pub len: usize,
    /// The limit.
    pub max: usize,
}

/// A message could not be received.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum RecvError {
    /// The message does not decode as the requested type; it was consumed.
    #[error("message from {from:?} does not decode as the requested type: {reason}")]
    Decode {
        /// The sender, when known.
        from: Option<Pid>,
        /// What serde reported.
        reason: String,
    },
    /// The process was killed: no more messages will arrive.
    #[error("process {0} has exited; its mailbox is closed")]
    Exited(Pid),
}

/// No message could be taken at once (`Process::try_recv` in `roster`).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum TryRecvError {
    /// The mailbox is empty: a message may still arrive.
    #[error("the mailbox is empty")]
    Empty,
    /// The process has exited: no message will arrive.
    #[error("process {0} has exited; its mailbox is closed")]
    Exited(Pid),
    /// The message does not decode as the requested type; it was consumed.
    #[error("message from {from:?} does not decode as the requested type: {reason}")]
    Decode {
        /// The sender, when known.
        from: Option<Pid>,
        /// What serde reported.
        reason: String,
    },
}

impl From<RecvError> for TryRecvError {
    fn from(error: RecvError) -> Self {
        match error {
            RecvError::Decode { from, reason } => Self::Decode { from, reason },
            RecvError::Exited(pid) => Self::Exited(pid),
        }
    }
}

/// A scope could not be connected, found or disconnected.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum ScopeError {
    /// The scope name is invalid.
    #[error("invalid scope name: {0}")]
    InvalidName(KeyError),
    /// The node is not connected to the scope.
    #[error("this node is not connected to scope {0:?}: call Node::connect first")]
    NotConnected(ScopeName),
    /// The scope is connected with another kind (replicated vs local-only).
    #[error(
        "scope {0:?} is already connected with a different kind (local-only vs replicated); disconnect it first"
    )]
    KindMismatch(ScopeName),
    /// The default scope holds every node and cannot be disconnected (nor given a lease).
    #[error("the default scope cannot be disconnected, nor given a lease")]
    DefaultScope,
    /// A scope lease shorter than the shortest accepted.
    #[error("a scope lease of {ttl:?} is too short: give ScopeOptions::ttl at least {min:?}")]
    TtlTooShort {
        /// The lease asked for.
        ttl: std::time::Duration,
        /// The shortest accepted.
        min: std::time::Duration,
    },
}
