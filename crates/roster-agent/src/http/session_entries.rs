//! A session's names and groups: `PUT`/`DELETE /api/sessions/{id}/names/{*key}` registers
//! or unregisters a name (unique cluster-wide: another holder gets 409 with the holder),
//! `PUT`/`DELETE /api/sessions/{id}/groups/{*key}` joins or leaves a group. The body
//! `{"meta": any JSON}` is optional; the meta is stored as MessagePack of the JSON value,
//! so that Rust nodes decode it as the type they expect or as `serde_json::Value`.
// utoipa's expansion of `params(SomeQuery)` qualifies the type in full.
#![allow(unused_qualifications)]

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use roster::{RegistryError, Scope};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::keys::check_key;
use super::metrics::count_write;
use super::optional_json::OptionalJson;
use super::registry::ScopeQuery;
use super::scopes::resolve;
use crate::errors::{ApiError, ApiPath, ApiQuery, ErrorBody};
use crate::state::AppState;
use crate::views::meta::{meta_json, pid_text};

/// The body of a registration or a join.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EntryBody {
    /// Any JSON; stored as MessagePack of the value (default `null`).
    #[serde(default)]
    pub meta: Value,
}

/// The holder of a name.
#[derive(Debug, Serialize, ToSchema)]
pub struct Holder {
    /// Its pid.
    pub pid: String,
    /// Its node, when this node has a link to it.
    pub node: Option<String>,
    /// Its meta as JSON.
    pub meta: Value,
}

/// A refusal that names the holder of the key (409 `name_taken`, `not_owner`).
#[derive(Debug, Serialize, ToSchema)]
pub struct ConflictBody {
    /// `name_taken` or `not_owner`.
    pub error: String,
    /// What was wrong, in words.
    pub message: String,
    /// Who holds the name.
    pub holder: Holder,
}

/// What a write answers.
#[derive(Debug, Serialize, ToSchema)]
pub struct EntryDone {
    /// The scope.
    pub scope: String,
    /// The key.
    pub key: String,
    /// The session's pid.
    pub pid: String,
}

/// A registry refusal as the API's answer.
fn refusal(state: &AppState, scope: &Scope, error: RegistryError) -> Response {
    let message = error.to_string();
    let holder = |owner: roster::Pid, meta: Value| Holder {
        pid: pid_text(owner),
        node: state.node().node_name_of(owner),
        meta,
    };
    let conflict = |code: &str, holder: Holder| {
        let body = ConflictBody {
            error: code.to_owned(),
            message: message.clone(),
            holder,
        };
        (StatusCode::CONFLICT, Json(body)).into_response()
    };
    match error {
        RegistryError::Taken { owner, meta, .. } => {
            conflict("name_taken", holder(owner, meta_json(&meta)))
        }
        RegistryError::NotOwner { owner, key } => {
            let meta = scope
                .lookup(key.as_str())
                .map_or(Value::Null, |r| meta_json(&r.meta));
            conflict("not_owner", holder(owner, meta))
        }
        RegistryError::InvalidKey(_) => ApiError::bad_request("bad_key", message).into_response(),
        RegistryError::InvalidMeta(_) => ApiError::bad_request("bad_meta", message).into_response(),
        RegistryError::NotRegistered { .. } => {
            ApiError::not_found("unknown_name", message).into_response()
        }
        RegistryError::NotInGroup { .. } => {
            ApiError::not_found("not_a_member", message).into_response()
        }
        RegistryError::ProcessDead { .. } => {
            ApiError::not_found("session_expired", message).into_response()
        }
        RegistryError::ScopeNotConnected { scope } => {
            ApiError::unknown_scope(scope.as_str()).into_response()
        }
        RegistryError::Fenced { .. } => {
            ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "fenced", message).into_response()
        }
        _ => ApiError::new(StatusCode::CONFLICT, "refused", message).into_response(),
    }
}

/// Which write.
#[derive(Debug, Clone, Copy)]
enum Write {
    Register,
    Unregister,
    Join,
    Leave,
}

impl Write {
    fn kind(self) -> &'static str {
        match self {
            Self::Register => "register",
            Self::Unregister => "unregister",
            Self::Join => "join",
            Self::Leave => "leave",
        }
    }
}

