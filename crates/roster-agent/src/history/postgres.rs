//! The PostgreSQL backend (`--history postgres://...`): tokio-postgres without TLS, driven
//! by a current-thread runtime owned by the store, so that it is used from a plain thread
//! as the SQLite store is. Several agents may write to one database: every row carries its
//! recorder, and migrations run under an advisory lock.

use std::time::Duration;

use tokio::runtime::Runtime;
use tokio_postgres::{Client, NoTls};

use super::record::{Record, RecordKind};
use super::sqlite::{audit_row, in_item_order, split_items};
use super::store::{
    AuditQuery, AuditRow, FACT_KINDS, FACT_VERSION, SCHEMA_VERSION, Store, StoreError,
    StoredHeartbeat, fact_of_row,
};

/// The migrations, in order: migration `i` brings the schema to version `i + 1` (the one
/// to [`FACT_VERSION`] then fills the new column: [`fill_facts`]).
const MIGRATIONS: [&str; 2] = ["CREATE TABLE IF NOT EXISTS roster_audit (
        id BIGSERIAL PRIMARY KEY,
        at_ms BIGINT NOT NULL,
        recorder TEXT NOT NULL,
        kind TEXT NOT NULL,
        subject TEXT,
        body TEXT NOT NULL
    );
    CREATE INDEX IF NOT EXISTS roster_audit_at ON roster_audit (at_ms);
    CREATE INDEX IF NOT EXISTS roster_audit_kind ON roster_audit (kind, id);
    CREATE TABLE IF NOT EXISTS roster_heartbeats (
        recorder TEXT NOT NULL,
        node TEXT NOT NULL,
        at_ms BIGINT NOT NULL,
        body TEXT NOT NULL
    );
    CREATE INDEX IF NOT EXISTS roster_heartbeats_node_at ON roster_heartbeats (node, at_ms);
    CREATE INDEX IF NOT EXISTS roster_heartbeats_at ON roster_heartbeats (at_ms);",
    "ALTER TABLE roster_audit ADD COLUMN IF NOT EXISTS fact TEXT;
    CREATE INDEX IF NOT EXISTS roster_audit_fact ON roster_audit (fact, id) WHERE fact IS NOT NULL;",
];

/// The advisory lock migrations run under ("ROST").
const MIGRATION_LOCK: i64 = 0x524F_5354;

/// How long connecting may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// A history in a PostgreSQL database.
#[derive(Debug)]
pub struct PostgresStore {
    runtime: Runtime,
    config: tokio_postgres::Config,
    client: Option<Client>,
    location: String,
}

impl PostgresStore {
    /// A store for the database at `url` (`postgres://user[:password]@host[:port]/db`),
    /// not connected yet: see [`PostgresStore::connect`].
    ///
    /// # Errors
    ///
    /// [`StoreError::Unavailable`] if the URL is not a PostgreSQL URL or the runtime
    /// cannot start.
    pub fn new(url: &str) -> Result<Self, StoreError> {
        let location = redact(url);
        let mut config: tokio_postgres::Config =
            url.parse().map_err(|e| StoreError::Unavailable {
                location: location.clone(),
                reason: format!("not a PostgreSQL URL: {e}"),
            })?;
        config.connect_timeout(CONNECT_TIMEOUT);
        config.application_name("roster-agent");
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| StoreError::Unavailable {
                location: location.clone(),
                reason: format!("cannot start a runtime: {e}"),
            })?;
        Ok(Self {
            runtime,
            config,
            client: None,
            location,
        })
    }

    /// Connects (again) and brings the schema up to date.
    ///
    /// # Errors
    ///
    /// [`StoreError::Newer`] if another agent wrote a newer schema;
    /// [`StoreError::Unavailable`] if the server cannot be reached.
    pub fn connect(&mut self) -> Result<(), StoreError> {
        self.client = None;
        let (client, connection) = self
            .runtime
            .block_on(self.config.connect(NoTls))
            .map_err(|e| self.unavailable(&e))?;
        self.runtime.spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(error = %e, "history: PostgreSQL connection closed");
            }
        });
        self.runtime.block_on(migrate(&client, &self.location))?;
        self.client = Some(client);
        Ok(())
    }

    fn unavailable(&self, e: &tokio_postgres::Error) -> StoreError {
        StoreError::Unavailable {
            location: self.location.clone(),
            reason: e.to_string(),
        }
    }

    /// Connects first if the last statement lost the connection.
    fn reconnect_if_closed(&mut self) -> Result<(), StoreError> {
        if self.client.as_ref().is_none_or(Client::is_closed) {
            self.connect()?;
        }
        Ok(())
    }

    fn not_connected(&self) -> StoreError {
        StoreError::Unavailable {
            location: self.location.clone(),
            reason: "not connected".to_owned(),
        }
    }

    /// Maps a statement's error: a lost connection is an outage (and is dropped, to
    /// reconnect), anything else a failed statement.
    fn statement_error(&mut self, e: &tokio_postgres::Error) -> StoreError {
        if e.is_closed()
            || self.client.as_ref().is_none_or(Client::is_closed)
            || e.as_db_error().is_none()
        {
            self.client = None;
            return self.unavailable(e);
        }
        StoreError::Query {
            location: self.location.clone(),
            reason: e.to_string(),
        }
    }
}

