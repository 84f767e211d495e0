//! The per-client rate limit on writes and keepalives (every method but GET and HEAD),
//! keyed by the peer's IP address: over it, 429 `rate_limited` with `Retry-After`.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Instant;

use axum::extract::{ConnectInfo, Request};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::errors::ApiError;
use crate::state::AppState;

/// Takes a token for the request's client if it is a write: the refusal, or `None` to
/// let it through. A request without a peer address (the router called in process)
/// counts against the unspecified address.
pub fn check(state: &AppState, request: &Request) -> Option<Response> {
    if matches!(*request.method(), Method::GET | Method::HEAD) {
        return None;
    }
    let ip = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |info| info.0.ip());
    let wait = state
        .services()
        .rate_limiter
        .check(ip, Instant::now())
        .err()?;
    let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    let mut response = ApiError::new(
        StatusCode::TOO_MANY_REQUESTS,
        "rate_limited",
        format!(
            "this client sends writes faster than {} per second: retry after {seconds} s",
            state.settings().api.rate_limit
        ),
    )
    .into_response();
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(seconds.max(1)));
    Some(response)
}
