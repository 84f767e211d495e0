//! `roster bench-agent --history-cost`: what the history adds to the agent's latency.
//! Keepalives are timed while other clients churn sessions (each created with a 1 s TTL
//! and a name, so that every one makes registry events and an expiry: history records),
//! on an agent with the history off and on an agent with it on (SQLite, the default), in
//! alternating rounds; the table gives each round, the medians and their ratio.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use serde_json::json;

use super::BenchArgs;
use super::load::{self, client, post_json, put_ok};
use super::target::Target;

/// Keepalive p99 with the history on, over off: the target (at most 10% more).
const TARGET_RATIO: f64 = 1.10;

/// One timed round on one agent.
struct Round {
    history: bool,
    keepalive_p50_ms: f64,
    keepalive_p99_ms: f64,
    keepalives_per_s: f64,
    sessions_churned: u64,
}

/// Runs the rounds and returns the table.
///
/// # Errors
///
/// An agent could not start, or refused a session it should accept.
pub fn run(args: &BenchArgs) -> Result<String, String> {
    let mut rounds = Vec::new();
    for round in 0..args.rounds.max(1) {
        // Alternate which goes first, so that drift of the machine favours neither.
        let order = if round % 2 == 0 {
            [false, true]
        } else {
            [true, false]
        };
        for history in order {
            rounds.push(one_round(args, history)?);
        }
    }
    Ok(table(&rounds, args))
}

fn one_round(args: &BenchArgs, history: bool) -> Result<Round, String> {
    let target = Target::start_with_history(args.agent_threads, history)?;
    let agent = client();
    let sessions_url = target.url("/api/sessions");
    let mut keepalive_urls = Vec::new();
    for _ in 0..64 {
        let created = post_json(&agent, &sessions_url, &json!({"ttl": "1h"}).to_string())
            .ok_or("cannot create a session")?;
        let id = created["id"].as_str().unwrap_or_default().to_owned();
        keepalive_urls.push(target.url(&format!("/api/sessions/{id}/keepalive")));
    }
    // The churn: one client creating short sessions that each take a name.
    let stop = Arc::new(AtomicBool::new(false));
    let churned = Arc::new(AtomicU64::new(0));
    let churn = {
        let (stop, churned) = (stop.clone(), churned.clone());
        let base = target.url("");
        std::thread::spawn(move || {
            let agent = client();
            let body = json!({"ttl": "1s"}).to_string();
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                if let Some(created) = post_json(&agent, &format!("{base}/api/sessions"), &body) {
                    let id = created["id"].as_str().unwrap_or_default();
                    if put_ok(&agent, &format!("{base}/api/sessions/{id}/names/churn/{n}")) {
                        churned.fetch_add(1, Ordering::Relaxed);
                    }
                }
                n += 1;
            }
        })
    };
    let urls = Arc::new(keepalive_urls);
    let threads = args.threads.max(1);
    let m = load::run(threads, args.duration, move |agent, n, thread| {
        put_ok(agent, &urls[(n as usize * threads + thread) % urls.len()])
    });
    stop.store(true, Ordering::Relaxed);
    let _ = churn.join();
    Ok(Round {
        history,
        keepalive_p50_ms: m.quantile_ms(0.5),
        keepalive_p99_ms: m.quantile_ms(0.99),
        keepalives_per_s: m.rate(),
        sessions_churned: churned.load(Ordering::Relaxed),
    })
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values.get(values.len() / 2).copied().unwrap_or(f64::NAN)
}

fn table(rounds: &[Round], args: &BenchArgs) -> String {
    let mut out = format!(
        "roster bench-agent --history-cost: {} rounds of {:?}, {} keepalive threads, one churn client (1 s sessions with a name)\n\n",
        args.rounds.max(1),
        args.duration,
        args.threads.max(1)
    );
    out.push_str("| history | keepalives/s | keepalive p50 | keepalive p99 | sessions churned |\n|---|---|---|---|---|\n");
    for r in rounds {
        out.push_str(&format!(
            "| {} | {:.0} | {:.2} ms | {:.2} ms | {} |\n",
            if r.history { "on (SQLite)" } else { "off" },
            r.keepalives_per_s,
            r.keepalive_p50_ms,
            r.keepalive_p99_ms,
            r.sessions_churned
        ));
    }
    let p99 = |on: bool| {
        median(
            rounds
                .iter()
                .filter(|r| r.history == on)
                .map(|r| r.keepalive_p99_ms)
                .collect(),
        )
    };
    let ratio = p99(true) / p99(false);
    out.push_str(&format!(
        "\nmedian keepalive p99: off {:.2} ms, on {:.2} ms: on/off {ratio:.2} (target <= {TARGET_RATIO:.2}: {})\n",
        p99(false),
        p99(true),
        if ratio <= TARGET_RATIO { "met" } else { "MISS" }
    ));
    out
}