async fn migrate(client: &Client, location: &str) -> Result<(), StoreError> {
    let query = |e: tokio_postgres::Error| StoreError::Unavailable {
        location: location.to_owned(),
        reason: e.to_string(),
    };
    client
        .batch_execute(&format!(
            "SELECT pg_advisory_lock({MIGRATION_LOCK});
             CREATE TABLE IF NOT EXISTS roster_schema (application TEXT NOT NULL, version BIGINT NOT NULL);"
        ))
        .await
        .map_err(query)?;
    let result = async {
        let row = client
            .query_opt("SELECT application, version FROM roster_schema LIMIT 1", &[])
            .await
            .map_err(query)?;
        let version = match row {
            None => {
                client
                    .execute(
                        "INSERT INTO roster_schema (application, version) VALUES ('roster-history', 0)",
                        &[],
                    )
                    .await
                    .map_err(query)?;
                0
            }
            Some(row) => {
                let application: String = row.get(0);
                if application != "roster-history" {
                    return Err(StoreError::Foreign {
                        location: location.to_owned(),
                        found: format!("roster_schema names application {application:?}"),
                    });
                }
                row.get::<_, i64>(1)
            }
        };
        if version > SCHEMA_VERSION {
            return Err(StoreError::Newer {
                location: location.to_owned(),
                found: version,
                supported: SCHEMA_VERSION,
            });
        }
        let start = usize::try_from(version).unwrap_or(0);
        for (index, migration) in MIGRATIONS.iter().enumerate().skip(start) {
            client.batch_execute("BEGIN").await.map_err(query)?;
            let step = async {
                client.batch_execute(migration).await.map_err(query)?;
                if index + 1 == FACT_VERSION {
                    fill_facts(client, location).await?;
                }
                client
                    .batch_execute(&format!(
                        "UPDATE roster_schema SET version = {}; COMMIT;",
                        index + 1
                    ))
                    .await
                    .map_err(query)
            }
            .await;
            if step.is_err() {
                let _ = client.batch_execute("ROLLBACK").await;
            }
            step?;
        }
        Ok(())
    }
    .await;
    let unlock = client
        .batch_execute(&format!("SELECT pg_advisory_unlock({MIGRATION_LOCK})"))
        .await
        .map_err(query);
    result.and(unlock)
}

/// Fills the `fact` column of the rows written before it existed, from their bodies, as
/// the writer fills it ([`RecordKind::fact_key`]).
async fn fill_facts(client: &Client, location: &str) -> Result<(), StoreError> {
    let query = |e: tokio_postgres::Error| StoreError::Unavailable {
        location: location.to_owned(),
        reason: e.to_string(),
    };
    let rows = client
        .query(
            "SELECT id, body FROM roster_audit WHERE kind = ANY($1)",
            &[&FACT_KINDS.as_slice()],
        )
        .await
        .map_err(query)?;
    let (mut ids, mut facts) = (Vec::new(), Vec::new());
    for row in rows {
        let id: i64 = row.get(0);
        let body: &str = row.get(1);
        if let Some(fact) = fact_of_row(location, id, body)? {
            ids.push(id);
            facts.push(fact);
        }
    }
    client
        .execute(
            "UPDATE roster_audit SET fact = filled.fact
             FROM UNNEST($1::BIGINT[], $2::TEXT[]) AS filled (id, fact)
             WHERE roster_audit.id = filled.id",
            &[&ids, &facts],
        )
        .await
        .map_err(query)?;
    // PostgreSQL plans the read of a page's facts by the statistics of the new column:
    // gather them now rather than when autovacuum gets to it.
    client
        .batch_execute("ANALYZE roster_audit")
        .await
        .map_err(query)
}

