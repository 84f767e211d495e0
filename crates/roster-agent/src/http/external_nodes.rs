//! External nodes over HTTP: services that are not Roster nodes, kept by this node in the
//! node registry. `PUT /api/external-nodes/{name}` registers or updates one,
//! `POST .../heartbeat` records its heartbeat (which keeps it online), `PUT .../status`
//! sets its status with a reason.

use std::collections::BTreeMap;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use roster::nodes::{ExternalError, ExternalNode, Heartbeat, NodeStatus};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::metrics::count_write;
use super::nodes::{NodeView, StatusView};
use super::optional_json::OptionalJson;
use crate::errors::{ApiError, ApiJson, ApiPath, ErrorBody};
use crate::state::AppState;

/// An external node's description.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ExternalBody {
    /// Its role (e.g. worker).
    #[serde(default)]
    pub role: String,
    /// Its labels.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// Its version.
    #[serde(default)]
    pub version: String,
    /// Addresses where it serves.
    #[serde(default)]
    pub addrs: Vec<String>,
}

/// An external node's heartbeat; every field is optional.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct HeartbeatBody {
    /// When it was measured, in milliseconds since the Unix epoch on the worker's clock
    /// (default: now on this node's clock).
    pub at_ms: Option<u64>,
    /// Load average over one minute divided by the number of CPUs.
    #[serde(default)]
    pub cpu_load: f64,
    /// Memory in use, in bytes.
    #[serde(default)]
    pub mem_used_bytes: u64,
    /// Memory in all, in bytes.
    #[serde(default)]
    pub mem_total_bytes: u64,
    /// Its processes, as it counts them.
    #[serde(default)]
    pub processes: u64,
    /// Application metrics by name (at most 64).
    #[serde(default)]
    pub app: BTreeMap<String, f64>,
}

/// A status to set.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StatusBody {
    /// `online`, `degraded`, `draining` or `offline`.
    pub status: StatusView,
    /// Why.
    #[serde(default)]
    pub reason: String,
}

/// A write's answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct Done {
    /// The external node.
    pub name: String,
    /// Its status now, as this node judges it.
    pub status: Option<StatusView>,
}

fn external_error(error: ExternalError) -> ApiError {
    let message = error.to_string();
    match error {
        ExternalError::IsMember(_) => ApiError::new(StatusCode::CONFLICT, "is_member", message),
        ExternalError::KeptElsewhere { .. } => {
            ApiError::new(StatusCode::CONFLICT, "kept_elsewhere", message)
        }
        ExternalError::NotKeptHere(_) => ApiError::not_found("not_kept_here", message),
        ExternalError::Unsettable(_) => ApiError::bad_request("unsettable_status", message),
        _ => ApiError::bad_request("invalid_external_node", message),
    }
}

fn status_of(status: StatusView) -> NodeStatus {
    match status {
        StatusView::Online => NodeStatus::Online,
        StatusView::Degraded => NodeStatus::Degraded,
        StatusView::Draining => NodeStatus::Draining,
        StatusView::Offline => NodeStatus::Offline,
        StatusView::Unreachable => NodeStatus::Unreachable,
    }
}

fn done(state: &AppState, name: String) -> Json<Done> {
    let status = state.node().nodes().get(&name).map(|n| n.status.into());
    Json(Done { name, status })
}

/// Registers an external node kept by this node, or updates its description.
#[utoipa::path(put, path = "/api/external-nodes/{name}", tag = "nodes",
    params(("name" = String, Path, description = "The external node's name")),
    request_body(content = ExternalBody, description = "Optional"),
    responses(
        (status = 200, description = "The node as recorded", body = NodeView),
        (status = 400, description = "invalid_external_node, malformed_json", body = ErrorBody),
        (status = 409, description = "is_member or kept_elsewhere", body = ErrorBody),
    ))]
pub async fn ensure_external(
    State(state): State<AppState>,
    ApiPath(name): ApiPath<String>,
    OptionalJson(body): OptionalJson<ExternalBody>,
) -> Result<Json<NodeView>, ApiError> {
    let mut node = ExternalNode::new().role(body.role).version(body.version);
    for (key, value) in body.labels {
        node = node.label(key, value);
    }
    for addr in body.addrs {
        node = node.addr(addr);
    }
    let info = state
        .node()
        .nodes()
        .ensure_external(&name, node)
        .map_err(external_error)?;
    count_write(&state, "external_node");
    Ok(Json(info.into()))
}

/// Records a heartbeat of an external node this node keeps.
#[utoipa::path(post, path = "/api/external-nodes/{name}/heartbeat", tag = "nodes",
    params(("name" = String, Path, description = "The external node's name")),
    request_body(content = HeartbeatBody, description = "Optional"),
    responses(
        (status = 200, description = "Recorded", body = Done),
        (status = 400, description = "invalid_external_node, malformed_json", body = ErrorBody),
        (status = 404, description = "not_kept_here", body = ErrorBody),
        (status = 409, description = "is_member or kept_elsewhere", body = ErrorBody),
    ))]
pub async fn heartbeat(
    State(state): State<AppState>,
    ApiPath(name): ApiPath<String>,
    OptionalJson(body): OptionalJson<HeartbeatBody>,
) -> Result<Json<Done>, ApiError> {
    if !body.cpu_load.is_finite() || body.app.values().any(|v| !v.is_finite()) {
        return Err(ApiError::bad_request(
            "invalid_external_node",
            "metrics must be finite numbers",
        ));
    }
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
    let mut beat = Heartbeat::at(body.at_ms.unwrap_or(now));
    beat.cpu_load = body.cpu_load;
    beat.mem_used_bytes = body.mem_used_bytes;
    beat.mem_total_bytes = body.mem_total_bytes;
    beat.processes = body.processes;
    beat.app = body.app;
    state
        .node()
        .nodes()
        .external_heartbeat(&name, beat)
        .map_err(external_error)?;
    count_write(&state, "external_heartbeat");
    Ok(done(&state, name))
}

/// Sets the status of an external node this node keeps.
#[utoipa::path(put, path = "/api/external-nodes/{name}/status", tag = "nodes",
    params(("name" = String, Path, description = "The external node's name")),
    request_body = StatusBody,
    responses(
        (status = 200, description = "Set", body = Done),
        (status = 400, description = "unsettable_status, bad body", body = ErrorBody),
        (status = 404, description = "not_kept_here", body = ErrorBody),
        (status = 409, description = "is_member or kept_elsewhere", body = ErrorBody),
    ))]
pub async fn set_status(
    State(state): State<AppState>,
    ApiPath(name): ApiPath<String>,
    ApiJson(body): ApiJson<StatusBody>,
) -> Result<Json<Done>, ApiError> {
    state
        .node()
        .nodes()
        .set_external_status(&name, status_of(body.status), &body.reason)
        .map_err(external_error)?;
    count_write(&state, "external_status");
    Ok(done(&state, name))
}

/// The routes of this resource.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(ensure_external))
        .routes(routes!(heartbeat))
        .routes(routes!(set_status))
}
