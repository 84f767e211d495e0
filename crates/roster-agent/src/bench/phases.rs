//! The phases of the benchmark, each a figure of the table: HTTP lookups, session
//! creations (and their expiry), keepalives, and SSE events fanned out to many clients.

use std::io::{BufRead, BufReader};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde_json::json;

use super::BenchArgs;
use super::connections::{self, Load, request};
use super::load::{self, Measured, client, post_json, put_ok};
use super::target::Target;

/// How many names the lookups read, and how many sessions the keepalives renew.
const KEYS: usize = 1000;

/// One row of the table.
#[derive(Debug)]
pub struct Row {
    /// What was measured.
    pub figure: String,
    /// The figure, with its latencies where they apply.
    pub measured: String,
    /// The target, in words.
    pub target: &'static str,
    /// Whether the target was met; `None` without a target.
    pub met: Option<bool>,
    /// What limits it, as observed.
    pub limit: String,
}

/// A timed phase's row.
fn timed_row(
    figure: impl Into<String>,
    m: &Measured,
    target: &'static str,
    met: bool,
    limit: impl Into<String>,
) -> Row {
    Row {
        figure: figure.into(),
        measured: format!(
            "{:.0}/s (p50 {:.2} ms, p99 {:.2} ms{})",
            m.rate(),
            m.quantile_ms(0.5),
            m.quantile_ms(0.99),
            if m.failed > 0 {
                format!(", {} failed", m.failed)
            } else {
                String::new()
            }
        ),
        target,
        met: Some(met),
        limit: limit.into(),
    }
}

fn session(agent: &ureq::Agent, target: &Target, ttl: &str) -> Result<(String, String), String> {
    let body = json!({"ttl": ttl}).to_string();
    let created = post_json(agent, &target.url("/api/sessions"), &body)
        .ok_or_else(|| "cannot create a session".to_owned())?;
    let field = |name: &str| created[name].as_str().unwrap_or_default().to_owned();
    Ok((field("id"), field("pid")))
}

/// A gauge or counter of `/metrics` without labels.
fn metric(agent: &ureq::Agent, target: &Target, name: &str) -> Option<f64> {
    let text = agent
        .get(&target.url("/metrics"))
        .call()
        .ok()?
        .body_mut()
        .read_to_string()
        .ok()?;
    text.lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
}

/// Runs every phase.
///
/// # Errors
///
/// A phase's setup failed (the agent refused a request it should accept).
pub fn run_all(target: &Target, args: &BenchArgs) -> Result<Vec<Row>, String> {
    let mut rows = lookups(target, args)?;
    rows.push(creations(target, args)?);
    rows.extend(keepalives(target, args)?);
    rows.push(fan_out(target, args)?);
    Ok(rows)
}

/// The lookups: one row per number of connections (one request per round trip each),
/// then one pipelined.
fn lookups(target: &Target, args: &BenchArgs) -> Result<Vec<Row>, String> {
    let agent = client();
    let (id, _) = session(&agent, target, "1h")?;
    for n in 0..KEYS {
        if !put_ok(
            &agent,
            &target.url(&format!("/api/sessions/{id}/names/bench/{n}")),
        ) {
            return Err(format!("cannot register bench/{n}"));
        }
    }
    let requests = Arc::new(
        (0..KEYS)
            .map(|n| request("GET", &format!("/api/registry/bench/{n}")))
            .collect::<Vec<_>>(),
    );
    let mut rows = Vec::new();
    for &connections in &args.connections {
        let (m, split) = connections::run(&Load {
            addr: target.http,
            requests: requests.clone(),
            connections: connections.max(1),
            depth: 1,
            threads: args.load_threads,
            duration: args.duration,
        });
        rows.push(timed_row(
            format!(
                "HTTP lookups (GET /api/registry/{{key}}), {} connection{}",
                connections.max(1),
                if connections > 1 { "s" } else { "" }
            ),
            &m,
            ">= 50,000/s",
            m.rate() >= 50_000.0,
            format!("one loopback round trip per request; {split}"),
        ));
    }
    let depth = args.pipeline_depth.max(1);
    let (m, split) = connections::run(&Load {
        addr: target.http,
        requests,
        connections: args.pipeline_connections.max(1),
        depth,
        threads: args.load_threads,
        duration: args.duration,
    });
    let mut row = timed_row(
        format!(
            "HTTP lookups, pipelined ({} connections, {depth} requests per write)",
            args.pipeline_connections.max(1)
        ),
        &m,
        ">= 50,000/s",
        m.rate() >= 50_000.0,
        format!("the agent's CPU per request; {split}"),
    );
    row.measured = format!("{} (latency per batch of {depth})", row.measured);
    rows.push(row);
    Ok(rows)
}

