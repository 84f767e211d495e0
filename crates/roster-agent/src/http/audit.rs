//! `GET /api/audit`: the audit log of the history (status changes, nodes up and down,
//! links, name conflicts, partitions and fences, sessions, alerts), newest first, with a
//! stable cursor. A fact that several agents sharing a database each recorded (a name
//! conflict, a node leaving) is one item listing every recorder. Items are ordered by the id of their
//! first row, which later rows never change, and pages are ranges of those ids, so rows
//! written meanwhile never shift them and an item is never split across pages.
// utoipa's expansion of `params(SomeQuery)` qualifies the type in full.
#![allow(unused_qualifications)]

use axum::Json;
use axum::extract::State;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::history_errors::{history, unavailable};
use super::pagination::{DEFAULT_LIMIT, MAX_LIMIT, decode_cursor, encode_cursor, parse_limit};
use crate::errors::{ApiError, ApiQuery, ErrorBody};
use crate::history::record::{AUDIT_KINDS, RecordKind};
use crate::history::store::{AuditQuery, merge_items};
use crate::state::AppState;

/// Which audit rows to list (all conditions given must hold).
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AuditParams {
    /// Recorded at or after this time, in milliseconds since the Unix epoch.
    #[param(value_type = Option<u64>, maximum = 9_223_372_036_854_775_807_u64)]
    pub since: Option<String>,
    /// Recorded before this time, in milliseconds since the Unix epoch.
    #[param(value_type = Option<u64>)]
    pub until: Option<String>,
    /// Only these kinds, comma-separated: node_status, node_up, node_down, link_opened,
    /// link_closed, name_conflict, partition_detected, partition_healed, fence_raised,
    /// fence_lowered, session_expired, session_deleted, alert.
    #[param(
        pattern = r"^(node_status|node_up|node_down|link_opened|link_closed|name_conflict|partition_detected|partition_healed|fence_raised|fence_lowered|session_expired|session_deleted|alert)(,(node_status|node_up|node_down|link_opened|link_closed|name_conflict|partition_detected|partition_healed|fence_raised|fence_lowered|session_expired|session_deleted|alert))*$"
    )]
    pub kind: Option<String>,
    /// Only items about this node: recorded by it, or naming it (the node of node facts,
    /// the peer of links, the subject of alerts, the winner's or loser's node of a name
    /// conflict, a node on either side of a partition verdict or fence).
    pub node: Option<String>,
    /// At most this many items, 1 to 1000 (default 100).
    #[param(value_type = Option<u32>, minimum = 1, maximum = 1000)]
    pub limit: Option<String>,
    /// The `next_cursor` of the previous page.
    #[param(min_length = 1)]
    pub cursor: Option<String>,
}

/// One item of the audit log: a fact, when it was first recorded, who recorded it, and
/// the record's fields beside its `kind`. A fact that several agents sharing a database
/// each recorded (a name conflict: the same scope, key, winner, loser and rule; a node that
/// left on purpose: the same node and incarnation) is one item, with every recorder in
/// `recorded_by`.
#[derive(Debug, Serialize, ToSchema)]
pub struct AuditEntry {
    /// The id of its first row in the history.
    pub id: i64,
    /// When it was first recorded, in milliseconds since the Unix epoch.
    pub at_ms: u64,
    /// The node that recorded it first.
    pub recorder: String,
    /// Every node that recorded it, in name order.
    pub recorded_by: Vec<String>,
    /// What happened.
    #[serde(flatten)]
    pub record: RecordKind,
}

/// A page of the audit log.
#[derive(Debug, Serialize, ToSchema)]
pub struct AuditPage {
    /// The items, newest first (by their first row).
    pub items: Vec<AuditEntry>,
    /// The cursor of the next (older) page; absent on the last page.
    pub next_cursor: Option<String>,
}

fn millis(name: &str, text: Option<&str>) -> Result<Option<u64>, ApiError> {
    text.map(|text| {
        text.parse::<u64>().map_err(|_| {
            ApiError::bad_request(
                "bad_time",
                format!("{name} {text:?} is not allowed: give milliseconds since the Unix epoch"),
            )
        })
    })
    .transpose()
}

/// The audit query of `params`.
fn query(params: &AuditParams) -> Result<AuditQuery, ApiError> {
    let kinds: Vec<String> = match params.kind.as_deref() {
        None => Vec::new(),
        Some(text) => text
            .split(',')
            .map(|kind| {
                if AUDIT_KINDS.contains(&kind) {
                    Ok(kind.to_owned())
                } else {
                    Err(ApiError::bad_request(
                        "bad_kind",
                        format!(
                            "kind {kind:?} is not allowed: one of {}",
                            AUDIT_KINDS.join(", ")
                        ),
                    ))
                }
            })
            .collect::<Result<_, _>>()?,
    };
    let before_item = match params.cursor.as_deref() {
        None => None,
        Some(cursor) => Some(decode_cursor(cursor)?.parse::<i64>().map_err(|_| {
            ApiError::bad_request(
                "bad_cursor",
                "the cursor is not one this API gave (pass next_cursor as it is)",
            )
        })?),
    };
    Ok(AuditQuery {
        since_ms: millis("since", params.since.as_deref())?,
        until_ms: millis("until", params.until.as_deref())?,
        kinds,
        node: params.node.clone(),
        before_item,
        limit: parse_limit(params.limit.as_deref(), DEFAULT_LIMIT, MAX_LIMIT)?,
    })
}

/// The audit log, newest first.
#[utoipa::path(get, path = "/api/audit", tag = "history", params(AuditParams),
    responses(
        (status = 200, description = "A page of the audit log, newest first", body = AuditPage),
        (status = 400, description = "bad_time, bad_kind, bad_limit, bad_cursor or bad_query", body = ErrorBody),
        (status = 404, description = "history_off", body = ErrorBody),
        (status = 503, description = "history_unavailable", body = ErrorBody),
    ))]
pub async fn audit(
    State(state): State<AppState>,
    ApiQuery(params): ApiQuery<AuditParams>,
) -> Result<Json<AuditPage>, ApiError> {
    let mut query = query(&params)?;
    let limit = query.limit;
    query.limit = limit + 1;
    let rows = history(&state)?
        .reader()
        .read(move |store| store.audit(&query))
        .await
        .map_err(|e| unavailable(&e))?;
    let mut items = merge_items(rows);
    let next_cursor = if items.len() > limit {
        items.truncate(limit);
        items.last().map(|item| encode_cursor(&item.id.to_string()))
    } else {
        None
    };
    Ok(Json(AuditPage {
        items: items
            .into_iter()
            .map(|item| AuditEntry {
                id: item.id,
                at_ms: item.at_ms,
                recorder: item.record.recorder,
                recorded_by: item.recorded_by,
                record: item.record.kind,
            })
            .collect(),
        next_cursor,
    }))
}

/// The routes of this resource.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(audit))
}