/// `url` without its password, for messages.
pub(crate) fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let userinfo = &url[scheme + 3..at];
            let user = userinfo.split(':').next().unwrap_or_default();
            format!("{}{}@{}", &url[..scheme + 3], user, &url[at + 1..])
        }
        _ => url.to_owned(),
    }
}

/// Audit rows as columns, for one `INSERT ... SELECT * FROM UNNEST(...)`: at_ms,
/// recorder, kind, subject, body, fact.
type AuditColumns = (
    Vec<i64>,
    Vec<String>,
    Vec<String>,
    Vec<Option<String>>,
    Vec<String>,
    Vec<Option<String>>,
);

/// Heartbeats as columns: recorder, node, at_ms, body.
type HeartbeatColumns = (Vec<String>, Vec<String>, Vec<i64>, Vec<String>);

/// The conditions of a query on every row of an item (the time window and the kinds),
/// with the since, until and kinds parameters numbered from `first`.
fn window(first: usize) -> String {
    let (since, until, kinds) = (first, first + 1, first + 2);
    format!(
        "(${since}::BIGINT IS NULL OR at_ms >= ${since})
         AND (${until}::BIGINT IS NULL OR at_ms < ${until})
         AND (${kinds}::TEXT[] IS NULL OR kind = ANY(${kinds}))"
    )
}

/// Whether a row is about the node of parameter `n` (any row if it is null): recorded by
/// it, or naming it; `json` is the row's body as `jsonb`.
fn about_node(n: usize, json: &str) -> String {
    format!(
        "(${n}::TEXT IS NULL OR recorder = ${n} OR subject = ${n}
          OR (kind = 'name_conflict'
              AND ${n} IN ({json} ->> 'winner_node', {json} ->> 'loser_node'))
          OR (kind IN ('partition_detected', 'partition_healed', 'fence_raised')
              AND (COALESCE({json} -> 'unreachable', '[]'::jsonb) ? ${n}
                   OR COALESCE({json} -> 'side', '[]'::jsonb) ? ${n})))"
    )
}

