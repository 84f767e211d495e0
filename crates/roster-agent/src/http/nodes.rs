//! `/api/nodes`: the node registry as this node sees it: records with their judged status,
//! one node's health, its heartbeats kept in memory, and forgetting an offline node.
// utoipa's expansion of `params(SomeQuery)` qualifies the type in full.
#![allow(unused_qualifications)]

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Json;
use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use roster::nodes::{ForgetError, NodeStatus};
use roster::{NodeFilter, NodeInfo};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::errors::{ApiError, ApiPath, ApiQuery, ErrorBody};
use crate::state::AppState;
pub use crate::views::heartbeat::{HeartbeatView, PeerSampleView};

/// A node's status as this node judges it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum StatusView {
    /// Up and healthy.
    Online,
    /// Up, over a health threshold.
    Degraded,
    /// Up, being taken out of service.
    Draining,
    /// Dead or gone.
    Offline,
    /// Seen by membership, but no link reaches it.
    Unreachable,
}

impl From<NodeStatus> for StatusView {
    fn from(status: NodeStatus) -> Self {
        match status {
            NodeStatus::Online => Self::Online,
            NodeStatus::Degraded => Self::Degraded,
            NodeStatus::Draining => Self::Draining,
            NodeStatus::Offline => Self::Offline,
            NodeStatus::Unreachable => Self::Unreachable,
        }
    }
}

impl StatusView {
    fn parse(text: &str) -> Result<NodeStatus, ApiError> {
        Ok(match text {
            "online" => NodeStatus::Online,
            "degraded" => NodeStatus::Degraded,
            "draining" => NodeStatus::Draining,
            "offline" => NodeStatus::Offline,
            "unreachable" => NodeStatus::Unreachable,
            _ => {
                return Err(ApiError::bad_request(
                    "bad_status",
                    format!(
                        "status {text:?} is not allowed: online, degraded, draining, offline or unreachable"
                    ),
                ));
            }
        })
    }
}

/// Why and since when a node is offline.
#[derive(Debug, Serialize, ToSchema)]
pub struct OfflineView {
    /// When this node recorded it, in milliseconds since the Unix epoch.
    pub since_ms: u64,
    /// Why.
    pub reason: String,
    /// It left on purpose (it is no longer part of the expected cluster).
    pub left: bool,
}

/// A node as this node knows it.
#[derive(Debug, Serialize, ToSchema)]
pub struct NodeView {
    /// Its name.
    pub name: String,
    /// Its incarnation, 16 hex digits (new at each start).
    pub incarnation: String,
    /// Its status as this node judges it.
    pub status: StatusView,
    /// Why its status last changed (as it published it).
    pub status_reason: String,
    /// When its status last changed, in milliseconds since the Unix epoch.
    pub status_changed_ms: u64,
    /// Its role.
    pub role: String,
    /// Its labels.
    pub labels: BTreeMap<String, String>,
    /// Its application version.
    pub version: String,
    /// The addresses it advertises.
    pub addrs: Vec<String>,
    /// When it started, in milliseconds since the Unix epoch.
    pub started_at_ms: u64,
    /// Its record's revision.
    pub revision: u64,
    /// When this node last heard from it, in milliseconds since the Unix epoch.
    pub last_seen_ms: u64,
    /// Set while it is offline.
    pub offline: Option<OfflineView>,
}

impl From<NodeInfo> for NodeView {
    fn from(info: NodeInfo) -> Self {
        let record = info.record;
        Self {
            name: record.name,
            incarnation: record.incarnation.to_string(),
            status: info.status.into(),
            status_reason: record.status_reason,
            status_changed_ms: record.status_changed_ms,
            role: record.role,
            labels: record.labels,
            version: record.version,
            addrs: record.addrs,
            started_at_ms: record.started_at_ms,
            revision: record.revision,
            last_seen_ms: info.last_seen_ms,
            offline: info.offline.map(|o| OfflineView {
                since_ms: o.since_ms,
                reason: o.reason,
                left: o.left,
            }),
        }
    }
}

/// A node's health as this node sees it.
#[derive(Debug, Serialize, ToSchema)]
pub struct HealthView {
    /// Why it is degraded.
    pub degraded_reasons: Vec<String>,
    /// The round-trip time of this node's link to it, in milliseconds.
    pub rtt_ms: Option<f64>,
    /// Its last heartbeat kept here.
    pub last_heartbeat: Option<HeartbeatView>,
}

