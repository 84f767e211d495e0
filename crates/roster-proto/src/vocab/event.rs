//! Lifecycle events of names and group memberships, and why they happen ([`Reason`],
//! [`ExitReason`]): wire vocabulary, carried by the ops that replication ships.

use serde::{Deserialize, Serialize};

use crate::vocab::conflict::DecidedBy;
use crate::vocab::key::{Key, ScopeName};
use crate::vocab::meta::Meta;
use crate::vocab::pid::Pid;

/// What happened to an entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum EventKind {
    /// A name was registered, or its meta was updated (then `previous_meta` is set).
    Registered,
    /// A name was removed.
    Unregistered,
    /// A process joined a group, or updated its meta in it (then `previous_meta` is set).
    Joined,
    /// A process left a group.
    Left,
    /// A name conflict between nodes was resolved, as this node learned of it: `pid` and
    /// `meta` are the losing claim's, and `reason` is [`Reason::Conflict`] with the winner,
    /// the loser and the rule that decided. It changes no entry by itself and comes before
    /// the changes it causes here, in the same batch (the loser's `Unregistered`, and a
    /// winner that was not the owner here: its `Registered`).
    ///
    /// Each node emits it once per conflict it learns of: the node that decides it (the
    /// winner's node, whose process keeps the name; the loser's node, whose process loses
    /// it; any other node that holds both claims), or, for a node that held only the
    /// loser's claim, when the loser's removal arrives. The winner's node learns of it even
    /// when the loser's claim never reached it (the loser's node removed it before sending
    /// its entries: the removal comes with them); `meta` is then empty. Each node remembers
    /// the last conflicts it reported (64 per shard of a scope) to report each once.
    ///
    /// ```
    /// use roster::{EventKind, Reason};
    ///
    /// fn describe(e: &roster::Event) -> Option<String> {
    ///     match (&e.kind, &e.reason) {
    ///         (EventKind::ConflictResolved, Reason::Conflict { winner, loser, rule, .. }) => {
    ///             Some(format!("{}: {winner} kept it, {loser} lost it ({rule})", e.key))
    ///         }
    ///         _ => None,
    ///     }
    /// }
    /// ```
    ConflictResolved,
}

/// Why an entry changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum Reason {
    /// The owning process asked for it (register, unregister, join, leave).
    Requested,
    /// The owning process exited; the entry went with it.
    Exit(ExitReason),
    /// This node disconnected from the scope, dropping its local view of it.
    ScopeDisconnected,
    /// The name went to another process in a conflict between nodes (concurrent
    /// registrations, or a partition that healed): the reason of the loser's
    /// `Unregistered` and of [`EventKind::ConflictResolved`]. Match it with `..`: it may
    /// gain fields.
    #[non_exhaustive]
    Conflict {
        /// The process that kept the name.
        winner: Pid,
        /// The process that lost it.
        loser: Pid,
        /// The rule that decided.
        rule: DecidedBy,
    },
    /// A resync with the owner's node showed the entry no longer exists there; it was
    /// removed while this node was not receiving that node's updates, for a reason this
    /// node cannot know.
    Resynced,
}

/// Why a process exited.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum ExitReason {
    /// The handle was dropped normally.
    Normal,
    /// The handle was dropped while its thread was panicking.
    Panicked,
    /// `roster::Node::kill` ended it.
    Killed,
    /// It lost a name in a conflict with another process (cluster conflict resolution).
    Conflict {
        /// The contested name.
        key: Key,
        /// The process that kept it.
        winner: Pid,
    },
    /// Its node left the cluster.
    NodeDown,
    /// Its owner ended it with a reason of its own (`roster::Node::kill_with`), such as
    /// `session_expired`: at most [`ExitReason::MAX_SHUTDOWN_BYTES`] bytes, carried to
    /// every node with the removal of its entries.
    Shutdown(String),
}

impl ExitReason {
    /// The longest text of an [`ExitReason::Shutdown`], in bytes.
    pub const MAX_SHUTDOWN_BYTES: usize = 64;
}

/// One change to one entry, as delivered to subscribers.
///
/// # Examples
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use roster::{EventKind, Node, Pattern, Reason};
///
/// let node = Node::builder().start().unwrap();
/// let mut events = node.default_scope().subscribe(Pattern::from("user/")).unwrap();
/// let proc = node.new_process();
/// proc.register("user/1", &()).unwrap();
///
/// let batch = events.recv().await.unwrap().into_events().unwrap();
/// assert_eq!(batch[0].kind, EventKind::Registered);
/// assert_eq!(batch[0].key, "user/1");
/// assert_eq!(batch[0].reason, Reason::Requested);
/// # }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// What happened.
    pub kind: EventKind,
    /// The scope of the entry.
    pub scope: ScopeName,
    /// The name or group key.
    pub key: Key,
    /// The process the entry belongs to.
    pub pid: Pid,
    /// The entry's meta (for removals: the meta it had).
    pub meta: Meta,
    /// On an update, the meta before it.
    pub previous_meta: Option<Meta>,
    /// Why it happened.
    pub reason: Reason,
}
