//! Heartbeats beyond the node registry's memory: `GET /api/nodes/{name}/heartbeats`
//! prepends the history's heartbeats for the part of the window the memory ring does not
//! reach (it keeps the last two minutes by default, and nothing from before a restart).

use crate::history::now_ms;
use crate::state::AppState;
use crate::views::heartbeat::HeartbeatView;

/// The memory ring covers the window if its oldest heartbeat is this close to its start.
const COVERED_MS: u64 = 2_000;

/// `memory` (the ring's heartbeats of `name` since `since_ms`, oldest first), preceded by
/// the history's heartbeats of `name` from `since_ms` up to the ring's oldest one. A
/// heartbeat that several recorders kept (a shared database) is shown once. If the
/// history cannot be read, the ring's heartbeats are returned alone and a warning logged.
pub async fn merge(
    state: &AppState,
    name: &str,
    since_ms: u64,
    memory: Vec<HeartbeatView>,
) -> Vec<HeartbeatView> {
    let Some(history) = state.history() else {
        return memory;
    };
    let until_ms = memory.first().map_or(now_ms() + 1, |beat| beat.at_ms);
    if until_ms <= since_ms.saturating_add(COVERED_MS) {
        return memory;
    }
    let node = name.to_owned();
    let stored = match history
        .reader()
        .read(move |store| store.heartbeats(&node, since_ms, until_ms))
        .await
    {
        Ok(stored) => stored,
        Err(e) => {
            tracing::warn!(error = %e, "history: heartbeats beyond memory unavailable");
            return memory;
        }
    };
    let mut beats: Vec<HeartbeatView> = Vec::with_capacity(stored.len() + memory.len());
    for beat in stored {
        if beats.last().is_some_and(|last| last.at_ms == beat.at_ms) {
            continue;
        }
        match serde_json::from_value::<HeartbeatView>(beat.heartbeat) {
            Ok(view) => beats.push(view),
            Err(e) => tracing::debug!(error = %e, "history: skipping a heartbeat of another shape"),
        }
    }
    beats.extend(memory);
    beats
}
