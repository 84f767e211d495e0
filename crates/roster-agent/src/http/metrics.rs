//! `GET /metrics`: the agent's metrics in the Prometheus text format. Counters of what goes
//! through the API (writes by kind, HTTP requests by route and status) are recorded as it
//! happens; the node's figures (registry and group sizes per scope, links, replication
//! queues, conflicts, resyncs and their bytes, digest repairs, node statuses, sessions,
//! subscriber lag, the history's records) are sampled at scrape time.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use metrics::{counter, gauge};
use roster::NodeFilter;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::state::AppState;

/// Counts one write through the API (`register`, `join`, `keepalive`, ...).
pub fn count_write(state: &AppState, kind: &'static str) {
    state
        .services()
        .telemetry
        .record(|| counter!("roster_agent_writes_total", "kind" => kind).increment(1));
}

/// How far back the node's own latest heartbeat is looked for.
const HEARTBEAT_WINDOW: Duration = Duration::from_secs(120);

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

#[allow(clippy::cast_precision_loss)] // gauges are f64; counts stay far below 2^52
fn sample(state: &AppState) {
    let node = state.node();
    for name in node.scopes() {
        if let Ok(scope) = node.scope(name.as_str()) {
            let scope_name = name.as_str().to_owned();
            gauge!("roster_registry_names", "scope" => scope_name.clone())
                .set(scope.name_count() as f64);
            gauge!("roster_group_memberships", "scope" => scope_name)
                .set(scope.membership_count() as f64);
        }
    }
    let mut statuses: BTreeMap<String, usize> =
        ["online", "degraded", "draining", "offline", "unreachable"]
            .into_iter()
            .map(|s| (s.to_owned(), 0))
            .collect();
    for info in node.nodes().list(&NodeFilter::default()) {
        *statuses.entry(info.status.to_string()).or_default() += 1;
    }
    for (status, count) in statuses {
        gauge!("roster_nodes", "status" => status).set(count as f64);
    }
    if let Some(partition) = node.nodes().partition() {
        let flag = |on: bool| if on { 1.0 } else { 0.0 };
        gauge!("roster_partition_suspected").set(flag(partition.partition_suspected));
        gauge!("roster_fenced").set(flag(partition.fenced));
    }
    if let Some(stats) = node.cluster().stats() {
        counter!("roster_cluster_bytes_sent_total").absolute(stats.bytes_sent);
        counter!("roster_cluster_bytes_received_total").absolute(stats.bytes_received);
        counter!("roster_resync_bytes_sent_total").absolute(stats.resync_bytes_sent);
        counter!("roster_resync_bytes_received_total").absolute(stats.resync_bytes_received);
        counter!("roster_links_established_total").absolute(stats.links_established);
        counter!("roster_handshake_failures_total").absolute(stats.handshake_failures);
        counter!("roster_links_overloaded_total").absolute(stats.links_overloaded);
        counter!("roster_digest_repairs_total").absolute(stats.digest_repairs);
        counter!("roster_stream_gaps_total").absolute(stats.stream_gaps);
        counter!("roster_bad_frames_total").absolute(stats.bad_frames);
    }
    let sessions = node.cluster().link_sessions();
    let open_links = sessions.iter().filter(|s| s.closed.is_none());
    let mut links = 0usize;
    for link in open_links {
        links += 1;
        counter!("roster_link_bytes_out_total", "peer" => link.peer.clone())
            .absolute(link.bytes_out);
        counter!("roster_link_bytes_in_total", "peer" => link.peer.clone()).absolute(link.bytes_in);
    }
    gauge!("roster_links").set(links as f64);
    let since = now_ms().saturating_sub(u64::try_from(HEARTBEAT_WINDOW.as_millis()).unwrap_or(0));
    if let Some(beat) = node.nodes().heartbeats(node.name(), since).pop() {
        for peer in &beat.peers {
            gauge!("roster_replication_queue", "peer" => peer.name.clone()).set(peer.queued as f64);
        }
    }
    let services = state.services();
    let counts = &services.event_counts;
    counter!("roster_conflicts_total").absolute(counts.conflicts.load(Ordering::Relaxed));
    counter!("roster_resyncs_total").absolute(counts.resyncs.load(Ordering::Relaxed));
    counter!("roster_agent_subscriber_lag_total", "source" => "agent")
        .absolute(counts.missed.load(Ordering::Relaxed));
    counter!("roster_agent_subscriber_lag_total", "source" => "client")
        .absolute(services.events.client_lag());
    counter!("roster_agent_events_total").absolute(services.events.published());
    gauge!("roster_agent_sse_clients").set(services.events.clients() as f64);
    if let Some(history) = state.history() {
        let stats = history.stats();
        for (outcome, count) in [
            ("queued", &stats.queued),
            ("written", &stats.written),
            ("dropped", &stats.dropped),
        ] {
            counter!("roster_agent_history_records_total", "outcome" => outcome)
                .absolute(count.load(Ordering::Relaxed));
        }
        counter!("roster_agent_history_write_errors_total")
            .absolute(stats.write_errors.load(Ordering::Relaxed));
        counter!("roster_agent_history_missed_events_total")
            .absolute(stats.missed_events.load(Ordering::Relaxed));
        gauge!("roster_agent_history_degraded").set(if stats.degraded() { 1.0 } else { 0.0 });
    }
    let table = &services.sessions;
    gauge!("roster_agent_sessions_open").set(table.open() as f64);
    let session_counts = table.counts();
    counter!("roster_agent_sessions_created_total")
        .absolute(session_counts.created.load(Ordering::Relaxed));
    counter!("roster_agent_sessions_expired_total")
        .absolute(session_counts.expired.load(Ordering::Relaxed));
    counter!("roster_agent_sessions_deleted_total")
        .absolute(session_counts.deleted.load(Ordering::Relaxed));
}

/// The metrics in the Prometheus text format.
#[utoipa::path(get, path = "/metrics", tag = "metrics",
    responses((status = 200, description = "Prometheus text format 0.0.4", content_type = "text/plain")))]
pub async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    let telemetry = &state.services().telemetry;
    telemetry.record(|| sample(&state));
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        telemetry.render(),
    )
}

/// The routes of this resource.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(metrics))
}
