//! Link sessions beyond the library's memory: `GET /api/link-sessions` adds the closed
//! sessions of the history (the library keeps the last 64, and none from before a
//! restart). With a database shared by several agents, each agent's sessions are listed
//! once per recorder: one row per (recorder, session), grouped by the pair of nodes.

use super::graph::LinkSessionView;
use super::history_errors::unavailable;
use crate::history::record::RecordKind;
use crate::history::store::AuditQuery;
use crate::state::AppState;

/// The most closed sessions read from the history per request.
const MAX_FROM_HISTORY: usize = 1000;

/// `memory` (this node's sessions as the library lists them) and the closed sessions of
/// the history since `since_ms`, without duplicates, sorted by pair of nodes then by
/// when they were established.
///
/// # Errors
///
/// 503 `history_unavailable` if the history cannot be read.
pub async fn merge(
    state: &AppState,
    since_ms: Option<u64>,
    mut memory: Vec<LinkSessionView>,
) -> Result<Vec<LinkSessionView>, crate::errors::ApiError> {
    let Some(history) = state.history() else {
        return Ok(memory);
    };
    let query = AuditQuery {
        since_ms,
        kinds: vec!["link_closed".to_owned()],
        limit: MAX_FROM_HISTORY,
        ..AuditQuery::default()
    };
    let rows = history
        .reader()
        .read(move |store| store.audit(&query))
        .await
        .map_err(|e| unavailable(&e))?;
    for row in rows {
        let RecordKind::LinkClosed {
            peer,
            peer_incarnation,
            session,
            reason,
            link_kind,
            established_ms,
            bytes_out,
            bytes_in,
            frames_out,
            frames_in,
            rtt_us,
        } = row.record.kind
        else {
            continue;
        };
        let recorder = row.record.recorder;
        if memory
            .iter()
            .any(|s| s.recorder == recorder && s.session == session)
        {
            continue;
        }
        memory.push(LinkSessionView {
            recorder,
            session,
            peer,
            peer_incarnation,
            kind: link_kind.unwrap_or_default(),
            established_ms: established_ms.unwrap_or_default(),
            rtt_ms: rtt_us.map(|us| us as f64 / 1000.0),
            bytes_out: bytes_out.unwrap_or_default(),
            bytes_in: bytes_in.unwrap_or_default(),
            frames_out: frames_out.unwrap_or_default(),
            frames_in: frames_in.unwrap_or_default(),
            closed_ms: Some(row.record.at_ms),
            closed_reason: Some(reason),
        });
    }
    memory.sort_by(|a, b| {
        pair(a)
            .cmp(&pair(b))
            .then(a.established_ms.cmp(&b.established_ms))
            .then(a.recorder.cmp(&b.recorder))
    });
    Ok(memory)
}

/// The two ends of a session, in name order.
fn pair(session: &LinkSessionView) -> (&str, &str) {
    let (a, b) = (session.recorder.as_str(), session.peer.as_str());
    if a <= b { (a, b) } else { (b, a) }
}
