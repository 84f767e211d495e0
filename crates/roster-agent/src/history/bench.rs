//! `roster bench-history`: how many records per second a history backend takes, through
//! the same recorder and writer thread as the agent (a mix of heartbeats and audit rows).

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use clap::Args;

use super::History;
use super::record::RecordKind;
use super::settings::HistorySettings;

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
}

/// Runs the benchmark; returns the line of figures.
///
/// # Errors
///
/// The history's error if it cannot be opened, or a message if it never catches up.
pub async fn run(args: &BenchArgs) -> Result<String, String> {
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
    if !history.flush(Duration::from_secs(600)).await {
        return Err("the writer did not catch up within 10 minutes".to_owned());
    }
    let elapsed = start.elapsed();
    let stats = history.stats();
    let written = stats.written.load(Ordering::Relaxed);
    Ok(format!(
        "{}: {written} records written in {:.2} s: {:.0} records/s (queued in {:.2} s; dropped {}, write errors {})",
        history.location(),
        elapsed.as_secs_f64(),
        written as f64 / elapsed.as_secs_f64(),
        queued.as_secs_f64(),
        stats.dropped.load(Ordering::Relaxed),
        stats.write_errors.load(Ordering::Relaxed),
    ))
}
