//! The embedded SQLite backend (the default): one file, WAL mode, versioned migrations
//! checked against `PRAGMA application_id` and `PRAGMA user_version`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{Connection, ErrorCode, OpenFlags, params, params_from_iter, types::Value};

use super::record::{Record, RecordKind};
use super::store::{
    APPLICATION_ID, AuditQuery, AuditRow, SCHEMA_VERSION, Store, StoreError, StoredHeartbeat,
};

/// The migrations, in order: migration `i` brings the schema to version `i + 1`.
const MIGRATIONS: [&str; 1] = ["CREATE TABLE audit (
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
    CREATE INDEX heartbeats_at ON heartbeats (at_ms);"];

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
                    "INSERT INTO audit (at_ms, recorder, kind, subject, body) VALUES (?1, ?2, ?3, ?4, ?5)",
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
                            body
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
        let mut sql = String::from("SELECT id, at_ms, recorder, body FROM audit WHERE 1 = 1");
        let mut values: Vec<Value> = Vec::new();
        if let Some(since) = query.since_ms {
            sql.push_str(" AND at_ms >= ?");
            values.push(Value::Integer(int(since)));
        }
        if let Some(until) = query.until_ms {
            sql.push_str(" AND at_ms < ?");
            values.push(Value::Integer(int(until)));
        }
        if !query.kinds.is_empty() {
            sql.push_str(" AND kind IN (");
            sql.push_str(&vec!["?"; query.kinds.len()].join(", "));
            sql.push(')');
            values.extend(query.kinds.iter().map(|k| Value::Text(k.clone())));
        }
        if let Some(node) = &query.node {
            sql.push_str(" AND (subject = ? OR recorder = ?)");
            values.push(Value::Text(node.clone()));
            values.push(Value::Text(node.clone()));
        }
        if let Some(before) = query.before_id {
            sql.push_str(" AND id < ?");
            values.push(Value::Integer(before));
        }
        sql.push_str(" ORDER BY id DESC LIMIT ?");
        values.push(Value::Integer(int(query.limit as u64)));
        let mut statement = self
            .connection
            .prepare_cached(&sql)
            .map_err(|e| classify(&self.location, &e))?;
        let rows = statement
            .query_map(params_from_iter(values), |row| {
                Ok((
                    row.get::<_, i64>(0)?,
                    row.get::<_, i64>(1)?,
                    row.get::<_, String>(2)?,
                    row.get::<_, String>(3)?,
                ))
            })
            .map_err(|e| classify(&self.location, &e))?;
        let mut out = Vec::new();
        for row in rows {
            let (id, at_ms, recorder, body) = row.map_err(|e| classify(&self.location, &e))?;
            out.extend(audit_row(id, at_ms, recorder, &body));
        }
        Ok(out)
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

/// An audit row from its columns; `None` for a kind this agent does not know (written by
/// a newer agent into a shared database), which is skipped.
pub(super) fn audit_row(id: i64, at_ms: i64, recorder: String, body: &str) -> Option<AuditRow> {
    let kind: RecordKind = serde_json::from_str(body)
        .inspect_err(|e| tracing::debug!(id, error = %e, "history: skipping an audit row of an unknown kind"))
        .ok()?;
    Some(AuditRow {
        id,
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