fn creations(target: &Target, args: &BenchArgs) -> Result<Row, String> {
    let probe = client();
    let open_before = metric(&probe, target, "roster_agent_sessions_open").unwrap_or(0.0);
    let expired_before =
        metric(&probe, target, "roster_agent_sessions_expired_total").unwrap_or(0.0);
    let url = target.url("/api/sessions");
    let body = json!({"ttl": "1s"}).to_string();
    let started = Instant::now();
    let m = load::run(args.threads, args.duration, move |agent, _, _| {
        post_json(agent, &url, &body).is_some()
    });
    let created_done = Instant::now();
    // The last ones lapse 1 s after the phase; wait for the reaper to end them all.
    let deadline = created_done + Duration::from_secs(60);
    let mut ended_at = None;
    while Instant::now() < deadline {
        if metric(&probe, target, "roster_agent_sessions_open")
            .is_some_and(|open| open <= open_before)
        {
            ended_at = Some(Instant::now());
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let expired = metric(&probe, target, "roster_agent_sessions_expired_total").unwrap_or(0.0)
        - expired_before;
    let mut row = timed_row(
        "session creations (POST /api/sessions, TTL 1 s), then their expiry",
        &m,
        ">= 1,000/s with p99 < 10 ms",
        m.rate() >= 1000.0 && m.quantile_ms(0.99) < 10.0,
        "CPU per request (a new process, an id, the JSON); expiry keeps up with creation: one reaper task ends sessions in deadline order",
    );
    let expiry = ended_at.map_or_else(
        || "not all ended within 60 s".to_owned(),
        |at| {
            // They came due over the phase, from 1 s after its start.
            let window = at.saturating_duration_since(started + Duration::from_secs(1));
            let late = at.saturating_duration_since(created_done + Duration::from_secs(1));
            format!(
                "{:.0}/s over the window they came due in, the last ended {} ms after its deadline",
                expired / window.as_secs_f64().max(f64::EPSILON),
                late.as_millis()
            )
        },
    );
    row.measured = format!("{}; {expired:.0} expired: {expiry}", row.measured);
    Ok(row)
}

fn keepalives(target: &Target, args: &BenchArgs) -> Result<Vec<Row>, String> {
    let agent = client();
    let mut ids = Vec::with_capacity(KEYS);
    for _ in 0..KEYS {
        ids.push(session(&agent, target, "1h")?.0);
    }
    let requests = Arc::new(
        ids.iter()
            .map(|id| request("PUT", &format!("/api/sessions/{id}/keepalive")))
            .collect::<Vec<_>>(),
    );
    let connections = args.connections.iter().copied().max().unwrap_or(1).max(1);
    let (m, split) = connections::run(&Load {
        addr: target.http,
        requests: requests.clone(),
        connections,
        depth: 1,
        threads: args.load_threads,
        duration: args.duration,
    });
    let one_by_one = timed_row(
        format!("keepalives (PUT /api/sessions/{{id}}/keepalive), {connections} connections"),
        &m,
        ">= 10,000/s",
        m.rate() >= 10_000.0,
        format!("as lookups (the session table's lock is held for two map updates only); {split}"),
    );
    let depth = args.pipeline_depth.max(1);
    let (m, split) = connections::run(&Load {
        addr: target.http,
        requests,
        connections: args.pipeline_connections.max(1),
        depth,
        threads: args.load_threads,
        duration: args.duration,
    });
    let mut pipelined = timed_row(
        format!(
            "keepalives, pipelined ({} connections, {depth} requests per write)",
            args.pipeline_connections.max(1)
        ),
        &m,
        ">= 10,000/s",
        m.rate() >= 10_000.0,
        format!("the agent's CPU per request; {split}"),
    );
    pipelined.measured = format!("{} (latency per batch of {depth})", pipelined.measured);
    Ok(vec![one_by_one, pipelined])
}

fn fan_out(target: &Target, args: &BenchArgs) -> Result<Row, String> {
    let delivered = Arc::new(AtomicU64::new(0));
    let lagged = Arc::new(AtomicU64::new(0));
    let url = target.url("/api/events?pattern=fan/");
    for _ in 0..args.sse_clients {
        let (delivered, lagged, url) = (delivered.clone(), lagged.clone(), url.clone());
        std::thread::spawn(move || {
            let agent: ureq::Agent = ureq::Agent::config_builder()
                .http_status_as_error(false)
                .build()
                .into();
            let Ok(response) = agent.get(&url).header("accept", "text/event-stream").call() else {
                return;
            };
            let reader = BufReader::new(response.into_body().into_reader());
            for line in reader.lines().map_while(Result::ok) {
                if line.starts_with("event: lagged") {
                    lagged.fetch_add(1, Ordering::Relaxed);
                } else if line.starts_with("event: ") {
                    delivered.fetch_add(1, Ordering::Relaxed);
                }
            }
        });
    }
    let probe = client();
    let connected = Instant::now() + Duration::from_secs(30);
    #[allow(clippy::cast_precision_loss)] // a client count
    let wanted = args.sse_clients as f64;
    while metric(&probe, target, "roster_agent_sse_clients").unwrap_or(0.0) < wanted {
        if Instant::now() > connected {
            return Err("the SSE clients did not connect within 30 s".to_owned());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let writers = args.threads.clamp(1, 2);
    let mut sessions = Vec::new();
    for _ in 0..writers {
        sessions.push(session(&probe, target, "1h")?.0);
    }
    let urls: Arc<Vec<String>> = Arc::new(
        sessions
            .iter()
            .enumerate()
            .map(|(n, id)| target.url(&format!("/api/sessions/{id}/names/fan/{n}")))
            .collect(),
    );
    let start = Instant::now();
    let m = load::run(writers, args.duration, move |agent, n, thread| {
        let url = &urls[thread];
        if n % 2 == 0 {
            put_ok(agent, url)
        } else {
            agent
                .delete(url)
                .call()
                .is_ok_and(|mut r| r.status() == 200 && r.body_mut().read_to_vec().is_ok())
        }
    });
    // Let the clients drain what is queued for them, at most 10 s.
    let expected = m.ok * args.sse_clients as u64;
    let drained = Instant::now() + Duration::from_secs(10);
    let mut last = 0;
    while Instant::now() < drained {
        let now = delivered.load(Ordering::Relaxed);
        if now >= expected || (now == last && now > 0) {
            break;
        }
        last = now;
        std::thread::sleep(Duration::from_millis(200));
    }
    let elapsed = start.elapsed();
    let got = delivered.load(Ordering::Relaxed);
    #[allow(clippy::cast_precision_loss)] // event counts
    let rate = got as f64 / elapsed.as_secs_f64();
    Ok(Row {
        figure: format!(
            "SSE events delivered ({} clients of /api/events)",
            args.sse_clients
        ),
        measured: format!(
            "{rate:.0}/s ({} events written at {:.0}/s, {got} of {expected} delivered, {} lagged notices)",
            m.ok,
            m.rate(),
            lagged.load(Ordering::Relaxed)
        ),
        target: "(none given)",
        met: None,
        limit: "CPU: each event is formatted and written once per client; the writers' HTTP requests share the same cores".to_owned(),
    })
}
