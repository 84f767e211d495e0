//! `roster bench-history`: how many records per second a history backend takes, through
//! the same recorder and writer thread as the agent (a mix of heartbeats and audit rows),
//! then how long a page of the audit log takes to read.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use clap::Args;

use super::record::RecordKind;
use super::recorder::HistoryStats;
use super::settings::{Backend, HistorySettings};
use super::store::{AuditQuery, StoreError};
use super::{History, open_store};

/// How many times each audit page is read; the median is shown.
const PAGE_RUNS: usize = 5;

/// The flags of `roster bench-history`.
#[derive(Debug, Args)]
pub struct BenchArgs {
    /// The backend, as `--history` of `roster agent`: sqlite:PATH or postgres://... (the
    /// database gets the records: use a scratch one).
    #[arg(long, value_name = "BACKEND")]
    pub history: String,
    /// How many records to write.
    #[arg(long, default_value_t = 200_000)]
    pub records: usize,
    /// One heartbeat in this many records, the rest audit rows.
    #[arg(long, default_value_t = 2)]
    pub heartbeat_every: usize,
    /// One name conflict in this many records (0: none), before heartbeats. Conflicts come
    /// in pairs: the same fact recorded by `bench` and by a second recorder, `bench-peer`,
    /// as by two agents sharing a database (the audit log merges each pair into one item).
    #[arg(long, default_value_t = 0)]
    pub conflict_every: usize,
}

/// Runs the benchmark, timing audit pages of `page` items (the HTTP API's default
/// limit); returns the line of figures.
///
/// # Errors
///
/// The history's error if it cannot be opened, or a message if it never catches up.
pub async fn run(args: &BenchArgs, page: usize) -> Result<String, String> {
    let dir = std::env::temp_dir();
    let settings =
        HistorySettings::parse(Some(&args.history), Some(args.records.max(1)), None, &dir)
            .map_err(|(setting, value, allowed)| {
                format!("{setting}: {value:?} is not allowed: {allowed}")
            })?;
    let history = History::open(&settings, "bench")
        .await
        .map_err(|e| e.to_string())?
        .ok_or("--history off: nothing to measure")?;
    let peer = match args.conflict_every {
        0 => None,
        _ => History::open(&settings, "bench-peer")
            .await
            .map_err(|e| e.to_string())?,
    };
    let recorder = history.recorder();
    let heartbeat = serde_json::json!({
        "at_ms": 0, "cpu_load": 0.25, "mem_used_bytes": 1_000_000_000u64,
        "mem_total_bytes": 8_000_000_000u64, "processes": 120, "names": 5000,
        "memberships": 800, "members": 5, "op_log_position": 123_456,
        "peers": [{"name": "b", "rtt_us": 90, "queued": 0}], "app": {}
    });
    let start = Instant::now();
    let base = super::now_ms();
    for i in 0..args.records {
        let at_ms = base + i as u64;
        if args.conflict_every > 0 && i % args.conflict_every == 0 {
            let conflict = i / args.conflict_every;
            let by = match &peer {
                Some(peer) if conflict % 2 == 1 => peer.recorder(),
                _ => recorder,
            };
            by.record_at(at_ms, name_conflict(conflict / 2));
            continue;
        }
        let kind = if args.heartbeat_every > 0 && i % args.heartbeat_every == 0 {
            RecordKind::Heartbeat {
                node: format!("node-{}", i % 5),
                heartbeat: heartbeat.clone(),
            }
        } else {
            RecordKind::NodeStatus {
                node: format!("node-{}", i % 5),
                old: "online".to_owned(),
                new: "degraded".to_owned(),
                reason: "cpu load over 0.9".to_owned(),
            }
        };
        recorder.record_at(at_ms, kind);
    }
    let queued = start.elapsed();
    for history in std::iter::once(&history).chain(&peer) {
        if !history.flush(Duration::from_secs(600)).await {
            return Err("the writer did not catch up within 10 minutes".to_owned());
        }
    }
    let elapsed = start.elapsed();
    let count = |counter: fn(&HistoryStats) -> &AtomicU64| -> u64 {
        std::iter::once(&history)
            .chain(&peer)
            .map(|history| counter(history.stats()).load(Ordering::Relaxed))
            .sum()
    };
    let written = count(|stats| &stats.written);
    let (first, halfway) = audit_pages(&settings.backend, written, page)
        .await
        .map_err(|e| e.to_string())?;
    Ok(format!(
        "{}: {written} records written in {:.2} s: {:.0} records/s (queued in {:.2} s; dropped {}, write errors {}); a page of {page} audit items: first {:.2} ms, halfway down {:.2} ms (median of {PAGE_RUNS})",
        history.location(),
        elapsed.as_secs_f64(),
        written as f64 / elapsed.as_secs_f64(),
        queued.as_secs_f64(),
        count(|stats| &stats.dropped),
        count(|stats| &stats.write_errors),
        first.as_secs_f64() * 1e3,
        halfway.as_secs_f64() * 1e3,
    ))
}

/// The `n`th name conflict of the benchmark (each its own fact).
fn name_conflict(n: usize) -> RecordKind {
    RecordKind::NameConflict {
        scope: "default".to_owned(),
        key: format!("name-{n}"),
        winner: format!("<1.{n}>"),
        loser: format!("<2.{n}>"),
        rule: Some("keep_oldest".to_owned()),
        winner_node: Some("node-1".to_owned()),
        loser_node: Some("node-2".to_owned()),
    }
}

/// How long [`Store::audit`](super::store::Store::audit) takes for a page of `page` items
/// of the audit log as `GET /api/audit` asks it (one more item to know whether there is a
/// next page), on a connection of its own: the first page, and the page whose cursor is
/// `rows / 2` ids below the newest item. Each the median of [`PAGE_RUNS`] reads.
async fn audit_pages(
    backend: &Backend,
    rows: u64,
    page: usize,
) -> Result<(Duration, Duration), StoreError> {
    let backend = backend.clone();
    let (answer, answered) = tokio::sync::oneshot::channel();
    std::thread::spawn(move || {
        let _ = answer.send(time_pages(&backend, rows, page));
    });
    answered.await.map_err(|_| StoreError::Unavailable {
        location: "bench".to_owned(),
        reason: "the reading thread stopped".to_owned(),
    })?
}

/// What [`audit_pages`] measures, on the calling thread.
fn time_pages(
    backend: &Backend,
    rows: u64,
    page: usize,
) -> Result<(Duration, Duration), StoreError> {
    let Some(mut store) = open_store(backend)? else {
        return Ok((Duration::ZERO, Duration::ZERO));
    };
    let mut median = |query: &AuditQuery| -> Result<(Duration, Option<i64>), StoreError> {
        let mut times = Vec::with_capacity(PAGE_RUNS);
        let mut newest = None;
        for _ in 0..PAGE_RUNS {
            let start = Instant::now();
            let page = store.audit(query)?;
            times.push(start.elapsed());
            newest = page.first().map(|row| row.item);
        }
        times.sort();
        Ok((times[PAGE_RUNS / 2], newest))
    };
    let first = AuditQuery {
        limit: page + 1,
        ..AuditQuery::default()
    };
    let (first_time, newest) = median(&first)?;
    let halfway = AuditQuery {
        before_item: newest.map(|id| id - i64::try_from(rows / 2).unwrap_or(0)),
        ..first
    };
    let (halfway_time, _) = median(&halfway)?;
    Ok((first_time, halfway_time))
}
