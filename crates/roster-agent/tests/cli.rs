//! The command-line client against agents running as OS processes: every subcommand in
//! human and JSON form, the pages of names, and each exit code (0 ok, 1 not found or
//! refused, 2 usage, 3 unreachable, 4 unauthorised).

mod support;

use std::process::{Command, Output};
use std::time::Duration;

use serde_json::Value;
use support::{AgentProcess, eventually, get};

const TOKEN: &str = "cli-write-token-0123456789";

fn roster(args: &[&str]) -> Output {
    roster_with_token(args, None)
}

fn roster_with_token(args: &[&str], token: Option<&str>) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_roster"));
    command
        .args(args)
        .env_remove("ROSTER_ADDR")
        .env_remove("ROSTER_TOKEN")
        .env("NO_COLOR", "1");
    if let Some(token) = token {
        command.env("ROSTER_TOKEN", token);
    }
    command.output().expect("run roster")
}

fn stdout(output: &Output) -> String {
    assert!(
        output.status.success(),
        "exit {:?}: {}",
        output.status.code(),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout.clone()).expect("utf-8")
}

fn json(output: &Output) -> Value {
    serde_json::from_str(&stdout(output)).expect("JSON")
}

fn code(output: &Output) -> Option<i32> {
    output.status.code()
}

