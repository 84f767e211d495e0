//! How the client prints what an agent answers: plain tables, a node's fields, one line
//! per event; the status column in colour on a terminal (not with `NO_COLOR`).

use std::io::IsTerminal;

use serde_json::Value;

use super::table::Table;

/// One event on one line: its kind, then its fields.
pub fn event_line(name: &str, value: &Value) -> String {
    let kind = value.get("kind").and_then(Value::as_str).unwrap_or(name);
    let fields: Vec<String> = value
        .as_object()
        .map(|o| {
            o.iter()
                .filter(|(k, v)| *k != "kind" && !v.is_null())
                .map(|(k, v)| match v {
                    Value::String(s) => format!("{k}={s}"),
                    other => format!("{k}={other}"),
                })
                .collect()
        })
        .unwrap_or_default();
    format!("{kind:<12} {}", fields.join(" "))
}

/// A field as text (strings as they are, others as JSON, `-` when absent or null).
pub fn text(value: &Value, field: &str) -> String {
    match value.get(field) {
        None | Some(Value::Null) => "-".to_owned(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    }
}

/// Nodes as a table: name, status, role, version, address, reason.
pub fn nodes(value: &Value) -> String {
    let mut table = Table::new(&["NAME", "STATUS", "ROLE", "VERSION", "ADDRESS", "REASON"]);
    for node in value.as_array().into_iter().flatten() {
        let addr = node
            .get("addrs")
            .and_then(Value::as_array)
            .and_then(|a| a.first())
            .and_then(Value::as_str)
            .unwrap_or("-");
        table.row(vec![
            text(node, "name"),
            status(&text(node, "status")),
            text(node, "role"),
            text(node, "version"),
            addr.to_owned(),
            text(node, "status_reason"),
        ]);
    }
    table.render()
}

/// One node's fields, its health and last heartbeat.
pub fn node(node: &Value) -> String {
    let value = node;
    let mut out = String::new();
    for field in [
        "name",
        "incarnation",
        "status",
        "status_reason",
        "role",
        "version",
        "labels",
        "addrs",
        "last_seen_ms",
        "offline",
    ] {
        out.push_str(&format!("{field:<14} {}\n", text(node, field)));
    }
    if let Some(health) = value.get("health").filter(|h| !h.is_null()) {
        out.push_str(&format!("{:<14} {}\n", "rtt_ms", text(health, "rtt_ms")));
        out.push_str(&format!(
            "{:<14} {}\n",
            "degraded",
            text(health, "degraded_reasons")
        ));
        if let Some(beat) = health.get("last_heartbeat").filter(|b| !b.is_null()) {
            out.push_str(&format!(
                "{:<14} cpu {} mem {}/{} processes {} names {}\n",
                "heartbeat",
                text(beat, "cpu_load"),
                text(beat, "mem_used_bytes"),
                text(beat, "mem_total_bytes"),
                text(beat, "processes"),
                text(beat, "names"),
            ));
        }
    }
    out
}

/// The graph: its nodes as a table, then its links.
pub fn graph(value: &Value) -> String {
    let mut out = nodes(value.get("nodes").unwrap_or(&Value::Null));
    let mut links = Table::new(&["LINK", "KIND", "RTT_MS", "STALE"]);
    for link in value
        .get("links")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        links.row(vec![
            format!("{} - {}", text(link, "source"), text(link, "target")),
            text(link, "kind"),
            text(link, "rtt_ms"),
            text(link, "stale"),
        ]);
    }
    out.push('\n');
    out.push_str(&links.render());
    out
}

/// The split-brain verdict, one field per line.
pub fn partition(value: &Value) -> String {
    let mut out = String::new();
    for field in [
        "partition_suspected",
        "unreachable",
        "side",
        "strategy",
        "keeps_writing",
        "deciding_node",
        "reason",
        "fenced",
    ] {
        out.push_str(&format!("{field:<20} {}\n", text(value, field)));
    }
    out
}

