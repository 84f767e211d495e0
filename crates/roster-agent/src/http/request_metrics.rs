//! Counts every HTTP request by route (the matched pattern, not the raw path, so that keys
//! do not make new series), method and status: `roster_agent_http_requests_total`.

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use metrics::counter;

use crate::state::AppState;

/// The middleware.
pub async fn count_requests(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let method = request.method().as_str().to_owned();
    let response = next.run(request).await;
    let status = response.status().as_u16().to_string();
    state.services().telemetry.record(|| {
        counter!("roster_agent_http_requests_total", "route" => route, "method" => method, "status" => status)
            .increment(1);
    });
    response
}
