//! The one trait every history backend implements ([`Store`]), what it is asked
//! ([`AuditQuery`]) and what it answers ([`AuditRow`], [`StoredHeartbeat`]), and its
//! typed errors ([`StoreError`]).

use super::record::Record;

/// A history backend: SQLite ([`super::sqlite::SqliteStore`]) or PostgreSQL
/// ([`super::postgres::PostgresStore`]). Blocking: each store is owned by one thread (the
/// writer, or the reader), never by an async task.
pub trait Store: Send {
    /// Where the history is, for messages (a file, or a URL without its password).
    fn location(&self) -> &str;

    /// Writes `records` in one transaction: all of them, or none and an error.
    ///
    /// # Errors
    ///
    /// [`StoreError::Unavailable`] if the database cannot be reached (the caller keeps
    /// the records and retries), [`StoreError::Query`] otherwise.
    fn write(&mut self, records: &[Record]) -> Result<(), StoreError>;

    /// Deletes the heartbeats sampled before `before_ms`; returns how many.
    ///
    /// # Errors
    ///
    /// As [`Store::write`].
    fn prune_heartbeats(&mut self, before_ms: u64) -> Result<u64, StoreError>;

    /// The audit rows matching `query`, newest first.
    ///
    /// # Errors
    ///
    /// As [`Store::write`].
    fn audit(&mut self, query: &AuditQuery) -> Result<Vec<AuditRow>, StoreError>;

    /// The heartbeats of `node` sampled in `since_ms..until_ms`, by any recorder, oldest
    /// first.
    ///
    /// # Errors
    ///
    /// As [`Store::write`].
    fn heartbeats(
        &mut self,
        node: &str,
        since_ms: u64,
        until_ms: u64,
    ) -> Result<Vec<StoredHeartbeat>, StoreError>;
}

/// Which audit rows to read: all conditions given must hold.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditQuery {
    /// Recorded at or after this time (milliseconds since the Unix epoch).
    pub since_ms: Option<u64>,
    /// Recorded before this time.
    pub until_ms: Option<u64>,
    /// Only these kinds (empty: every kind).
    pub kinds: Vec<String>,
    /// Only rows about this node or recorded by it.
    pub node: Option<String>,
    /// Only rows older than this row id (the cursor of the previous page).
    pub before_id: Option<i64>,
    /// At most this many rows.
    pub limit: usize,
}

/// One row of the audit log.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditRow {
    /// Its id: increasing in the order rows were written (per database).
    pub id: i64,
    /// The record.
    pub record: Record,
}

/// One heartbeat read back from the history.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredHeartbeat {
    /// The node that recorded it.
    pub recorder: String,
    /// When its sender sampled it, in milliseconds since the Unix epoch.
    pub at_ms: u64,
    /// The heartbeat as the API shows it.
    pub heartbeat: serde_json::Value,
}

/// A history backend failed. Each says what is wrong and what to do.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The file is not a SQLite database, or is damaged.
    #[error(
        "history: {location} is corrupt or not a SQLite database ({reason}): move the file away (a new history is then started) or run with --history off"
    )]
    Corrupt {
        /// The file.
        location: String,
        /// What SQLite said.
        reason: String,
    },
    /// The database belongs to another application.
    #[error(
        "history: {location} belongs to another application ({found}): give the agent its own file (--data-dir or --history sqlite:PATH) or run with --history off"
    )]
    Foreign {
        /// The file or database.
        location: String,
        /// What was found instead of a roster history.
        found: String,
    },
    /// The database was written by a newer agent.
    #[error(
        "history: {location} has schema version {found}, newer than the {supported} this agent knows: run a roster agent at least as new as the one that wrote it, or run with --history off"
    )]
    Newer {
        /// The file or database.
        location: String,
        /// Its schema version.
        found: i64,
        /// The newest version this agent knows.
        supported: i64,
    },
    /// The database cannot be opened or reached (the caller retries).
    #[error("history: cannot reach {location}: {reason}")]
    Unavailable {
        /// The file or database.
        location: String,
        /// Why.
        reason: String,
    },
    /// A statement failed.
    #[error("history: {location}: {reason}")]
    Query {
        /// The file or database.
        location: String,
        /// Why.
        reason: String,
    },
}

impl StoreError {
    /// Whether the agent must refuse to start on it (the database is not one this agent
    /// may write); otherwise it is an outage the writer outlives.
    pub fn is_refusal(&self) -> bool {
        matches!(
            self,
            Self::Corrupt { .. } | Self::Foreign { .. } | Self::Newer { .. }
        )
    }
}

/// The application id of a roster history file (`PRAGMA application_id`), "ROST".
pub const APPLICATION_ID: i32 = 0x524F_5354;

/// The schema version this agent writes.
pub const SCHEMA_VERSION: i64 = 1;
