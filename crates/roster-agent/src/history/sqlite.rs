//! The embedded SQLite backend (the default): one file, WAL mode, versioned migrations
//! checked against `PRAGMA application_id` and `PRAGMA user_version`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{Connection, ErrorCode, OpenFlags, params, params_from_iter, types::Value};

use super::record::{Record, RecordKind};
use super::store::{
    APPLICATION_ID, AuditQuery, AuditRow, FACT_KINDS, FACT_VERSION, SCHEMA_VERSION, Store,
    StoreError, StoredHeartbeat, fact_of_row,
};

/// The migrations, in order: migration `i` brings the schema to version `i + 1` (the one
/// to [`FACT_VERSION`] then fills the new column: [`fill_facts`]).
const MIGRATIONS: [&str; 2] = [
    "CREATE TABLE audit (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        at_ms INTEGER NOT NULL,
        recorder TEXT NOT NULL,
        kind TEXT NOT NULL,
        subject TEXT,
        body TEXT NOT NULL
    );
    CREATE INDEX audit_at ON audit (at_ms);
    CREATE INDEX audit_kind ON audit (kind, id);
    CREATE TABLE heartbeats (
        recorder TEXT NOT NULL,
        node TEXT NOT NULL,
        at_ms INTEGER NOT NULL,
        body TEXT NOT NULL
    );
    CREATE INDEX heartbeats_node_at ON heartbeats (node, at_ms);
    CREATE INDEX heartbeats_at ON heartbeats (at_ms);",
    "ALTER TABLE audit ADD COLUMN fact TEXT;
    CREATE INDEX audit_fact ON audit (fact, id) WHERE fact IS NOT NULL;",
];

/// A history in a SQLite file.
#[derive(Debug)]
pub struct SqliteStore {
    connection: Connection,
    location: String,
}

impl SqliteStore {
    /// Opens (creating if missing) the history file at `path` and brings its schema up to
    /// date.
    ///
    /// # Errors
    ///
    /// [`StoreError::Corrupt`], [`StoreError::Foreign`] or [`StoreError::Newer`] for a file
    /// this agent must not write; [`StoreError::Unavailable`] if it cannot be opened.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let location = path.display().to_string();
        let connection = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE
                | OpenFlags::SQLITE_OPEN_CREATE
                | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(|e| classify(&location, &e))?;
        connection
            .busy_timeout(Duration::from_secs(5))
            .map_err(|e| classify(&location, &e))?;
        let mut store = Self {
            connection,
            location,
        };
        store.migrate()?;
        Ok(store)
    }

    /// The file of the history in `data_dir`.
    pub fn default_path(data_dir: &Path) -> PathBuf {
        data_dir.join("history.sqlite3")
    }

    fn migrate(&mut self) -> Result<(), StoreError> {
        let location = self.location.clone();
        let err = |e: rusqlite::Error| classify(&location, &e);
        let application_id: i32 = self
            .connection
            .query_row("PRAGMA application_id", [], |row| row.get(0))
            .map_err(err)?;
        let version: i64 = self
            .connection
            .query_row("PRAGMA user_version", [], |row| row.get(0))
            .map_err(err)?;
        let tables: i64 = self
            .connection
            .query_row(
                "SELECT count(*) FROM sqlite_master WHERE type = 'table'",
                [],
                |row| row.get(0),
            )
            .map_err(err)?;
        if application_id != APPLICATION_ID {
            if application_id != 0 {
                return Err(StoreError::Foreign {
                    location,
                    found: format!("application_id {application_id:#x}"),
                });
            }
            if tables > 0 {
                return Err(StoreError::Foreign {
                    location,
                    found: format!("{tables} tables and no roster history"),
                });
            }
        }
        if version > SCHEMA_VERSION {
            return Err(StoreError::Newer {
                location,
                found: version,
                supported: SCHEMA_VERSION,
            });
        }
        self.connection
            .query_row("PRAGMA journal_mode = WAL", [], |_| Ok(()))
            .map_err(err)?;
        self.connection
            .execute_batch("PRAGMA synchronous = NORMAL")
            .map_err(err)?;
        let start = usize::try_from(version).unwrap_or(0);
        for (index, migration) in MIGRATIONS.iter().enumerate().skip(start) {
            let tx = self.connection.transaction().map_err(err)?;
            tx.execute_batch(migration).map_err(err)?;
            if index + 1 == FACT_VERSION {
                fill_facts(&tx, &location)?;
            }
            tx.execute_batch(&format!(
                "PRAGMA application_id = {APPLICATION_ID}; PRAGMA user_version = {};",
                index + 1
            ))
            .map_err(err)?;
            tx.commit().map_err(err)?;
        }
        Ok(())
    }

    fn query_error(&self, e: &rusqlite::Error) -> StoreError {
        classify(&self.location, e)
    }
}

