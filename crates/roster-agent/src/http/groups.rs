//! `GET /api/groups` and `GET /api/groups/{*key}`: the groups of a scope with their member
//! counts, and the members of one group.
// utoipa's expansion of `params(SomeQuery)` qualifies the type in full.
#![allow(unused_qualifications)]

use axum::Json;
use axum::extract::State;
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

/// A group and how many members it has.
#[derive(Debug, Serialize, ToSchema)]
pub struct GroupView {
    /// The group key.
    #[schema(example = "room/42")]
    pub key: String,
    /// Its members (on any node).
    pub members: usize,
}

/// A page of groups, in key order.
#[derive(Debug, Serialize, ToSchema)]
pub struct GroupPage {
    /// The groups of this page.
    pub items: Vec<GroupView>,
    /// The cursor of the next page; `null` on the last page.
    pub next_cursor: Option<String>,
}

/// A member of a group.
#[derive(Debug, Serialize, ToSchema)]
pub struct MemberView {
    /// The member process, `<incarnation.serial>`.
    pub pid: String,
    /// The name of its node; `null` if this node has no live link to it.
    pub node: Option<String>,
    /// Its meta as JSON (`{"bytes_base64": ...}` if it is not JSON-shaped MessagePack).
    pub meta: Value,
}

/// The members of one group.
#[derive(Debug, Serialize, ToSchema)]
pub struct GroupMembers {
    /// The group key.
    pub key: String,
    /// How many members it has in all.
    pub count: usize,
    /// Its members, at most `limit`.
    pub members: Vec<MemberView>,
}

/// How many members of one group to show.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct MembersQuery {
    /// The scope (default: the default scope).
    pub scope: Option<String>,
    /// The most members to return, 1 to 10000 (default 1000).
    #[param(value_type = Option<u32>, minimum = 1, maximum = 10_000)]
    pub limit: Option<String>,
}

/// The groups of a scope under a prefix, a page at a time.
#[utoipa::path(get, path = "/api/groups", tag = "groups", params(PageQuery),
    responses(
        (status = 200, description = "A page of groups", body = GroupPage),
        (status = 400, description = "bad_prefix, bad_limit, bad_cursor or bad_query", body = ErrorBody),
        (status = 404, description = "unknown_scope", body = ErrorBody),
    ))]
pub async fn list_groups(
    State(state): State<AppState>,
    ApiQuery(query): ApiQuery<PageQuery>,
) -> Result<Json<GroupPage>, ApiError> {
    let scope = resolve(&state, query.scope.as_deref())?;
    let prefix = query.prefix.unwrap_or_default();
    check_prefix(&prefix)?;
    let limit = parse_limit(query.limit.as_deref(), DEFAULT_LIMIT, MAX_LIMIT)?;
    let after = query.cursor.as_deref().map(decode_cursor).transpose()?;
    let keys = match after.as_deref() {
        Some(after) => scope.groups_after(&prefix, after, limit + 1),
        None => scope.groups(&prefix, limit + 1),
    }
    .map_err(|e| ApiError::bad_request("bad_prefix", e.to_string()))?;
    let (keys, next_cursor) = page(keys, |key| key.as_str(), limit);
    let items = keys
        .into_iter()
        .map(|key| GroupView {
            members: scope.member_count(&key),
            key: key.to_string(),
        })
        .collect();
    Ok(Json(GroupPage { items, next_cursor }))
}

/// The members of one group: the rest of the path is the key, percent-decoded.
#[utoipa::path(get, path = "/api/groups/{*key}", tag = "groups",
    params(("key" = String, Path, description = "The group key (may contain `/`)"), MembersQuery),
    responses(
        (status = 200, description = "The group's members", body = GroupMembers),
        (status = 400, description = "bad_key or bad_limit", body = ErrorBody),
        (status = 404, description = "unknown_group or unknown_scope", body = ErrorBody),
    ))]
pub async fn get_group(
    State(state): State<AppState>,
    ApiPath(key): ApiPath<String>,
    ApiQuery(query): ApiQuery<MembersQuery>,
) -> Result<Json<GroupMembers>, ApiError> {
    let scope = resolve(&state, query.scope.as_deref())?;
    check_key(&key)?;
    let limit = parse_limit(query.limit.as_deref(), 1000, 10_000)?;
    let count = scope.member_count(&key);
    if count == 0 {
        return Err(ApiError::not_found(
            "unknown_group",
            format!(
                "no group {key:?} with members in scope {:?}",
                scope.scope_name()
            ),
        ));
    }
    let members = scope
        .members_limited(&key, limit)
        .iter()
        .map(|member| MemberView {
            pid: pid_text(member.pid()),
            node: state.node().node_name_of(member.pid()),
            meta: meta_json(member.meta()),
        })
        .collect();
    Ok(Json(GroupMembers {
        key,
        count,
        members,
    }))
}

/// The routes of this resource.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_groups))
        .routes(routes!(get_group))
}
