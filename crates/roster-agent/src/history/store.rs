//! The one trait every history backend implements ([`Store`]), what it is asked
//! ([`AuditQuery`]) and what it answers ([`AuditRow`], [`StoredHeartbeat`]), and its
//! typed errors ([`StoreError`]).

use super::record::{Record, RecordKind};

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

    /// The audit items matching `query` (see [`AuditQuery`]), as their rows: the newest
    /// item first, each item's rows together, oldest row first, each row carrying its
    /// item ([`AuditRow::item`]). [`merge_items`] makes them items.
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

/// Which audit items to read: all conditions given must hold.
///
/// An item is one fact: one row, or, for a fact that several agents sharing a database
/// each recorded (a name conflict: the same scope, key, winner, loser and rule; a node
/// that left on purpose: the same node and incarnation), all the rows of that fact within
/// the time and kind conditions. An item's id is the id of its
/// first (oldest) row; rows written later never change it, since row ids only grow. Items
/// are listed by that id, newest first, which is what makes the cursor stable: a page is
/// the items whose id is below the previous page's last, so an item is never split
/// across pages, nor listed twice, nor skipped, while rows are written.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditQuery {
    /// Rows recorded at or after this time (milliseconds since the Unix epoch).
    pub since_ms: Option<u64>,
    /// Rows recorded before this time.
    pub until_ms: Option<u64>,
    /// Only these kinds (empty: every kind).
    pub kinds: Vec<String>,
    /// Only items about this node: one of whose rows it recorded, or that name it (the
    /// node of node facts, the peer of links, the subject of alerts, the winner's or
    /// loser's node of a name conflict, a node on either side of a partition verdict or
    /// fence). The item then keeps all its rows.
    pub node: Option<String>,
    /// Only items whose id is below this one (the cursor of the previous page).
    pub before_item: Option<i64>,
    /// At most this many items.
    pub limit: usize,
}

/// One row of the audit log.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditRow {
    /// Its id: increasing in the order rows were written (per database).
    pub id: i64,
    /// The id of the item it belongs to: its own id, or that of the first row of the same
    /// fact (see [`AuditQuery`]).
    pub item: i64,
    /// The record.
    pub record: Record,
}

/// One item of the audit log: a fact, with every node that recorded it.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditItem {
    /// The id of its first row (what the cursor counts by).
    pub id: i64,
    /// When it was first recorded, in milliseconds since the Unix epoch.
    pub at_ms: u64,
    /// Every node that recorded it, in name order, each once.
    pub recorded_by: Vec<String>,
    /// Its first row's record, with what later rows add (a name conflict's winner's and
    /// loser's nodes, where the first recorder did not know them).
    pub record: Record,
}

/// The items of `rows` as [`Store::audit`] answers them (each item's rows together), in
/// the same order.
pub fn merge_items(rows: Vec<AuditRow>) -> Vec<AuditItem> {
    let mut items: Vec<AuditItem> = Vec::new();
    for row in rows {
        match items.last_mut() {
            Some(item) if item.id == row.item => {
                item.at_ms = item.at_ms.min(row.record.at_ms);
                if !item.recorded_by.contains(&row.record.recorder) {
                    item.recorded_by.push(row.record.recorder);
                    item.recorded_by.sort();
                }
                complete(&mut item.record.kind, row.record.kind);
            }
            _ => items.push(AuditItem {
                id: row.item,
                at_ms: row.record.at_ms,
                recorded_by: vec![row.record.recorder.clone()],
                record: row.record,
            }),
        }
    }
    items
}

/// Fills what `kind` lacks from `other`, a row of the same fact.
fn complete(kind: &mut RecordKind, other: RecordKind) {
    if let (
        RecordKind::NameConflict {
            winner_node,
            loser_node,
            ..
        },
        RecordKind::NameConflict {
            winner_node: other_winner,
            loser_node: other_loser,
            ..
        },
    ) = (kind, other)
    {
        if winner_node.is_none() {
            *winner_node = other_winner;
        }
        if loser_node.is_none() {
            *loser_node = other_loser;
        }
    }
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

/// The schema version this agent writes. Version 2 added the `fact` column of audit rows
/// (see [`RecordKind::fact_key`]).
pub const SCHEMA_VERSION: i64 = 2;

/// The schema version whose migration adds the `fact` column and fills it for the rows
/// written before ([`fact_of_row`]).
pub(super) const FACT_VERSION: usize = 2;

/// The kinds whose rows may have a fact key ([`RecordKind::fact_key`]): the rows the
/// migration to [`FACT_VERSION`] reads.
pub(super) const FACT_KINDS: [&str; 2] = ["name_conflict", "node_down"];

/// The fact key of audit row `id` of `location` written before the `fact` column, from
/// its body, for the migration to [`FACT_VERSION`].
///
/// # Errors
///
/// [`StoreError::Query`] naming the row if its body is not a record this agent reads.
pub(super) fn fact_of_row(
    location: &str,
    id: i64,
    body: &str,
) -> Result<Option<String>, StoreError> {
    let kind: RecordKind = serde_json::from_str(body).map_err(|e| StoreError::Query {
        location: location.to_owned(),
        reason: format!(
            "migrating to schema version {FACT_VERSION}: audit row {id} is not a record this agent reads ({e}): repair or delete that row, or run with --history off"
        ),
    })?;
    Ok(kind.fact_key())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(id: i64, item: i64, recorder: &str, winner_node: Option<&str>) -> AuditRow {
        AuditRow {
            id,
            item,
            record: Record {
                at_ms: 1_000 + id as u64,
                recorder: recorder.into(),
                kind: RecordKind::NameConflict {
                    scope: "default".into(),
                    key: "k".into(),
                    winner: "<1.1>".into(),
                    loser: "<2.1>".into(),
                    rule: Some("keep_oldest".into()),
                    winner_node: winner_node.map(Into::into),
                    loser_node: None,
                },
            },
        }
    }

    #[test]
    fn the_rows_of_an_item_make_one_item_with_every_recorder_once() {
        let items = merge_items(vec![
            row(9, 9, "c", None),
            row(2, 2, "b", None),
            row(5, 2, "a", Some("n")),
            row(7, 2, "b", None),
        ]);
        assert_eq!(items.len(), 2);
        assert_eq!(
            (items[0].id, items[0].recorded_by.clone()),
            (9, vec!["c".into()])
        );
        let merged = &items[1];
        assert_eq!(merged.id, 2);
        assert_eq!(merged.at_ms, 1_002);
        assert_eq!(merged.recorded_by, ["a", "b"]);
        assert_eq!(merged.record.recorder, "b", "the first row's recorder");
        let RecordKind::NameConflict { winner_node, .. } = &merged.record.kind else {
            panic!("{merged:?}");
        };
        assert_eq!(
            winner_node.as_deref(),
            Some("n"),
            "from the row that knew it"
        );
    }
}