/// One node with its health.
#[derive(Debug, Serialize, ToSchema)]
pub struct NodeDetail {
    /// The node.
    #[serde(flatten)]
    pub node: NodeView,
    /// Its health.
    pub health: Option<HealthView>,
}

/// Which nodes to list (all conditions given must hold).
#[derive(Debug, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct NodeQuery {
    /// Only nodes with this status.
    #[param(value_type = Option<StatusView>)]
    pub status: Option<String>,
    /// Only nodes with this role.
    pub role: Option<String>,
    /// Only nodes with this label, `KEY=VALUE`; repeat for several.
    #[param(value_type = Option<Vec<String>>, explode = true)]
    pub label: Option<String>,
}

/// How far back heartbeats go.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct HeartbeatQuery {
    /// The last N minutes, from 1 to the heartbeat retention in minutes (at least 1440;
    /// 10080 by default), default 5.
    #[param(value_type = Option<u32>, minimum = 1)]
    pub minutes: Option<String>,
}

fn unknown_node(name: &str) -> ApiError {
    ApiError::not_found(
        "unknown_node",
        format!("no node named {name:?} is known here"),
    )
}

/// The filter of a `/api/nodes` query string.
fn filter(query: Option<&str>) -> Result<NodeFilter, ApiError> {
    let mut filter = NodeFilter::default();
    let Some(query) = query else {
        return Ok(filter);
    };
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        let value = decode_component(value)?;
        match name {
            "status" => filter = filter.status(StatusView::parse(&value)?),
            "role" => filter = filter.role(value),
            "label" => match value.split_once('=') {
                Some((key, val)) if !key.is_empty() => filter = filter.label(key, val),
                _ => {
                    return Err(ApiError::bad_request(
                        "bad_label",
                        format!("label {value:?} is not allowed: give KEY=VALUE"),
                    ));
                }
            },
            other => {
                return Err(ApiError::bad_request(
                    "bad_query",
                    format!("unknown query parameter {other:?}: status, role or label"),
                ));
            }
        }
    }
    Ok(filter)
}

/// Percent-decodes one query component (`+` is a space).
fn decode_component(text: &str) -> Result<String, ApiError> {
    let bad = || ApiError::bad_request("bad_query", format!("{text:?} is not a valid query value"));
    let mut bytes = Vec::with_capacity(text.len());
    let mut rest = text.as_bytes();
    while let Some((&first, tail)) = rest.split_first() {
        match first {
            b'%' => {
                let hex = tail.get(..2).ok_or_else(bad)?;
                let hex = std::str::from_utf8(hex).map_err(|_| bad())?;
                bytes.push(u8::from_str_radix(hex, 16).map_err(|_| bad())?);
                rest = &tail[2..];
            }
            b'+' => {
                bytes.push(b' ');
                rest = tail;
            }
            other => {
                bytes.push(other);
                rest = tail;
            }
        }
    }
    String::from_utf8(bytes).map_err(|_| bad())
}

/// Every node this node knows that matches the filter, by name.
#[utoipa::path(get, path = "/api/nodes", tag = "nodes", params(NodeQuery),
    responses(
        (status = 200, description = "The nodes, by name", body = Vec<NodeView>),
        (status = 400, description = "bad_status, bad_label or bad_query", body = ErrorBody),
    ))]
pub async fn list_nodes(
    State(state): State<AppState>,
    RawQuery(query): RawQuery,
) -> Result<Json<Vec<NodeView>>, ApiError> {
    let filter = filter(query.as_deref())?;
    let nodes = state.node().nodes().list(&filter);
    Ok(Json(nodes.into_iter().map(NodeView::from).collect()))
}

/// One node, with its health.
#[utoipa::path(get, path = "/api/nodes/{name}", tag = "nodes",
    params(("name" = String, Path, description = "The node's name")),
    responses(
        (status = 200, description = "The node", body = NodeDetail),
        (status = 404, description = "unknown_node", body = ErrorBody),
    ))]
pub async fn get_node(
    State(state): State<AppState>,
    ApiPath(name): ApiPath<String>,
) -> Result<Json<NodeDetail>, ApiError> {
    let nodes = state.node().nodes();
    let info = nodes.get(&name).ok_or_else(|| unknown_node(&name))?;
    let health = nodes.health(&name).map(|h| HealthView {
        degraded_reasons: h.degraded_reasons,
        rtt_ms: h.rtt.map(|rtt| rtt.as_secs_f64() * 1000.0),
        last_heartbeat: h.last_heartbeat.map(HeartbeatView::from),
    });
    Ok(Json(NodeDetail {
        node: info.into(),
        health,
    }))
}

