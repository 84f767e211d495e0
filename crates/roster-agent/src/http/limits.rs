//! Limits on what a client may send: headers (count and bytes) and bodies. Hyper has its
//! own, larger ceilings below these; these give the API's JSON error instead of a dropped
//! connection.

use axum::extract::Request;
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::errors::ApiError;

/// The largest request body, in bytes.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// The most header bytes (names and values) a request may carry.
pub const MAX_HEADER_BYTES: usize = 16 * 1024;

/// The most headers a request may carry.
pub const MAX_HEADERS: usize = 64;

/// Refuses a request over [`MAX_HEADERS`] headers or [`MAX_HEADER_BYTES`] header bytes
/// with 431 `headers_too_large`; `None` lets it through.
pub fn check_headers(request: &Request) -> Option<Response> {
    let headers = request.headers();
    if headers.len() > MAX_HEADERS {
        return Some(headers_too_large());
    }
    let bytes: usize = headers
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len())
        .sum();
    (bytes > MAX_HEADER_BYTES).then(headers_too_large)
}

fn headers_too_large() -> Response {
    ApiError::new(
        StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
        "headers_too_large",
        format!(
            "a request may carry at most {MAX_HEADERS} headers and {MAX_HEADER_BYTES} bytes of them"
        ),
    )
    .into_response()
}

/// [`check_headers`] as a middleware (for the dashboard's routes).
pub async fn limit_headers(request: Request, next: Next) -> Response {
    match check_headers(&request) {
        Some(refused) => refused,
        None => next.run(request).await,
    }
}

/// Refuses a request whose `Content-Length` is over [`MAX_BODY_BYTES`] with 413
/// `body_too_large` (the API's JSON shape for what the body limit would refuse only when
/// a handler reads the body); `None` lets it through.
pub fn check_body(request: &Request) -> Option<Response> {
    let too_large = request
        .headers()
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
        .is_some_and(|len| len > MAX_BODY_BYTES as u64);
    too_large.then(|| {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "body_too_large",
            format!("a request body may be at most {MAX_BODY_BYTES} bytes"),
        )
        .into_response()
    })
}
