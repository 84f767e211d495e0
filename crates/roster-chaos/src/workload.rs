//! The workload: threads that drive sessions with short TTLs and keepalives, name
//! registrations on a small shared pool of keys (so that nodes compete), group joins and
//! leaves, dispatch, and reads of names (the fencing token), and record every operation.
//!
//! Each thread is bound to one node and owns its sessions (only it keeps them alive, so
//! the order of its operations on a session is the order in the history). Pausing stops
//! the writes but not the keepalives: a checkpoint reads a quiet cluster whose sessions
//! stay alive.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};

use crate::history::{Op, OpKind, Outcome, Recorder};
use crate::http::{Client, Reply};
use crate::time::now_ms;

/// Settings of the workload.
#[derive(Debug, Clone)]
pub struct WorkloadConfig {
    /// Threads per node.
    pub workers_per_node: usize,
    /// Sessions each thread holds at most.
    pub sessions_per_worker: usize,
    /// Names in the shared pool (`chaos/name/0` ...).
    pub names: usize,
    /// Groups in the shared pool (`chaos/group/0` ...).
    pub groups: usize,
    /// Session TTL, seconds (1 or more).
    pub ttl_s: u64,
    /// Pause between two operations of a thread.
    pub pace: Duration,
    /// Seed of the threads' choices.
    pub seed: u64,
}

impl Default for WorkloadConfig {
    fn default() -> Self {
        Self {
            workers_per_node: 2,
            sessions_per_worker: 3,
            names: 24,
            groups: 4,
            ttl_s: 3,
            pace: Duration::from_millis(40),
            seed: 1,
        }
    }
}

/// The key of name `i` of the pool.
pub fn name_key(i: usize) -> String {
    format!("chaos/name/{i}")
}

/// The key of group `i` of the pool.
pub fn group_key(i: usize) -> String {
    format!("chaos/group/{i}")
}

/// A session as its thread knows it.
struct Session {
    id: String,
    pid: String,
    names: BTreeSet<String>,
    groups: BTreeSet<String>,
    renewed: Instant,
}

/// The running workload.
pub struct Workload {
    stop: Arc<AtomicBool>,
    paused: Arc<AtomicBool>,
    ops: Arc<AtomicU64>,
    busy: Vec<Arc<Mutex<()>>>,
    threads: Vec<JoinHandle<()>>,
}

impl Workload {
    /// Starts `workers_per_node` threads per URL base (`http://addr`).
    pub fn start(
        bases: Vec<String>,
        token: &str,
        config: WorkloadConfig,
        recorder: Recorder,
    ) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let paused = Arc::new(AtomicBool::new(false));
        let ops = Arc::new(AtomicU64::new(0));
        let mut threads = Vec::new();
        let mut busy = Vec::new();
        let mut worker = 0;
        for (node, base) in bases.iter().enumerate() {
            for _ in 0..config.workers_per_node {
                let thread = Worker {
                    worker,
                    node,
                    base: base.clone(),
                    // Past the agent's 5 s bound on a confirmed registration.
                    client: Client::new(token, Duration::from_secs(7)),
                    config: config.clone(),
                    rng: StdRng::seed_from_u64(config.seed.wrapping_mul(1000) + worker as u64),
                    recorder: recorder.clone(),
                    sessions: Vec::new(),
                    stop: stop.clone(),
                    paused: paused.clone(),
                    ops: ops.clone(),
                    busy: Arc::new(Mutex::new(())),
                };
                busy.push(thread.busy.clone());
                threads.push(std::thread::spawn(move || thread.run()));
                worker += 1;
            }
        }
        Self {
            stop,
            paused,
            ops,
            busy,
            threads,
        }
    }

    /// Stops the writes (keepalives go on) and waits for the writes in flight to end, so
    /// that nothing is acknowledged after this returns.
    pub fn pause(&self) {
        self.paused.store(true, Ordering::SeqCst);
        for busy in &self.busy {
            drop(
                busy.lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner),
            );
        }
    }

    /// Resumes the writes.
    pub fn resume(&self) {
        self.paused.store(false, Ordering::SeqCst);
    }

    /// Operations recorded so far (keepalives included).
    pub fn operations(&self) -> u64 {
        self.ops.load(Ordering::Relaxed)
    }

    /// Stops every thread and waits for them.
    pub fn stop(mut self) {
        self.stop.store(true, Ordering::SeqCst);
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
    }
}

