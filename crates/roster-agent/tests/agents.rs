//! Agents as OS processes: three form a cluster and show it through their APIs, tokens
//! guard writes, bad settings exit with code 2, and SIGTERM makes an agent leave at once.

mod support;

use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;
use support::{AgentProcess, eventually, get, send};
use ureq::http::Method;

/// How long a cluster of three may take to form on a loaded machine.
const FORM_DEADLINE: Duration = Duration::from_secs(30);

const TOKEN: &str = "write-token-0123456789";

fn names_with_status(nodes: &Value, status: &str) -> Vec<String> {
    let mut names: Vec<String> = nodes
        .as_array()
        .into_iter()
        .flatten()
        .filter(|n| n["status"] == status)
        .map(|n| n["name"].as_str().unwrap_or_default().to_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn three_agents_form_a_cluster_and_a_terminated_one_leaves_at_once() {
    let a = AgentProcess::start("agent-a", &["--role", "api", "--label", "domain=eu"]);
    let seed = a.cluster.clone();
    let b = AgentProcess::start("agent-b", &["--seed", &seed]);
    let mut c = AgentProcess::start_with_env("agent-c", &[], &[("ROSTER_SEEDS", &seed)]);
    let all = ["agent-a", "agent-b", "agent-c"];
    for agent in [&a, &b, &c] {
        eventually(
            &format!("{} sees three online nodes", agent.name),
            FORM_DEADLINE,
            || {
                let (status, nodes) = get(&agent.url("/api/nodes"));
                (status == 200 && names_with_status(&nodes, "online") == all).then_some(())
            },
        );
    }
    for agent in [&a, &b, &c] {
        let graph = eventually(
            &format!("{}'s graph has every link", agent.name),
            FORM_DEADLINE,
            || {
                let (_, graph) = get(&agent.url("/api/graph"));
                let links = graph["links"].as_array().map_or(0, Vec::len);
                (links == 3).then_some(graph)
            },
        );
        assert_eq!(graph["nodes"].as_array().unwrap().len(), 3, "{graph}");
        for link in graph["links"].as_array().unwrap() {
            assert_ne!(link["source"], link["target"]);
            assert!(all.contains(&link["source"].as_str().unwrap()), "{link}");
        }
        let (status, ready) = get(&agent.url("/readyz"));
        assert_eq!(
            (status, &ready["status"]),
            (200, &Value::from("ok")),
            "{ready}"
        );
        let (status, sessions) = get(&agent.url("/api/link-sessions"));
        assert_eq!(status, 200);
        assert!(sessions.as_array().unwrap().len() >= 2, "{sessions}");
    }
    let (_, filtered) = get(&a.url("/api/nodes?role=api&label=domain%3Deu"));
    assert_eq!(names_with_status(&filtered, "online"), ["agent-a"]);
    let (status, node) = get(&b.url("/api/nodes/agent-a"));
    assert_eq!(
        (status, &node["role"]),
        (200, &Value::from("api")),
        "{node}"
    );
    let (status, beats) = get(&b.url("/api/nodes/agent-b/heartbeats?minutes=1"));
    assert_eq!(status, 200);
    assert!(beats.is_array(), "{beats}");
    let (status, conflict) = send(Method::DELETE, &b.url("/api/nodes/agent-a"), None, None);
    assert_eq!(
        (status, &conflict["error"]),
        (409, &Value::from("node_is_up"))
    );

    c.terminate();
    let exit = c.wait_exit(Duration::from_secs(10));
    assert_eq!(exit.code(), Some(0), "SIGTERM exits 0");
    let left = Instant::now();
    for agent in [&a, &b] {
        eventually(
            &format!("{} shows agent-c offline and left", agent.name),
            Duration::from_secs(1),
            || {
                let (_, node) = get(&agent.url("/api/nodes/agent-c"));
                (node["status"] == "offline" && node["offline"]["left"] == true).then_some(())
            },
        );
    }
    assert!(
        left.elapsed() <= Duration::from_secs(1),
        "{:?}",
        left.elapsed()
    );
    let (status, _) = send(Method::DELETE, &a.url("/api/nodes/agent-c"), None, None);
    assert_eq!(status, 204, "an offline node is forgotten");
    let (status, gone) = get(&a.url("/api/nodes/agent-c"));
    assert_eq!(
        (status, &gone["error"]),
        (404, &Value::from("unknown_node"))
    );
}

#[test]
fn writes_need_the_token_and_reads_need_the_read_token_when_one_is_set() {
    let dir = tempfile::tempdir().unwrap();
    let read_token_file = dir.path().join("read-token");
    std::fs::write(&read_token_file, "read-token-0123456789\n").unwrap();
    let agent = AgentProcess::start_with_env(
        "guarded",
        &["--read-token-file", read_token_file.to_str().unwrap()],
        &[("ROSTER_TOKEN", TOKEN)],
    );
    let url = agent.url("/api/log-level");
    let body = Some(r#"{"level": "debug"}"#);
    let (status, refused) = send(Method::PUT, &url, None, body);
    assert_eq!(
        (status, &refused["error"]),
        (401, &Value::from("unauthorized")),
        "{refused}"
    );
    let (status, refused) = send(Method::PUT, &url, Some("not-the-token-at-all"), body);
    assert_eq!(
        (status, &refused["error"]),
        (403, &Value::from("forbidden")),
        "{refused}"
    );
    let (status, set) = send(Method::PUT, &url, Some(TOKEN), body);
    assert_eq!(
        (status, &set["level"]),
        (200, &Value::from("debug")),
        "{set}"
    );

    let (status, refused) = get(&url);
    assert_eq!(
        (status, &refused["error"]),
        (401, &Value::from("unauthorized"))
    );
    let (status, level) = send(Method::GET, &url, Some("read-token-0123456789"), None);
    assert_eq!(
        (status, &level["level"]),
        (200, &Value::from("debug")),
        "{level}"
    );
    let (status, _) = get(&agent.url("/healthz"));
    assert_eq!(status, 200, "probes stay open");

    let big = format!(r#"{{"level": "{}"}}"#, "x".repeat(70 * 1024));
    let (status, refused) = send(Method::PUT, &url, Some(TOKEN), Some(&big));
    assert_eq!(
        (status, &refused["error"]),
        (413, &Value::from("body_too_large")),
        "{refused}"
    );
}

#[test]
fn a_seeded_agent_alone_is_not_ready() {
    let agent = AgentProcess::start("lonely", &["--seed", "127.0.0.1:9"]);
    let (status, probe) = get(&agent.url("/readyz"));
    assert_eq!(
        (status, &probe["status"]),
        (503, &Value::from("not_ready")),
        "{probe}"
    );
    assert!(
        probe["reason"].as_str().unwrap().contains("not linked"),
        "{probe}"
    );
}

#[test]
fn bad_settings_exit_with_code_2_and_name_the_setting() {
    let cases: [(&[&str], &str); 4] = [
        (&["--listen", "0.0.0.0:0"], "--secret-file"),
        (&["--http", "0.0.0.0:0"], "--token-file"),
        (&["--label", "novalue"], "--label"),
        (
            &["--split-brain-strategy", "loudest"],
            "--split-brain-strategy",
        ),
    ];
    // Run elsewhere than the crate: a refused setting found after the history opened
    // would otherwise leave ./roster-data in the source tree.
    let scratch = tempfile::tempdir().unwrap();
    for (flags, setting) in cases {
        let output = Command::new(env!("CARGO_BIN_EXE_roster"))
            .current_dir(scratch.path())
            .arg("agent")
            .args(flags)
            .env_remove("ROSTER_SECRET")
            .env_remove("ROSTER_TOKEN")
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{flags:?}: {stderr}");
        assert!(stderr.contains(setting), "{flags:?}: {stderr}");
    }
}

/// Writes a cluster CA and one node certificate for `roster` (PEM) into `dir`; returns the
/// flags that use them.
fn tls_flags(dir: &std::path::Path) -> Vec<String> {
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let issuer = rcgen::Issuer::new(ca_params, ca_key);
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = rcgen::CertificateParams::new(vec!["roster".to_owned()])
        .unwrap()
        .signed_by(&key, &issuer)
        .unwrap();
    let files = [
        ("--tls-cert", "node.pem", cert.pem()),
        ("--tls-key", "node.key", key.serialize_pem()),
        ("--tls-ca", "ca.pem", ca.pem()),
    ];
    let mut flags = Vec::new();
    for (flag, name, pem) in files {
        let path = dir.join(name);
        std::fs::write(&path, pem).unwrap();
        flags.push(flag.to_owned());
        flags.push(path.to_str().unwrap().to_owned());
    }
    flags
}

#[test]
fn agents_with_tls_files_link_over_tls() {
    let dir = tempfile::tempdir().unwrap();
    let flags = tls_flags(dir.path());
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    let a = AgentProcess::start("tls-a", &flags);
    let mut seeded = flags.clone();
    seeded.extend(["--seed", &a.cluster]);
    let _b = AgentProcess::start("tls-b", &seeded);
    let graph = eventually("tls-a links to tls-b", FORM_DEADLINE, || {
        let (_, graph) = get(&a.url("/api/graph"));
        (graph["links"].as_array().map_or(0, Vec::len) == 1).then_some(graph)
    });
    assert_eq!(graph["links"][0]["kind"], "tls", "{graph}");
}

#[test]
fn an_unreadable_tls_file_exits_with_code_2() {
    let scratch = tempfile::tempdir().unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_roster"))
        .current_dir(scratch.path())
        .args(["agent", "--http", "127.0.0.1:0", "--listen", "127.0.0.1:0"])
        .args([
            "--tls-cert",
            "/nonexistent/cert.pem",
            "--tls-key",
            "/nonexistent/key.pem",
        ])
        .args(["--tls-ca", "/nonexistent/ca.pem"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("--tls-cert"), "{stderr}");
}
