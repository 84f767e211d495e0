//! What each client command asks the agent and prints.

use std::process::ExitCode;

use serde_json::{Value, json};
use ureq::http::Method;

use super::args::{ClientArgs, ClientCommand};
use super::client::{Client, ClientError, encode};
use super::table::Table;

/// Runs a client command; prints its result on stdout, or its error on stderr.
pub fn run(command: &ClientCommand) -> ExitCode {
    let args = command.on();
    let token = match token(args) {
        Ok(token) => token,
        Err(e) => return fail(&e),
    };
    let client = Client::new(&args.agent, token);
    match execute(&client, args.json, command) {
        Ok(text) => {
            print!("{text}");
            ExitCode::SUCCESS
        }
        Err(e) => fail(&e),
    }
}

fn fail(error: &ClientError) -> ExitCode {
    eprintln!("roster: {error}");
    ExitCode::from(error.exit_code())
}

/// The token from `--token-file`, else `ROSTER_TOKEN`.
fn token(args: &ClientArgs) -> Result<Option<String>, ClientError> {
    match &args.token_file {
        Some(path) => std::fs::read_to_string(path)
            .map(|t| Some(t.trim().to_owned()))
            .map_err(|e| ClientError::TokenFile {
                path: path.display().to_string(),
                reason: e.to_string(),
            }),
        None => Ok(std::env::var("ROSTER_TOKEN").ok().filter(|t| !t.is_empty())),
    }
}

/// Runs `command`, returning what to print.
pub fn execute(
    client: &Client,
    json: bool,
    command: &ClientCommand,
) -> Result<String, ClientError> {
    let shown = |value: Value, table: fn(&Value) -> String| {
        if json {
            Ok(format!("{value:#}\n"))
        } else {
            Ok(table(&value))
        }
    };
    match command {
        ClientCommand::Nodes {
            status,
            role,
            label,
            ..
        } => {
            let query = query(&[
                ("status", status.as_deref()),
                ("role", role.as_deref()),
                ("label", label.as_deref()),
            ]);
            shown(client.get(&format!("/api/nodes{query}"))?, nodes_table)
        }
        ClientCommand::Node { name, .. } => shown(
            client.get(&format!("/api/nodes/{}", encode(name, false)))?,
            node_text,
        ),
        ClientCommand::Forget { name, .. } => {
            client.send(
                Method::DELETE,
                &format!("/api/nodes/{}", encode(name, false)),
                None,
            )?;
            Ok(format!("forgot {name}\n"))
        }
        ClientCommand::Graph { .. } => shown(client.get("/api/graph")?, graph_text),
        ClientCommand::Partition { .. } => shown(client.get("/api/partition")?, partition_text),
        ClientCommand::Scopes { .. } => shown(client.get("/api/scopes")?, scopes_table),
        ClientCommand::Names {
            prefix,
            scope,
            limit,
            all,
            ..
        } => names(client, json, prefix, scope.as_deref(), *limit, *all),
        ClientCommand::Lookup { key, scope, .. } => {
            let query = query(&[("scope", scope.as_deref())]);
            shown(
                client.get(&format!("/api/registry/{}{query}", encode(key, true)))?,
                |name| names_table(&json!({"items": [name]})),
            )
        }
        ClientCommand::Groups {
            prefix,
            scope,
            limit,
            ..
        } => {
            let limit = limit.to_string();
            let query = query(&[
                ("prefix", Some(prefix.as_str()).filter(|p| !p.is_empty())),
                ("scope", scope.as_deref()),
                ("limit", Some(&limit)),
            ]);
            shown(client.get(&format!("/api/groups{query}"))?, groups_table)
        }
        ClientCommand::Members {
            key, scope, limit, ..
        } => {
            let limit = limit.to_string();
            let query = query(&[("scope", scope.as_deref()), ("limit", Some(&limit))]);
            shown(
                client.get(&format!("/api/groups/{}{query}", encode(key, true)))?,
                members_table,
            )
        }
        ClientCommand::Events {
            pattern,
            scope,
            nodes,
            count,
            ..
        } => {
            events(client, json, pattern, scope.as_deref(), *nodes, *count)?;
            Ok(String::new())
        }
        ClientCommand::LogLevel { level, .. } => {
            let value = match level {
                Some(level) => client.send(
                    Method::PUT,
                    "/api/log-level",
                    Some(&json!({ "level": level })),
                )?,
                None => client.get("/api/log-level")?,
            };
            shown(value, |v| {
                format!("{} (node: {})\n", text(v, "level"), text(v, "node"))
            })
        }
    }
}

