//! `GET /api/scopes`: the scopes this node is connected to; and how the registry and group
//! endpoints pick their scope (`?scope=`, the default scope otherwise).

use axum::Json;
use axum::extract::State;
use roster::Scope;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::errors::{ApiError, ErrorBody};
use crate::state::AppState;

/// A scope this node is connected to.
#[derive(Debug, Serialize, ToSchema)]
pub struct ScopeView {
    /// Its name.
    pub name: String,
    /// Whether its entries stay on this node (not replicated).
    pub local_only: bool,
    /// Names registered in it (owners on any node).
    pub names: usize,
    /// Group memberships in it (members on any node).
    pub memberships: usize,
    /// The linked peers connected to it, by name.
    pub peers: Vec<String>,
}

/// The scope a request names, or the default scope.
///
/// # Errors
///
/// 404 `unknown_scope` if this node is not connected to it.
pub fn resolve(state: &AppState, scope: Option<&str>) -> Result<Scope, ApiError> {
    match scope {
        None => Ok(state.node().default_scope().clone()),
        Some(name) => state
            .node()
            .scope(name)
            .map_err(|_| ApiError::unknown_scope(name)),
    }
}

/// The scopes this node is connected to, by name.
#[utoipa::path(get, path = "/api/scopes", tag = "scopes",
    responses(
        (status = 200, description = "The scopes, by name", body = Vec<ScopeView>),
        (status = 401, description = "A read token is needed", body = ErrorBody),
    ))]
pub async fn list_scopes(State(state): State<AppState>) -> Json<Vec<ScopeView>> {
    let node = state.node();
    let views = node
        .scopes()
        .into_iter()
        .filter_map(|name| node.scope(&name).ok())
        .map(|scope| ScopeView {
            name: scope.scope_name().to_owned(),
            local_only: scope.is_local_only(),
            names: scope.name_count(),
            memberships: scope.membership_count(),
            peers: node
                .cluster()
                .peers_in(scope.scope_name())
                .into_iter()
                .map(|peer| peer.name)
                .collect(),
        })
        .collect();
    Json(views)
}

/// The routes of this resource.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list_scopes))
}
