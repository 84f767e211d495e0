//! `GET /api/openapi.json`: the OpenAPI 3.1 document of the API, built from the same
//! routers that serve it (utoipa-axum), so that a route cannot be served undocumented.

use std::sync::Arc;

use axum::Extension;
use axum::http::header;
use axum::response::IntoResponse;
use utoipa::openapi::path::Operation;
use utoipa::openapi::response::ResponseBuilder;
use utoipa::openapi::security::SecurityRequirement;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::openapi::{Content, OpenApi as Document, Paths, Ref, RefOr};
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

/// The paths as the routers describe them, finished: axum's wildcard segments (`{*key}`)
/// become OpenAPI path parameters (`{key}`), and every operation gets the answers the
/// layers around the handlers can give (`common_answers`).
pub fn openapi_paths(paths: Paths) -> Paths {
    let mut fixed = Paths::new();
    for (path, mut item) in paths.paths {
        for (method, operation) in [
            ("get", item.get.as_mut()),
            ("put", item.put.as_mut()),
            ("post", item.post.as_mut()),
            ("delete", item.delete.as_mut()),
            ("patch", item.patch.as_mut()),
        ] {
            if let Some(operation) = operation {
                common_answers(&path, method, operation);
            }
        }
        fixed.paths.insert(path.replace("{*", "{"), item);
    }
    fixed
}

/// Adds to `operation` the answers of the layers every request goes through, where the
/// handler does not document them itself: the token check (401 everywhere: reads need the
/// read token when one is set; writes declare the bearer scheme and may get 403 with a
/// read-only token), the rate limit on writes and keepalives (429), the header limit (431),
/// bad query strings and path segments (400), and for a JSON body a wrong content type
/// (415), a body too large (413) and a body of the wrong shape (422).
fn common_answers(path: &str, method: &str, operation: &mut Operation) {
    let mut answers: Vec<(&str, &str)> = vec![
        (
            "400",
            "bad_query or bad_path: the query string or a path segment is malformed",
        ),
        ("401", "unauthorized: no token, or a wrong one"),
        ("431", "headers_too_large"),
    ];
    let writes = method != "get" && path.starts_with("/api/");
    if writes {
        answers.push(("403", "forbidden: the token may read, not write"));
        answers.push((
            "429",
            "rate_limited: too many writes from this client (see Retry-After)",
        ));
        if operation.security.is_none() {
            operation.security = Some(vec![SecurityRequirement::new(
                "bearer",
                Vec::<String>::new(),
            )]);
        }
    }
    if operation.request_body.is_some() {
        answers.push(("413", "body_too_large"));
        answers.push((
            "415",
            "wrong_content_type: the body must be application/json",
        ));
        answers.push(("422", "invalid_body: JSON of the wrong shape"));
    }
    for (status, description) in answers {
        operation
            .responses
            .responses
            .entry(status.to_owned())
            .or_insert_with(|| {
                RefOr::T(
                    ResponseBuilder::new()
                        .description(description)
                        .content(
                            "application/json",
                            Content::new(Some(Ref::from_schema_name("ErrorBody"))),
                        )
                        .build(),
                )
            });
    }
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
