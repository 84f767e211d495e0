//! The examples of `examples/` run as real programs: each is built and run by cargo (the
//! cargo that runs these tests, on the same target directory and profile, with the
//! package features these tests were built with), must exit 0 within a time limit, and
//! must print the facts it is about.
//!
//! Nesting cargo works because `cargo test` releases the build directory's lock before it
//! runs the test binaries. The examples run one at a time: each starts a cluster on
//! loopback, with short failure-detection settings, which load from a neighbour could
//! upset.

use std::io::Read;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// One example at a time.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// How long building an example may take (the first build may compile the library).
const BUILD_LIMIT: Duration = Duration::from_secs(900);
/// How long an example may run.
const RUN_LIMIT: Duration = Duration::from_secs(120);

/// The features of this package these tests were built with, so that cargo reuses that
/// build of the library for the examples.
fn features(extra: &[&str]) -> String {
    let mut features: Vec<&str> = Vec::new();
    if cfg!(feature = "tls") {
        features.push("tls");
    }
    if cfg!(feature = "fuzzing") {
        features.push("fuzzing");
    }
    if cfg!(feature = "fault-injection") {
        features.push("fault-injection");
    }
    for f in extra {
        if !features.contains(f) {
            features.push(f);
        }
    }
    features.join(",")
}

/// The cargo arguments selecting the profile these tests were built with: the name of
/// the directory the test binary lives in (`target/<profile>/deps/<test>`).
fn profile_args() -> Vec<String> {
    let exe = std::env::current_exe().expect("the test binary's path");
    let profile_dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .and_then(|dir| dir.file_name())
        .and_then(|name| name.to_str())
        .unwrap_or("debug")
        .to_owned();
    match profile_dir.as_str() {
        "debug" => Vec::new(),
        other => vec!["--profile".into(), other.into()],
    }
}

/// The target directory these tests were built in, when it can be told from the test
/// binary's path (`<target>/<profile>/deps/<test>`); otherwise cargo's own choice
/// (`CARGO_TARGET_DIR` and the cargo configuration are inherited).
fn target_dir() -> Option<PathBuf> {
    if std::env::var_os("CARGO_TARGET_DIR").is_some() {
        return None;
    }
    let exe = std::env::current_exe().ok()?;
    let deps = exe.parent()?;
    if deps.file_name()? != "deps" {
        return None;
    }
    Some(deps.parent()?.parent()?.to_path_buf())
}

/// Runs `cargo <subcommand> -q -p roster --example NAME` with `features`, killing it after
/// `limit`; returns (success, stdout, stderr).
fn cargo(subcommand: &str, name: &str, features: &str, limit: Duration) -> (bool, String, String) {
    let mut command = Command::new(env!("CARGO"));
    command
        .args([subcommand, "-q", "-p", "roster", "--example", name])
        .args(profile_args())
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if !features.is_empty() {
        command.args(["--features", features]);
    }
    if let Some(dir) = target_dir() {
        command.env("CARGO_TARGET_DIR", dir);
    }
    let mut child = command.spawn().expect("cargo starts");
    let mut out = child.stdout.take().expect("piped stdout");
    let mut err = child.stderr.take().expect("piped stderr");
    let stdout = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = out.read_to_string(&mut text);
        text
    });
    let stderr = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = err.read_to_string(&mut text);
        text
    });
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("cargo can be waited for") {
            break Some(status);
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let stdout = stdout.join().expect("stdout reader");
    let stderr = stderr.join().expect("stderr reader");
    let Some(status) = status else {
        panic!(
            "cargo {subcommand} --example {name} did not finish within {limit:?}\n--- stdout ---\n{stdout}\n--- stderr ---\n{stderr}"
        );
    };
    (status.success(), stdout, stderr)
}

/// Builds and runs example `name`, checks that it exits 0 and prints every line of
/// `expected` (each a substring of some line of its output); returns its output.
fn run_example(name: &str, extra_features: &[&str], expected: &[&str]) -> String {
    let _one = ONE_AT_A_TIME
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let features = features(extra_features);
    let (built, _, stderr) = cargo("build", name, &features, BUILD_LIMIT);
    assert!(built, "example {name} does not build:\n{stderr}");
    let (ran, stdout, stderr) = cargo("run", name, &features, RUN_LIMIT);
    assert!(
        ran,
        "example {name} failed\n--- stdout ---\n{stdout}\n--- stderr ---\n{stderr}"
    );
    for line in expected {
        assert!(
            stdout.lines().any(|l| l.contains(line)),
            "example {name} did not print {line:?}\n--- stdout ---\n{stdout}\n--- stderr ---\n{stderr}"
        );
    }
    stdout
}

