//! Bearer tokens: every write (any method but GET and HEAD) needs the write token when
//! one is configured, and reads need the read token when one is configured. Tokens are
//! compared in constant time. The probes (`/healthz`, `/readyz`) are always open.

use axum::extract::Request;
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use subtle::ConstantTimeEq;

use crate::errors::ApiError;
use crate::state::AppState;

/// Paths no token is asked for: the liveness and readiness probes.
const OPEN_PATHS: [&str; 2] = ["/healthz", "/readyz"];

/// Checks the request's bearer token against the one its method needs: the refusal, or
/// `None` to let it through.
pub fn check(state: &AppState, request: &Request) -> Option<Response> {
    let settings = state.settings();
    let needed = if matches!(*request.method(), Method::GET | Method::HEAD) {
        settings.read_token.as_deref()
    } else {
        settings.write_token.as_deref()
    }?;
    if OPEN_PATHS.contains(&request.uri().path()) {
        return None;
    }
    match bearer(request) {
        None => {
            let mut response = ApiError::new(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "this request needs an Authorization: Bearer <token> header",
            )
            .into_response();
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            Some(response)
        }
        Some(given) if bool::from(given.as_bytes().ct_eq(needed.as_bytes())) => None,
        Some(_) => Some(
            ApiError::new(
                StatusCode::FORBIDDEN,
                "forbidden",
                "the bearer token is not the one this request needs",
            )
            .into_response(),
        ),
    }
}

/// The token of an `Authorization: Bearer <token>` header.
fn bearer(request: &Request) -> Option<&str> {
    let value = request
        .headers()
        .get(header::AUTHORIZATION)?
        .to_str()
        .ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}
