//! Bearer tokens: every write (any method but GET and HEAD) needs the write token when
//! one is configured, and reads need the read token when one is configured. Tokens are
//! compared in constant time. The probes (`/healthz`, `/readyz`) are always open.

use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use subtle::ConstantTimeEq;

use crate::errors::ApiError;
use crate::state::AppState;

/// Paths no token is asked for: the liveness and readiness probes.
const OPEN_PATHS: [&str; 2] = ["/healthz", "/readyz"];

/// Checks the request's bearer token against the one its method needs.
pub async fn require_token(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    let settings = state.settings();
    let needed = if matches!(*request.method(), Method::GET | Method::HEAD) {
        settings.read_token.as_deref()
    } else {
        settings.write_token.as_deref()
    };
    let Some(needed) = needed else {
        return next.run(request).await;
    };
    if OPEN_PATHS.contains(&request.uri().path()) {
        return next.run(request).await;
    }
    match bearer(&request) {
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
            response
        }
        Some(given) if bool::from(given.as_bytes().ct_eq(needed.as_bytes())) => {
            next.run(request).await
        }
        Some(_) => ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            "the bearer token is not the one this request needs",
        )
        .into_response(),
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
