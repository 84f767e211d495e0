//! The node agent: `roster-bench node`, one Roster node in its own OS process, obeying the
//! driver's requests (see [`super::protocol`]) one at a time.
//!
//! The node runs on a multi-thread tokio runtime with [`WORKERS`] workers, like the local
//! scenarios. Requests are handled on the main thread (writes from the main thread, as a
//! caller outside the runtime would make them); watchers and raw-TCP readers are separate
//! threads that poll in a loop. A watcher of one key and the raw-TCP readers yield the
//! CPU between polls (`sched_yield`), so that they see a change as soon as it happens; a
//! watcher of a count sleeps [`COUNT_POLL`] between polls, so that it leaves the cores to
//! the writes it times.
//!
//! The agent exits when its stdin closes (the driver is gone), so it never outlives it.

use std::io::{BufRead, ErrorKind, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, mpsc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

use compact_str::{CompactString, format_compact};
use roster::Incarnation;
use roster::{ClusterConfig, ExitReason, FailureDetection, Node, Pid, Process, StartError};
use serde_json::{Value, json};
use tokio::runtime::Runtime;

use super::protocol::{Cond, Request, from_ns, now_ns, to_ns};
use super::{SECRET, WAIT_LIMIT};
use crate::WORKERS;
use crate::measure::{new_histogram, record, release_tasks_at};
use crate::memory::allocated;

/// The local-only scope of [`Request::RegisterOne`]'s `local` writes.
const LOCAL_SCOPE: &str = "bench-local";

/// What a request handler returns: the reply's fields, or an error message.
type Reply = Result<Value, String>;

/// A process and the key it registered (empty once unregistered, or for a group member).
type Held = (Process, CompactString);

/// A thread polling for something, and the moment it saw it.
type Poller = JoinHandle<Result<Value, String>>;

/// The agent's state: its node and everything the driver asked it to keep.
struct Agent<'rt> {
    rt: &'rt Runtime,
    node: Option<Node>,
    /// Live processes holding names or memberships.
    held: Vec<Held>,
    /// Processes waiting for [`Request::Fire`].
    prepared: Vec<Held>,
    /// The armed watcher.
    watcher: Option<Poller>,
    /// Accepts the raw TCP connection.
    raw_accept: Option<JoinHandle<Result<TcpStream, String>>>,
    /// The raw TCP connection (either side).
    raw: Option<TcpStream>,
    /// The armed raw reader; it hands the connection back.
    raw_reader: Option<JoinHandle<(TcpStream, Result<Value, String>)>>,
    /// The thread writing hand-off raw sends (see [`spawn_raw_writer`]).
    raw_writer: Option<mpsc::Sender<u64>>,
    /// The background writer of [`Request::Traffic`]: its stop flag and thread (which
    /// returns how many writes it made).
    traffic: Option<(Arc<AtomicBool>, JoinHandle<u64>)>,
}

/// Runs the agent until stdin closes or a [`Request::Shutdown`].
pub(crate) fn main() -> ExitCode {
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(WORKERS)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("agent: the tokio runtime does not start: {e}");
            return ExitCode::FAILURE;
        }
    };
    let _entered = rt.enter();
    let mut agent = Agent {
        rt: &rt,
        node: None,
        held: Vec::new(),
        prepared: Vec::new(),
        watcher: None,
        raw_accept: None,
        raw: None,
        raw_reader: None,
        raw_writer: None,
        traffic: None,
    };
    let mut out = std::io::stdout().lock();
    let ready = json!({"ok": true, "ready": true, "pid": std::process::id()});
    if writeln!(out, "{ready}").and_then(|()| out.flush()).is_err() {
        return ExitCode::FAILURE;
    }
    for line in std::io::stdin().lock().lines() {
        let Ok(line) = line else { break };
        if line.trim().is_empty() {
            continue;
        }
        let (reply, last) = match serde_json::from_str::<Request>(&line) {
            Ok(Request::Shutdown) => (agent.shutdown(), true),
            Ok(request) => (agent.handle(request), false),
            Err(e) => (Err(format!("bad request {line:?}: {e}")), false),
        };
        let reply = match reply {
            Ok(Value::Object(mut fields)) => {
                fields.insert("ok".into(), Value::Bool(true));
                Value::Object(fields)
            }
            Ok(other) => json!({"ok": true, "value": other}),
            Err(error) => json!({"ok": false, "error": error}),
        };
        if writeln!(out, "{reply}").and_then(|()| out.flush()).is_err() || last {
            break;
        }
    }
    // Tearing down up to a million processes one by one is not worth the wait.
    std::process::exit(0)
}

