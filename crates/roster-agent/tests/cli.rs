//! The command-line client against agents running as OS processes: tables and JSON, the
//! pages of names, errors and their exit codes.

mod support;

use std::process::{Command, Output};
use std::time::Duration;

use serde_json::Value;
use support::{AgentProcess, eventually, get};

fn roster(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_roster"))
        .args(args)
        .env_remove("ROSTER_AGENT")
        .env_remove("ROSTER_TOKEN")
        .output()
        .expect("run roster")
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

#[test]
fn the_client_shows_nodes_graph_partition_and_scopes_of_a_two_node_cluster() {
    let a = AgentProcess::start("cli-a", &["--role", "api"]);
    let b = AgentProcess::start("cli-b", &["--seed", &a.cluster]);
    let agent = a.url("");
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
    let nodes = stdout(&roster(&["nodes", "--agent", &agent]));
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
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("cli-b") && l.contains("online")),
        "{nodes}"
    );

    let json: Value = serde_json::from_str(&stdout(&roster(&[
        "nodes", "--agent", &agent, "--json", "--role", "api",
    ])))
    .expect("JSON");
    assert_eq!(json.as_array().map(Vec::len), Some(1), "{json}");
    assert_eq!(json[0]["name"], "cli-a");

    let node = stdout(&roster(&["node", "cli-b", "--agent", &agent]));
    assert!(
        node.lines()
            .any(|l| l.starts_with("name") && l.ends_with("cli-b")),
        "{node}"
    );

    let graph = eventually("a graph with the link", Duration::from_secs(30), || {
        let text = stdout(&roster(&["graph", "--agent", &agent]));
        text.contains("cli-a - cli-b").then_some(text)
    });
    assert!(graph.contains("LINK"), "{graph}");
    let partition = stdout(&roster(&["partition", "--agent", &agent]));
    assert!(
        partition
            .lines()
            .any(|l| l.starts_with("fenced") && l.ends_with("false")),
        "{partition}"
    );
    let scopes = stdout(&roster(&["scopes", "--agent", &agent]));
    assert!(scopes.lines().any(|l| l.starts_with("default")), "{scopes}");
    let level = stdout(&roster(&["log-level", "debug", "--agent", &agent]));
    assert!(level.starts_with("debug"), "{level}");
    drop(b);
}

#[test]
fn errors_say_what_went_wrong_with_their_exit_codes() {
    let a = AgentProcess::start("cli-err", &[]);
    let agent = a.url("");
    let missing = roster(&["lookup", "user/1", "--agent", &agent]);
    assert_eq!(missing.status.code(), Some(1));
    let text = String::from_utf8_lossy(&missing.stderr);
    assert!(text.contains("404 unknown_name"), "{text}");

    let unknown_scope = roster(&["names", "--scope", "nope", "--agent", &agent]);
    assert_eq!(unknown_scope.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&unknown_scope.stderr).contains("unknown_scope"));

    let live = roster(&["forget", "cli-err", "--agent", &agent]);
    assert_eq!(
        live.status.code(),
        Some(1),
        "a live node cannot be forgotten"
    );

    drop(a);
    let gone = roster(&["nodes", "--agent", &agent]);
    assert_eq!(gone.status.code(), Some(3));
    let text = String::from_utf8_lossy(&gone.stderr);
    assert!(
        text.contains("cannot reach an agent") && text.contains("roster agent"),
        "{text}"
    );

    let usage = roster(&["names", "--limit", "many"]);
    assert_eq!(usage.status.code(), Some(2));
}