/// A time or count as PostgreSQL's BIGINT.
fn int(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

impl Store for PostgresStore {
    fn location(&self) -> &str {
        &self.location
    }

    fn write(&mut self, records: &[Record]) -> Result<(), StoreError> {
        let mut audit = AuditColumns::default();
        let mut beats = HeartbeatColumns::default();
        for record in records {
            if let RecordKind::Heartbeat { node, heartbeat } = &record.kind {
                beats.0.push(record.recorder.clone());
                beats.1.push(node.clone());
                beats.2.push(int(record.at_ms));
                beats.3.push(heartbeat.to_string());
            } else {
                audit.0.push(int(record.at_ms));
                audit.1.push(record.recorder.clone());
                audit.2.push(record.kind.tag().to_owned());
                audit.3.push(record.kind.subject().map(str::to_owned));
                audit
                    .4
                    .push(serde_json::to_string(&record.kind).unwrap_or_default());
                audit.5.push(record.kind.fact_key());
            }
        }
        self.reconnect_if_closed()?;
        let Some(client) = &self.client else {
            return Err(self.not_connected());
        };
        let result = self.runtime.block_on(async {
            client.batch_execute("BEGIN").await?;
            if !audit.0.is_empty() {
                client
                    .execute(
                        "INSERT INTO roster_audit (at_ms, recorder, kind, subject, body, fact)
                         SELECT * FROM UNNEST($1::BIGINT[], $2::TEXT[], $3::TEXT[], $4::TEXT[], $5::TEXT[], $6::TEXT[])",
                        &[&audit.0, &audit.1, &audit.2, &audit.3, &audit.4, &audit.5],
                    )
                    .await?;
            }
            if !beats.0.is_empty() {
                client
                    .execute(
                        "INSERT INTO roster_heartbeats (recorder, node, at_ms, body)
                         SELECT * FROM UNNEST($1::TEXT[], $2::TEXT[], $3::BIGINT[], $4::TEXT[])",
                        &[&beats.0, &beats.1, &beats.2, &beats.3],
                    )
                    .await?;
            }
            client.batch_execute("COMMIT").await
        });
        result.map_err(|e| {
            let error = self.statement_error(&e);
            if let Some(client) = &self.client {
                let _ = self.runtime.block_on(client.batch_execute("ROLLBACK"));
            }
            error
        })
    }

    fn prune_heartbeats(&mut self, before_ms: u64) -> Result<u64, StoreError> {
        self.reconnect_if_closed()?;
        let Some(client) = &self.client else {
            return Err(self.not_connected());
        };
        let result = self.runtime.block_on(client.execute(
            "DELETE FROM roster_heartbeats WHERE at_ms < $1",
            &[&int(before_ms)],
        ));
        result.map_err(|e| self.statement_error(&e))
    }

    fn audit(&mut self, query: &AuditQuery) -> Result<Vec<AuditRow>, StoreError> {
        let since = query.since_ms.map(int);
        let until = query.until_ms.map(int);
        let kinds: Option<Vec<String>> = (!query.kinds.is_empty()).then(|| query.kinds.clone());
        let limit = int(query.limit as u64);
        self.reconnect_if_closed()?;
        let Some(client) = &self.client else {
            return Err(self.not_connected());
        };
        // Newest first, each row an item if it is a single row about the node, or the
        // first row of its fact in the window with some row of the fact about the node:
        // the scan stops at `limit` items, probing the fact index for each row of a fact.
        // (The rows of a fact from its first on are all its rows in the window; asking
        // for them by `id >= item.id` also keeps PostgreSQL from hashing the `EXISTS`,
        // which would read every row of the window about the node.)
        let items_sql = format!(
            "SELECT id, fact FROM roster_audit AS item
                WHERE {window} AND ($5::BIGINT IS NULL OR id < $5)
                  AND CASE WHEN fact IS NULL THEN {about}
                      ELSE NOT EXISTS (SELECT 1 FROM roster_audit
                              WHERE fact = item.fact AND id < item.id AND {window})
                           AND EXISTS (SELECT 1 FROM roster_audit
                              WHERE fact = item.fact AND id >= item.id AND {window} AND {about}) END
                ORDER BY id DESC LIMIT $6",
            window = window(1),
            about = about_node(4, "body::jsonb"),
        );
        let result = self.runtime.block_on(client.query(
            &items_sql,
            &[
                &since,
                &until,
                &kinds,
                &query.node,
                &query.before_item,
                &limit,
            ],
        ));
        let items: Vec<(i64, Option<String>)> = result
            .map_err(|e| self.statement_error(&e))?
            .iter()
            .map(|row| (row.get(0), row.get(1)))
            .collect();
        let (singles, facts) = split_items(&items);
        let wanted: Vec<&String> = facts.keys().collect();
        let Some(client) = &self.client else {
            return Err(self.not_connected());
        };
        // The rows of the items: single rows by id, the rows of each fact within the
        // same time window and kinds (whichever node recorded them).
        let rows_sql = format!(
            "SELECT id, at_ms, recorder, body, NULL::TEXT FROM roster_audit WHERE id = ANY($4)
             UNION ALL
             SELECT id, at_ms, recorder, body, fact FROM roster_audit
                WHERE fact = ANY($5) AND {window}",
            window = window(1),
        );
        let result = self
            .runtime
            .block_on(client.query(&rows_sql, &[&since, &until, &kinds, &singles, &wanted]));
        let rows = result.map_err(|e| self.statement_error(&e))?;
        Ok(in_item_order(
            rows.iter()
                .filter_map(|row| {
                    let id: i64 = row.get(0);
                    let body: String = row.get(3);
                    let fact: Option<String> = row.get(4);
                    let item = fact
                        .and_then(|fact| facts.get(&fact).copied())
                        .unwrap_or(id);
                    audit_row(id, item, row.get(1), row.get(2), &body)
                })
                .collect(),
        ))
    }

    fn heartbeats(
        &mut self,
        node: &str,
        since_ms: u64,
        until_ms: u64,
    ) -> Result<Vec<StoredHeartbeat>, StoreError> {
        self.reconnect_if_closed()?;
        let Some(client) = &self.client else {
            return Err(self.not_connected());
        };
        let result = self.runtime.block_on(client.query(
            "SELECT recorder, at_ms, body FROM roster_heartbeats
             WHERE node = $1 AND at_ms >= $2 AND at_ms < $3 ORDER BY at_ms",
            &[&node, &int(since_ms), &int(until_ms)],
        ));
        let rows = result.map_err(|e| self.statement_error(&e))?;
        Ok(rows
            .iter()
            .map(|row| {
                let body: String = row.get(2);
                StoredHeartbeat {
                    recorder: row.get(0),
                    at_ms: u64::try_from(row.get::<_, i64>(1)).unwrap_or(0),
                    heartbeat: serde_json::from_str(&body).unwrap_or(serde_json::Value::Null),
                }
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::redact;

    #[test]
    fn passwords_are_kept_out_of_messages() {
        assert_eq!(
            redact("postgres://roster:s3cret@db:5432/history"),
            "postgres://roster@db:5432/history"
        );
        assert_eq!(redact("postgres://db/history"), "postgres://db/history");
    }
}