impl Agent<'_> {
    /// Starts or stops the background writer (see [`Request::Traffic`]).
    fn traffic(&mut self, every_us: u64) -> Reply {
        if let Some((stop, writer)) = self.traffic.take() {
            stop.store(true, Ordering::Relaxed);
            let writes = writer
                .join()
                .map_err(|_| "the traffic writer panicked".to_string())?;
            return Ok(json!({"writes": writes}));
        }
        if every_us == 0 {
            return Ok(json!({"writes": 0}));
        }
        let node = self.node()?.clone();
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = stop.clone();
        let writer = std::thread::spawn(move || {
            let proc = node.new_process();
            let scope = node.default_scope();
            let mut writes = 0;
            while !stopped.load(Ordering::Relaxed) {
                let ok = if writes % 2 == 0 {
                    scope.register(&proc, "traffic", &()).is_ok()
                } else {
                    scope.unregister(&proc, "traffic").is_ok()
                };
                writes += u64::from(ok);
                std::thread::sleep(Duration::from_micros(every_us));
            }
            writes
        });
        self.traffic = Some((stop, writer));
        Ok(json!({}))
    }

    /// The started node.
    fn node(&self) -> Result<&Node, String> {
        self.node
            .as_ref()
            .ok_or_else(|| "the node is not started".to_string())
    }

    /// Handles one request (not `Shutdown`).
    fn handle(&mut self, request: Request) -> Reply {
        match request {
            Request::Start {
                name,
                seeds,
                watch,
                listen,
                fast_failure_detection,
                announce_ms,
                anti_entropy_ms,
                busy_poll_us,
                read_poll_us,
            } => {
                let options = StartOptions {
                    listen,
                    fast_failure_detection,
                    announce_ms,
                    anti_entropy_ms,
                    busy_poll_us,
                    read_poll_us,
                };
                self.start(&name, seeds, watch, &options)
            }
            Request::WaitPeers { peers } => {
                let node = self.node()?;
                let since = Instant::now();
                while node.cluster().peers().len() < peers {
                    if since.elapsed() > WAIT_LIMIT {
                        return Err(format!(
                            "linked to {:?} after {WAIT_LIMIT:?}, not to {peers} peers",
                            node.cluster()
                                .peers()
                                .iter()
                                .map(|p| &p.name)
                                .collect::<Vec<_>>()
                        ));
                    }
                    std::thread::sleep(Duration::from_millis(1));
                }
                Ok(json!({"t_ns": now_ns()}))
            }
            Request::Register { prefix, count } => {
                let node = self.node()?.clone();
                let since = Instant::now();
                let mut calls = new_histogram();
                self.held.reserve(count);
                for i in 1..=count {
                    let key = format_compact!("{prefix}{i}");
                    let proc = node.new_process();
                    let call = Instant::now();
                    let registered = proc.register(&key, &());
                    record(&mut calls, call.elapsed());
                    registered.map_err(|e| format!("register {key}: {e}"))?;
                    self.held.push((proc, key));
                }
                Ok(json!({
                    "elapsed_ns": nanos(since.elapsed()),
                    "call_p50_ns": calls.value_at_quantile(0.5),
                    "call_p99_ns": calls.value_at_quantile(0.99),
                }))
            }
            Request::Unregister { prefix, count } => {
                let since = Instant::now();
                let mut done = 0;
                for (proc, key) in &mut self.held {
                    if done == count {
                        break;
                    }
                    if !key.is_empty() && key.starts_with(prefix.as_str()) {
                        proc.unregister(key)
                            .map_err(|e| format!("unregister {key}: {e}"))?;
                        *key = CompactString::default();
                        done += 1;
                    }
                }
                let elapsed = since.elapsed();
                if done < count {
                    return Err(format!("only {done} keys under {prefix:?} to unregister"));
                }
                Ok(json!({"elapsed_ns": nanos(elapsed)}))
            }
            Request::Join { group, count } => {
                let node = self.node()?.clone();
                self.held.reserve(count);
                let start_ns = now_ns();
                let since = Instant::now();
                for _ in 0..count {
                    let proc = node.new_process();
                    proc.join(&group, &())
                        .map_err(|e| format!("join {group}: {e}"))?;
                    self.held.push((proc, CompactString::default()));
                }
                Ok(json!({"start_ns": start_ns, "elapsed_ns": nanos(since.elapsed())}))
            }
            Request::GroupReads { group, calls } => group_reads(self.node()?, &group, calls),
            Request::Prepare { prefix, count } => {
                let node = self.node()?.clone();
                self.prepared = (1..=count)
                    .map(|i| (node.new_process(), format_compact!("{prefix}{i}")))
                    .collect();
                Ok(json!({}))
            }
            Request::Fire { at_ns } => self.fire(at_ns),
            Request::RegisterOne { key, local } => {
                let node = self.node()?;
                let proc = node.new_process();
                let scope = if local {
                    Some(
                        node.connect_with(LOCAL_SCOPE, roster::ScopeOptions::new().local_only())
                            .map_err(|e| e.to_string())?,
                    )
                } else {
                    None
                };
                let start_ns = now_ns();
                let since = Instant::now();
                let registered = match &scope {
                    Some(scope) => scope.register(&proc, &key, &()),
                    None => proc.register(&key, &()),
                };
                let call = since.elapsed();
                registered.map_err(|e| format!("register {key}: {e}"))?;
                self.held.push((proc, key.into()));
                Ok(json!({"start_ns": start_ns, "call_ns": nanos(call)}))
            }
            Request::KillAll { then } => {
                let node = self.node()?.clone();
                let start_ns = now_ns();
                self.held.clear();
                self.prepared.clear();
                let dropped_ns = now_ns();
                let seen = poll(&node, &then)?;
                Ok(
                    json!({"start_ns": start_ns, "dropped_ns": dropped_ns, "seen_ns": seen["seen_ns"]}),
                )
            }
            Request::Watch { cond } => {
                if self.watcher.is_some() {
                    return Err("a watcher is already armed".into());
                }
                let node = self.node()?.clone();
                self.watcher = Some(arm(move || poll(&node, &cond)));
                Ok(json!({}))
            }
            Request::WatchResult => {
                let watcher = self.watcher.take().ok_or("no watcher is armed")?;
                watcher
                    .join()
                    .map_err(|_| "the watcher panicked".to_string())?
            }
            Request::Counts => {
                let node = self.node()?;
                Ok(json!({
                    "names": node.default_scope().name_count(),
                    "memberships": node.default_scope().membership_count(),
                    "peers": node.cluster().peers().len(),
                }))
            }
            Request::Memory => Ok(json!({"allocated": allocated()})),
            Request::Stats => super::link::stats(self.node()?),
            Request::Sever { ms } => {
                super::link::sever(self.node()?, Duration::from_millis(ms))?;
                Ok(json!({"t_ns": now_ns()}))
            }
            Request::RawListen => {
                let listener = TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
                let addr = listener.local_addr().map_err(|e| e.to_string())?;
                self.raw_accept = Some(std::thread::spawn(move || accept(&listener)));
                Ok(json!({"addr": addr.to_string()}))
            }
            Request::RawConnect { addr } => {
                let addr = addr.parse().map_err(|e| format!("address {addr:?}: {e}"))?;
                let stream = TcpStream::connect_timeout(&addr, WAIT_LIMIT)
                    .map_err(|e| format!("connect to {addr}: {e}"))?;
                stream.set_nodelay(true).map_err(|e| e.to_string())?;
                self.raw = Some(stream);
                Ok(json!({}))
            }
            Request::WakeCost { iterations } => wake_cost(iterations),
            Request::Cpu => Ok(json!({"cpu_ns": cpu_ns()})),
            Request::Traffic { every_us } => self.traffic(every_us),
            Request::RawArm { parked } => {
                if let Some(accepting) = self.raw_accept.take() {
                    let stream = accepting
                        .join()
                        .map_err(|_| "the accept thread panicked".to_string())??;
                    self.raw = Some(stream);
                }
                let stream = self.raw.take().ok_or("no raw connection")?;
                let (armed_tx, armed_rx) = mpsc::channel();
                self.raw_reader = Some(std::thread::spawn(move || {
                    let _ = armed_tx.send(());
                    read_timestamp(stream, parked)
                }));
                armed_rx
                    .recv()
                    .map_err(|_| "the raw reader died".to_string())?;
                Ok(json!({}))
            }
            Request::RawSend { handoff: true } => {
                if self.raw_writer.is_none() {
                    let stream = self.raw.as_ref().ok_or("no raw connection")?;
                    let stream = stream.try_clone().map_err(|e| e.to_string())?;
                    self.raw_writer = Some(spawn_raw_writer(stream));
                }
                let writer = self.raw_writer.as_ref().ok_or("no raw writer")?;
                let start_ns = now_ns();
                writer
                    .send(start_ns)
                    .map_err(|_| "the raw writer stopped (a write failed)".to_string())?;
                Ok(json!({"start_ns": start_ns}))
            }
            Request::RawSend { handoff: false } => {
                let stream = self.raw.as_mut().ok_or("no raw connection")?;
                let start_ns = now_ns();
                stream
                    .write_all(&start_ns.to_le_bytes())
                    .map_err(|e| format!("raw write: {e}"))?;
                Ok(json!({"start_ns": start_ns}))
            }
            Request::RawResult => {
                let reader = self.raw_reader.take().ok_or("no raw reader is armed")?;
                let (stream, result) = reader
                    .join()
                    .map_err(|_| "the raw reader panicked".to_string())?;
                self.raw = Some(stream);
                result
            }
            Request::Spawn { key, groups } => {
                let proc = self.node()?.new_process();
                if let Some(key) = &key {
                    proc.register(key, &())
                        .map_err(|e| format!("register {key}: {e}"))?;
                }
                for group in &groups {
                    proc.join(group, &())
                        .map_err(|e| format!("join {group}: {e}"))?;
                }
                let pid = proc.pid();
                self.held
                    .push((proc, key.map(CompactString::from).unwrap_or_default()));
                Ok(json!({"pid": pid.to_string()}))
            }
            Request::Lookup { key } => Ok(match self.node()?.default_scope().lookup(&key) {
                Some(reg) => json!({
                    "pid": reg.pid.to_string(),
                    "registered_at": reg.registered_at,
                    "token": reg.token,
                }),
                None => json!({"pid": null}),
            }),
            Request::Status { pid } => {
                let pid = parse_pid(&pid)?;
                let node = self.node()?;
                match self.held.iter().find(|(p, _)| p.pid() == pid) {
                    Some((proc, _)) => Ok(json!({
                        "held": true,
                        "alive": proc.is_alive(),
                        "exit_reason": proc.exit_reason().map(|r| exit_reason(&r)),
                    })),
                    None => Ok(json!({"held": false, "alive": node.is_alive(pid)})),
                }
            }
            Request::State => state(self.node()?),
            Request::Shutdown => unreachable!("handled by the main loop"),
        }
    }

    /// Starts the node (retrying if the port picked for TCP is taken for UDP).
    fn start(
        &mut self,
        name: &str,
        seeds: Vec<String>,
        watch: Option<Cond>,
        options: &StartOptions,
    ) -> Reply {
        if self.node.is_some() {
            return Err("the node is already started".into());
        }
        let listen: std::net::SocketAddr = match &options.listen {
            Some(addr) => addr
                .parse()
                .map_err(|e| format!("listen address {addr:?}: {e}"))?,
            None => "127.0.0.1:0".parse().expect("a valid address"),
        };
        let mut attempts = 0;
        let (node, start_ns, alloc_before) = loop {
            let config = options.apply(ClusterConfig::new(listen, SECRET).seeds(seeds.clone()));
            let alloc_before = allocated();
            let start_ns = now_ns();
            match Node::builder().name(name).cluster(config).start() {
                Ok(node) => break (node, start_ns, alloc_before),
                // Only a port picked by the system can differ on the next attempt.
                Err(e @ StartError::Bind { .. }) if attempts < 5 && listen.port() == 0 => {
                    attempts += 1;
                    eprintln!("agent {name}: bind failed ({e}), retrying");
                }
                Err(e) => return Err(format!("node {name} does not start: {e}")),
            }
        };
        let alloc_after = allocated();
        if let Some(cond) = watch {
            let watched = node.clone();
            self.watcher = Some(arm(move || poll(&watched, &cond)));
        }
        let node_incarnation = node.incarnation();
        let addr = node
            .cluster()
            .addr()
            .ok_or("a clustered node has an address")?
            .to_string();
        self.node = Some(node);
        Ok(json!({
            "start_ns": start_ns,
            "addr": addr,
            "incarnation": node_incarnation,
            "alloc_before": alloc_before,
            "alloc_after": alloc_after,
        }))
    }

    /// Releases the prepared registrations together at `at_ns`.
    fn fire(&mut self, at_ns: u64) -> Reply {
        let items = std::mem::take(&mut self.prepared);
        let n = items.len();
        let released = self.rt.block_on(release_tasks_at(
            items,
            |(proc, key): &Held| proc.register(key, &()).map(drop),
            Some(from_ns(at_ns)),
        ));
        // The release and end instants, on the wall clock.
        let (now, wall) = (Instant::now(), SystemTime::now());
        let released_ns = to_ns(wall - (now - released.start));
        let done_ns = to_ns(wall - (now - released.end));
        self.held.extend(released.items);
        if released.errors > 0 {
            return Err(format!("{} of {n} registrations failed", released.errors));
        }
        Ok(json!({"released_ns": released_ns, "done_ns": done_ns}))
    }

    /// Leaves the cluster.
    fn shutdown(&mut self) -> Reply {
        if let Some(node) = self.node.take() {
            self.rt.block_on(async {
                tokio::time::timeout(Duration::from_secs(5), node.shutdown())
                    .await
                    .map_err(|_| "the node's shutdown took over 5 s".to_string())
            })?;
        }
        Ok(json!({}))
    }
}

