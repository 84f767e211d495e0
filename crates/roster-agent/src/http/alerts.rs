//! `GET /api/alerts`: the alerts firing now and the recently resolved ones.

use axum::Json;
use axum::extract::State;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::alerts::engine::Alert;
use crate::state::AppState;

/// The alerts of this agent.
#[derive(Debug, Serialize, ToSchema)]
pub struct AlertsView {
    /// Firing now, newest first.
    pub firing: Vec<Alert>,
    /// Resolved recently (the last 100), newest first.
    pub resolved: Vec<Alert>,
    /// Webhook deliveries that succeeded.
    pub webhooks_delivered: u64,
    /// Webhook deliveries given up on (every retry failed, or the queue was full).
    pub webhooks_failed: u64,
}

/// The alerts firing now and the recently resolved ones.
#[utoipa::path(get, path = "/api/alerts", tag = "alerts",
    responses((status = 200, description = "The alerts", body = AlertsView)))]
pub async fn alerts(State(state): State<AppState>) -> Json<AlertsView> {
    let Some(alerts) = state.alerts() else {
        return Json(AlertsView {
            firing: Vec::new(),
            resolved: Vec::new(),
            webhooks_delivered: 0,
            webhooks_failed: 0,
        });
    };
    let (firing, resolved) = alerts.list();
    let stats = alerts.webhook_stats();
    Json(AlertsView {
        firing,
        resolved,
        webhooks_delivered: stats.delivered.load(std::sync::atomic::Ordering::Relaxed),
        webhooks_failed: stats.failed.load(std::sync::atomic::Ordering::Relaxed),
    })
}

/// The routes of this resource.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(alerts))
}