#[test]
fn every_subcommand_answers_in_tables_and_json_against_a_two_node_cluster() {
    let a = AgentProcess::start("cli-a", &["--role", "api"]);
    let b = AgentProcess::start("cli-b", &["--seed", &a.cluster]);
    let addr = a.http.clone();
    let on = |args: &[&str]| {
        let mut all: Vec<&str> = args.to_vec();
        all.extend(["--addr", addr.as_str()]);
        roster(&all)
    };
    eventually("two nodes online", Duration::from_secs(30), || {
        let (_, nodes) = get(&a.url("/api/nodes"));
        (nodes.as_array().map_or(0, Vec::len) == 2
            && nodes
                .as_array()
                .unwrap()
                .iter()
                .all(|n| n["status"] == "online"))
        .then_some(())
    });

    // Nodes, one node, the graph, the partition, the scopes.
    let nodes = stdout(&on(&["nodes"]));
    let lines: Vec<&str> = nodes.lines().collect();
    assert!(
        lines[0].starts_with("NAME") && lines[0].contains("STATUS"),
        "{nodes}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("cli-a") && l.contains("online") && l.contains("api")),
        "{nodes}"
    );
    let api_only = json(&on(&["nodes", "--json", "--role", "api"]));
    assert_eq!(api_only.as_array().map(Vec::len), Some(1), "{api_only}");
    assert_eq!(api_only[0]["name"], "cli-a");
    let node = stdout(&on(&["node", "cli-b"]));
    assert!(
        node.lines()
            .any(|l| l.starts_with("name") && l.ends_with("cli-b")),
        "{node}"
    );
    assert_eq!(json(&on(&["node", "cli-b", "--json"]))["name"], "cli-b");
    let graph = eventually("a graph with the link", Duration::from_secs(30), || {
        let text = stdout(&on(&["graph"]));
        text.contains("cli-a - cli-b").then_some(text)
    });
    assert!(graph.contains("LINK"), "{graph}");
    assert_eq!(
        json(&on(&["graph", "--json"]))["nodes"]
            .as_array()
            .map(Vec::len),
        Some(2)
    );
    let partition = stdout(&on(&["partition"]));
    assert!(
        partition
            .lines()
            .any(|l| l.starts_with("fenced") && l.ends_with("false")),
        "{partition}"
    );
    assert_eq!(json(&on(&["partition", "--json"]))["fenced"], false);
    assert!(
        stdout(&on(&["scopes"]))
            .lines()
            .any(|l| l.starts_with("default"))
    );
    assert_eq!(json(&on(&["scopes", "--json"]))[0]["name"], "default");

    // A session with names and groups, through the CLI.
    let id = stdout(&on(&["session", "create", "--ttl", "30s", "--name", "cli"]))
        .trim()
        .to_owned();
    assert_eq!(id.len(), 32, "{id}");
    let made = json(&on(&["session", "create", "--json"]));
    assert!(made["pid"].is_string(), "{made}");
    for i in 0..5 {
        let key = format!("user/{i}");
        let meta = format!("{{\"i\": {i}}}");
        assert_eq!(
            stdout(&on(&["session", "register", &id, &key, "--meta", &meta])).trim(),
            key
        );
    }
    stdout(&on(&["session", "join", &id, "room/1"]));
    stdout(&on(&["session", "join", &id, "room/2", "--meta", "\"x\""]));
    let kept = stdout(&on(&["session", "keepalive", &id]));
    assert!(kept.contains("expires at"), "{kept}");
    assert!(json(&on(&["session", "keepalive", &id, "--json"]))["expires_at_ms"].is_u64());

    // The registry from the other agent: pages, lookup, groups, members.
    let on_b = |args: &[&str]| {
        let mut all: Vec<&str> = args.to_vec();
        all.extend(["--addr", b.http.as_str()]);
        roster(&all)
    };
    eventually("b has the five names", Duration::from_secs(30), || {
        (json(&on_b(&["registry", "user/", "--json", "--all"]))["items"]
            .as_array()
            .map_or(0, Vec::len)
            == 5)
            .then_some(())
    });
    let first = stdout(&on_b(&["registry", "user/", "--limit", "2"]));
    assert_eq!(
        first.lines().filter(|l| l.starts_with("user/")).count(),
        2,
        "{first}"
    );
    assert!(first.contains("(more: --all"), "{first}");
    let all = stdout(&on_b(&["names", "user/", "--limit", "2", "--all"]));
    assert_eq!(
        all.lines().filter(|l| l.starts_with("user/")).count(),
        5,
        "{all}"
    );
    let lookup = stdout(&on_b(&["lookup", "user/3"]));
    assert!(
        lookup.contains("user/3") && lookup.contains("cli-a") && lookup.contains("{\"i\":3}"),
        "{lookup}"
    );
    assert_eq!(
        json(&on_b(&["lookup", "user/3", "--json"]))["node"],
        "cli-a"
    );
    eventually("b has the groups", Duration::from_secs(30), || {
        stdout(&on_b(&["groups", "room/"]))
            .contains("room/2")
            .then_some(())
    });
    assert_eq!(
        json(&on_b(&["groups", "room/", "--json"]))["items"]
            .as_array()
            .map(Vec::len),
        Some(2)
    );
    let members = stdout(&on_b(&["members", "room/1"]));
    assert!(
        members.contains("1 members in room/1") && members.contains("cli-a"),
        "{members}"
    );
    let under = stdout(&on_b(&["members", "room/"]));
    assert!(
        under.contains("room/1") && under.contains("room/2"),
        "{under}"
    );
    assert_eq!(
        json(&on_b(&["members", "room/", "--json"]))
            .as_array()
            .map(Vec::len),
        Some(2)
    );
    assert_eq!(json(&on_b(&["members", "room/2", "--json"]))["count"], 1);

    // Live events: a registration seen through b while it happens, in both forms.
    let watch = |json: bool| {
        let addr = b.http.clone();
        std::thread::spawn(move || {
            let mut args = vec!["watch", "live/", "--count", "1", "--addr", addr.as_str()];
            if json {
                args.push("--json");
            }
            roster(&args)
        })
    };
    let (as_json, as_text) = (watch(true), watch(false));
    eventually(
        "the watches see a registration",
        Duration::from_secs(30),
        || {
            // Registers until both watchers (which may not be subscribed yet) have one.
            let key = format!("live/{}", rand_suffix());
            stdout(&on(&["session", "register", &id, &key]));
            (as_json.is_finished() && as_text.is_finished()).then_some(())
        },
    );
    let line = stdout(&as_json.join().expect("watcher"));
    let event: Value = serde_json::from_str(line.trim()).expect("one JSON line");
    assert_eq!(event["data"]["kind"], "registered", "{line}");
    let line = stdout(&as_text.join().expect("watcher"));
    assert!(
        line.starts_with("registered") && line.contains("key=live/"),
        "{line}"
    );

    // History and alerts, the log level, then the session ends.
    let audit = stdout(&on(&["audit", "--kind", "node_up"]));
    assert!(
        audit.lines().next().is_some_and(|l| l.starts_with("AT_MS")),
        "{audit}"
    );
    assert!(json(&on(&["audit", "--json", "--limit", "5"]))["items"].is_array());
    assert!(stdout(&on(&["alerts"])).starts_with("STATE"));
    assert!(json(&on(&["alerts", "--json"]))["firing"].is_array());
    assert!(stdout(&on(&["log-level", "debug"])).starts_with("debug"));
    assert_eq!(json(&on(&["log-level", "--json"]))["level"], "debug");
    assert_eq!(
        stdout(&on(&["session", "delete", &id])).trim(),
        format!("deleted {id}")
    );
    let expired = on(&["session", "keepalive", &id]);
    assert_eq!(code(&expired), Some(1));
    assert!(String::from_utf8_lossy(&expired.stderr).contains("session_expired"));
}

