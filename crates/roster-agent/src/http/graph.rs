//! `GET /api/graph` and `GET /api/link-sessions`: the cluster as a graph (nodes and the
//! links between them, ready for a force-directed view) and this node's link sessions.

use std::collections::BTreeMap;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::Json;
use axum::extract::State;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::nodes::StatusView;
use crate::errors::{ApiError, ApiQuery, ErrorBody};
use crate::state::AppState;

/// A node of the graph.
#[derive(Debug, Serialize, ToSchema)]
pub struct GraphNodeView {
    /// Its incarnation, 16 hex digits.
    pub id: String,
    /// Its name (what links refer to).
    pub name: String,
    /// Its role.
    pub role: String,
    /// Its status as this node sees it.
    pub status: StatusView,
    /// Its labels.
    pub labels: BTreeMap<String, String>,
}

/// A live link between two nodes.
#[derive(Debug, Serialize, ToSchema)]
pub struct GraphLinkView {
    /// The reporting node's name.
    pub source: String,
    /// The other end's name.
    pub target: String,
    /// `tcp` or `tls`.
    pub kind: String,
    /// The session id on the reporting node.
    pub session: u64,
    /// The round-trip time the reporting node measured, in milliseconds.
    pub rtt_ms: Option<f64>,
    /// The reporting node missed a heartbeat here: the link may be gone.
    pub stale: bool,
}

/// The cluster as a graph.
#[derive(Debug, Serialize, ToSchema)]
pub struct GraphView {
    /// Every node this node knows.
    pub nodes: Vec<GraphNodeView>,
    /// One link per connected pair of nodes that are both up.
    pub links: Vec<GraphLinkView>,
}

/// A link session of this node (live or recently closed), or from the history.
#[derive(Debug, Serialize, ToSchema)]
pub struct LinkSessionView {
    /// The node whose session it is (this node, or another agent writing to the same
    /// history database).
    pub recorder: String,
    /// The session id.
    pub session: u64,
    /// The peer's name.
    pub peer: String,
    /// The peer's incarnation, 16 hex digits.
    pub peer_incarnation: String,
    /// `tcp` or `tls`.
    pub kind: String,
    /// When it was established, in milliseconds since the Unix epoch.
    pub established_ms: u64,
    /// Its round-trip time, in milliseconds.
    pub rtt_ms: Option<f64>,
    /// Bytes sent.
    pub bytes_out: u64,
    /// Bytes received.
    pub bytes_in: u64,
    /// Frames sent.
    pub frames_out: u64,
    /// Frames received.
    pub frames_in: u64,
    /// When it closed, in milliseconds since the Unix epoch; `null` while live.
    pub closed_ms: Option<u64>,
    /// Why it closed.
    pub closed_reason: Option<String>,
}

fn epoch_ms(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// The cluster graph: nodes and the links between them.
#[utoipa::path(get, path = "/api/graph", tag = "cluster",
    responses((status = 200, description = "The graph", body = GraphView)))]
pub async fn graph(State(state): State<AppState>) -> Json<GraphView> {
    let graph = state.node().cluster().graph();
    Json(GraphView {
        nodes: graph
            .nodes
            .into_iter()
            .map(|n| GraphNodeView {
                id: n.id.to_string(),
                name: n.name,
                role: n.role,
                status: n.status.into(),
                labels: n.labels,
            })
            .collect(),
        links: graph
            .links
            .into_iter()
            .map(|l| GraphLinkView {
                source: l.source,
                target: l.target,
                kind: l.kind.to_string(),
                session: l.session,
                rtt_ms: l.rtt.map(|rtt| rtt.as_secs_f64() * 1000.0),
                stale: l.stale,
            })
            .collect(),
    })
}

/// Which link sessions to list.
#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct LinkSessionQuery {
    /// `true`: closed sessions only; `false`: live ones only (default: both).
    #[param(value_type = Option<bool>)]
    pub closed: Option<String>,
    /// Only sessions live or closed at or after this time, in milliseconds since the
    /// Unix epoch.
    #[param(value_type = Option<u64>)]
    pub since: Option<String>,
}

/// This node's link sessions, live and closed: the library's (the last 64 closed) and
/// the history's, grouped by pair of nodes.
#[utoipa::path(get, path = "/api/link-sessions", tag = "cluster", params(LinkSessionQuery),
    responses(
        (status = 200, description = "The sessions", body = Vec<LinkSessionView>),
        (status = 400, description = "bad_closed, bad_time or bad_query", body = ErrorBody),
        (status = 503, description = "history_unavailable", body = ErrorBody),
    ))]
pub async fn link_sessions(
    State(state): State<AppState>,
    ApiQuery(query): ApiQuery<LinkSessionQuery>,
) -> Result<Json<Vec<LinkSessionView>>, ApiError> {
    let closed = match query.closed.as_deref() {
        None => None,
        Some("true") => Some(true),
        Some("false") => Some(false),
        Some(other) => {
            return Err(ApiError::bad_request(
                "bad_closed",
                format!("closed {other:?} is not allowed: true or false"),
            ));
        }
    };
    let since = match query.since.as_deref() {
        None => None,
        Some(text) => Some(text.parse::<u64>().map_err(|_| {
            ApiError::bad_request(
                "bad_time",
                format!("since {text:?} is not allowed: give milliseconds since the Unix epoch"),
            )
        })?),
    };
    let recorder = state.node().name().to_owned();
    let sessions = state.node().cluster().link_sessions();
    let memory = sessions
        .into_iter()
        .map(|s| LinkSessionView {
            recorder: recorder.clone(),
            session: s.session,
            peer: s.peer,
            peer_incarnation: s.peer_incarnation.to_string(),
            kind: s.kind.to_string(),
            established_ms: epoch_ms(s.established_at),
            rtt_ms: s.rtt.map(|rtt| rtt.as_secs_f64() * 1000.0),
            bytes_out: s.bytes_out,
            bytes_in: s.bytes_in,
            frames_out: s.frames_out,
            frames_in: s.frames_in,
            closed_ms: s.closed.as_ref().map(|(at, _)| epoch_ms(*at)),
            closed_reason: s.closed.map(|(_, why)| why),
        })
        .collect();
    let mut sessions = if closed == Some(false) {
        memory
    } else {
        super::history_links::merge(&state, since, memory).await?
    };
    sessions.retain(|s| {
        closed.is_none_or(|closed| s.closed_ms.is_some() == closed)
            && since.is_none_or(|since| s.closed_ms.is_none_or(|at| at >= since))
    });
    Ok(Json(sessions))
}

/// The routes of this resource.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(graph))
        .routes(routes!(link_sessions))
}
