//! `GET /api/registry` and `GET /api/registry/{*key}`: the names of a scope, with their
//! owner pid, its node and the meta as JSON.
// utoipa's expansion of `params(SomeQuery)` qualifies the type in full.
#![allow(unused_qualifications)]

use axum::Json;
use axum::extract::State;
use roster::{Key, Registration};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::keys::{check_key, check_prefix};
use super::pagination::{DEFAULT_LIMIT, MAX_LIMIT, PageQuery, decode_cursor, page, parse_limit};
use super::scopes::resolve;
use crate::errors::{ApiError, ApiPath, ApiQuery, ErrorBody};
use crate::state::AppState;
use crate::views::meta::{meta_json, pid_text};

/// A registered name.
#[derive(Debug, Serialize, ToSchema)]
pub struct NameView {
    /// The name.
    #[schema(example = "user/123")]
    pub key: String,
    /// The owning process, `<incarnation.serial>`.
    #[schema(example = "<5f0c2a9e3b1d7c44.17>")]
    pub pid: String,
    /// The name of the owner's node; `null` if this node has no live link to it.
    pub node: Option<String>,
    /// The meta as JSON (`{"bytes_base64": ...}` if it is not JSON-shaped MessagePack).
    pub meta: Value,
    /// Hybrid-logical-clock reading of the registration.
    pub registered_at: u64,
    /// Fencing token: grows each time the name changes owner.
    pub token: u64,
}

/// A page of names, in key order.
#[derive(Debug, Serialize, ToSchema)]
pub struct NamePage {
    /// The names of this page.
    pub items: Vec<NameView>,
    /// The cursor of the next page; `null` on the last page.
    pub next_cursor: Option<String>,
}

/// The scope of a single lookup.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ScopeQuery {
    /// The scope (default: the default scope).
    pub scope: Option<String>,
}

fn view(state: &AppState, key: String, registration: &Registration) -> NameView {
    NameView {
        key,
        pid: pid_text(registration.pid),
        node: state.node().node_name_of(registration.pid),
        meta: meta_json(&registration.meta),
        registered_at: registration.registered_at,
        token: registration.token,
    }
}

/// The names of a scope under a prefix, a page at a time.
#[utoipa::path(get, path = "/api/registry", tag = "registry", params(PageQuery),
    responses(
        (status = 200, description = "A page of names", body = NamePage),
        (status = 400, description = "bad_prefix, bad_limit, bad_cursor or bad_query", body = ErrorBody),
        (status = 404, description = "unknown_scope", body = ErrorBody),
    ))]
pub async fn list_names(
    State(state): State<AppState>,
    ApiQuery(query): ApiQuery<PageQuery>,
) -> Result<Json<NamePage>, ApiError> {
    let scope = resolve(&state, query.scope.as_deref())?;
    let prefix = query.prefix.unwrap_or_default();
    check_prefix(&prefix)?;
    let limit = parse_limit(query.limit.as_deref(), DEFAULT_LIMIT, MAX_LIMIT)?;
    let after = query.cursor.as_deref().map(decode_cursor).transpose()?;
    // One more than the page, read from the cursor on: a page costs what it returns.
    let names = match after.as_deref() {
        Some(after) => scope.names_after(&prefix, after, limit + 1),
        None => scope.names(&prefix, limit + 1),
    }
    .map_err(|e| ApiError::bad_request("bad_prefix", e.to_string()))?;
    let (names, next_cursor) = page(names, |(key, _): &(Key, _)| key.as_str(), limit);
    let items = names
        .iter()
        .map(|(key, registration)| view(&state, key.as_str().to_owned(), registration))
        .collect();
    Ok(Json(NamePage { items, next_cursor }))
}

/// One name: the rest of the path is the key, percent-decoded (`/api/registry/user/123`
/// looks up `user/123`).
#[utoipa::path(get, path = "/api/registry/{*key}", tag = "registry",
    params(("key" = String, Path, description = "The name (may contain `/`)"), ScopeQuery),
    responses(
        (status = 200, description = "The name", body = NameView),
        (status = 400, description = "bad_key", body = ErrorBody),
        (status = 404, description = "unknown_name or unknown_scope", body = ErrorBody),
    ))]
pub async fn get_name(
    State(state): State<AppState>,
    ApiPath(key): ApiPath<String>,
    ApiQuery(query): ApiQuery<ScopeQuery>,
) -> Result<Json<NameView>, ApiError> {
    let scope = resolve(&state, query.scope.as_deref())?;
    check_key(&key)?;
    let registration = scope.lookup(&key).ok_or_else(|| {
        ApiError::not_found(
            "unknown_name",
            format!("no name {key:?} in scope {:?}", scope.scope_name()),
        )
    })?;
    Ok(Json(view(&state, key, &registration)))
}

/// The routes of this resource.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_names))
        .routes(routes!(get_name))
}
