//! The probes: `GET /healthz` (the process is up) and `GET /readyz` (the node is linked to
//! the cluster, or alone by configuration, and not fenced).

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::state::AppState;

/// The answer of a probe.
#[derive(Debug, Serialize, serde::Deserialize, ToSchema)]
pub struct Probe {
    /// `ok`, or `not_ready`.
    pub status: String,
    /// Why it is not ready (absent when ready).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The linked peers.
    pub peers: usize,
    /// The history's state (absent with `--history off`); a degraded history does not
    /// make the agent unready.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub history: Option<HistoryProbe>,
}

/// The history's state in a probe.
#[derive(Debug, Serialize, serde::Deserialize, ToSchema)]
pub struct HistoryProbe {
    /// `ok`, or `degraded` (the database is unreachable: records are held, then dropped).
    pub status: String,
    /// The last error, while degraded.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Records dropped since start.
    pub dropped: u64,
}

fn history_probe(state: &AppState) -> Option<HistoryProbe> {
    let stats = state.history()?.stats();
    let degraded = stats.degraded();
    Some(HistoryProbe {
        status: if degraded { "degraded" } else { "ok" }.to_owned(),
        error: stats.last_error(),
        dropped: stats.dropped.load(std::sync::atomic::Ordering::Relaxed),
    })
}

/// The process is up.
#[utoipa::path(get, path = "/healthz", tag = "health",
    responses((status = 200, description = "Up", body = Probe)))]
pub async fn healthz(State(state): State<AppState>) -> Json<Probe> {
    Json(Probe {
        status: "ok".to_owned(),
        reason: None,
        peers: state.node().cluster().peers().len(),
        history: history_probe(&state),
    })
}

/// Ready: linked to at least one peer (or configured without seeds) and not fenced.
#[utoipa::path(get, path = "/readyz", tag = "health",
    responses(
        (status = 200, description = "Ready", body = Probe),
        (status = 503, description = "Not ready, with the reason", body = Probe),
    ))]
pub async fn readyz(State(state): State<AppState>) -> (StatusCode, Json<Probe>) {
    let peers = state.node().cluster().peers().len();
    let fenced = state
        .node()
        .nodes()
        .partition()
        .is_some_and(|status| status.fenced);
    let reason = if fenced {
        Some("fenced: this node is on the losing side of a partition".to_owned())
    } else if peers == 0 && !state.settings().alone_by_configuration() {
        Some("not linked to any peer yet (seeds are configured)".to_owned())
    } else {
        None
    };
    let status = if reason.is_some() {
        StatusCode::SERVICE_UNAVAILABLE
    } else {
        StatusCode::OK
    };
    let probe = Probe {
        status: if reason.is_some() { "not_ready" } else { "ok" }.to_owned(),
        reason,
        peers,
        history: history_probe(&state),
    };
    (status, Json(probe))
}

/// The routes of this resource.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(healthz))
        .routes(routes!(readyz))
}
