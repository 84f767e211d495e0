//! The write side: [`Recorder::record`] puts a record on a bounded queue and returns at
//! once; a dedicated writer thread takes records off it and writes them in batched
//! transactions. When the queue is full, or the database has been unreachable long
//! enough for the writer's buffer to fill, records are dropped and counted
//! ([`HistoryStats`]), never waited for.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TryRecvError, TrySendError};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use super::record::{Record, RecordKind};
use super::store::{Store, StoreError};
use super::{now_ms, open_store};
use crate::history::settings::HistorySettings;

/// At most this many records per transaction.
const BATCH: usize = 1024;

/// How often the writer prunes old heartbeats.
const PRUNE_EVERY: Duration = Duration::from_secs(60);

/// The first and the longest wait before reconnecting to an unreachable database.
const BACKOFF: (Duration, Duration) = (Duration::from_millis(100), Duration::from_secs(10));

/// At most one warning about dropped records per this long.
const WARN_EVERY_MS: u64 = 10_000;

/// The counters of the history, readable at any time (e.g. by `/metrics`).
#[derive(Debug, Default)]
pub struct HistoryStats {
    /// Records accepted onto the queue.
    pub queued: AtomicU64,
    /// Records written.
    pub written: AtomicU64,
    /// Records dropped: the queue was full, or the writer's buffer was while the database
    /// was unreachable.
    pub dropped: AtomicU64,
    /// Transactions that failed (each is retried).
    pub write_errors: AtomicU64,
    /// Node and registry events the feeder missed because it fell behind the node's
    /// subscription (the library's lag notices): facts never turned into records.
    pub missed_events: AtomicU64,
    /// Queued records the writer is done with (written or dropped): what
    /// [`Recorder::flush`] waits for.
    settled: AtomicU64,
    degraded: AtomicBool,
    last_error: Mutex<Option<String>>,
    last_warn_ms: AtomicU64,
}

impl HistoryStats {
    /// Whether the database is unreachable now (records are held, then dropped).
    pub fn degraded(&self) -> bool {
        self.degraded.load(Ordering::Relaxed)
    }

    /// The last write error, while degraded.
    pub fn last_error(&self) -> Option<String> {
        self.last_error
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Marks the database unreachable (with the error) or reachable again (`None`).
    pub(super) fn set_degraded(&self, error: Option<String>) {
        self.degraded.store(error.is_some(), Ordering::Relaxed);
        *self
            .last_error
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = error;
    }

    /// Counts `n` records taken off the queue and dropped by the writer.
    fn drop_queued(&self, n: u64, why: &str) {
        self.drop_records(n, why);
        self.settled.fetch_add(n, Ordering::Relaxed);
    }

    /// Counts `n` dropped records, with a warning at most every ten seconds.
    fn drop_records(&self, n: u64, why: &str) {
        let total = self.dropped.fetch_add(n, Ordering::Relaxed) + n;
        let now = now_ms();
        let last = self.last_warn_ms.load(Ordering::Relaxed);
        if now.saturating_sub(last) >= WARN_EVERY_MS
            && self
                .last_warn_ms
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            tracing::warn!(dropped_total = total, "history: records dropped: {why}");
        }
    }
}

/// The handle that records facts: cheap to clone, never blocks.
#[derive(Debug, Clone)]
pub struct Recorder {
    queue: SyncSender<Record>,
    recorder: Arc<str>,
    stats: Arc<HistoryStats>,
}

impl Recorder {
    /// Records `kind` now, as this node. Returns at once: if the queue is full the record
    /// is dropped and counted.
    pub fn record(&self, kind: RecordKind) {
        self.record_at(now_ms(), kind);
    }

    /// Records `kind` at `at_ms` (milliseconds since the Unix epoch), as
    /// [`Recorder::record`].
    pub fn record_at(&self, at_ms: u64, kind: RecordKind) {
        let record = Record {
            at_ms,
            recorder: self.recorder.to_string(),
            kind,
        };
        match self.queue.try_send(record) {
            Ok(()) => {
                self.stats.queued.fetch_add(1, Ordering::Relaxed);
            }
            Err(TrySendError::Full(_)) => self.stats.drop_records(1, "the queue is full"),
            Err(TrySendError::Disconnected(_)) => {
                self.stats.drop_records(1, "the writer has stopped");
            }
        }
    }

    /// The counters.
    pub fn stats(&self) -> &Arc<HistoryStats> {
        &self.stats
    }

