//! Fault injection, for drills, demos and tests, and only with `--fault-injection`:
//! `POST /api/faults/isolate` cuts this node off (membership and links) for a while,
//! `POST /api/faults/sever-links` closes its replication links for a while while
//! membership still sees it. Without the setting they answer 404 `fault_injection_off`.

use std::time::Duration;

use axum::Json;
use axum::extract::State;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::errors::{ApiError, ApiJson, ErrorBody};
use crate::state::AppState;

/// The longest fault one request injects.
const MAX_FAULT: Duration = Duration::from_secs(600);

/// How long a fault lasts.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FaultBody {
    /// Its duration, e.g. `"5s"` (at most 10 minutes).
    #[serde(rename = "for")]
    #[schema(example = "5s")]
    pub duration: String,
}

/// What was injected.
#[derive(Debug, Serialize, ToSchema)]
pub struct Injected {
    /// The fault (`isolate` or `sever_links`).
    pub fault: &'static str,
    /// For how long, in milliseconds.
    pub for_ms: u64,
}

fn duration(state: &AppState, body: &FaultBody) -> Result<Duration, ApiError> {
    if !state.settings().fault_injection {
        return Err(ApiError::not_found(
            "fault_injection_off",
            "fault injection is off on this agent (start it with --fault-injection)",
        ));
    }
    match humantime::parse_duration(body.duration.trim()) {
        Ok(d) if !d.is_zero() && d <= MAX_FAULT => Ok(d),
        _ => Err(ApiError::bad_request(
            "bad_duration",
            format!(
                "for {:?} is not allowed: give a duration from 1ms to 10m, e.g. \"5s\"",
                body.duration
            ),
        )),
    }
}

fn injected(fault: &'static str, duration: Duration) -> Json<Injected> {
    Json(Injected {
        fault,
        for_ms: u64::try_from(duration.as_millis()).unwrap_or(u64::MAX),
    })
}

/// Cuts this node off from the cluster (membership datagrams and replication links, both
/// ways) for the duration; peers see it as a partition, then it heals.
#[utoipa::path(post, path = "/api/faults/isolate", tag = "faults",
    request_body = FaultBody,
    responses(
        (status = 200, description = "Isolated", body = Injected),
        (status = 400, description = "bad_duration, malformed_json", body = ErrorBody),
        (status = 404, description = "fault_injection_off", body = ErrorBody),
    ))]
pub async fn isolate(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<FaultBody>,
) -> Result<Json<Injected>, ApiError> {
    let duration = duration(&state, &body)?;
    state.node().cluster().isolate(duration);
    tracing::warn!(?duration, "fault injection: this node is isolated");
    Ok(injected("isolate", duration))
}

/// Closes this node's replication links and refuses new ones for the duration, while
/// membership still sees it (a cut that membership misses).
#[utoipa::path(post, path = "/api/faults/sever-links", tag = "faults",
    request_body = FaultBody,
    responses(
        (status = 200, description = "Links severed", body = Injected),
        (status = 400, description = "bad_duration, malformed_json", body = ErrorBody),
        (status = 404, description = "fault_injection_off", body = ErrorBody),
    ))]
pub async fn sever_links(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<FaultBody>,
) -> Result<Json<Injected>, ApiError> {
    let duration = duration(&state, &body)?;
    state.node().cluster().sever_links(duration);
    tracing::warn!(?duration, "fault injection: this node's links are severed");
    Ok(injected("sever_links", duration))
}

/// The fault-injection routes.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(isolate))
        .routes(routes!(sever_links))
}
