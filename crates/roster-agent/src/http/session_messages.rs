//! `GET /api/sessions/{id}/messages`: the messages sent to a session's pid. A long poll
//! (`?wait=5s`, at most 60 s) answers a JSON array of what came; with
//! `Accept: text/event-stream` the messages stream as Server-Sent Events (`message`)
//! until the session ends (`ended`). One reader at a time per session.
// utoipa's expansion of `params(SomeQuery)` qualifies the type in full.
#![allow(unused_qualifications)]

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use roster::{Envelope, Meta};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::errors::{ApiError, ApiPath, ApiQuery, ErrorBody};
use crate::sessions::Session;
use crate::state::AppState;
use crate::views::meta::{meta_json, pid_text};

/// The longest long poll.
pub const MAX_WAIT: Duration = Duration::from_secs(60);

/// The most messages one poll answers.
pub const MAX_MESSAGES: usize = 1000;

/// The SSE keep-alive interval.
pub const KEEP_ALIVE: Duration = Duration::from_secs(15);

/// How long to wait.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct WaitQuery {
    /// How long to wait for a first message, e.g. `5s` (default: do not wait; at most 60s).
    pub wait: Option<String>,
}

/// A message received.
#[derive(Debug, Serialize, ToSchema)]
pub struct MessageView {
    /// The sender's pid; `null` when sent by a node rather than a process.
    pub from: Option<String>,
    /// The message as JSON (`{"bytes_base64": ...}` if it is not JSON-shaped MessagePack).
    pub message: Value,
}

impl From<&Envelope> for MessageView {
    fn from(envelope: &Envelope) -> Self {
        Self {
            from: envelope.from().map(pid_text),
            message: meta_json(&Meta::from_bytes(envelope.payload())),
        }
    }
}

/// Parses `?wait=`.
///
/// # Errors
///
/// 400 `bad_wait` for text that is not a duration of at most [`MAX_WAIT`].
pub fn parse_wait(wait: Option<&str>) -> Result<Duration, ApiError> {
    let Some(text) = wait else {
        return Ok(Duration::ZERO);
    };
    humantime::parse_duration(text)
        .ok()
        .filter(|wait| *wait <= MAX_WAIT)
        .ok_or_else(|| {
            ApiError::bad_request(
                "bad_wait",
                format!("wait {text:?} is not allowed: give a duration of at most 60s, e.g. 5s"),
            )
        })
}

fn wants_stream(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("text/event-stream"))
}

/// The messages sent to the session's pid: a long poll, or an SSE stream.
#[utoipa::path(get, path = "/api/sessions/{id}/messages", tag = "sessions",
    params(("id" = String, Path, description = "The session's id"), WaitQuery),
    responses(
        (status = 200, description = "The messages that came (JSON), or a stream of `message` events (text/event-stream)", body = Vec<MessageView>),
        (status = 400, description = "bad_wait", body = ErrorBody),
        (status = 404, description = "unknown_session or session_expired", body = ErrorBody),
    ))]
pub async fn messages(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
    ApiQuery(query): ApiQuery<WaitQuery>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let wait = parse_wait(query.wait.as_deref())?;
    let session = state.services().sessions.get(&id)?.session;
    if wants_stream(&headers) {
        let stopped = state.services().shutdown.stopped();
        return Ok(stream(session, stopped).await.into_response());
    }
    // A shutdown ends the wait: the server's graceful stop waits for this response.
    let stopped = state.services().shutdown.stopped();
    let taken = tokio::select! {
        taken = session.messages(wait, MAX_MESSAGES) => taken,
        () = stopped => Vec::new(),
    };
    Ok(Json(taken.iter().map(MessageView::from).collect::<Vec<_>>()).into_response())
}

async fn stream(
    session: Arc<Session>,
    stopped: impl std::future::Future<Output = ()> + Send + 'static,
) -> Sse<impl futures_util::Stream<Item = Result<Event, Infallible>>> {
    let reader = session.reader().await;
    let stream = futures_util::stream::unfold(Some((session, reader)), |state| async move {
        let (session, reader) = state?;
        let next = tokio::select! {
            envelope = session.next_message() => envelope,
            () = session.ended() => None,
        };
        Some(match next {
            Some(envelope) => {
                let data = serde_json::to_string(&MessageView::from(&envelope))
                    .unwrap_or_else(|_| "{}".to_owned());
                (
                    Ok(Event::default().event("message").data(data)),
                    Some((session, reader)),
                )
            }
            None => (Ok(Event::default().event("ended").data("{}")), None),
        })
    });
    Sse::new(futures_util::StreamExt::take_until(stream, stopped))
        .keep_alive(KeepAlive::new().interval(KEEP_ALIVE))
}

/// The routes of this resource.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(messages))
}
