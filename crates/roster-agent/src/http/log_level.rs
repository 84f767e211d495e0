//! `GET` and `PUT /api/log-level`: the agent's log filter, and the node's own log level
//! underneath (`roster::LogLevel`), changed while the agent runs.

use axum::Json;
use axum::extract::State;
use roster::LogLevel;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::errors::{ApiError, ApiJson, ErrorBody};
use crate::state::AppState;

/// The node's own log level (what Roster logs of itself).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum NodeLogLevel {
    /// No info lines from the node; warnings and errors stay.
    Off,
    /// Link and node changes.
    Info,
    /// Also one line per write, op from a peer and process exit.
    Verbose,
}

impl From<NodeLogLevel> for LogLevel {
    fn from(level: NodeLogLevel) -> Self {
        match level {
            NodeLogLevel::Off => Self::Off,
            NodeLogLevel::Info => Self::Info,
            NodeLogLevel::Verbose => Self::Verbose,
        }
    }
}

impl From<LogLevel> for NodeLogLevel {
    fn from(level: LogLevel) -> Self {
        match level {
            LogLevel::Off => Self::Off,
            LogLevel::Verbose => Self::Verbose,
            _ => Self::Info,
        }
    }
}

/// The log levels in force.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct LogLevelView {
    /// The agent's log filter, as RUST_LOG (e.g. `info`, `roster=debug,warn`).
    #[schema(example = "info")]
    pub level: String,
    /// The node's own log level.
    pub node: NodeLogLevel,
}

/// A change of the log levels.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetLogLevel {
    /// The new filter, as RUST_LOG (e.g. `debug`, `roster=debug,info`).
    #[schema(example = "debug")]
    pub level: String,
    /// The node's own log level. Default: `verbose` for a filter whose most verbose
    /// directive is `trace`, else `info` (or `off` for the filter `off`).
    pub node: Option<NodeLogLevel>,
}

fn current(state: &AppState) -> LogLevelView {
    LogLevelView {
        level: state.log().current(),
        node: state.node().log_level().into(),
    }
}

/// The node level a filter implies when none is given.
fn implied_node_level(filter: &str) -> NodeLogLevel {
    let filter = filter.trim().to_ascii_lowercase();
    if filter == "off" {
        NodeLogLevel::Off
    } else if filter.contains("trace") {
        NodeLogLevel::Verbose
    } else {
        NodeLogLevel::Info
    }
}

/// The log levels in force.
#[utoipa::path(get, path = "/api/log-level", tag = "logs",
    responses((status = 200, description = "The levels", body = LogLevelView)))]
pub async fn get_log_level(State(state): State<AppState>) -> Json<LogLevelView> {
    Json(current(&state))
}

/// Changes the log filter (and the node's own level) at once.
#[utoipa::path(put, path = "/api/log-level", tag = "logs", request_body = SetLogLevel,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The levels now in force", body = LogLevelView),
        (status = 400, description = "bad_log_level or malformed_json", body = ErrorBody),
        (status = 401, description = "unauthorized", body = ErrorBody),
        (status = 403, description = "forbidden", body = ErrorBody),
        (status = 413, description = "body_too_large", body = ErrorBody),
        (status = 415, description = "wrong_content_type", body = ErrorBody),
        (status = 422, description = "invalid_body", body = ErrorBody),
    ))]
pub async fn set_log_level(
    State(state): State<AppState>,
    ApiJson(change): ApiJson<SetLogLevel>,
) -> Result<Json<LogLevelView>, ApiError> {
    state.log().set(&change.level).map_err(|e| {
        ApiError::bad_request(
            "bad_log_level",
            format!(
                "level {:?} is not a log filter such as info or roster=debug,warn: {e}",
                change.level
            ),
        )
    })?;
    let node_level = change
        .node
        .unwrap_or_else(|| implied_node_level(&change.level));
    state.node().set_log_level(node_level.into());
    tracing::info!(level = %change.level, node = ?node_level, "log level changed");
    Ok(Json(current(&state)))
}

/// The routes of this resource.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(get_log_level, set_log_level))
}