/// Every page of names when `all`, else the first.
fn names(
    client: &Client,
    json: bool,
    prefix: &str,
    scope: Option<&str>,
    limit: u32,
    all: bool,
) -> Result<String, ClientError> {
    let limit = limit.to_string();
    let mut items = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let query = query(&[
            ("prefix", Some(prefix).filter(|p| !p.is_empty())),
            ("scope", scope),
            ("limit", Some(&limit)),
            ("cursor", cursor.as_deref()),
        ]);
        let page = client.get(&format!("/api/registry{query}"))?;
        if let Some(page_items) = page.get("items").and_then(Value::as_array) {
            items.extend(page_items.iter().cloned());
        }
        cursor = page
            .get("next_cursor")
            .and_then(Value::as_str)
            .map(str::to_owned);
        if !all || cursor.is_none() {
            break;
        }
    }
    let page = json!({ "items": items, "next_cursor": cursor });
    if json {
        return Ok(format!("{page:#}\n"));
    }
    let mut out = names_table(&page);
    if cursor.is_some() {
        out.push_str("(more: --all, or a longer --limit)\n");
    }
    Ok(out)
}

/// Prints events as they come until `count` (or the end of the stream).
fn events(
    client: &Client,
    json: bool,
    pattern: &str,
    scope: Option<&str>,
    nodes: bool,
    count: Option<u64>,
) -> Result<(), ClientError> {
    let query = query(&[
        ("pattern", Some(pattern).filter(|p| !p.is_empty())),
        ("scope", scope),
        ("nodes", nodes.then_some("true")),
    ]);
    let mut seen = 0;
    client.events(
        &format!("/api/events{query}"),
        || {},
        |name, data| {
            if json {
                println!("{{\"event\":{},\"data\":{data}}}", Value::from(name));
            } else {
                let value: Value = serde_json::from_str(data).unwrap_or(Value::from(data));
                println!("{}", event_line(name, &value));
            }
            seen += 1;
            count.is_none_or(|count| seen < count)
        },
    )
}

/// One event on one line: its kind, then its fields.
fn event_line(name: &str, value: &Value) -> String {
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

/// `?a=x&b=y` of the parameters that are set (empty if none).
fn query(params: &[(&str, Option<&str>)]) -> String {
    let set: Vec<String> = params
        .iter()
        .filter_map(|(k, v)| v.map(|v| format!("{k}={}", encode(v, false))))
        .collect();
    if set.is_empty() {
        String::new()
    } else {
        format!("?{}", set.join("&"))
    }
}

/// A field as text (strings as they are, others as JSON, `-` when absent or null).
fn text(value: &Value, field: &str) -> String {
    match value.get(field) {
        None | Some(Value::Null) => "-".to_owned(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    }
}

fn nodes_table(value: &Value) -> String {
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
            text(node, "status"),
            text(node, "role"),
            text(node, "version"),
            addr.to_owned(),
            text(node, "status_reason"),
        ]);
    }
    table.render()
}

fn node_text(node: &Value) -> String {
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

fn graph_text(value: &Value) -> String {
    let mut out = nodes_table(value.get("nodes").unwrap_or(&Value::Null));
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

fn partition_text(value: &Value) -> String {
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

fn scopes_table(value: &Value) -> String {
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

fn names_table(value: &Value) -> String {
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

fn groups_table(value: &Value) -> String {
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

fn members_table(value: &Value) -> String {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_query_holds_only_the_parameters_set() {
        assert_eq!(query(&[("a", None)]), "");
        assert_eq!(
            query(&[("prefix", Some("user/")), ("x", None), ("limit", Some("5"))]),
            "?prefix=user%2F&limit=5"
        );
    }

    #[test]
    fn an_event_is_one_line() {
        let event =
            json!({"kind": "registered", "key": "user/1", "meta": {"a": 1}, "reason": null});
        assert_eq!(
            event_line("message", &event),
            "registered   key=user/1 meta={\"a\":1}"
        );
    }
}
