//! The HTTP API: one router per resource, merged, with the document, the limits and the
//! token check around them.
//!
//! Every route is registered through utoipa-axum, so the router and the OpenAPI document
//! ([`openapi()`]) come from the same list. Errors have one shape ([`crate::errors::ApiError`]).

pub mod alerts;
pub mod audit;
pub mod auth;
pub mod events;
pub mod external_nodes;
pub mod faults;
pub mod gate;
pub mod graph;
pub mod groups;
pub mod health;
pub mod history_errors;
pub mod history_heartbeats;
pub mod history_links;
pub mod keys;
pub mod limits;
pub mod log_level;
pub mod messaging;
pub mod metrics;
pub mod nodes;
pub mod openapi;
pub mod optional_json;
pub mod pagination;
pub mod partition;
pub mod pid;
pub mod rate_limit;
pub mod registry;
pub mod scopes;
pub mod session_entries;
pub mod session_messages;
pub mod sessions;

use axum::extract::DefaultBodyLimit;
use axum::{Extension, Router, middleware};
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;

use crate::state::AppState;

/// Every route of the API, with its documentation.
fn documented() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(openapi::ApiDoc::openapi())
        .merge(nodes::router())
        .merge(registry::router())
        .merge(groups::router())
        .merge(graph::router())
        .merge(partition::router())
        .merge(scopes::router())
        .merge(health::router())
        .merge(log_level::router())
        .merge(openapi::router())
        .merge(sessions::router())
        .merge(session_entries::router())
        .merge(session_messages::router())
        .merge(messaging::router())
        .merge(events::router())
        .merge(metrics::router())
        .merge(external_nodes::router())
        .merge(audit::router())
        .merge(alerts::router())
        .merge(faults::router())
}

/// The OpenAPI 3.1 document of the API.
pub fn openapi() -> utoipa::openapi::OpenApi {
    let (_, mut doc) = documented().split_for_parts();
    doc.paths = openapi::openapi_paths(doc.paths);
    doc
}

/// The API's router over `state`, with the dashboard (`/`, `/assets/*`) beside it: the
/// dashboard is not part of the API document and needs no token (it holds no data).
pub fn router(state: AppState) -> Router {
    let (router, mut doc) = documented().split_for_parts();
    doc.paths = openapi::openapi_paths(doc.paths);
    let api = router
        .fallback(crate::errors::no_route)
        .method_not_allowed_fallback(crate::errors::method_not_allowed)
        .layer(Extension(openapi::DocumentJson::new(&doc)))
        .layer(DefaultBodyLimit::max(limits::MAX_BODY_BYTES))
        .layer(middleware::from_fn_with_state(state.clone(), gate::admit))
        .with_state(state);
    crate::dashboard::router()
        .layer(middleware::from_fn(limits::limit_headers))
        .merge(api)
}
