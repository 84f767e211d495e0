//! `/api/sessions`: sessions for services in other languages. `POST` creates one (a
//! process owned by the agent, with a TTL), `GET` lists them or shows one with what it
//! holds, `PUT .../keepalive` renews the TTL, `DELETE` ends it. Names, groups and
//! messages of a session are in [`super::session_entries`] and
//! [`super::session_messages`].
// utoipa's expansion of `params(SomeQuery)` qualifies the type in full.
#![allow(unused_qualifications)]

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::metrics::count_write;
use crate::errors::{ApiError, ApiJson, ApiPath, ErrorBody};
use crate::sessions::ttl::parse_ttl;
use crate::sessions::{Session, SessionError, SessionInfo};
use crate::state::AppState;
use crate::views::meta::pid_text;

impl From<SessionError> for ApiError {
    fn from(error: SessionError) -> Self {
        let message = error.to_string();
        match error {
            SessionError::BadTtl { .. } => Self::bad_request("bad_ttl", message),
            SessionError::Full { .. } => Self::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "too_many_sessions",
                message,
            ),
            SessionError::Unknown(_) => Self::not_found("unknown_session", message),
            SessionError::Ended { .. } => Self::not_found("session_expired", message),
        }
    }
}

/// A new session.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewSession {
    /// How long it lives without a keepalive: `500ms` is too short, `1s` to `1h`
    /// (e.g. `10s`, `1500ms`, `2m`).
    #[schema(example = "10s")]
    pub ttl: String,
    /// A name for people reading the session list.
    pub name: Option<String>,
}

/// An entry a session holds.
#[derive(Debug, Serialize, ToSchema)]
pub struct HeldKey {
    /// The scope.
    pub scope: String,
    /// The key.
    pub key: String,
}

/// A session.
#[derive(Debug, Serialize, ToSchema)]
pub struct SessionView {
    /// The session's id.
    pub id: String,
    /// The name given at creation.
    pub name: Option<String>,
    /// Its process, `<incarnation.serial>`.
    pub pid: String,
    /// Its TTL in milliseconds.
    pub ttl_ms: u64,
    /// When it expires unless kept alive, in milliseconds since the Unix epoch.
    pub expires_at_ms: u64,
    /// When it was created, in milliseconds since the Unix epoch.
    pub created_at_ms: u64,
    /// The names it holds.
    pub names: Vec<HeldKey>,
    /// The groups it is a member of.
    pub groups: Vec<HeldKey>,
}

/// A renewed session: what a keepalive answers (cheap: no holdings).
#[derive(Debug, Serialize, ToSchema)]
pub struct Renewed {
    /// The session's id.
    pub id: String,
    /// Its TTL in milliseconds.
    pub ttl_ms: u64,
    /// When it expires unless kept alive again, in milliseconds since the Unix epoch.
    pub expires_at_ms: u64,
}

/// What a session holds, in every scope of the node.
fn view(state: &AppState, info: &SessionInfo) -> SessionView {
    let session: &Arc<Session> = &info.session;
    let (mut names, mut groups) = (Vec::new(), Vec::new());
    for scope_name in state.node().scopes() {
        let Ok(scope) = state.node().scope(scope_name.as_str()) else {
            continue;
        };
        let held = |key: roster::Key| HeldKey {
            scope: scope_name.as_str().to_owned(),
            key: key.as_str().to_owned(),
        };
        names.extend(scope.names_of(session.pid()).into_iter().map(held));
        groups.extend(scope.groups_of(session.pid()).into_iter().map(held));
    }
    SessionView {
        id: session.id().to_owned(),
        name: session.name().map(str::to_owned),
        pid: pid_text(session.pid()),
        ttl_ms: u64::try_from(session.ttl().as_millis()).unwrap_or(u64::MAX),
        expires_at_ms: info.expires_at_ms,
        created_at_ms: session.created_at_ms(),
        names,
        groups,
    }
}

/// Creates a session: a process owned by this agent, ended when its TTL lapses.
#[utoipa::path(post, path = "/api/sessions", tag = "sessions", request_body = NewSession,
    responses(
        (status = 201, description = "The session", body = SessionView),
        (status = 400, description = "bad_ttl or malformed_json", body = ErrorBody),
        (status = 422, description = "invalid_body", body = ErrorBody),
        (status = 503, description = "too_many_sessions", body = ErrorBody),
    ))]
pub async fn create_session(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<NewSession>,
) -> Result<(StatusCode, Json<SessionView>), ApiError> {
    let ttl = parse_ttl(&body.ttl)?;
    if body.name.as_ref().is_some_and(|n| n.len() > 255) {
        return Err(ApiError::bad_request(
            "bad_name",
            "a session name is at most 255 bytes",
        ));
    }
    let info = state.services().sessions.create(ttl, body.name)?;
    count_write(&state, "session_create");
    Ok((StatusCode::CREATED, Json(view(&state, &info))))
}

/// The sessions of this agent, by id.
#[utoipa::path(get, path = "/api/sessions", tag = "sessions",
    responses((status = 200, description = "The sessions", body = Vec<SessionView>)))]
pub async fn list_sessions(State(state): State<AppState>) -> Json<Vec<SessionView>> {
    let sessions = state.services().sessions.list();
    Json(sessions.iter().map(|info| view(&state, info)).collect())
}

/// One session and what it holds.
#[utoipa::path(get, path = "/api/sessions/{id}", tag = "sessions",
    params(("id" = String, Path, description = "The session's id")),
    responses(
        (status = 200, description = "The session", body = SessionView),
        (status = 404, description = "unknown_session or session_expired", body = ErrorBody),
    ))]
pub async fn get_session(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<SessionView>, ApiError> {
    let info = state.services().sessions.get(&id)?;
    Ok(Json(view(&state, &info)))
}

/// Renews a session's TTL from now.
#[utoipa::path(put, path = "/api/sessions/{id}/keepalive", tag = "sessions",
    params(("id" = String, Path, description = "The session's id")),
    responses(
        (status = 200, description = "Its new expiry", body = Renewed),
        (status = 404, description = "unknown_session or session_expired", body = ErrorBody),
        (status = 429, description = "rate_limited", body = ErrorBody),
    ))]
pub async fn keepalive(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<Renewed>, ApiError> {
    let info = state.services().sessions.keepalive(&id)?;
    count_write(&state, "keepalive");
    Ok(Json(Renewed {
        id,
        ttl_ms: u64::try_from(info.session.ttl().as_millis()).unwrap_or(u64::MAX),
        expires_at_ms: info.expires_at_ms,
    }))
}

/// Ends a session: its process exits and everything it held is removed on every node.
#[utoipa::path(delete, path = "/api/sessions/{id}", tag = "sessions",
    params(("id" = String, Path, description = "The session's id")),
    responses(
        (status = 204, description = "Ended"),
        (status = 404, description = "unknown_session or session_expired", body = ErrorBody),
    ))]
pub async fn delete_session(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> Result<StatusCode, ApiError> {
    state.services().sessions.delete(&id)?;
    count_write(&state, "session_delete");
    Ok(StatusCode::NO_CONTENT)
}

/// The routes of this resource.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_session, list_sessions))
        .routes(routes!(get_session, delete_session))
        .routes(routes!(keepalive))
}