/// Fills the `fact` column of the rows written before it existed, from their bodies, as
/// the writer fills it ([`RecordKind::fact_key`]).
fn fill_facts(tx: &rusqlite::Transaction<'_>, location: &str) -> Result<(), StoreError> {
    let err = |e: rusqlite::Error| classify(location, &e);
    let rows: Vec<(i64, String)> = tx
        .prepare("SELECT id, body FROM audit WHERE kind IN (SELECT value FROM json_each(?1))")
        .and_then(|mut statement| {
            let kinds = serde_json::to_string(&FACT_KINDS).unwrap_or_default();
            statement
                .query_map([kinds], |row| Ok((row.get(0)?, row.get(1)?)))
                .and_then(Iterator::collect)
        })
        .map_err(err)?;
    let mut fill = tx
        .prepare("UPDATE audit SET fact = ?2 WHERE id = ?1")
        .map_err(err)?;
    for (id, body) in rows {
        if let Some(fact) = fact_of_row(location, id, &body)? {
            fill.execute(params![id, fact]).map_err(err)?;
        }
    }
    Ok(())
}

/// Tells a damaged or foreign file from an outage. A full disk is an outage: the writer
/// holds the records (within its bound) and retries until there is room again, reporting
/// it in `/readyz` and `/metrics`, rather than dropping each batch.
fn classify(location: &str, e: &rusqlite::Error) -> StoreError {
    match e.sqlite_error_code() {
        Some(ErrorCode::NotADatabase | ErrorCode::DatabaseCorrupt) => StoreError::Corrupt {
            location: location.to_owned(),
            reason: e.to_string(),
        },
        Some(
            ErrorCode::CannotOpen
            | ErrorCode::PermissionDenied
            | ErrorCode::ReadOnly
            | ErrorCode::DiskFull
            | ErrorCode::SystemIoFailure,
        ) => StoreError::Unavailable {
            location: location.to_owned(),
            reason: e.to_string(),
        },
        _ => StoreError::Query {
            location: location.to_owned(),
            reason: e.to_string(),
        },
    }
}