/// Scopes as a table.
pub fn scopes(value: &Value) -> String {
    let mut table = Table::new(&["SCOPE", "LOCAL_ONLY", "NAMES", "MEMBERSHIPS", "PEERS"]);
    for scope in value.as_array().into_iter().flatten() {
        table.row(vec![
            text(scope, "name"),
            text(scope, "local_only"),
            text(scope, "names"),
            text(scope, "memberships"),
            text(scope, "peers"),
        ]);
    }
    table.render()
}

/// Names as a table: key, node, pid, meta.
pub fn names(value: &Value) -> String {
    let mut table = Table::new(&["KEY", "NODE", "PID", "META"]);
    for name in value
        .get("items")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        table.row(vec![
            text(name, "key"),
            text(name, "node"),
            text(name, "pid"),
            text(name, "meta"),
        ]);
    }
    table.render()
}

/// Groups as a table: key, member count.
pub fn groups(value: &Value) -> String {
    let mut table = Table::new(&["GROUP", "MEMBERS"]);
    for group in value
        .get("items")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        table.row(vec![text(group, "key"), text(group, "members")]);
    }
    table.render()
}

/// A group's members as a table, and its count.
pub fn members(value: &Value) -> String {
    let mut table = Table::new(&["PID", "NODE", "META"]);
    for member in value
        .get("members")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        table.row(vec![
            text(member, "pid"),
            text(member, "node"),
            text(member, "meta"),
        ]);
    }
    let mut out = table.render();
    out.push_str(&format!(
        "{} members in {}\n",
        text(value, "count"),
        text(value, "key")
    ));
    out
}

/// A node status, in colour on a terminal: green up, yellow degraded or draining, red
/// offline or unreachable. Plain when stdout is not a terminal or `NO_COLOR` is set.
pub fn status(status: &str) -> String {
    let colour = std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    let code = match status {
        "online" => "32",
        "degraded" | "draining" => "33",
        "offline" | "unreachable" => "31",
        _ => return status.to_owned(),
    };
    if colour {
        format!("\x1b[{code}m{status}\x1b[0m")
    } else {
        status.to_owned()
    }
}

/// The audit log: one row per item, who recorded it (every recorder of a fact that
/// several recorded), its fields after its kind.
pub fn audit(value: &Value) -> String {
    let mut table = Table::new(&["AT_MS", "RECORDED_BY", "KIND", "DETAILS"]);
    for row in value
        .get("items")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let details: Vec<String> = row
            .as_object()
            .into_iter()
            .flatten()
            .filter(|(k, v)| {
                !matches!(
                    k.as_str(),
                    "id" | "at_ms" | "recorder" | "recorded_by" | "kind"
                ) && !v.is_null()
            })
            .map(|(k, v)| match v {
                Value::String(s) => format!("{k}={s}"),
                other => format!("{k}={other}"),
            })
            .collect();
        let recorded_by: Vec<&str> = row
            .get("recorded_by")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        table.row(vec![
            text(row, "at_ms"),
            if recorded_by.is_empty() {
                text(row, "recorder")
            } else {
                recorded_by.join(",")
            },
            text(row, "kind"),
            details.join(" "),
        ]);
    }
    table.render()
}

/// The alerts: those firing, then the resolved ones.
pub fn alerts(value: &Value) -> String {
    let mut table = Table::new(&["STATE", "RULE", "SUBJECT", "SINCE_MS", "MESSAGE"]);
    for (state, list) in [("firing", "firing"), ("resolved", "resolved")] {
        for alert in value
            .get(list)
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            table.row(vec![
                state.to_owned(),
                text(alert, "rule"),
                text(alert, "subject"),
                text(alert, "fired_at_ms"),
                text(alert, "message"),
            ]);
        }
    }
    table.render()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn an_event_is_one_line() {
        let event =
            json!({"kind": "registered", "key": "user/1", "meta": {"a": 1}, "reason": null});
        assert_eq!(
            event_line("message", &event),
            "registered   key=user/1 meta={\"a\":1}"
        );
    }

    #[test]
    fn a_status_is_plain_off_a_terminal() {
        // Tests run with stdout captured: not a terminal.
        assert_eq!(status("online"), "online");
    }
}
