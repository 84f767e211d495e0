//! `GET /api/openapi.json`: the OpenAPI 3.1 document of the API, built from the same
//! routers that serve it (utoipa-axum), so that a route cannot be served undocumented.

use std::sync::Arc;

use axum::Extension;
use axum::http::header;
use axum::response::IntoResponse;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::openapi::{OpenApi as Document, Paths};
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::state::AppState;

/// The document's frame: title, version, security scheme and tags; the paths come from
/// the routers.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "Roster agent API",
        description = "One Roster node's view of its cluster: nodes, names, groups, graph, partition, scopes, health and log level. Errors are {\"error\": CODE, \"message\": TEXT}. Writes need Authorization: Bearer <token> when the agent has a write token."
    ),
    modifiers(&BearerScheme),
    tags(
        (name = "nodes", description = "The node registry"),
        (name = "registry", description = "Names"),
        (name = "groups", description = "Process groups"),
        (name = "cluster", description = "Graph, link sessions, partition"),
        (name = "scopes", description = "Scopes this node is connected to"),
        (name = "health", description = "Probes"),
        (name = "logs", description = "Log levels"),
        (name = "openapi", description = "This document"),
        (name = "sessions", description = "Sessions: processes owned by the agent for clients in other languages"),
        (name = "messages", description = "Send and dispatch"),
        (name = "events", description = "The event stream (Server-Sent Events)"),
        (name = "metrics", description = "Prometheus metrics"),
        (name = "history", description = "The audit log of the history"),
        (name = "alerts", description = "Alerts firing and resolved"),
    )
)]
pub struct ApiDoc;

struct BearerScheme;

impl Modify for BearerScheme {
    fn modify(&self, openapi: &mut Document) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
        );
    }
}

/// Rewrites axum's wildcard segments (`{*key}`) into OpenAPI path parameters (`{key}`).
pub fn openapi_paths(paths: Paths) -> Paths {
    let mut fixed = Paths::new();
    for (path, item) in paths.paths {
        fixed.paths.insert(path.replace("{*", "{"), item);
    }
    fixed
}

/// The OpenAPI 3.1 document of this API.
#[utoipa::path(get, path = "/api/openapi.json", tag = "openapi",
    responses((status = 200, description = "The document", content_type = "application/json")))]
pub async fn openapi_json(Extension(doc): Extension<DocumentJson>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "application/json")],
        doc.0.to_string(),
    )
}

/// The document, serialized once when the router is built.
#[derive(Debug, Clone)]
pub struct DocumentJson(pub Arc<str>);

impl DocumentJson {
    /// Serializes `doc`.
    pub fn new(doc: &Document) -> Self {
        Self(Arc::from(doc.to_json().unwrap_or_else(|e| {
            tracing::error!(error = %e, "cannot serialize the OpenAPI document");
            "{}".to_owned()
        })))
    }
}

/// The routes of this resource.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(openapi_json))
}
