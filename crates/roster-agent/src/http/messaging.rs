//! `POST /api/send` (a message to one pid, on any node) and `POST /api/dispatch` (a
//! message to the owner and the members of a key). The message is any JSON, sent as
//! MessagePack of the value, as a Rust process receives it.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use roster::SendError;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::keys::check_key;
use super::metrics::count_write;
use super::pid::parse_pid;
use super::scopes::resolve;
use crate::errors::{ApiError, ApiJson, ErrorBody};
use crate::state::AppState;

/// A message to one process.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SendBody {
    /// The receiver, `<incarnation.serial>`.
    #[schema(example = "<5f0c2a9e3b1d7c44.17>")]
    pub to: String,
    /// Any JSON.
    pub message: Value,
}

/// A message to the owner and members of a key.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DispatchBody {
    /// The name or group.
    pub key: String,
    /// The scope (default: the default scope).
    pub scope: Option<String>,
    /// Any JSON.
    pub message: Value,
}

/// Where a message went.
#[derive(Debug, Serialize, ToSchema)]
pub struct Sent {
    /// Whether it was queued.
    pub sent: bool,
}

/// How many a dispatch reached.
#[derive(Debug, Serialize, ToSchema)]
pub struct DispatchView {
    /// Local processes that got it plus other nodes it was handed to.
    pub reached: usize,
    /// Local processes that got it.
    pub local: usize,
    /// Local processes whose mailbox was full.
    pub mailbox_full: usize,
    /// Other nodes it was handed to (each delivers to its own recipients).
    pub remote_nodes: usize,
    /// Other nodes whose limit the message is over.
    pub remote_too_large: usize,
    /// Other nodes with recipients this node has no link to.
    pub remote_unreachable: usize,
}

fn send_error(error: SendError) -> ApiError {
    let message = error.to_string();
    match error {
        SendError::NoProcess(_) => ApiError::not_found("unknown_process", message),
        SendError::MailboxFull(_) => {
            ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "mailbox_full", message)
        }
        SendError::NodeUnreachable(_) => {
            ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "node_unreachable", message)
        }
        SendError::NodeGone(_) => ApiError::not_found("unknown_process", message),
        SendError::TooLarge { .. } => {
            ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "message_too_large", message)
        }
        _ => ApiError::bad_request("bad_message", message),
    }
}

/// Sends a message to a process on any node.
#[utoipa::path(post, path = "/api/send", tag = "messages", request_body = SendBody,
    responses(
        (status = 200, description = "Queued", body = Sent),
        (status = 400, description = "bad_pid, malformed_json", body = ErrorBody),
        (status = 404, description = "unknown_process: no such process, or no live node runs it", body = ErrorBody),
        (status = 503, description = "mailbox_full, or node_unreachable: its node is live but not linked right now", body = ErrorBody),
    ))]
pub async fn send(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<SendBody>,
) -> Result<Json<Sent>, ApiError> {
    let to = parse_pid(&body.to)?;
    state.node().send(to, &body.message).map_err(send_error)?;
    count_write(&state, "send");
    Ok(Json(Sent { sent: true }))
}

/// Sends a message to the owner of a name and every member of the group of that key.
#[utoipa::path(post, path = "/api/dispatch", tag = "messages", request_body = DispatchBody,
    responses(
        (status = 200, description = "How many it reached", body = DispatchView),
        (status = 400, description = "bad_key, malformed_json", body = ErrorBody),
        (status = 404, description = "unknown_scope", body = ErrorBody),
    ))]
pub async fn dispatch(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<DispatchBody>,
) -> Result<Json<DispatchView>, ApiError> {
    let scope = resolve(&state, body.scope.as_deref())?;
    check_key(&body.key)?;
    let done = scope
        .dispatch(&body.key, &body.message)
        .map_err(send_error)?;
    count_write(&state, "dispatch");
    Ok(Json(DispatchView {
        reached: done.local + done.remote_nodes,
        local: done.local,
        mailbox_full: done.mailbox_full,
        remote_nodes: done.remote_nodes,
        remote_too_large: done.remote_too_large,
        remote_unreachable: done.remote_unreachable,
    }))
}

/// The routes of this resource.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(send))
        .routes(routes!(dispatch))
}
