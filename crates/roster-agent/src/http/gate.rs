//! The one middleware of every API request: it counts the request by route (the matched
//! pattern, not the raw path, so that keys do not make new series), method and status
//! (`roster_agent_http_requests_total`, refusals included), and refuses, in this order,
//! a write over the client's rate ([`super::rate_limit`]), too many or too large headers
//! and a too-large declared body ([`super::limits`]), and a missing or wrong token
//! ([`super::auth`]).
//!
//! One middleware rather than one per check: each `from_fn` layer clones and boxes the
//! service inside it and boxes its future on every request, which a lookup of a few
//! microseconds feels. The series' handles are registered once each
//! ([`crate::telemetry::Telemetry::count_request`]): counting allocates nothing.

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;

use super::{auth, limits, rate_limit};
use crate::state::AppState;

/// The middleware.
pub async fn admit(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let route = request.extensions().get::<MatchedPath>().cloned();
    let method = request.method().clone();
    let refused = rate_limit::check(&state, &request)
        .or_else(|| limits::check_headers(&request))
        .or_else(|| limits::check_body(&request))
        .or_else(|| auth::check(&state, &request));
    let response = match refused {
        Some(refused) => refused,
        None => next.run(request).await,
    };
    state.services().telemetry.count_request(
        route.as_ref().map_or("unmatched", MatchedPath::as_str),
        &method,
        response.status(),
    );
    response
}
