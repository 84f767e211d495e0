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
    /// A registration's fencing token: hand it to downstream systems, which refuse writes
    /// with a token below the highest they have seen (absent for the other writes).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token: Option<u64>,
    /// Whether every linked peer confirmed the registration (`?confirm=true`); absent
    /// otherwise.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub confirmed: Option<bool>,
}

/// The query of a registration.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct RegisterQuery {
    /// The scope (default: the default scope).
    pub scope: Option<String>,
    /// Answer only once every linked peer has seen the registration and it still holds
    /// (default `false`: answer once it holds on this node). Two sessions racing for one
    /// name on connected agents then never both get 200: the one that loses the conflict
    /// gets 409 `name_taken`. Takes a round trip to each linked peer; if they do not all
    /// answer within 5 s (a peer cut off but not yet detected), the registration is
    /// withdrawn and the answer is 503 `not_confirmed`.
    pub confirm: Option<bool>,
}

/// How long a confirmed registration waits for every linked peer: past the cluster's
/// detection of a silent link (a peer that stopped answering is dropped from the wait
/// when its link closes), with room for a loaded machine.
const CONFIRM_WITHIN: std::time::Duration = std::time::Duration::from_secs(5);

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
            Write::Register => scope.register(&process, key, meta).map(|r| Some(r.token)),
            Write::Unregister => scope.unregister(&process, key).map(|()| None),
            Write::Join => scope.join(&process, key, meta).map(|()| None),
            Write::Leave => scope.leave(&process, key).map(|()| None),
        }
    };
    Ok(match done {
        Ok(token) => {
            count_write(state, write.kind());
            Json(EntryDone {
                scope: scope.scope_name().to_owned(),
                key: key.to_owned(),
                pid: pid_text(info.session.pid()),
                token,
                confirmed: None,
            })
            .into_response()
        }
        Err(error) => refusal(state, &scope, error),
    })
}

/// A registration answered once every linked peer has seen it and it still holds (see
/// [`RegisterQuery::confirm`]).
async fn register_confirmed(
    state: &AppState,
    id: &str,
    key: &str,
    scope_name: Option<&str>,
    meta: &Value,
) -> Result<Response, ApiError> {
    let scope = resolve(state, scope_name)?;
    check_key(key)?;
    let info = state.services().sessions.get(id)?;
    let pid = info.session.pid();
    let registered = {
        let process = info.session.process();
        scope.register(&process, key, meta)
    };
    if let Err(error) = registered {
        return Ok(refusal(state, &scope, error));
    }
    count_write(state, Write::Register.kind());
    let settled = tokio::time::timeout(CONFIRM_WITHIN, scope.settled()).await;
    let now = scope.lookup(key);
    Ok(match (settled, now) {
        (Ok(()), Some(held)) if held.pid == pid => Json(EntryDone {
            scope: scope.scope_name().to_owned(),
            key: key.to_owned(),
            pid: pid_text(pid),
            token: Some(held.token),
            confirmed: Some(true),
        })
        .into_response(),
        // A concurrent registration on a peer won the conflict: this one is gone.
        (_, Some(winner)) if winner.pid != pid => refusal(
            state,
            &scope,
            RegistryError::Taken {
                key: key.into(),
                owner: winner.pid,
                meta: winner.meta,
            },
        ),
        // Lost, and the winner not shown here yet (it waits for a token above this one).
        (Ok(()), None) => ApiError::new(
            StatusCode::CONFLICT,
            "name_lost",
            format!("a concurrent registration of {key:?} on a peer won the name"),
        )
        .into_response(),
        // Not confirmed in time: withdrawn.
        _ => {
            // Already gone if it was lost: nothing to withdraw then.
            let process = info.session.process();
            let _ = scope.unregister(&process, key);
            drop(process);
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "not_confirmed",
                format!(
                    "the registration of {key:?} was not confirmed by every linked peer within \
                     {} s and was withdrawn; retry",
                    CONFIRM_WITHIN.as_secs()
                ),
            )
            .into_response()
        }
    })
}

/// Registers a name for the session's process (unique cluster-wide); with
/// `?confirm=true`, answers once every linked peer has seen it.
#[utoipa::path(put, path = "/api/sessions/{id}/names/{*key}", tag = "sessions",
    params(("id" = String, Path, description = "The session's id"),
        ("key" = String, Path, description = "The name (may contain `/`)"), RegisterQuery),
    request_body(content = EntryBody, description = "Optional"),
    responses(
        (status = 200, description = "Registered (or its meta updated), with its fencing token", body = EntryDone),
        (status = 400, description = "bad_key, bad_meta, malformed_json", body = ErrorBody),
        (status = 404, description = "unknown_session, session_expired, unknown_scope", body = ErrorBody),
        (status = 409, description = "name_taken, with the holder (with `confirm`: also a concurrent registration that won); name_lost (with `confirm`, the winner not shown yet)", body = ConflictBody),
        (status = 503, description = "fenced; not_confirmed (with `confirm`: withdrawn, retry)", body = ErrorBody),
    ))]
pub async fn register_name(
    State(state): State<AppState>,
    ApiPath((id, key)): ApiPath<(String, String)>,
    ApiQuery(query): ApiQuery<RegisterQuery>,
    OptionalJson(body): OptionalJson<EntryBody>,
) -> Result<Response, ApiError> {
    let scope = query.scope.as_deref();
    if query.confirm == Some(true) {
        return register_confirmed(&state, &id, &key, scope, &body.meta).await;
    }
    write(&state, &id, &key, scope, &body.meta, Write::Register)
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