    /// Waits until every record queued before the call is written or dropped, at most
    /// `deadline`; returns whether it was.
    pub async fn flush(&self, deadline: Duration) -> bool {
        let target = self.stats.queued.load(Ordering::Relaxed);
        let end = tokio::time::Instant::now() + deadline;
        loop {
            if self.stats.settled.load(Ordering::Relaxed) >= target {
                return true;
            }
            if tokio::time::Instant::now() >= end {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

/// Starts the writer thread over `store` (`None`: not reachable yet; it keeps trying) and
/// returns the recorder feeding it. The thread stops once every recorder is dropped and
/// the queue is written.
pub(super) fn start(
    store: Option<Box<dyn Store>>,
    settings: &HistorySettings,
    recorder: &str,
    stats: Arc<HistoryStats>,
) -> std::io::Result<Recorder> {
    let (queue, records) = std::sync::mpsc::sync_channel(settings.queue);
    let writer = Writer {
        store,
        settings: settings.clone(),
        records,
        pending: VecDeque::new(),
        stats: Arc::clone(&stats),
        backoff: BACKOFF.0,
        retry_at: Instant::now(),
        next_prune: Instant::now(),
    };
    std::thread::Builder::new()
        .name("roster-history".to_owned())
        .spawn(move || writer.run())?;
    Ok(Recorder {
        queue,
        recorder: recorder.into(),
        stats,
    })
}

struct Writer {
    store: Option<Box<dyn Store>>,
    settings: HistorySettings,
    records: Receiver<Record>,
    pending: VecDeque<Record>,
    stats: Arc<HistoryStats>,
    backoff: Duration,
    retry_at: Instant,
    next_prune: Instant,
}

impl Writer {
    fn run(mut self) {
        let mut open = true;
        while open || !self.pending.is_empty() {
            let now = Instant::now();
            let writable = self.store.is_some() || now >= self.retry_at;
            let wait = if !self.pending.is_empty() && writable {
                Duration::ZERO
            } else if self.pending.is_empty() {
                self.next_prune.saturating_duration_since(now)
            } else {
                self.retry_at.saturating_duration_since(now)
            };
            if open {
                open = self.take(wait.min(PRUNE_EVERY));
            } else if !writable {
                // Stopping with a database down: give up on what is held.
                let n = self.pending.len() as u64;
                self.pending.clear();
                self.stats
                    .drop_queued(n, "the agent stopped while the database was unreachable");
                break;
            }
            if !self.pending.is_empty() && (self.store.is_some() || Instant::now() >= self.retry_at)
            {
                self.write();
            }
            if Instant::now() >= self.next_prune {
                self.prune();
            }
        }
    }

    /// Takes what is queued (waiting at most `wait` for the first record) into the
    /// buffer, dropping what does not fit; returns whether the queue is still open.
    fn take(&mut self, wait: Duration) -> bool {
        let mut next = if wait.is_zero() {
            self.try_take()
        } else {
            self.records.recv_timeout(wait)
        };
        let mut taken = 0;
        loop {
            match next {
                Ok(record) => {
                    if self.pending.len() < self.settings.queue {
                        self.pending.push_back(record);
                    } else {
                        self.stats
                            .drop_queued(1, "the database is unreachable and the buffer is full");
                    }
                }
                Err(RecvTimeoutError::Timeout) => return true,
                Err(RecvTimeoutError::Disconnected) => return false,
            }
            taken += 1;
            if taken >= self.settings.queue {
                return true;
            }
            next = self.try_take();
        }
    }

    /// The next queued record without waiting.
    fn try_take(&self) -> Result<Record, RecvTimeoutError> {
        self.records.try_recv().map_err(|e| match e {
            TryRecvError::Empty => RecvTimeoutError::Timeout,
            TryRecvError::Disconnected => RecvTimeoutError::Disconnected,
        })
    }

    /// Writes the buffer in batches until it is empty or a batch fails.
    fn write(&mut self) {
        while !self.pending.is_empty() {
            let store = match self.store.as_mut() {
                Some(store) => store,
                None => match open_store(&self.settings.backend) {
                    Ok(Some(store)) => self.store.insert(store),
                    Ok(None) => return,
                    Err(e) => {
                        self.failed(&e);
                        return;
                    }
                },
            };
            let n = self.pending.len().min(BATCH);
            let batch = self.pending.make_contiguous();
            match store.write(&batch[..n]) {
                Ok(()) => {
                    self.pending.drain(..n);
                    self.stats.written.fetch_add(n as u64, Ordering::Relaxed);
                    self.stats.settled.fetch_add(n as u64, Ordering::Relaxed);
                    if self.stats.degraded() {
                        tracing::info!("history: the database is reachable again");
                        self.stats.set_degraded(None);
                    }
                    self.backoff = BACKOFF.0;
                }
                Err(e @ StoreError::Query { .. }) => {
                    // Not an outage: this batch cannot be written; do not retry it forever.
                    tracing::warn!(error = %e, records = n, "history: a batch was refused; dropping it");
                    self.stats.write_errors.fetch_add(1, Ordering::Relaxed);
                    self.pending.drain(..n);
                    self.stats
                        .drop_queued(n as u64, "the database refused a batch");
                }
                Err(e) => {
                    self.failed(&e);
                    return;
                }
            }
        }
    }

    /// A write failed: hold the records, retry later (reconnecting after an outage).
    fn failed(&mut self, error: &StoreError) {
        self.stats.write_errors.fetch_add(1, Ordering::Relaxed);
        if !self.stats.degraded() {
            tracing::warn!(error = %error, "history: cannot write; holding records and retrying");
        }
        self.stats.set_degraded(Some(error.to_string()));
        if matches!(error, StoreError::Unavailable { .. }) {
            self.store = None;
        }
        self.retry_at = Instant::now() + self.backoff;
        self.backoff = (self.backoff * 2).min(BACKOFF.1);
    }

    fn prune(&mut self) {
        self.next_prune = Instant::now() + PRUNE_EVERY;
        let Some(store) = self.store.as_mut() else {
            return;
        };
        let retention =
            u64::try_from(self.settings.heartbeat_retention.as_millis()).unwrap_or(u64::MAX);
        match store.prune_heartbeats(now_ms().saturating_sub(retention)) {
            Ok(0) => {}
            Ok(n) => tracing::debug!(deleted = n, "history: old heartbeats pruned"),
            Err(e) => tracing::warn!(error = %e, "history: cannot prune old heartbeats"),
        }
    }
}