/// The cluster settings a [`Request::Start`] may override.
struct StartOptions {
    listen: Option<String>,
    fast_failure_detection: bool,
    announce_ms: Option<u64>,
    anti_entropy_ms: Option<u64>,
    busy_poll_us: Option<u64>,
    read_poll_us: Option<u64>,
}

impl StartOptions {
    /// `config` with the overridden settings.
    fn apply(&self, mut config: ClusterConfig) -> ClusterConfig {
        if self.fast_failure_detection {
            config = config.failure_detection(FailureDetection::Fast);
        }
        if let Some(ms) = self.announce_ms {
            config = config.announce_interval(Duration::from_millis(ms));
        }
        if let Some(ms) = self.anti_entropy_ms {
            config = config.anti_entropy_interval(Duration::from_millis(ms));
        }
        if let Some(us) = self.busy_poll_us {
            config = config.busy_poll(Duration::from_micros(us));
        }
        if let Some(us) = self.read_poll_us {
            config = config.read_poll(Duration::from_micros(us));
        }
        config
    }
}

/// Parses a pid as it displays: `<incarnation in hex.serial>`.
fn parse_pid(text: &str) -> Result<Pid, String> {
    let bad = || format!("not a pid: {text:?}");
    let inner = text
        .strip_prefix('<')
        .and_then(|t| t.strip_suffix('>'))
        .ok_or_else(bad)?;
    let (incarnation, serial) = inner.split_once('.').ok_or_else(bad)?;
    let incarnation = u64::from_str_radix(incarnation, 16).map_err(|_| bad())?;
    let serial = serial.parse().map_err(|_| bad())?;
    Ok(Pid::new(Incarnation::new(incarnation), serial))
}

