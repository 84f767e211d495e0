//! The web dashboard: a page at `/` and its assets under `/assets/`, embedded in the binary
//! (hand-written JavaScript modules and CSS; nothing is built on the user's machine and
//! nothing is loaded from outside the agent).
//!
//! Every answer carries `Content-Security-Policy: default-src 'self'`, so the page can
//! only load its own assets and talk to its own agent, and `X-Frame-Options: DENY`. The page is served without a
//! token (it holds no data); the API calls it makes are checked as any other request.
//! Assets are cached for a few minutes and revalidated by `ETag`; the page is revalidated
//! on every load, so an upgraded agent serves its new dashboard.

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};

use axum::Router;
use axum::extract::Path;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use crate::errors::{self, ApiError};

/// The policy sent with every dashboard answer: only the agent's own origin.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'";

/// How long a browser may use an asset before revalidating it.
const ASSET_CACHE: &str = "public, max-age=300";

/// The page.
const INDEX: &[u8] = include_bytes!("assets/index.html");

/// One embedded file.
struct Asset {
    /// Its path under `/assets/`.
    path: &'static str,
    /// Its `Content-Type`.
    content_type: &'static str,
    /// Its bytes.
    body: &'static [u8],
}

/// `(path, content type, bytes)` of one asset, embedded from `assets/`.
macro_rules! asset {
    ($path:literal, $type:expr) => {
        Asset {
            path: $path,
            content_type: $type,
            body: include_bytes!(concat!("assets/", $path)),
        }
    };
}

/// The type of the JavaScript modules.
const JS: &str = "text/javascript; charset=utf-8";

/// Every asset the page loads.
const ASSETS: &[Asset] = &[
    asset!("style.css", "text/css; charset=utf-8"),
    asset!("favicon.svg", "image/svg+xml"),
    asset!("js/main.js", JS),
    asset!("js/errors.js", JS),
    asset!("js/dom.js", JS),
    asset!("js/api.js", JS),
    asset!("js/vlist.js", JS),
    asset!("js/graph.js", JS),
    asset!("js/nodes.js", JS),
    asset!("js/partition.js", JS),
    asset!("js/registry.js", JS),
    asset!("js/events.js", JS),
    asset!("js/history.js", JS),
];

/// The dashboard's routes: `/` and `/assets/{*path}` (GET and HEAD; another method gets
/// the API's 405).
pub fn router() -> Router {
    Router::new()
        .route("/", get(index))
        .route("/assets/{*path}", get(asset))
        .method_not_allowed_fallback(errors::method_not_allowed)
}

/// The page.
async fn index(headers: HeaderMap) -> Response {
    respond(&headers, "text/html; charset=utf-8", "no-cache", INDEX)
}

/// One asset, or the API's 404.
async fn asset(Path(path): Path<String>, headers: HeaderMap) -> Response {
    match ASSETS.iter().find(|a| a.path == path) {
        Some(asset) => respond(&headers, asset.content_type, ASSET_CACHE, asset.body),
        None => {
            ApiError::not_found("not_found", format!("no dashboard asset {path:?}")).into_response()
        }
    }
}

/// `body` with its type, cache policy, `ETag` and the security headers; 304 when the
/// request's `If-None-Match` already names it.
fn respond(
    request: &HeaderMap,
    content_type: &'static str,
    cache: &'static str,
    body: &'static [u8],
) -> Response {
    let etag = etag(body);
    let fresh = request
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|tag| tag.trim() == etag));
    let mut response = if fresh {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        ([(header::CONTENT_TYPE, content_type)], body).into_response()
    };
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    if let Ok(value) = HeaderValue::from_str(&etag) {
        headers.insert(header::ETAG, value);
    }
    response
}

/// A strong validator of `body`: a hash of its bytes (the same for the same binary).
fn etag(body: &[u8]) -> String {
    let mut hasher = DefaultHasher::new();
    body.hash(&mut hasher);
    format!("\"{:016x}\"", hasher.finish())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_asset_the_page_and_modules_name_is_embedded() {
        let mut sources = vec![std::str::from_utf8(INDEX).unwrap()];
        sources.extend(
            ASSETS
                .iter()
                .filter(|a| a.path.ends_with(".js"))
                .map(|a| std::str::from_utf8(a.body).unwrap()),
        );
        for source in sources {
            for (quote, _) in source.match_indices("/assets/") {
                let rest = &source[quote + "/assets/".len()..];
                let path: String = rest
                    .chars()
                    .take_while(|c| !matches!(c, '"' | '\'' | '`' | ' ' | ')'))
                    .collect();
                assert!(
                    ASSETS.iter().any(|a| a.path == path),
                    "/assets/{path} is named but not embedded"
                );
            }
            for (at, _) in source.match_indices("from './") {
                let rest = &source[at + "from './".len()..];
                let file: String = rest.chars().take_while(|c| *c != '\'').collect();
                assert!(
                    ASSETS.iter().any(|a| a.path == format!("js/{file}")),
                    "module ./{file} is imported but not embedded"
                );
            }
        }
    }

    #[test]
    fn an_etag_names_the_bytes() {
        assert_eq!(etag(b"a"), etag(b"a"));
        assert_ne!(etag(b"a"), etag(b"b"));
    }
}
