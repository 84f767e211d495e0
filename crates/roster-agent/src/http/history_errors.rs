//! The refusals of the endpoints that read the history: it is off, or unreachable.

use axum::http::StatusCode;

use crate::errors::ApiError;
use crate::history::History;
use crate::history::store::StoreError;
use crate::state::AppState;

/// The history, or 404 `history_off`.
///
/// # Errors
///
/// 404 `history_off` when the agent runs with `--history off`.
pub fn history(state: &AppState) -> Result<&History, ApiError> {
    state.history().ok_or_else(|| {
        ApiError::not_found(
            "history_off",
            "this agent keeps no history (it runs with --history off)",
        )
    })
}

/// 503 `history_unavailable` for a query that failed.
pub fn unavailable(error: &StoreError) -> ApiError {
    ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "history_unavailable",
        format!("{error} (retry later)"),
    )
}