/// An exit reason as a reply field.
fn exit_reason(reason: &ExitReason) -> Value {
    match reason {
        ExitReason::Normal => json!({"kind": "normal"}),
        ExitReason::Panicked => json!({"kind": "panicked"}),
        ExitReason::Killed => json!({"kind": "killed"}),
        ExitReason::Conflict { key, winner } => json!({
            "kind": "conflict",
            "key": key.as_str(),
            "winner": winner.to_string(),
        }),
        ExitReason::NodeDown => json!({"kind": "node_down"}),
        ExitReason::Shutdown(reason) => json!({"kind": "shutdown", "reason": reason}),
        // A reason added by a later version of the library.
        other => json!({"kind": "other", "reason": format!("{other:?}")}),
    }
}

/// The node's whole view (see [`Request::State`]).
fn state(node: &Node) -> Reply {
    let peers: Vec<Value> = node
        .cluster()
        .peers()
        .into_iter()
        .map(|p| json!({"name": p.name, "incarnation": p.incarnation, "addr": p.addr.to_string()}))
        .collect();
    let names: serde_json::Map<String, Value> = node
        .default_scope()
        .names("", usize::MAX)
        .map_err(|e| e.to_string())?
        .into_iter()
        .map(|(key, reg)| (key.to_string(), Value::String(reg.pid.to_string())))
        .collect();
    let mut groups = serde_json::Map::new();
    for group in node
        .default_scope()
        .groups("", usize::MAX)
        .map_err(|e| e.to_string())?
    {
        let mut pids = node.default_scope().members(&group).pids();
        pids.sort_unstable();
        let pids: Vec<String> = pids.iter().map(ToString::to_string).collect();
        groups.insert(group.to_string(), json!(pids));
    }
    Ok(json!({
        "incarnation": node.incarnation(),
        "peers": peers,
        "names": names,
        "groups": groups,
        "registry_count": node.default_scope().name_count(),
        "membership_count": node.default_scope().membership_count(),
    }))
}

