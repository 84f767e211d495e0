//! `roster demo --exit`: the tour runs every step against its three agents and exits 0.

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The tour waits for failure detection and a lapsing lease; far more than it needs.
const DEADLINE: Duration = Duration::from_secs(180);

#[test]
fn the_demo_tours_a_three_node_cluster_and_every_step_holds() {
    let data = tempfile::tempdir().expect("temp dir");
    let mut child = Command::new(env!("CARGO_BIN_EXE_roster"))
        .args(["demo", "--exit", "--port", "0", "--data-dir"])
        .arg(data.path())
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
    assert_eq!(out.matches('✓').count(), 13, "{out}");
    for step in 1..=11 {
        assert!(
            out.contains(&format!("\n{step}. ")),
            "step {step} missing:\n{out}"
        );
    }
    assert!(out.contains("Done: stopping the cluster."), "{out}");
    for agent in ["demo-1", "demo-2", "demo-3"] {
        assert!(
            data.path().join(format!("{agent}.log")).exists(),
            "{agent}'s log"
        );
        assert!(
            data.path().join(agent).join("history.sqlite3").exists(),
            "{agent}'s history"
        );
    }
}
