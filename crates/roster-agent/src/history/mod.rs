//! The history: an audit log of what this node saw (status changes, nodes up and down,
//! links, name conflicts, partitions and fences, sessions, alerts) and every heartbeat,
//! kept in SQLite (default) or PostgreSQL, so that the API can answer beyond the node's
//! memory and after a restart.
//!
//! - [`record`]: what is kept;
//! - [`store`]: the backend trait and its errors; [`sqlite`] and [`postgres`] implement it;
//! - [`recorder`]: the non-blocking write side (a bounded queue and a writer thread);
//! - [`reader`]: the read side (a thread of its own);
//! - [`feeder`]: the task turning the node's events into records;
//! - [`settings`]: `--history`, `--history-queue`, `--heartbeat-retention`;
//! - [`bench`](mod@bench): `roster bench-history`.

pub mod bench;
pub mod feeder;
pub mod postgres;
pub mod reader;
pub mod record;
pub mod recorder;
pub mod settings;
pub mod sqlite;
pub mod store;

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use self::postgres::PostgresStore;
use self::reader::Reader;
use self::recorder::{HistoryStats, Recorder};
use self::settings::{Backend, HistorySettings};
use self::sqlite::SqliteStore;
use self::store::{Store, StoreError};

/// A running history: its recorder, its reader and its counters. Cheap to clone.
#[derive(Debug, Clone)]
pub struct History {
    recorder: Recorder,
    reader: Reader,
    location: Arc<str>,
}

impl History {
    /// Opens the history of `settings` for the node named `recorder` and starts its
    /// writer and reader threads; `None` with `--history off`. A PostgreSQL server that
    /// cannot be reached is an outage (the agent starts, the history is degraded and
    /// reconnects); a database this agent must not write is refused.
    ///
    /// # Errors
    ///
    /// [`StoreError::Corrupt`], [`StoreError::Foreign`] or [`StoreError::Newer`]; for
    /// SQLite also [`StoreError::Unavailable`] (the file cannot be created).
    pub async fn open(
        settings: &HistorySettings,
        recorder: &str,
    ) -> Result<Option<Self>, StoreError> {
        if settings.backend == Backend::Off {
            return Ok(None);
        }
        let backend = settings.backend.clone();
        let (opened, open) = tokio::sync::oneshot::channel();
        let spawned = std::thread::Builder::new()
            .name("roster-history-open".to_owned())
            .spawn(move || {
                let _ = opened.send(open_store(&backend));
            });
        let location = location(&settings.backend);
        let stopped = |reason: String| StoreError::Unavailable {
            location: location.clone(),
            reason,
        };
        spawned.map_err(|e| stopped(format!("cannot start a thread: {e}")))?;
        let stats = Arc::new(HistoryStats::default());
        let store = match open
            .await
            .map_err(|_| stopped("the opening thread stopped".into()))?
        {
            Ok(store) => store,
            Err(e @ StoreError::Unavailable { .. })
                if matches!(settings.backend, Backend::Postgres(_)) =>
            {
                tracing::warn!(error = %e, "history: PostgreSQL is unreachable; records are held and the agent reconnects");
                stats.set_degraded(Some(e.to_string()));
                None
            }
            Err(e) => return Err(e),
        };
        let recorder = recorder::start(store, settings, recorder, stats)
            .map_err(|e| stopped(format!("cannot start the writer thread: {e}")))?;
        let reader = Reader::start(settings.backend.clone(), location.clone())
            .map_err(|e| stopped(format!("cannot start the reader thread: {e}")))?;
        tracing::info!(history = %location, "history open");
        Ok(Some(Self {
            recorder,
            reader,
            location: location.into(),
        }))
    }

    /// The recorder: where facts are recorded (non-blocking).
    pub fn recorder(&self) -> &Recorder {
        &self.recorder
    }

    /// The reader: where the API's queries run.
    pub fn reader(&self) -> &Reader {
        &self.reader
    }

    /// The counters (queued, written, dropped, write errors, degraded).
    pub fn stats(&self) -> &Arc<HistoryStats> {
        self.recorder.stats()
    }

    /// Where the history is (a file, or a URL without its password).
    pub fn location(&self) -> &str {
        &self.location
    }

    /// Writes what is queued, waiting at most `deadline` (at shutdown).
    pub async fn flush(&self, deadline: Duration) -> bool {
        self.recorder.flush(deadline).await
    }
}

/// Where `backend` is, for messages.
fn location(backend: &Backend) -> String {
    match backend {
        Backend::Off => "off".to_owned(),
        Backend::Sqlite(path) => path.display().to_string(),
        Backend::Postgres(url) => postgres::redact(url),
    }
}

/// Opens a store for `backend`; `None` for [`Backend::Off`]. Blocking: call it from a
/// thread of its own, never from an async task.
pub(crate) fn open_store(backend: &Backend) -> Result<Option<Box<dyn Store>>, StoreError> {
    Ok(match backend {
        Backend::Off => None,
        Backend::Sqlite(path) => Some(Box::new(SqliteStore::open(path)?)),
        Backend::Postgres(url) => {
            let mut store = PostgresStore::new(url)?;
            store.connect()?;
            Some(Box::new(store))
        }
    })
}

/// Now, in milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}
