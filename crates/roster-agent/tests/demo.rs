//! `roster demo --duration 30s`: the chat workload runs against three agents, with a
//! partition, a kill and a restart, and the summary says every check held; nothing is left
//! behind.

use std::io::Read;
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The workload's 30 s, three agent starts and failure detection; far more than it needs.
const DEADLINE: Duration = Duration::from_secs(240);

#[test]
fn the_demo_runs_the_chat_through_its_faults_and_every_check_holds() {
    // The demo's temporary directory goes under TMPDIR: the test can see it is removed.
    let tmp = tempfile::tempdir().expect("temp dir");
    let mut child = Command::new(env!("CARGO_BIN_EXE_roster"))
        .args(["demo", "--duration", "30s", "--port", "0"])
        .env("TMPDIR", tmp.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run roster demo");
    let end = Instant::now() + DEADLINE;
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if Instant::now() > end {
            let _ = child.kill();
            panic!("roster demo did not finish within {DEADLINE:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut out = String::new();
    let mut err = String::new();
    child
        .stdout
        .take()
        .expect("stdout")
        .read_to_string(&mut out)
        .expect("stdout");
    child
        .stderr
        .take()
        .expect("stderr")
        .read_to_string(&mut err)
        .expect("stderr");
    assert!(status.success(), "exit {status:?}\n{out}\n{err}");

    let summary = out
        .split("\nSummary: ")
        .nth(1)
        .unwrap_or_else(|| panic!("no summary:\n{out}"));
    for held in [
        "✓  converged after the partition healed",
        "✓  user/bob taken on both sides, one owner after the heal",
        "✓  demo-3 killed: its entries gone everywhere",
        "✓  demo-3 restarted: whole again",
        "✓  converged at the end",
        "✓  no entry without a live user",
        "✓  last message to every channel",
        "✓  demo-1 and demo-2 told of user/bob's conflict (conflict_resolved)",
    ] {
        assert!(summary.contains(held), "{held:?} missing:\n{summary}");
    }
    assert!(!summary.contains('✗'), "a check failed:\n{summary}");
    // Every node holds users at the end (demo-3's came back after its restart), and each
    // node's users read messages.
    for node in ["demo-1", "demo-2", "demo-3"] {
        let line = summary
            .lines()
            .find(|l| l.starts_with(node))
            .unwrap_or_else(|| panic!("no line for {node}:\n{summary}"));
        let cells: Vec<u64> = line
            .split_whitespace()
            .skip(1)
            .map(|c| c.parse().expect("a number"))
            .collect();
        assert_eq!(cells.len(), 4, "{line}");
        assert!(cells.iter().all(|&n| n > 0), "{node}: {line}");
    }
    assert!(out.contains("Done: stopping the cluster."), "{out}");

    // Nothing left behind: the agents no longer answer, the temporary directory is gone.
    let addresses: Vec<&str> = out
        .lines()
        .filter_map(|l| l.split("http http://").nth(1))
        .filter_map(|rest| rest.split_whitespace().next())
        .collect();
    assert_eq!(addresses.len(), 3, "{out}");
    for address in addresses {
        assert!(
            TcpStream::connect(address).is_err(),
            "an agent still listens at {address}"
        );
    }
    let left: Vec<_> = std::fs::read_dir(tmp.path())
        .expect("read TMPDIR")
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert!(left.is_empty(), "left behind in TMPDIR: {left:?}");
}

#[test]
fn a_duration_too_short_for_the_faults_is_a_usage_error() {
    let out = Command::new(env!("CARGO_BIN_EXE_roster"))
        .args(["demo", "--duration", "10s"])
        .output()
        .expect("run roster demo");
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("too short: give at least 30s"), "{err}");
}