/// Times reads of `group` (see [`Request::GroupReads`]).
fn group_reads(node: &Node, group: &str, calls: usize) -> Reply {
    let mut taken: Vec<u64> = (0..calls.max(1))
        .map(|_| {
            let since = Instant::now();
            let members = std::hint::black_box(node.default_scope().members(group));
            let took = nanos(since.elapsed());
            drop(members);
            took
        })
        .collect();
    taken.sort_unstable();
    let members = node.default_scope().members(group);
    let since = Instant::now();
    let walked = members.iter().count();
    let iterate_ns = nanos(since.elapsed());
    drop(members);
    let since = Instant::now();
    let dispatched = node
        .default_scope()
        .dispatch(group, &())
        .map_err(|e| format!("dispatch to {group}: {e}"))?;
    let dispatch_ns = nanos(since.elapsed());
    Ok(json!({
        "members_p50_ns": taken[taken.len() / 2],
        "iterate_ns": iterate_ns,
        "members": walked,
        "dispatch_ns": dispatch_ns,
        "dispatched": dispatched.local,
    }))
}

/// Nanoseconds of a duration, saturated.
fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// Starts a polling thread and returns once it runs.
fn arm(f: impl FnOnce() -> Result<Value, String> + Send + 'static) -> Poller {
    let (armed_tx, armed_rx) = mpsc::channel();
    let handle = std::thread::spawn(move || {
        let _ = armed_tx.send(());
        f()
    });
    let _ = armed_rx.recv();
    handle
}

