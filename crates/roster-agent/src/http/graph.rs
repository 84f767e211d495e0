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

/// A link session of this node (live or recently closed).
#[derive(Debug, Serialize, ToSchema)]
pub struct LinkSessionView {
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

/// This node's link sessions, live and recently closed.
#[utoipa::path(get, path = "/api/link-sessions", tag = "cluster",
    responses((status = 200, description = "The sessions", body = Vec<LinkSessionView>)))]
pub async fn link_sessions(State(state): State<AppState>) -> Json<Vec<LinkSessionView>> {
    let sessions = state.node().cluster().link_sessions();
    Json(
        sessions
            .into_iter()
            .map(|s| LinkSessionView {
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
            .collect(),
    )
}

/// The routes of this resource.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(graph))
        .routes(routes!(link_sessions))
}