/// A time or count as SQLite's signed integer.
fn int(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

impl Store for SqliteStore {
    fn location(&self) -> &str {
        &self.location
    }

    fn write(&mut self, records: &[Record]) -> Result<(), StoreError> {
        let location = self.location.clone();
        let err = |e: rusqlite::Error| classify(&location, &e);
        let tx = self.connection.transaction().map_err(err)?;
        {
            let mut audit = tx
                .prepare_cached(
                    "INSERT INTO audit (at_ms, recorder, kind, subject, body, fact) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                )
                .map_err(err)?;
            let mut beats = tx
                .prepare_cached(
                    "INSERT INTO heartbeats (recorder, node, at_ms, body) VALUES (?1, ?2, ?3, ?4)",
                )
                .map_err(err)?;
            for record in records {
                if let RecordKind::Heartbeat { node, heartbeat } = &record.kind {
                    beats
                        .execute(params![
                            record.recorder,
                            node,
                            int(record.at_ms),
                            heartbeat.to_string()
                        ])
                        .map_err(err)?;
                } else {
                    let body = serde_json::to_string(&record.kind).unwrap_or_default();
                    audit
                        .execute(params![
                            int(record.at_ms),
                            record.recorder,
                            record.kind.tag(),
                            record.kind.subject(),
                            body,
                            record.kind.fact_key()
                        ])
                        .map_err(err)?;
                }
            }
        }
        tx.commit().map_err(err)
    }

    fn prune_heartbeats(&mut self, before_ms: u64) -> Result<u64, StoreError> {
        self.connection
            .execute(
                "DELETE FROM heartbeats WHERE at_ms < ?1",
                params![int(before_ms)],
            )
            .map(|n| n as u64)
            .map_err(|e| self.query_error(&e))
    }

    fn audit(&mut self, query: &AuditQuery) -> Result<Vec<AuditRow>, StoreError> {
        let mut values: Vec<Value> = Vec::new();
        let rows = window(query, &mut values);
        let about = match &query.node {
            Some(node) => about_node(&bind(&mut values, Value::Text(node.clone()))),
            None => "1".to_owned(),
        };
        let before = match query.before_item {
            Some(before) => format!(" AND id < {}", bind(&mut values, Value::Integer(before))),
            None => String::new(),
        };
        let limit = bind(&mut values, Value::Integer(int(query.limit as u64)));
        // Newest first, each row an item if it is a single row about the node, or the
        // first row of its fact in the window with some row of the fact about the node:
        // the scan stops at `limit` items, probing the fact index for each row of a fact.
        // (The rows of a fact from its first on are all its rows in the window; asking
        // for them by `id >= item.id` also keeps PostgreSQL from hashing the `EXISTS`,
        // which would read every row of the window about the node.)
        let items_sql = format!(
            "SELECT id, fact FROM audit AS item
                WHERE 1{rows}{before}
                  AND CASE WHEN fact IS NULL THEN {about}
                      ELSE NOT EXISTS (SELECT 1 FROM audit
                              WHERE fact = item.fact AND id < item.id{rows})
                           AND EXISTS (SELECT 1 FROM audit
                              WHERE fact = item.fact AND id >= item.id{rows} AND {about}) END
                ORDER BY id DESC LIMIT {limit}"
        );
        let items: Vec<(i64, Option<String>)> = {
            let mut statement = self
                .connection
                .prepare_cached(&items_sql)
                .map_err(|e| classify(&self.location, &e))?;
            statement
                .query_map(params_from_iter(values.iter()), |row| {
                    Ok((row.get(0)?, row.get(1)?))
                })
                .and_then(Iterator::collect)
                .map_err(|e| classify(&self.location, &e))?
        };
        let (singles, facts) = split_items(&items);
        // The rows of the items: single rows by id, the rows of each fact within the
        // same time window and kinds (whichever node recorded them).
        let mut values: Vec<Value> = Vec::new();
        let rows = window(query, &mut values);
        let singles = bind(
            &mut values,
            Value::Text(serde_json::to_string(&singles).unwrap_or_default()),
        );
        let wanted = bind(
            &mut values,
            Value::Text(
                serde_json::to_string(&facts.keys().collect::<Vec<_>>()).unwrap_or_default(),
            ),
        );
        let rows_sql = format!(
            "SELECT id, at_ms, recorder, body, NULL FROM audit
                WHERE id IN (SELECT value FROM json_each({singles}))
             UNION ALL
             SELECT id, at_ms, recorder, body, fact FROM audit
                WHERE fact IN (SELECT value FROM json_each({wanted})){rows}"
        );
        let mut statement = self
            .connection
            .prepare_cached(&rows_sql)
            .map_err(|e| classify(&self.location, &e))?;
        let found = statement
            .query_map(params_from_iter(values.iter()), |row| {
                Ok((
                    row.get::<_, i64>(0)?,
                    row.get::<_, i64>(1)?,
                    row.get::<_, String>(2)?,
                    row.get::<_, String>(3)?,
                    row.get::<_, Option<String>>(4)?,
                ))
            })
            .map_err(|e| classify(&self.location, &e))?;
        let mut out = Vec::new();
        for row in found {
            let (id, at_ms, recorder, body, fact) =
                row.map_err(|e| classify(&self.location, &e))?;
            let item = fact
                .and_then(|fact| facts.get(&fact).copied())
                .unwrap_or(id);
            out.extend(audit_row(id, item, at_ms, recorder, &body));
        }
        Ok(in_item_order(out))
    }

    fn heartbeats(
        &mut self,
        node: &str,
        since_ms: u64,
        until_ms: u64,
    ) -> Result<Vec<StoredHeartbeat>, StoreError> {
        let mut statement = self
            .connection
            .prepare_cached(
                "SELECT recorder, at_ms, body FROM heartbeats WHERE node = ?1 AND at_ms >= ?2 AND at_ms < ?3 ORDER BY at_ms",
            )
            .map_err(|e| classify(&self.location, &e))?;
        let rows = statement
            .query_map(params![node, int(since_ms), int(until_ms)], |row| {
                Ok((
                    row.get::<_, String>(0)?,
                    row.get::<_, i64>(1)?,
                    row.get::<_, String>(2)?,
                ))
            })
            .map_err(|e| classify(&self.location, &e))?;
        let mut out = Vec::new();
        for row in rows {
            let (recorder, at_ms, body) = row.map_err(|e| classify(&self.location, &e))?;
            out.push(StoredHeartbeat {
                recorder,
                at_ms: u64::try_from(at_ms).unwrap_or(0),
                heartbeat: serde_json::from_str(&body).unwrap_or(serde_json::Value::Null),
            });
        }
        Ok(out)
    }
}

/// Binds `value` as the next parameter; its placeholder.
fn bind(values: &mut Vec<Value>, value: Value) -> String {
    values.push(value);
    format!("?{}", values.len())
}

/// The conditions of `query` on every row of an item (the time window and the kinds),
/// each beginning with ` AND `, their values bound into `values`.
fn window(query: &AuditQuery, values: &mut Vec<Value>) -> String {
    let mut rows = String::new();
    if let Some(since) = query.since_ms {
        let since = bind(values, Value::Integer(int(since)));
        rows.push_str(&format!(" AND at_ms >= {since}"));
    }
    if let Some(until) = query.until_ms {
        let until = bind(values, Value::Integer(int(until)));
        rows.push_str(&format!(" AND at_ms < {until}"));
    }
    if !query.kinds.is_empty() {
        let kinds = bind(
            values,
            Value::Text(serde_json::to_string(&query.kinds).unwrap_or_default()),
        );
        rows.push_str(&format!(
            " AND kind IN (SELECT value FROM json_each({kinds}))"
        ));
    }
    rows
}

/// Whether a row is about the node bound as `node`: recorded by it, or naming it.
fn about_node(node: &str) -> String {
    format!(
        "(recorder = {node} OR subject = {node}
          OR (kind = 'name_conflict' AND {node} IN (json_extract(body, '$.winner_node'), json_extract(body, '$.loser_node')))
          OR (kind IN ('partition_detected', 'partition_healed', 'fence_raised')
              AND (EXISTS (SELECT 1 FROM json_each(body, '$.unreachable') WHERE value = {node})
                   OR EXISTS (SELECT 1 FROM json_each(body, '$.side') WHERE value = {node}))))"
    )
}

/// The items of a page as the ids of single rows and, for facts, the item of each fact.
pub(super) fn split_items(items: &[(i64, Option<String>)]) -> (Vec<i64>, HashMap<String, i64>) {
    let mut singles = Vec::new();
    let mut facts = HashMap::new();
    for (item, fact) in items {
        match fact {
            Some(fact) => {
                facts.insert(fact.clone(), *item);
            }
            None => singles.push(*item),
        }
    }
    (singles, facts)
}

/// `rows` in the order [`Store::audit`] answers: the newest item first, each item's rows
/// together, oldest row first.
pub(super) fn in_item_order(mut rows: Vec<AuditRow>) -> Vec<AuditRow> {
    rows.sort_by(|a, b| b.item.cmp(&a.item).then(a.id.cmp(&b.id)));
    rows
}

/// An audit row of item `item` from its columns; `None` for a kind this agent does not
/// know (written by a newer agent into a shared database), which is skipped.
pub(super) fn audit_row(
    id: i64,
    item: i64,
    at_ms: i64,
    recorder: String,
    body: &str,
) -> Option<AuditRow> {
    let kind: RecordKind = serde_json::from_str(body)
        .inspect_err(|e| tracing::debug!(id, error = %e, "history: skipping an audit row of an unknown kind"))
        .ok()?;
    Some(AuditRow {
        id,
        item,
        record: Record {
            at_ms: u64::try_from(at_ms).unwrap_or(0),
            recorder,
            kind,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sqlite_error(code: std::os::raw::c_int) -> rusqlite::Error {
        rusqlite::Error::SqliteFailure(rusqlite::ffi::Error::new(code), None)
    }

    /// A full disk (or an I/O error) is an outage to wait out, not a batch to drop.
    #[test]
    fn a_full_disk_is_an_outage_and_a_bad_statement_is_not() {
        let outage = |e| matches!(classify("h.sqlite3", &e), StoreError::Unavailable { .. });
        assert!(outage(sqlite_error(rusqlite::ffi::SQLITE_FULL)));
        assert!(outage(sqlite_error(rusqlite::ffi::SQLITE_IOERR)));
        assert!(outage(sqlite_error(rusqlite::ffi::SQLITE_CANTOPEN)));
        assert!(matches!(
            classify("h.sqlite3", &sqlite_error(rusqlite::ffi::SQLITE_CONSTRAINT)),
            StoreError::Query { .. }
        ));
        assert!(matches!(
            classify("h.sqlite3", &sqlite_error(rusqlite::ffi::SQLITE_CORRUPT)),
            StoreError::Corrupt { .. }
        ));
    }
}