/// The CPU time this process's live threads have used, in nanoseconds (the first field
/// of each `/proc/self/task/*/schedstat`); 0 where there is no such file.
fn cpu_ns() -> u64 {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return 0;
    };
    tasks
        .filter_map(Result::ok)
        .filter_map(|t| std::fs::read_to_string(t.path().join("schedstat")).ok())
        .filter_map(|s| s.split_whitespace().next()?.parse::<u64>().ok())
        .sum()
}

/// Whether `cond` holds on `node` now.
fn holds(node: &Node, cond: &Cond) -> bool {
    match cond {
        Cond::Registry {
            count,
            present,
            absent,
        } => {
            node.default_scope().name_count() == *count
                && present
                    .iter()
                    .all(|k| node.default_scope().whereis(k).is_some())
                && absent
                    .iter()
                    .all(|k| node.default_scope().whereis(k).is_none())
        }
        Cond::Members { group, count } => node.default_scope().member_count(group) == *count,
        Cond::Whereis { key } => node.default_scope().whereis(key).is_some(),
    }
}

/// What the node sees of `cond`, for a timeout's message.
fn describe(node: &Node, cond: &Cond) -> String {
    match cond {
        Cond::Registry {
            present, absent, ..
        } => format!(
            "{} names, {} of {} expected keys present, {} of {} removed keys still there",
            node.default_scope().name_count(),
            present
                .iter()
                .filter(|k| node.default_scope().whereis(k).is_some())
                .count(),
            present.len(),
            absent
                .iter()
                .filter(|k| node.default_scope().whereis(k).is_some())
                .count(),
            absent.len(),
        ),
        Cond::Members { group, .. } => {
            format!("{} members", node.default_scope().member_count(group))
        }
        Cond::Whereis { .. } => "not registered".into(),
    }
}

