//! The node's own log level ([`LogLevel`]): what this node logs of itself, changeable
//! while it runs, and the verbose log of its writes, ops from peers and process exits.

use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};

use super::NodeShared;
use crate::event::ExitReason;
use crate::pid::Pid;
use crate::store::{Change, ChangeKind, ChangeLog};

/// How much a node logs of itself (through `tracing`), as Phoenix's `Group.log_level/2`:
/// set with [`NodeBuilder::log_level`](crate::NodeBuilder::log_level), changed while the
/// node runs with [`Node::set_log_level`](crate::Node::set_log_level). Each node has its
/// own, so several nodes in one process can log differently.
///
/// - [`LogLevel::Off`]: none of this node's info-level lines (links established, lost or
///   refused, members up and down, status changes, partition heals, records dropped).
///   Warnings and errors are always logged.
/// - [`LogLevel::Info`] (the default): the info-level lines.
/// - [`LogLevel::Verbose`]: as `Info`, plus one info line per write (register,
///   unregister, join, leave; a meta update counts as a register or join), per op applied
///   from a peer (including the entries of a snapshot), and per local process exit.
///
/// The `tracing` subscriber still filters what is logged: these lines are at level
/// `INFO`, with target `roster::verbose` for the verbose ones. A node at `Off` or `Info`
/// pays one relaxed atomic load per write to learn it has nothing to log.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use roster::LogLevel;
/// let node = roster::Node::builder().log_level(LogLevel::Off).start().unwrap();
/// assert_eq!(node.log_level(), LogLevel::Off);
/// node.set_log_level(LogLevel::Verbose); // one line per write from now on
/// # }
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum LogLevel {
    /// No info-level lines from this node; warnings and errors stay.
    Off,
    /// The node's info-level lines (link and node changes); the default.
    #[default]
    Info,
    /// `Info`, plus one line per write, per op applied from a peer, per process exit.
    Verbose,
}

impl LogLevel {
    fn from_u8(level: u8) -> Self {
        match level {
            0 => Self::Off,
            1 => Self::Info,
            _ => Self::Verbose,
        }
    }
}

/// The node's current [`LogLevel`], read with one relaxed load.
#[derive(Debug)]
pub(crate) struct LogGate(AtomicU8);

impl Default for LogGate {
    fn default() -> Self {
        Self(AtomicU8::new(LogLevel::Info as u8))
    }
}

impl LogGate {
    pub(crate) fn get(&self) -> LogLevel {
        LogLevel::from_u8(self.0.load(Ordering::Relaxed))
    }
}

impl NodeShared {
    /// Changes the node's log level; `Verbose` enables the stores' change log.
    pub(crate) fn set_log_level(&self, level: LogLevel) {
        self.log_level.0.store(level as u8, Ordering::Relaxed);
        let name = &self.name;
        self.stores
            .processes
            .changes
            .set(level == LogLevel::Verbose, || {
                Arc::new(VerboseLog { node: name.clone() })
            });
    }

    /// Whether this node logs its info-level lines (its level is not `Off`).
    #[inline]
    pub(crate) fn logs_info(&self) -> bool {
        self.log_level.get() != LogLevel::Off
    }
}

/// The verbose lines, one per change the stores tell of.
struct VerboseLog {
    node: String,
}

impl ChangeLog for VerboseLog {
    fn change(&self, change: &Change<'_>) {
        let what = match (change.remote, change.kind) {
            (false, ChangeKind::Register) => "registered",
            (false, ChangeKind::Unregister) => "unregistered",
            (false, ChangeKind::Join) => "joined",
            (false, ChangeKind::Leave) => "left",
            (true, ChangeKind::Register) => "applied a register from a peer",
            (true, ChangeKind::Unregister) => "applied an unregister from a peer",
            (true, ChangeKind::Join) => "applied a join from a peer",
            (true, ChangeKind::Leave) => "applied a leave from a peer",
        };
        tracing::info!(
            target: "roster::verbose",
            node = %self.node,
            scope = change.scope,
            key = change.key,
            pid = %change.pid,
            "{what}"
        );
    }

    fn exited(&self, pid: Pid, reason: &ExitReason) {
        tracing::info!(
            target: "roster::verbose",
            node = %self.node,
            %pid,
            ?reason,
            "process exited"
        );
    }
}