fn rand_suffix() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

#[test]
fn each_exit_code_says_what_went_wrong() {
    let a = AgentProcess::start_with_env("cli-err", &[], &[("ROSTER_TOKEN", TOKEN)]);
    let addr = a.http.clone();

    // 1: not found, or refused.
    let missing = roster(&["lookup", "user/1", "--addr", &addr]);
    assert_eq!(code(&missing), Some(1));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("404 unknown_name"));
    let unknown_scope = roster(&["registry", "--scope", "nope", "--addr", &addr]);
    assert_eq!(code(&unknown_scope), Some(1));
    assert!(String::from_utf8_lossy(&unknown_scope.stderr).contains("unknown_scope"));
    let live = roster_with_token(&["forget", "cli-err", "--addr", &addr], Some(TOKEN));
    assert_eq!(code(&live), Some(1), "a live node cannot be forgotten");

    // 4: unauthorised, without a token or with a wrong one.
    let no_token = roster(&["session", "create", "--addr", &addr]);
    assert_eq!(code(&no_token), Some(4));
    let wrong = roster_with_token(
        &["session", "create", "--addr", &addr],
        Some("wrong-token-0123456789"),
    );
    assert_eq!(code(&wrong), Some(4));
    let right = roster_with_token(&["session", "create", "--addr", &addr], Some(TOKEN));
    assert_eq!(code(&right), Some(0));

    // 2: usage.
    assert_eq!(code(&roster(&["registry", "--limit", "many"])), Some(2));
    let bad_meta = roster_with_token(
        &[
            "session", "register", "x", "k", "--meta", "{nope", "--addr", &addr,
        ],
        Some(TOKEN),
    );
    assert_eq!(code(&bad_meta), Some(2));
    assert!(String::from_utf8_lossy(&bad_meta.stderr).contains("--meta is not JSON"));

    // 3: unreachable, in one line.
    drop(a);
    let gone = roster(&["nodes", "--addr", &addr]);
    assert_eq!(code(&gone), Some(3));
    let text = String::from_utf8_lossy(&gone.stderr);
    assert_eq!(text.lines().count(), 1, "{text}");
    assert!(
        text.contains("cannot reach an agent") && text.contains("roster agent"),
        "{text}"
    );
}

#[test]
fn completions_are_printed_for_each_shell() {
    for shell in ["bash", "zsh", "fish"] {
        let script = stdout(&roster(&["completions", shell]));
        assert!(
            script.contains("roster") && script.contains("registry"),
            "{shell}"
        );
    }
}