/// Polls `cond` until it holds (replies `seen_ns`, `polls`, and `linked_ns`: when the node
/// was first seen linked to a peer) or [`WAIT_LIMIT`] passes.
fn poll(node: &Node, cond: &Cond) -> Reply {
    let since = Instant::now();
    let mut polls: u64 = 0;
    let mut linked_ns = None;
    loop {
        polls += 1;
        if linked_ns.is_none() && !node.cluster().peers().is_empty() {
            linked_ns = Some(now_ns());
        }
        if holds(node, cond) {
            let seen_ns = now_ns();
            let linked_ns = linked_ns.unwrap_or(seen_ns);
            return Ok(json!({"seen_ns": seen_ns, "polls": polls, "linked_ns": linked_ns}));
        }
        if since.elapsed() > WAIT_LIMIT {
            return Err(format!(
                "{} after {WAIT_LIMIT:?}: waited for {cond:?}; the node sees {}; linked to {} peer(s)",
                node.name(),
                describe(node, cond),
                node.cluster().peers().len(),
            ));
        }
        match cond {
            Cond::Whereis { .. } => std::thread::yield_now(),
            Cond::Registry { .. } | Cond::Members { .. } => std::thread::sleep(COUNT_POLL),
        }
    }
}

/// How long a watcher of a whole-table condition (a count of names or members) sleeps
/// between polls. The scenarios that wait for one take milliseconds, and a watcher that
/// spun on each node took a share of the two cores from the writes it timed (D3 on a
/// quiet machine: 20-26 ms spinning, 15 ms sleeping); the peers' harness polls such
/// conditions every millisecond. A single key (D1) is still watched spinning: its
/// times are microseconds.
const COUNT_POLL: Duration = Duration::from_micros(100);

