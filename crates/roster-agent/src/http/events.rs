//! `GET /api/events?pattern=&scope=&nodes=true`: the agent's event stream as Server-Sent
//! Events. Registry events of the scope whose key matches the pattern (a prefix if it
//! ends with `/`, exact otherwise, `*` or empty for all), and node events with
//! `nodes=true`. Each event has an `id` from the agent's sequence; a client that falls
//! behind gets `lagged` with the count it missed; `Last-Event-ID` resumes from the
//! agent's ring of recent events, or gets `reset` (re-list) when that id is no longer held.
// utoipa's expansion of `params(SomeQuery)` qualifies the type in full.
#![allow(unused_qualifications)]

use std::convert::Infallible;
use std::sync::Arc;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::{Stream, StreamExt};
use roster::Pattern;
use serde::Deserialize;
use serde_json::json;
use tokio_stream::wrappers::BroadcastStream;
use tokio_stream::wrappers::errors::BroadcastStreamRecvError;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::keys::{check_key, check_prefix};
use super::scopes::resolve;
use super::session_messages::KEEP_ALIVE;
use crate::errors::{ApiError, ApiQuery, ErrorBody};
use crate::events::{EventHub, Replay, StreamEvent};
use crate::state::AppState;

/// What to stream.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct EventQuery {
    /// A key, a prefix ending with `/`, or `*` / empty for all keys.
    pub pattern: Option<String>,
    /// The scope (default: the default scope).
    pub scope: Option<String>,
    /// Also node events (`true` or `false`, default `false`).
    pub nodes: Option<bool>,
}

/// Parses `?pattern=`.
///
/// # Errors
///
/// 400 `bad_key` or `bad_prefix`.
pub fn parse_pattern(pattern: Option<&str>) -> Result<Pattern, ApiError> {
    match pattern {
        None | Some("" | "*") => Ok(Pattern::All),
        Some(prefix) if prefix.ends_with('/') => {
            check_prefix(prefix)?;
            Ok(Pattern::from(prefix))
        }
        Some(key) => {
            check_key(key)?;
            Ok(Pattern::from(key))
        }
    }
}

fn last_event_id(headers: &HeaderMap) -> Result<Option<u64>, ApiError> {
    let Some(value) = headers.get("last-event-id") else {
        return Ok(None);
    };
    value
        .to_str()
        .ok()
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Some)
        .ok_or_else(|| {
            ApiError::bad_request(
                "bad_last_event_id",
                "Last-Event-ID is an event id of this agent: a number",
            )
        })
}

fn sse_event(event: &StreamEvent) -> Event {
    Event::default()
        .id(event.id.to_string())
        .event(event.kind)
        .data(&event.data)
}

/// The stream of registry and node events.
#[utoipa::path(get, path = "/api/events", tag = "events", params(EventQuery,
        ("Last-Event-ID" = Option<u64>, Header, description = "Resume after this event id")),
    responses(
        (status = 200, description = "Server-Sent Events: registered, unregistered, joined, left, node_*, link_*, partition_*, lagged, reset", content_type = "text/event-stream"),
        (status = 400, description = "bad_key, bad_prefix, bad_query, bad_last_event_id", body = ErrorBody),
        (status = 404, description = "unknown_scope", body = ErrorBody),
    ))]
pub async fn events(
    State(state): State<AppState>,
    ApiQuery(query): ApiQuery<EventQuery>,
    headers: HeaderMap,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let scope = resolve(&state, query.scope.as_deref())?
        .scope_name()
        .to_owned();
    let pattern = parse_pattern(query.pattern.as_deref())?;
    let nodes = query.nodes.unwrap_or(false);
    let last = last_event_id(&headers)?;
    let hub: EventHub = state.services().events.clone();
    let (replay, receiver) = hub.subscribe(last);
    let filter = Arc::new((scope, pattern, nodes));
    let (first, replayed_up_to): (Vec<Event>, u64) = match replay {
        Replay::Fresh => (Vec::new(), 0),
        Replay::Events(events) => {
            let up_to = events.last().map_or(last.unwrap_or(0), |e| e.id);
            let wanted = events
                .iter()
                .filter(|e| e.wanted(&filter.0, &filter.1, filter.2))
                .map(|e| sse_event(e))
                .collect();
            (wanted, up_to)
        }
        Replay::Reset { oldest } => {
            let data = json!({"kind": "reset", "last_event_id": last, "oldest_held": oldest,
                "message": "the events after that id are no longer held: list the registry again, then follow this stream"});
            (
                vec![Event::default().event("reset").data(data.to_string())],
                0,
            )
        }
    };
    let live = BroadcastStream::new(receiver).filter_map(move |item| {
        let filter = filter.clone();
        let hub = hub.clone();
        async move {
            match item {
                Ok(event) if event.id > replayed_up_to && event.wanted(&filter.0, &filter.1, filter.2) => {
                    Some(Ok(sse_event(&event)))
                }
                Ok(_) => None,
                Err(BroadcastStreamRecvError::Lagged(missed)) => {
                    hub.record_client_lag(missed);
                    let data = json!({"kind": "lagged", "missed": missed, "source": "client",
                        "message": "this client fell behind: events were dropped; list the registry again or resume with Last-Event-ID"});
                    Some(Ok(Event::default().event("lagged").data(data.to_string())))
                }
            }
        }
    });
    let stream = futures_util::stream::iter(first.into_iter().map(Ok))
        .chain(live)
        .take_until(state.services().shutdown.stopped());
    Ok(Sse::new(stream).keep_alive(KeepAlive::new().interval(KEEP_ALIVE)))
}

/// The routes of this resource.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(events))
}