impl Drop for Workload {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

struct Worker {
    worker: usize,
    node: usize,
    base: String,
    client: Client,
    config: WorkloadConfig,
    rng: StdRng,
    recorder: Recorder,
    sessions: Vec<Session>,
    stop: Arc<AtomicBool>,
    paused: Arc<AtomicBool>,
    ops: Arc<AtomicU64>,
    /// Held during a write: [`Workload::pause`] takes it once to wait for the write in
    /// flight.
    busy: Arc<Mutex<()>>,
}

impl Worker {
    fn run(mut self) {
        while !self.stop.load(Ordering::SeqCst) {
            self.keepalives();
            let busy = self.busy.clone();
            let guard = busy
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if !self.paused.load(Ordering::SeqCst) {
                self.step();
            }
            drop(guard);
            std::thread::sleep(self.config.pace);
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Sends one request and records it, attributed to session `session` (an index).
    fn record(
        &mut self,
        kind: OpKind,
        session: Option<usize>,
        key: Option<&str>,
        send: impl FnOnce(&Client) -> Reply,
    ) -> Reply {
        let who = session
            .and_then(|i| self.sessions.get(i))
            .map(|s| (s.id.clone(), s.pid.clone()));
        let start_ms = now_ms();
        let reply = send(&self.client);
        self.push(kind, who, key, start_ms, &reply);
        reply
    }

    /// Records an operation that started at `start_ms` and ended now with `reply`.
    fn push(
        &self,
        kind: OpKind,
        who: Option<(String, String)>,
        key: Option<&str>,
        start_ms: u64,
        reply: &Reply,
    ) {
        let end_ms = now_ms();
        let (owner, token) = match (kind, reply.ok()) {
            (OpKind::Read, Some(body)) => (
                body.get("pid").and_then(Value::as_str).map(str::to_owned),
                body.get("token").and_then(Value::as_u64),
            ),
            _ => (None, None),
        };
        let outcome = match reply {
            Reply::Answered(status, _) if (200..300).contains(status) => Outcome::Ok,
            Reply::Answered(status, _) => {
                Outcome::Refused(*status, reply.code().unwrap_or("").to_owned())
            }
            Reply::Failed(error) => Outcome::Unknown(error.clone()),
        };
        let (session, pid) = who.unzip();
        self.recorder.op(Op {
            id: 0,
            worker: self.worker,
            node: self.node,
            kind,
            session,
            pid,
            key: key.map(str::to_owned),
            start_ms,
            end_ms,
            outcome,
            owner,
            token,
        });
        self.ops.fetch_add(1, Ordering::Relaxed);
    }

    /// Renews every session due (a third of the TTL since the last renewal) and forgets
    /// the ones the agent says are over.
    fn keepalives(&mut self) {
        let every = Duration::from_millis(self.config.ttl_s * 1000 / 3);
        let mut i = 0;
        while i < self.sessions.len() {
            if self.sessions[i].renewed.elapsed() >= every {
                let renewed = Instant::now();
                let url = self.url(&format!("/api/sessions/{}/keepalive", self.sessions[i].id));
                let reply = self.record(OpKind::Keepalive, Some(i), None, |c| c.put(&url, None));
                if reply.ok().is_some() {
                    self.sessions[i].renewed = renewed;
                } else if matches!(reply.code(), Some("session_expired" | "unknown_session")) {
                    self.sessions.remove(i);
                    continue;
                }
            }
            i += 1;
        }
    }

    fn step(&mut self) {
        if self.sessions.len() < self.config.sessions_per_worker && self.rng.random_bool(0.3) {
            self.create();
            return;
        }
        if self.sessions.is_empty() {
            return;
        }
        let s = self.rng.random_range(0..self.sessions.len());
        let roll = self.rng.random_range(0..100);
        match roll {
            0..30 => self.register(s),
            30..45 => self.unregister(s),
            45..60 => self.join(s),
            60..68 => self.leave(s),
            68..78 => self.dispatch(s),
            78..94 => self.read(),
            94..97 => self.delete(s),
            _ => self.abandon(s),
        }
    }

    fn create(&mut self) {
        let url = self.url("/api/sessions");
        let body = json!({"ttl": format!("{}s", self.config.ttl_s)});
        let renewed = Instant::now();
        let start_ms = now_ms();
        let reply = self.client.post(&url, &body);
        let created = reply.ok().and_then(|body| {
            let id = body.get("id").and_then(Value::as_str)?;
            let pid = body.get("pid").and_then(Value::as_str)?;
            Some((id.to_owned(), pid.to_owned()))
        });
        self.push(
            OpKind::CreateSession,
            created.clone(),
            None,
            start_ms,
            &reply,
        );
        if let Some((id, pid)) = created {
            self.sessions.push(Session {
                id,
                pid,
                names: BTreeSet::new(),
                groups: BTreeSet::new(),
                renewed,
            });
        }
    }

    fn register(&mut self, s: usize) {
        let key = name_key(self.rng.random_range(0..self.config.names));
        // Confirmed: answered 200 only once every linked peer has seen it and it holds, so
        // two sessions racing for a name on connected agents are never both told they
        // hold it.
        let url = self.url(&format!(
            "/api/sessions/{}/names/{key}?confirm=true",
            self.sessions[s].id
        ));
        let body = json!({"meta": {"worker": self.worker}});
        let reply = self.record(OpKind::Register, Some(s), Some(&key), |c| {
            c.put(&url, Some(&body))
        });
        if reply.ok().is_some() {
            self.sessions[s].names.insert(key.clone());
            self.read_key(&key);
        }
    }

    fn unregister(&mut self, s: usize) {
        let Some(key) = self.sessions[s].names.iter().next().cloned() else {
            return self.register(s);
        };
        let url = self.url(&format!(
            "/api/sessions/{}/names/{key}",
            self.sessions[s].id
        ));
        let reply = self.record(OpKind::Unregister, Some(s), Some(&key), |c| c.delete(&url));
        if reply.ok().is_some() || matches!(reply.code(), Some("unknown_name" | "not_owner")) {
            self.sessions[s].names.remove(&key);
        }
    }

    fn join(&mut self, s: usize) {
        let key = group_key(self.rng.random_range(0..self.config.groups));
        let url = self.url(&format!(
            "/api/sessions/{}/groups/{key}",
            self.sessions[s].id
        ));
        let reply = self.record(OpKind::Join, Some(s), Some(&key), |c| c.put(&url, None));
        if reply.ok().is_some() {
            self.sessions[s].groups.insert(key);
        }
    }

    fn leave(&mut self, s: usize) {
        let Some(key) = self.sessions[s].groups.iter().next().cloned() else {
            return self.join(s);
        };
        let url = self.url(&format!(
            "/api/sessions/{}/groups/{key}",
            self.sessions[s].id
        ));
        let reply = self.record(OpKind::Leave, Some(s), Some(&key), |c| c.delete(&url));
        if reply.ok().is_some() || reply.code() == Some("not_a_member") {
            self.sessions[s].groups.remove(&key);
        }
    }

    /// Dispatches to a name or group of the pool, then empties the session's mailbox (so
    /// messages do not pile up in the agent).
    fn dispatch(&mut self, s: usize) {
        let key = if self.rng.random_bool(0.5) {
            name_key(self.rng.random_range(0..self.config.names))
        } else {
            group_key(self.rng.random_range(0..self.config.groups))
        };
        let url = self.url("/api/dispatch");
        let body = json!({"key": key, "message": {"from": self.worker}});
        self.record(OpKind::Dispatch, Some(s), Some(&key), |c| {
            c.post(&url, &body)
        });
        let url = self.url(&format!("/api/sessions/{}/messages", self.sessions[s].id));
        let _ = self.client.get(&url);
    }

    fn read(&mut self) {
        let key = name_key(self.rng.random_range(0..self.config.names));
        self.read_key(&key);
    }

    fn read_key(&mut self, key: &str) {
        let url = self.url(&format!("/api/registry/{key}"));
        self.record(OpKind::Read, None, Some(key), |c| c.get(&url));
    }

    fn delete(&mut self, s: usize) {
        let url = self.url(&format!("/api/sessions/{}", self.sessions[s].id));
        let reply = self.record(OpKind::DeleteSession, Some(s), None, |c| c.delete(&url));
        if reply.status().is_some() {
            self.sessions.remove(s);
        }
    }

    /// Stops renewing the session: the agent ends it within its TTL.
    fn abandon(&mut self, s: usize) {
        self.record(OpKind::Abandon, Some(s), None, |_| {
            Reply::Answered(200, Value::Null)
        });
        self.sessions.remove(s);
    }
}
