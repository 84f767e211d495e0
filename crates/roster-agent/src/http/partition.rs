//! `GET /api/partition`: the result of this node's last split-brain check.

use axum::Json;
use axum::extract::State;
use roster::nodes::{PartitionStatus, SplitBrainStrategy};
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::state::AppState;

/// What this node concluded at its last split-brain check.
#[derive(Debug, Serialize, ToSchema)]
pub struct PartitionView {
    /// Whether some expected node is unreachable.
    pub partition_suspected: bool,
    /// The expected nodes this node cannot reach.
    pub unreachable: Vec<String>,
    /// This node's side: itself and the expected nodes it reaches.
    pub side: Vec<String>,
    /// The strategy: `majority`, `oldest-node` or `primary:NAME`.
    pub strategy: String,
    /// Whether this side keeps accepting new unique registrations.
    pub keeps_writing: bool,
    /// The node the verdict depends on (oldest node or primary).
    pub deciding_node: Option<String>,
    /// Why, in words.
    pub reason: String,
    /// Whether this node is fenced now (refuses new unique registrations).
    pub fenced: bool,
    /// When it checked, in milliseconds since the Unix epoch; `null` before the first check.
    pub last_check_ms: Option<u64>,
}

impl From<PartitionStatus> for PartitionView {
    fn from(status: PartitionStatus) -> Self {
        Self {
            partition_suspected: status.partition_suspected,
            unreachable: status.unreachable,
            side: status.side,
            strategy: strategy_text(&status.strategy),
            keeps_writing: status.verdict.keeps_writing,
            deciding_node: status.verdict.deciding_node,
            reason: status.verdict.reason,
            fenced: status.fenced,
            last_check_ms: Some(status.last_check_ms),
        }
    }
}

/// A strategy as the settings spell it.
pub fn strategy_text(strategy: &SplitBrainStrategy) -> String {
    match strategy {
        SplitBrainStrategy::Majority => "majority".to_owned(),
        SplitBrainStrategy::OldestNode => "oldest-node".to_owned(),
        SplitBrainStrategy::ConfiguredPrimary(name) => format!("primary:{name}"),
    }
}

/// The last split-brain verdict of this node.
#[utoipa::path(get, path = "/api/partition", tag = "cluster",
    responses((status = 200, description = "The partition status", body = PartitionView)))]
pub async fn partition(State(state): State<AppState>) -> Json<PartitionView> {
    let nodes = state.node().nodes();
    let status = nodes.partition().or_else(|| nodes.check_partition_now());
    Json(status.map_or_else(
        || PartitionView {
            partition_suspected: false,
            unreachable: Vec::new(),
            side: vec![state.node().name().to_owned()],
            strategy: String::new(),
            keeps_writing: true,
            deciding_node: None,
            reason: "this node has no cluster".to_owned(),
            fenced: false,
            last_check_ms: None,
        },
        PartitionView::from,
    ))
}

/// The routes of this resource.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(partition))
}
