//! The JSON `data` of each stream event: kind, scope, key, pid, node, meta (as JSON) and
//! reason for a registry event; the node, its status and why for a node event.

use roster::nodes::NodeEvent;
use roster::{Event, EventKind, ExitReason, Node, Reason};
use serde_json::{Value, json};

use crate::views::meta::{meta_json, pid_text};

/// The SSE name of a registry event.
pub fn kind_name(kind: EventKind) -> &'static str {
    match kind {
        EventKind::Registered => "registered",
        EventKind::Unregistered => "unregistered",
        EventKind::Joined => "joined",
        EventKind::Left => "left",
        EventKind::ConflictResolved => "conflict_resolved",
        _ => "registry_event",
    }
}

/// Why an entry changed, as text: `requested`, `exit:normal`, `exit:killed`,
/// `exit:session_expired` (a shutdown reason as it was given),
/// `exit:node_down`, `conflict`, `scope_disconnected`, `resynced`, ...
pub fn reason_text(reason: &Reason) -> String {
    match reason {
        Reason::Requested => "requested".to_owned(),
        Reason::Exit(exit) => format!("exit:{}", exit_text(exit)),
        Reason::ScopeDisconnected => "scope_disconnected".to_owned(),
        Reason::Conflict { .. } => "conflict".to_owned(),
        Reason::Resynced => "resynced".to_owned(),
        other => format!("{other:?}").to_lowercase(),
    }
}

fn exit_text(exit: &ExitReason) -> String {
    match exit {
        ExitReason::Normal => "normal".to_owned(),
        ExitReason::Panicked => "panicked".to_owned(),
        ExitReason::Killed => "killed".to_owned(),
        ExitReason::Conflict { .. } => "conflict".to_owned(),
        ExitReason::NodeDown => "node_down".to_owned(),
        ExitReason::Shutdown(reason) => reason.clone(),
        other => format!("{other:?}").to_lowercase(),
    }
}

/// The data of a registry event.
pub fn registry_data(node: &Node, event: &Event) -> Value {
    let mut data = json!({
        "kind": kind_name(event.kind),
        "scope": event.scope.as_str(),
        "key": event.key.as_str(),
        "pid": pid_text(event.pid),
        "node": node.node_name_of(event.pid),
        "meta": meta_json(&event.meta),
        "reason": reason_text(&event.reason),
    });
    if let Reason::Conflict {
        winner,
        loser,
        rule,
        ..
    } = &event.reason
    {
        data["winner"] = Value::from(pid_text(*winner));
        data["winner_node"] = Value::from(node.node_name_of(*winner));
        data["loser"] = Value::from(pid_text(*loser));
        data["rule"] = Value::from(rule.as_str());
    }
    data
}

/// The SSE name and data of a node event; `None` for heartbeats (not streamed).
pub fn node_data(event: &NodeEvent) -> Option<(&'static str, Value)> {
    Some(match event {
        NodeEvent::Up { record, first_seen } => (
            "node_up",
            json!({"kind": "node_up", "node": record.name, "first_seen": first_seen,
                   "role": record.role, "version": record.version}),
        ),
        NodeEvent::Down {
            name, left, reason, ..
        } => (
            "node_down",
            json!({"kind": "node_down", "node": name, "left": left, "reason": reason}),
        ),
        NodeEvent::Updated { record } => (
            "node_updated",
            json!({"kind": "node_updated", "node": record.name, "role": record.role,
                   "version": record.version, "labels": record.labels}),
        ),
        NodeEvent::Status {
            name,
            old,
            new,
            reason,
        } => (
            "node_status",
            json!({"kind": "node_status", "node": name, "old": old.to_string(),
                   "new": new.to_string(), "reason": reason}),
        ),
        NodeEvent::Heartbeat { .. } => return None,
        NodeEvent::LinkUp { peer, session, .. } => (
            "link_up",
            json!({"kind": "link_up", "node": peer, "session": session}),
        ),
        NodeEvent::LinkDown {
            peer,
            session,
            reason,
            ..
        } => (
            "link_down",
            json!({"kind": "link_down", "node": peer, "session": session, "reason": reason}),
        ),
        NodeEvent::PartitionDetected { node, status } => (
            "partition_detected",
            json!({"kind": "partition_detected", "node": node, "fenced": status.fenced,
                   "reason": status.verdict.reason}),
        ),
        NodeEvent::PartitionHealed { node, status } => (
            "partition_healed",
            json!({"kind": "partition_healed", "node": node, "fenced": status.fenced,
                   "reason": status.verdict.reason}),
        ),
        _ => (
            "node_event",
            json!({"kind": "node_event", "detail": format!("{event:?}")}),
        ),
    })
}
