//! What each client command asks the agent, and what it prints.

use std::process::ExitCode;

use serde_json::{Value, json};
use ureq::http::Method;

use super::args::{ClientArgs, ClientCommand, SessionCommand};
use super::client::{Client, ClientError, encode};
use super::show;

/// Runs a client command; prints its result on stdout, or its error on stderr in one line.
pub fn run(command: &ClientCommand) -> ExitCode {
    let args = command.on();
    let token = match token(args) {
        Ok(token) => token,
        Err(e) => return fail(&e),
    };
    let client = Client::new(&args.base_url(), token);
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
            shown(client.get(&format!("/api/nodes{query}"))?, show::nodes)
        }
        ClientCommand::Node { name, .. } => shown(
            client.get(&format!("/api/nodes/{}", encode(name, false)))?,
            show::node,
        ),
        ClientCommand::Forget { name, .. } => {
            client.send(
                Method::DELETE,
                &format!("/api/nodes/{}", encode(name, false)),
                None,
            )?;
            Ok(format!("forgot {name}\n"))
        }
        ClientCommand::Graph { .. } => shown(client.get("/api/graph")?, show::graph),
        ClientCommand::Partition { .. } => shown(client.get("/api/partition")?, show::partition),
        ClientCommand::Scopes { .. } => shown(client.get("/api/scopes")?, show::scopes),
        ClientCommand::Registry {
            prefix,
            scope,
            limit,
            all,
            ..
        } => registry(client, json, prefix, scope.as_deref(), *limit, *all),
        ClientCommand::Lookup { key, scope, .. } => {
            let query = query(&[("scope", scope.as_deref())]);
            shown(
                client.get(&format!("/api/registry/{}{query}", encode(key, true)))?,
                |name| show::names(&json!({"items": [name]})),
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
            shown(client.get(&format!("/api/groups{query}"))?, show::groups)
        }
        ClientCommand::Members {
            key_or_prefix,
            scope,
            limit,
            ..
        } => members(client, json, key_or_prefix, scope.as_deref(), *limit),
        ClientCommand::Watch {
            pattern,
            scope,
            nodes,
            count,
            ..
        } => {
            watch(client, json, pattern, scope.as_deref(), *nodes, *count)?;
            Ok(String::new())
        }
        ClientCommand::Audit {
            kind, node, limit, ..
        } => {
            let limit = limit.to_string();
            let query = query(&[
                ("kind", kind.as_deref()),
                ("node", node.as_deref()),
                ("limit", Some(&limit)),
            ]);
            shown(client.get(&format!("/api/audit{query}"))?, show::audit)
        }
        ClientCommand::Alerts { .. } => shown(client.get("/api/alerts")?, show::alerts),
        ClientCommand::Session(session) => self::session(client, json, session),
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
                format!(
                    "{} (node: {})\n",
                    show::text(v, "level"),
                    show::text(v, "node")
                )
            })
        }
    }
}

/// `roster session ...`.
fn session(client: &Client, json: bool, command: &SessionCommand) -> Result<String, ClientError> {
    let answer = |value: Value, text: String| {
        if json { format!("{value:#}\n") } else { text }
    };
    match command {
        SessionCommand::Create { ttl, name, .. } => {
            let mut body = json!({ "ttl": ttl });
            if let Some(name) = name {
                body["name"] = Value::from(name.as_str());
            }
            let session = client.send(Method::POST, "/api/sessions", Some(&body))?;
            let id = show::text(&session, "id");
            Ok(answer(session, format!("{id}\n")))
        }
        SessionCommand::Register {
            id,
            key,
            meta,
            scope,
            ..
        }
        | SessionCommand::Join {
            id,
            key,
            meta,
            scope,
            ..
        } => {
            let what = if matches!(command, SessionCommand::Register { .. }) {
                "names"
            } else {
                "groups"
            };
            let meta = match meta {
                Some(text) => serde_json::from_str::<Value>(text)
                    .map_err(|e| ClientError::Usage(format!("--meta is not JSON ({e}): {text}")))?,
                None => Value::Null,
            };
            let query = query(&[("scope", scope.as_deref())]);
            let path = format!(
                "/api/sessions/{}/{what}/{}{query}",
                encode(id, false),
                encode(key, true)
            );
            let value = client.send(Method::PUT, &path, Some(&json!({ "meta": meta })))?;
            Ok(answer(value, format!("{key}\n")))
        }
        SessionCommand::Keepalive { id, .. } => {
            let path = format!("/api/sessions/{}/keepalive", encode(id, false));
            let value = client.send(Method::PUT, &path, None)?;
            let expires = show::text(&value, "expires_at_ms");
            Ok(answer(value, format!("{id} expires at {expires} ms\n")))
        }
        SessionCommand::Delete { id, .. } => {
            let path = format!("/api/sessions/{}", encode(id, false));
            let value = client.send(Method::DELETE, &path, None)?;
            Ok(answer(value, format!("deleted {id}\n")))
        }
    }
}

/// Every page of names when `all`, else the first.
fn registry(
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
    let mut out = show::names(&page);
    if cursor.is_some() {
        out.push_str("(more: --all, or a longer --limit)\n");
    }
    Ok(out)
}

/// The members of one group, or of each group under a prefix (one page of groups).
fn members(
    client: &Client,
    json: bool,
    key_or_prefix: &str,
    scope: Option<&str>,
    limit: u32,
) -> Result<String, ClientError> {
    let limit = limit.to_string();
    let keys: Vec<String> = if key_or_prefix.ends_with('/') {
        let query = query(&[("prefix", Some(key_or_prefix)), ("scope", scope)]);
        client
            .get(&format!("/api/groups{query}"))?
            .get("items")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .map(|group| show::text(group, "key"))
            .collect()
    } else {
        vec![key_or_prefix.to_owned()]
    };
    let query = query(&[("scope", scope), ("limit", Some(&limit))]);
    let mut groups = Vec::new();
    for key in &keys {
        groups.push(client.get(&format!("/api/groups/{}{query}", encode(key, true)))?);
    }
    if json {
        let value = if key_or_prefix.ends_with('/') {
            Value::from(groups)
        } else {
            groups.pop().unwrap_or(Value::Null)
        };
        return Ok(format!("{value:#}\n"));
    }
    Ok(groups.iter().map(show::members).collect())
}

/// Prints events as they come until `count` (or the end of the stream).
fn watch(
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
                println!("{}", show::event_line(name, &value));
            }
            seen += 1;
            count.is_none_or(|count| seen < count)
        },
    )
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
}