/// The heartbeats of a node: those this node keeps in memory, preceded by the history's
/// for the part of the window memory does not reach (e.g. after a restart); oldest first.
#[utoipa::path(get, path = "/api/nodes/{name}/heartbeats", tag = "nodes",
    params(("name" = String, Path, description = "The node's name"), HeartbeatQuery),
    responses(
        (status = 200, description = "Its heartbeats received in the window, oldest first", body = Vec<HeartbeatView>),
        (status = 400, description = "bad_minutes", body = ErrorBody),
        (status = 404, description = "unknown_node", body = ErrorBody),
    ))]
pub async fn heartbeats(
    State(state): State<AppState>,
    ApiPath(name): ApiPath<String>,
    ApiQuery(query): ApiQuery<HeartbeatQuery>,
) -> Result<Json<Vec<HeartbeatView>>, ApiError> {
    // As far back as the history keeps heartbeats (a day at least: memory alone).
    let max = (state.settings().history.heartbeat_retention.as_secs() / 60).max(1440);
    let minutes = match query.minutes.as_deref() {
        None => 5,
        Some(text) => match text.parse::<u64>() {
            Ok(n) if (1..=max).contains(&n) => n,
            _ => {
                return Err(ApiError::bad_request(
                    "bad_minutes",
                    format!(
                        "minutes {text:?} is not allowed: give a whole number from 1 to {max} (the heartbeat retention)"
                    ),
                ));
            }
        },
    };
    let nodes = state.node().nodes();
    let known = nodes.get(&name).is_some();
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO);
    let since = now.saturating_sub(Duration::from_secs(minutes * 60));
    let since_ms = u64::try_from(since.as_millis()).unwrap_or(u64::MAX);
    let beats = nodes.heartbeats(&name, since_ms);
    let beats = beats.into_iter().map(HeartbeatView::from).collect();
    let beats = super::history_heartbeats::merge(&state, &name, since_ms, beats).await;
    if !known && beats.is_empty() {
        return Err(unknown_node(&name));
    }
    Ok(Json(beats))
}

/// Forgets an offline node now (it leaves the expected cluster of the split-brain
/// check), on this node only.
#[utoipa::path(delete, path = "/api/nodes/{name}", tag = "nodes",
    params(("name" = String, Path, description = "The node's name")),
    security(("bearer" = [])),
    responses(
        (status = 204, description = "Forgotten"),
        (status = 401, description = "unauthorized", body = ErrorBody),
        (status = 403, description = "forbidden", body = ErrorBody),
        (status = 404, description = "unknown_node", body = ErrorBody),
        (status = 409, description = "node_is_up: only an offline node can be forgotten", body = ErrorBody),
    ))]
pub async fn forget_node(
    State(state): State<AppState>,
    ApiPath(name): ApiPath<String>,
) -> Result<StatusCode, ApiError> {
    match state.node().nodes().forget(&name) {
        Ok(()) => Ok(StatusCode::NO_CONTENT),
        Err(ForgetError::Up(_)) => Err(ApiError::new(
            StatusCode::CONFLICT,
            "node_is_up",
            format!("node {name:?} is not offline: only a dead or departed node can be forgotten"),
        )),
        Err(_) => Err(unknown_node(&name)),
    }
}

/// The routes of this resource.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_nodes))
        .routes(routes!(get_node, forget_node))
        .routes(routes!(heartbeats))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_filters_parse_and_bad_ones_are_named() {
        assert!(
            filter(Some(
                "status=online&role=api&label=domain%3Deu&label=tier=1"
            ))
            .is_ok()
        );
        assert_eq!(
            filter(Some("status=asleep")).unwrap_err().code(),
            "bad_status"
        );
        assert_eq!(
            filter(Some("label=novalue")).unwrap_err().code(),
            "bad_label"
        );
        assert_eq!(filter(Some("colour=red")).unwrap_err().code(), "bad_query");
        assert_eq!(filter(Some("role=%zz")).unwrap_err().code(), "bad_query");
        assert_eq!(decode_component("a%2Fb+c").unwrap(), "a/b c");
    }
}