fn write(
    state: &AppState,
    id: &str,
    key: &str,
    scope: Option<&str>,
    meta: &Value,
    write: Write,
) -> Result<Response, ApiError> {
    let scope = resolve(state, scope)?;
    check_key(key)?;
    let info = state.services().sessions.get(id)?;
    let done = {
        let process = info.session.process();
        match write {
            Write::Register => scope.register(&process, key, meta).map(|_| ()),
            Write::Unregister => scope.unregister(&process, key),
            Write::Join => scope.join(&process, key, meta),
            Write::Leave => scope.leave(&process, key),
        }
    };
    Ok(match done {
        Ok(()) => {
            count_write(state, write.kind());
            Json(EntryDone {
                scope: scope.scope_name().to_owned(),
                key: key.to_owned(),
                pid: pid_text(info.session.pid()),
            })
            .into_response()
        }
        Err(error) => refusal(state, &scope, error),
    })
}

/// Registers a name for the session's process (unique cluster-wide).
#[utoipa::path(put, path = "/api/sessions/{id}/names/{*key}", tag = "sessions",
    params(("id" = String, Path, description = "The session's id"),
        ("key" = String, Path, description = "The name (may contain `/`)"), ScopeQuery),
    request_body(content = EntryBody, description = "Optional"),
    responses(
        (status = 200, description = "Registered (or its meta updated)", body = EntryDone),
        (status = 400, description = "bad_key, bad_meta, malformed_json", body = ErrorBody),
        (status = 404, description = "unknown_session, session_expired, unknown_scope", body = ErrorBody),
        (status = 409, description = "name_taken, with the holder", body = ConflictBody),
        (status = 503, description = "fenced", body = ErrorBody),
    ))]
pub async fn register_name(
    State(state): State<AppState>,
    ApiPath((id, key)): ApiPath<(String, String)>,
    ApiQuery(query): ApiQuery<ScopeQuery>,
    OptionalJson(body): OptionalJson<EntryBody>,
) -> Result<Response, ApiError> {
    write(
        &state,
        &id,
        &key,
        query.scope.as_deref(),
        &body.meta,
        Write::Register,
    )
}

/// Unregisters a name the session holds.
#[utoipa::path(delete, path = "/api/sessions/{id}/names/{*key}", tag = "sessions",
    params(("id" = String, Path, description = "The session's id"),
        ("key" = String, Path, description = "The name (may contain `/`)"), ScopeQuery),
    responses(
        (status = 200, description = "Unregistered", body = EntryDone),
        (status = 404, description = "unknown_name, unknown_session, session_expired", body = ErrorBody),
        (status = 409, description = "not_owner, with the holder", body = ConflictBody),
    ))]
pub async fn unregister_name(
    State(state): State<AppState>,
    ApiPath((id, key)): ApiPath<(String, String)>,
    ApiQuery(query): ApiQuery<ScopeQuery>,
) -> Result<Response, ApiError> {
    write(
        &state,
        &id,
        &key,
        query.scope.as_deref(),
        &Value::Null,
        Write::Unregister,
    )
}

/// Joins a group (or updates the membership's meta).
#[utoipa::path(put, path = "/api/sessions/{id}/groups/{*key}", tag = "sessions",
    params(("id" = String, Path, description = "The session's id"),
        ("key" = String, Path, description = "The group (may contain `/`)"), ScopeQuery),
    request_body(content = EntryBody, description = "Optional"),
    responses(
        (status = 200, description = "Joined", body = EntryDone),
        (status = 400, description = "bad_key, bad_meta, malformed_json", body = ErrorBody),
        (status = 404, description = "unknown_session, session_expired, unknown_scope", body = ErrorBody),
    ))]
pub async fn join_group(
    State(state): State<AppState>,
    ApiPath((id, key)): ApiPath<(String, String)>,
    ApiQuery(query): ApiQuery<ScopeQuery>,
    OptionalJson(body): OptionalJson<EntryBody>,
) -> Result<Response, ApiError> {
    write(
        &state,
        &id,
        &key,
        query.scope.as_deref(),
        &body.meta,
        Write::Join,
    )
}

/// Leaves a group.
#[utoipa::path(delete, path = "/api/sessions/{id}/groups/{*key}", tag = "sessions",
    params(("id" = String, Path, description = "The session's id"),
        ("key" = String, Path, description = "The group (may contain `/`)"), ScopeQuery),
    responses(
        (status = 200, description = "Left", body = EntryDone),
        (status = 404, description = "not_a_member, unknown_session, session_expired", body = ErrorBody),
    ))]
pub async fn leave_group(
    State(state): State<AppState>,
    ApiPath((id, key)): ApiPath<(String, String)>,
    ApiQuery(query): ApiQuery<ScopeQuery>,
) -> Result<Response, ApiError> {
    write(
        &state,
        &id,
        &key,
        query.scope.as_deref(),
        &Value::Null,
        Write::Leave,
    )
}

/// The routes of this resource.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(register_name, unregister_name))
        .routes(routes!(join_group, leave_group))
}