#[test]
fn chat_presence() {
    run_example(
        "chat_presence",
        &[],
        &[
            "alice@n1 in channel/general, channel/rust",
            "dave@n3 in channel/general, channel/rust",
            "channel/rust: alice@n1, carol@n3, dave@n3",
            "alice posts to channel/rust: dispatched to 1 local member(s) and 1 other node(s)",
            "alice@n1 received \"RustConf tickets are out\" on channel/rust from alice",
            "carol@n3 received \"RustConf tickets are out\" on channel/rust from alice",
            "dave@n3 received \"RustConf tickets are out\" on channel/rust from alice",
            "channel/rust: alice@n1, carol@n3",
            "frank disconnected: n3 saw Unregistered of user/frank with reason exit Normal",
            "channel/general: alice@n1, bob@n2, dave@n3",
            "n1 received one batch of 6 events: 3 users removed in one batch (carol, dave, erin) and 3 memberships left, reason exit NodeDown",
            "done",
        ],
    );
}

#[test]
fn session_workers() {
    let out = run_example(
        "session_workers",
        &[],
        &[
            "on node b (user bob, plan free)",
            "session/s1 already running (asked on b)",
            "session/s1 already running (asked on a)",
            "s3's worker crashed on b: a saw Unregistered of session/s3 with reason exit Panicked",
            "session/s3 started on a",
            "s4's worker killed on a: session/s4 now None",
            "session/s4 started on a",
            "b dispatches to topic/all (4 members): 1 local, 1 other node(s)",
            "session/s2 (bob@b) received \"maintenance at 02:00\" on topic/all",
            "session/s4 (dave@a) received \"maintenance at 02:00\" on topic/all",
            "a dispatches to topic/pro: 2 local, 0 other node(s)",
            "select pro sessions: session/s1, session/s3",
            "count_match free sessions: 2",
            "select_as sessions on node a: session/s1 (alice), session/s3 (carol), session/s4 (dave)",
            "count_match_as sessions on node b: 1 (0 undecodable)",
            "count_match topic memberships: 6",
            "done",
        ],
    );
    // The second start returned the running worker: the pid it printed is s1's.
    let pid_of = |prefix: &str| {
        out.lines()
            .find(|l| l.contains(prefix))
            .and_then(|l| l.rsplit(' ').next())
            .unwrap_or_else(|| panic!("no line with {prefix:?}"))
            .to_owned()
    };
    assert_eq!(
        pid_of("session/s1 started on a"),
        pid_of("session/s1 already running (asked on b)")
    );
}

#[test]
fn service_registry() {
    run_example(
        "service_registry",
        &["fault-injection"],
        &[
            "server/db on c (postgres, port 5432)",
            "from a: server/db is",
            "a sees only its own: transport/tcp-8081",
            "b sees only its own: transport/tcp-8082",
            "the standby on a took server/scheduler over",
            "c now finds server/scheduler on a",
            "  b: online, rtt ",
            "c is cut off from a and b",
            "a: partition suspected true, side [a, b], unreachable [c], keeps writing true",
            "c: partition suspected true, side [c], unreachable [a, b], keeps writing false",
            "  c: offline",
            "a: server/cache-a registered",
            "c: server/cache-c refused: this node is fenced",
            "the partition healed:",
            "c: partition suspected false, side [a, b, c], unreachable [], keeps writing true",
            "c: server/cache-c registered",
            "done",
        ],
    );
}

#[test]
fn node_registry() {
    run_example(
        "node_registry",
        &[],
        &[
            "event on api-1: Up worker-1 (role worker, version 2.0.0, new)",
            "event on api-1: Up worker-2 (role worker, version 2.0.1, new)",
            "api-1: role api, labels domain=eu, version 1.4.2, online, at 127.0.0.1:",
            "worker-2: role worker, labels domain=us, version 2.0.1, online",
            "workers in domain eu, as api-1 lists them: worker-1",
            "heartbeat event on api-1 from worker-1: jobs_queued 17",
            "worker-1 (",
            "jobs_queued 3",
            "link api-1 <-> worker-1 (tcp, rtt",
            "link api-1 <-> worker-2 (tcp, rtt",
            "link worker-1 <-> worker-2 (tcp, rtt",
            "to worker-1: live",
            "event on api-1: Status worker-2 online -> draining (deploying 2.1.0)",
            "event on api-1: Down worker-2 (left the cluster; left)",
            "worker-2 offline",
            "to worker-2 closed: ",
            "done",
        ],
    );
}
