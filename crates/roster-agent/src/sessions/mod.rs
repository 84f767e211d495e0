//! Sessions: processes owned by the agent on behalf of clients that are not Rust nodes
//! (Consul sessions and etcd leases are the model). A session has a TTL that keepalives
//! renew; when it lapses, or the session is deleted, its process ends and everything it
//! held is removed on every node.
//!
//! - [`table`]: the one owner of every session's state, and the reaper task;
//! - [`session`]: one session's process and mailbox;
//! - [`ttl`]: TTL parsing and bounds;
//! - [`ended`]: recently ended ids, to tell `session_expired` from `unknown_session`.

pub mod ended;
pub mod session;
pub mod table;
pub mod ttl;

pub use ended::EndReason;
pub use session::Session;
pub use table::{SessionInfo, Sessions};

/// A session operation that cannot be done.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SessionError {
    /// The TTL is not a duration or is out of bounds.
    #[error(
        "ttl {ttl:?} is not allowed ({reason}): give a duration from 1s to 1h, e.g. \"10s\", \"1500ms\", \"2m\""
    )]
    BadTtl {
        /// The text given.
        ttl: String,
        /// Why.
        reason: String,
    },
    /// The agent holds its maximum number of sessions.
    #[error("this agent holds its maximum of {max} sessions: delete some or raise --max-sessions")]
    Full {
        /// The maximum.
        max: usize,
    },
    /// No session of that id exists or existed recently.
    #[error("no session {0:?} on this agent")]
    Unknown(String),
    /// The session ended.
    #[error("session {id:?} has ended ({reason}); create a new one", reason = reason.as_str())]
    Ended {
        /// The session.
        id: String,
        /// How it ended.
        reason: EndReason,
    },
}