/// Accepts one connection within [`WAIT_LIMIT`].
fn accept(listener: &TcpListener) -> Result<TcpStream, String> {
    listener.set_nonblocking(true).map_err(|e| e.to_string())?;
    let since = Instant::now();
    loop {
        match listener.accept() {
            Ok((stream, _)) => {
                stream.set_nonblocking(false).map_err(|e| e.to_string())?;
                stream.set_nodelay(true).map_err(|e| e.to_string())?;
                return Ok(stream);
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock && since.elapsed() < WAIT_LIMIT => {
                std::thread::sleep(Duration::from_millis(1));
            }
            Err(e) => return Err(format!("raw accept: {e}")),
        }
    }
}

/// A thread parked on a channel that writes each timestamp it is handed on `stream`; it
/// ends when a write fails or the sender is dropped.
fn spawn_raw_writer(mut stream: TcpStream) -> mpsc::Sender<u64> {
    let (tx, rx) = mpsc::channel::<u64>();
    std::thread::spawn(move || {
        while let Ok(start_ns) = rx.recv() {
            if stream.write_all(&start_ns.to_le_bytes()).is_err() {
                return;
            }
        }
    });
    tx
}

/// What unparking a parked thread costs the caller (`unpark_ns_p50`): the price a write
/// pays to wake an idle flusher. Each round the thread announces that it is about to park
/// and is given 200 µs to be asleep in the kernel before the timed `unpark`.
fn wake_cost(iterations: usize) -> Reply {
    let (ready_tx, ready_rx) = mpsc::channel::<()>();
    let sleeper = std::thread::spawn(move || {
        for _ in 0..iterations {
            if ready_tx.send(()).is_err() {
                return;
            }
            std::thread::park();
        }
    });
    let mut costs = new_histogram();
    for _ in 0..iterations {
        ready_rx
            .recv()
            .map_err(|_| "the parked thread died".to_string())?;
        std::thread::sleep(Duration::from_micros(200));
        let since = Instant::now();
        sleeper.thread().unpark();
        record(&mut costs, since.elapsed());
    }
    sleeper
        .join()
        .map_err(|_| "the parked thread panicked".to_string())?;
    Ok(json!({"unpark_ns_p50": costs.value_at_quantile(0.5)}))
}

/// Reads one 8-byte timestamp, spinning on a non-blocking read or, if `parked`, blocked in
/// the read; replies `sent_ns` (what was read) and `seen_ns` (when its last byte arrived).
/// Hands the connection back.
fn read_timestamp(mut stream: TcpStream, parked: bool) -> (TcpStream, Reply) {
    let result = (|| {
        stream.set_nonblocking(!parked).map_err(|e| e.to_string())?;
        stream
            .set_read_timeout(Some(WAIT_LIMIT))
            .map_err(|e| e.to_string())?;
        let mut buf = [0u8; 8];
        let mut filled = 0;
        let since = Instant::now();
        while filled < buf.len() {
            match stream.read(&mut buf[filled..]) {
                Ok(0) => return Err("raw connection closed".to_string()),
                Ok(n) => filled += n,
                Err(e) if e.kind() == ErrorKind::WouldBlock => {
                    if since.elapsed() > WAIT_LIMIT {
                        return Err(format!("no raw timestamp within {WAIT_LIMIT:?}"));
                    }
                    std::thread::yield_now();
                }
                Err(e) => return Err(format!("raw read: {e}")),
            }
        }
        let seen_ns = now_ns();
        Ok(json!({"sent_ns": u64::from_le_bytes(buf), "seen_ns": seen_ns}))
    })();
    (stream, result)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pid_parses_back_from_its_display() {
        let pid = Pid::new(Incarnation::new(0x1ccc_31d3_8583_3c73), 42);
        assert_eq!(parse_pid(&pid.to_string()), Ok(pid));
        assert_eq!(parse_pid("<7.1>"), Ok(Pid::new(Incarnation::new(7), 1)));
        assert!(parse_pid("7.1").is_err());
        assert!(parse_pid("<x.1>").is_err());
    }

    #[test]
    fn a_conflict_reports_its_key_and_winner() {
        let reason = ExitReason::Conflict {
            key: "leader".into(),
            winner: Pid::new(Incarnation::new(1), 2),
        };
        assert_eq!(
            exit_reason(&reason),
            json!({"kind": "conflict", "key": "leader", "winner": "<0000000000000001.2>"})
        );
    }
}
