//! Agents run as OS processes of the built `roster` binary, on loopback with ports picked
//! by the OS, and an HTTP client for them. Every wait has a deadline; a process is killed
//! when its guard drops (a failed test included).
#![allow(dead_code)] // each test file uses a part of the helpers

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::Value;

/// How long an agent may take to print its ready line.
const START_DEADLINE: Duration = Duration::from_secs(20);

/// A running agent process; killed on drop.
pub(crate) struct AgentProcess {
    pub(crate) name: String,
    pub(crate) http: String,
    pub(crate) cluster: String,
    child: Option<Child>,
    _data: tempfile::TempDir,
}

impl AgentProcess {
    /// Starts `roster agent` named `name` with `extra` flags, and waits for its ready line.
    pub(crate) fn start(name: &str, extra: &[&str]) -> Self {
        Self::start_with_env(name, extra, &[])
    }

    /// As [`AgentProcess::start`], with environment variables.
    pub(crate) fn start_with_env(name: &str, extra: &[&str], env: &[(&str, &str)]) -> Self {
        let data = tempfile::tempdir().expect("temp dir");
        let data_dir = data.path().join("data");
        let mut command = Command::new(env!("CARGO_BIN_EXE_roster"));
        command
            .arg("agent")
            .args([
                "--name",
                name,
                "--http",
                "127.0.0.1:0",
                "--listen",
                "127.0.0.1:0",
            ])
            .arg("--data-dir")
            .arg(&data_dir)
            .args(extra)
            .env_remove("ROSTER_TOKEN")
            .env_remove("ROSTER_SECRET")
            .env_remove("ROSTER_SEEDS")
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        let mut child = command.spawn().expect("spawn roster");
        let stdout = child.stdout.take().expect("stdout");
        let (lines, line) = mpsc::channel();
        std::thread::spawn(move || {
            for text in BufReader::new(stdout).lines().map_while(Result::ok) {
                if lines.send(text).is_err() {
                    break;
                }
            }
        });
        let mut agent = Self {
            name: name.to_owned(),
            http: String::new(),
            cluster: String::new(),
            child: Some(child),
            _data: data,
        };
        let ready = line.recv_timeout(START_DEADLINE).unwrap_or_else(|_| {
            panic!("agent {name} printed no ready line within {START_DEADLINE:?}")
        });
        let field = |key: &str| {
            ready
                .split_whitespace()
                .find_map(|part| part.strip_prefix(key))
                .unwrap_or_else(|| panic!("no {key} in {ready:?}"))
                .to_owned()
        };
        agent.http = field("http=");
        agent.cluster = field("cluster=");
        assert!(Path::new(&data_dir).is_dir(), "the data dir is created");
        agent
    }

    /// `http://<addr><path>`.
    pub(crate) fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.http)
    }

    /// Sends SIGTERM.
    pub(crate) fn terminate(&self) {
        let child = self.child.as_ref().expect("running");
        let pid = rustix::process::Pid::from_child(child);
        rustix::process::kill_process(pid, rustix::process::Signal::TERM).expect("SIGTERM");
    }

    /// Waits for the process to exit, at most `deadline`.
    pub(crate) fn wait_exit(&mut self, deadline: Duration) -> ExitStatus {
        let child = self.child.as_mut().expect("running");
        let end = Instant::now() + deadline;
        loop {
            if let Some(status) = child.try_wait().expect("try_wait") {
                self.child = None;
                return status;
            }
            assert!(
                Instant::now() < end,
                "agent {} did not exit within {deadline:?}",
                self.name
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for AgentProcess {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// An HTTP client that reports every status (no error for 4xx/5xx) and times out.
pub(crate) fn client() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(10)))
        .build()
        .into()
}

/// `GET url` as (status, JSON body).
pub(crate) fn get(url: &str) -> (u16, Value) {
    send(ureq::http::Method::GET, url, None, None)
}

/// A request as (status, JSON body; `null` for an empty body).
pub(crate) fn send(
    method: ureq::http::Method,
    url: &str,
    token: Option<&str>,
    body: Option<&str>,
) -> (u16, Value) {
    let mut request = ureq::http::Request::builder().method(method).uri(url);
    if let Some(token) = token {
        request = request.header("authorization", format!("Bearer {token}"));
    }
    if body.is_some() {
        request = request.header("content-type", "application/json");
    }
    let request = request
        .body(body.unwrap_or("").to_owned())
        .expect("request");
    let mut response = client().run(request).expect("HTTP request");
    let status = response.status().as_u16();
    let text = response.body_mut().read_to_string().expect("body");
    let value = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{url}: not JSON ({e}): {text}"))
    };
    (status, value)
}

/// Polls `check` until it returns `Some`, failing with `what` after `deadline`.
pub(crate) fn eventually<T>(
    what: &str,
    deadline: Duration,
    mut check: impl FnMut() -> Option<T>,
) -> T {
    let end = Instant::now() + deadline;
    loop {
        if let Some(value) = check() {
            return value;
        }
        assert!(Instant::now() < end, "not within {deadline:?}: {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Cuts the agent at `http` (`host:port`, started with `--fault-injection`) off its
/// cluster for `duration` (e.g. `"8s"`), then waits until it has no linked peer.
pub(crate) fn isolate(http: &str, duration: &str) {
    let (status, body) = send(
        ureq::http::Method::POST,
        &format!("http://{http}/api/faults/isolate"),
        None,
        Some(&serde_json::json!({ "for": duration }).to_string()),
    );
    assert_eq!(status, 200, "isolate {http}: {body}");
    eventually(
        &format!("{http} has no linked peer"),
        Duration::from_secs(10),
        || (peers(http) == Some(0)).then_some(()),
    );
}

/// How many peers the agent at `http` is linked to (`/readyz`).
pub(crate) fn peers(http: &str) -> Option<u64> {
    get(&format!("http://{http}/readyz")).1["peers"].as_u64()
}

/// Creates a session (TTL `ttl`) on the agent at `http` and registers `key` for it;
/// returns the session's pid.
pub(crate) fn session_holding(http: &str, key: &str, ttl: &str) -> String {
    let (status, session) = send(
        ureq::http::Method::POST,
        &format!("http://{http}/api/sessions"),
        None,
        Some(&serde_json::json!({ "ttl": ttl, "name": key }).to_string()),
    );
    assert_eq!(status, 201, "{session}");
    let id = session["id"].as_str().expect("session id");
    let (status, done) = send(
        ureq::http::Method::PUT,
        &format!("http://{http}/api/sessions/{id}/names/{key}"),
        None,
        None,
    );
    assert_eq!(status, 200, "{key} on {http}: {done}");
    session["pid"].as_str().expect("session pid").to_owned()
}

/// The rows of kind `name_conflict` in the audit log of the agent at `http`.
pub(crate) fn conflict_rows(http: &str) -> Vec<Value> {
    let (status, page) = get(&format!(
        "http://{http}/api/audit?kind=name_conflict&limit=1000"
    ));
    assert_eq!(status, 200, "{page}");
    page["items"].as_array().cloned().unwrap_or_default()
}

/// The target directory: where the `roster` binary under test was built, two levels up.
pub(crate) fn target_dir() -> PathBuf {
    let binary = Path::new(env!("CARGO_BIN_EXE_roster"));
    binary
        .parent()
        .and_then(Path::parent)
        .expect("target/<profile>/roster")
        .to_path_buf()
}
