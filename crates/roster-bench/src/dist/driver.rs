//! The driver's side of the control channel: spawning node agents (this same binary, run
//! as `roster-bench node`) and talking to them.
//!
//! An [`AgentProc`] kills its process when dropped, so that no agent outlives a scenario,
//! whether it ends normally, with an error or with a panic. An agent whose driver is gone
//! sees its stdin close and exits on its own.

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::REPLY_LIMIT;
use super::protocol::{Cond, Request, field, text_field};

/// A running node agent.
pub(super) struct AgentProc {
    /// The node's name, for messages.
    pub name: String,
    child: Child,
    stdin: ChildStdin,
    replies: mpsc::Receiver<String>,
    /// The node's cluster address, once started.
    pub addr: Option<String>,
    /// From spawning the process to its first reply (ready).
    pub spawned_in: Duration,
    /// The latency settings of the node it starts.
    pub tuning: Tuning,
}

impl AgentProc {
    /// Spawns an agent process and waits until it is ready (its node is not started).
    pub(super) fn spawn(name: &str) -> Result<Self, String> {
        let exe = std::env::current_exe().map_err(|e| format!("current exe: {e}"))?;
        let since = Instant::now();
        let mut child = Command::new(exe)
            .arg("node")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| format!("spawning agent {name}: {e}"))?;
        let (Some(stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
            let _ = child.kill();
            let _ = child.wait();
            return Err("agent pipes missing".into());
        };
        let (tx, replies) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut agent = Self {
            name: name.into(),
            child,
            stdin,
            replies,
            addr: None,
            spawned_in: Duration::ZERO,
            tuning: Tuning::default(),
        };
        agent.recv_within(Duration::from_secs(10))?;
        agent.spawned_in = since.elapsed();
        Ok(agent)
    }

    /// Sends a request without waiting for its reply.
    pub(super) fn send(&mut self, request: &Request) -> Result<(), String> {
        let line = serde_json::to_string(request).expect("a request serializes");
        writeln!(self.stdin, "{line}")
            .and_then(|()| self.stdin.flush())
            .map_err(|e| format!("agent {}: cannot send {line}: {e}", self.name))
    }

    /// The next reply, within [`REPLY_LIMIT`].
    pub(super) fn recv(&mut self) -> Result<Value, String> {
        self.recv_within(REPLY_LIMIT)
    }

    /// The next reply, within `limit`; an error reply becomes an error.
    pub(super) fn recv_within(&mut self, limit: Duration) -> Result<Value, String> {
        let line = match self.replies.recv_timeout(limit) {
            Ok(line) => line,
            Err(RecvTimeoutError::Timeout) => {
                return Err(format!("agent {}: no reply within {limit:?}", self.name));
            }
            Err(RecvTimeoutError::Disconnected) => {
                // Its stdout closed: it is exiting, or has.
                let mut status = None;
                for _ in 0..100 {
                    status = self.child.try_wait().ok().flatten();
                    if status.is_some() {
                        break;
                    }
                    std::thread::sleep(Duration::from_millis(1));
                }
                let status = status.map_or("still running".into(), |s| s.to_string());
                return Err(format!("agent {} is gone ({status})", self.name));
            }
        };
        let reply: Value = serde_json::from_str(&line)
            .map_err(|e| format!("agent {}: bad reply {line:?}: {e}", self.name))?;
        if reply.get("ok") == Some(&Value::Bool(true)) {
            Ok(reply)
        } else {
            let error = reply.get("error").and_then(Value::as_str).unwrap_or(&line);
            Err(format!("agent {}: {error}", self.name))
        }
    }

    /// Sends a request and waits for its reply.
    pub(super) fn call(&mut self, request: &Request) -> Result<Value, String> {
        self.send(request)?;
        self.recv()
    }

    /// Starts the node, seeded with `seeds`, arming a watcher for `watch` at once; returns
    /// the reply (`start_ns`, `alloc_after`, ...).
    pub(super) fn start(&mut self, seeds: &[&Self], watch: Option<Cond>) -> Result<Value, String> {
        let seeds = seeds
            .iter()
            .map(|a| a.addr.clone().ok_or(format!("{} is not started", a.name)))
            .collect::<Result<Vec<_>, _>>()?;
        let reply = self.call(&Request::Start {
            name: self.name.clone(),
            seeds,
            watch,
            listen: None,
            fast_failure_detection: false,
            announce_ms: None,
            anti_entropy_ms: None,
            busy_poll_us: self.tuning.busy_poll_us,
            read_poll_us: self.tuning.read_poll_us,
        })?;
        self.addr = Some(text_field(&reply, "addr")?);
        Ok(reply)
    }

    /// Waits until the watcher sees its condition; returns when it did (`seen_ns`).
    pub(super) fn watch_result(&mut self) -> Result<u64, String> {
        field(&self.call(&Request::WatchResult)?, "seen_ns")
    }

    /// Polls `cond` until it holds; returns when it did.
    pub(super) fn wait_for(&mut self, cond: Cond) -> Result<u64, String> {
        self.call(&Request::Watch { cond })?;
        self.watch_result()
    }

    /// Link bytes sent by the node so far.
    pub(super) fn bytes_sent(&mut self) -> Result<u64, String> {
        field(&self.call(&Request::Stats)?, "bytes_sent")
    }
}

impl Drop for AgentProc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Spawns and starts `names.len()` agents, every one seeded with the first, and waits until
/// each is linked to all the others.
pub(super) fn cluster(names: &[&str]) -> Result<Vec<AgentProc>, String> {
    cluster_with(names, Tuning::default())
}

/// A node's latency settings (µs; `None`: Roster's default).
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct Tuning {
    /// [`roster::ClusterConfig::busy_poll`].
    pub(super) busy_poll_us: Option<u64>,
    /// [`roster::ClusterConfig::read_poll`].
    pub(super) read_poll_us: Option<u64>,
}

/// [`cluster`] with nodes of the latency settings `tuning`.
pub(super) fn cluster_with(names: &[&str], tuning: Tuning) -> Result<Vec<AgentProc>, String> {
    let mut agents = names
        .iter()
        .map(|name| AgentProc::spawn(name))
        .collect::<Result<Vec<_>, _>>()?;
    for agent in &mut agents {
        agent.tuning = tuning;
    }
    let (first, rest) = agents.split_first_mut().ok_or("no agents")?;
    first.start(&[], None)?;
    for agent in rest {
        agent.start(&[first], None)?;
    }
    let peers = names.len() - 1;
    for agent in &mut agents {
        agent.call(&Request::WaitPeers { peers })?;
    }
    Ok(agents)
}
