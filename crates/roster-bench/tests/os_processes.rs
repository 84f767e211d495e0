//! Roster nodes in separate OS processes: each node is a node agent (`roster-bench node`,
//! JSON lines over stdin/stdout) started and driven by this test.
//!
//! - Three agents on 127.0.0.1: names and groups replicate; a SIGKILLed agent's entries are
//!   purged by the survivors; a restart under the same name (a new incarnation) relinks and
//!   replicates.
//! - A real network partition: three agents in their own Linux network namespaces, joined
//!   by a bridge in a fourth one; one node is cut off, the same name is registered on both
//!   sides, and after the heal every node agrees on one owner with no stale entry. Needs
//!   root and `ip`; without them the test says so and passes vacuously, unless
//!   `ROSTER_REQUIRE_NETNS` is set.
//!
//! Every wait is bounded and fails with what each node saw; there is no timing assertion.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

/// The node agent's program.
const AGENT: &str = env!("CARGO_BIN_EXE_roster-bench");

/// Longest wait for one reply of an agent.
const REPLY_LIMIT: Duration = Duration::from_secs(10);

/// Longest wait for nodes to link, replicate, purge or converge.
const SETTLE_LIMIT: Duration = Duration::from_secs(20);

/// How often a condition is polled.
const POLL: Duration = Duration::from_millis(20);

/// How often seeds are re-announced to (re-merges a healed partition), ms.
const ANNOUNCE_MS: u64 = 300;

/// How often peers compare digests, ms.
const ANTI_ENTROPY_MS: u64 = 300;

// ---------------------------------------------------------------------------------------
// Driving an agent
// ---------------------------------------------------------------------------------------

/// A running node agent; killed (SIGKILL) when dropped.
struct Agent {
    name: String,
    child: Child,
    stdin: ChildStdin,
    replies: mpsc::Receiver<String>,
    /// The node's cluster address, once started.
    addr: String,
    /// The node's incarnation, once started.
    incarnation: u64,
}

/// What a node sees.
#[derive(Debug, Clone, PartialEq, Eq)]
struct View {
    /// Linked peers: name to incarnation.
    peers: BTreeMap<String, u64>,
    /// Registered names: key to pid.
    names: BTreeMap<String, String>,
    /// Groups: key to sorted member pids.
    groups: BTreeMap<String, Vec<String>>,
}

impl Agent {
    /// Runs `command` (which must start the agent) and waits until the agent is ready.
    fn spawn(name: &str, mut command: Command) -> Self {
        let mut child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("agent {name} does not spawn: {e}"));
        let stdin = child.stdin.take().expect("piped stdin");
        let stdout = child.stdout.take().expect("piped stdout");
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
            addr: String::new(),
            incarnation: 0,
        };
        let ready = agent.recv().unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(ready["ready"], true, "agent {name}: {ready}");
        agent
    }

    /// An agent on this machine's network.
    fn local(name: &str) -> Self {
        let mut command = Command::new(AGENT);
        command.arg("node");
        Self::spawn(name, command)
    }

    /// The next reply; an error reply is an error.
    fn recv(&mut self) -> Result<Value, String> {
        let line = match self.replies.recv_timeout(REPLY_LIMIT) {
            Ok(line) => line,
            Err(RecvTimeoutError::Timeout) => {
                return Err(format!(
                    "agent {}: no reply within {REPLY_LIMIT:?}",
                    self.name
                ));
            }
            Err(RecvTimeoutError::Disconnected) => {
                let status = self.child.try_wait().ok().flatten();
                return Err(format!("agent {} is gone ({status:?})", self.name));
            }
        };
        let reply: Value = serde_json::from_str(&line)
            .map_err(|e| format!("agent {}: bad reply {line:?}: {e}", self.name))?;
        if reply["ok"] == true {
            Ok(reply)
        } else {
            Err(format!("agent {}: {}", self.name, reply["error"]))
        }
    }

    /// Sends a request and returns its reply.
    fn try_call(&mut self, request: &Value) -> Result<Value, String> {
        writeln!(self.stdin, "{request}")
            .and_then(|()| self.stdin.flush())
            .map_err(|e| format!("agent {}: cannot send {request}: {e}", self.name))?;
        self.recv()
    }

    /// Sends a request and returns its reply; panics on an error.
    fn call(&mut self, request: &Value) -> Value {
        self.try_call(request).unwrap_or_else(|e| panic!("{e}"))
    }

    /// Starts the node on `listen` with fast failure detection, seeded with `seeds`.
    fn start(&mut self, listen: &str, seeds: &[&str]) {
        let reply = self.call(&json!({
            "cmd": "start",
            "name": self.name,
            "seeds": seeds,
            "watch": null,
            "listen": listen,
            "fast_failure_detection": true,
            "announce_ms": ANNOUNCE_MS,
            "anti_entropy_ms": ANTI_ENTROPY_MS,
        }));
        self.addr = reply["addr"].as_str().expect("an address").to_string();
        self.incarnation = reply["incarnation"].as_u64().expect("an incarnation");
    }

    /// A new process of the node registers `key` (if any) and joins `groups`; its pid.
    fn process(&mut self, key: Option<&str>, groups: &[&str]) -> String {
        let reply = self.call(&json!({"cmd": "spawn", "key": key, "groups": groups}));
        reply["pid"].as_str().expect("a pid").to_string()
    }

    /// The pid `key` is registered to on this node.
    fn whereis(&mut self, key: &str) -> Result<Option<String>, String> {
        let reply = self.try_call(&json!({"cmd": "lookup", "key": key}))?;
        Ok(reply["pid"].as_str().map(str::to_string))
    }

    /// `alive`, `held` and `exit_reason` of a process of this node.
    fn status(&mut self, pid: &str) -> Result<Value, String> {
        self.try_call(&json!({"cmd": "status", "pid": pid}))
    }

    /// What the node sees.
    fn view(&mut self) -> Result<View, String> {
        let reply = self.try_call(&json!({"cmd": "state"}))?;
        let bad = |what: &str| format!("agent {}: bad state ({what}): {reply}", self.name);
        let peers = reply["peers"]
            .as_array()
            .ok_or_else(|| bad("peers"))?
            .iter()
            .map(|p| {
                let name = p["name"].as_str().ok_or_else(|| bad("peer name"))?;
                let incarnation = p["incarnation"]
                    .as_u64()
                    .ok_or_else(|| bad("incarnation"))?;
                Ok((name.to_string(), incarnation))
            })
            .collect::<Result<_, String>>()?;
        let names = reply["names"]
            .as_object()
            .ok_or_else(|| bad("names"))?
            .iter()
            .map(|(k, pid)| Ok((k.clone(), pid.as_str().ok_or_else(|| bad("pid"))?.into())))
            .collect::<Result<_, String>>()?;
        let groups = reply["groups"]
            .as_object()
            .ok_or_else(|| bad("groups"))?
            .iter()
            .map(|(k, pids)| {
                let pids = serde_json::from_value(pids.clone()).map_err(|_| bad("members"))?;
                Ok((k.clone(), pids))
            })
            .collect::<Result<_, String>>()?;
        Ok(View {
            peers,
            names,
            groups,
        })
    }

    /// SIGKILLs the agent and reaps it.
    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Polls `probe` until it returns `Ok`; panics after `limit` with `what` and the last
/// thing `probe` saw.
fn wait_until<T>(what: &str, limit: Duration, mut probe: impl FnMut() -> Result<T, String>) -> T {
    let since = Instant::now();
    loop {
        match probe() {
            Ok(value) => {
                eprintln!("waited {:?} for {what}", since.elapsed());
                return value;
            }
            Err(seen) if since.elapsed() > limit => {
                panic!("timed out after {limit:?} waiting for {what}; last seen:\n{seen}")
            }
            Err(_) => std::thread::sleep(POLL),
        }
    }
}

/// The views of every agent, or a description of them that says which one differs.
fn views_match(
    agents: &mut [&mut Agent],
    mut check: impl FnMut(&Agent, &View) -> bool,
) -> Result<(), String> {
    let mut report = String::new();
    let mut ok = true;
    for agent in agents.iter_mut() {
        let view = agent.view()?;
        let good = check(agent, &view);
        ok &= good;
        let mark = if good { "ok " } else { "NOT" };
        report.push_str(&format!("  {mark} {}: {view:?}\n", agent.name));
    }
    if ok { Ok(()) } else { Err(report) }
}

/// Waits until every agent is linked to exactly the others (in their current
/// incarnations).
fn wait_linked(agents: &mut [&mut Agent]) {
    let all: BTreeMap<String, u64> = agents
        .iter()
        .map(|a| (a.name.clone(), a.incarnation))
        .collect();
    wait_until("every node linked to every other", SETTLE_LIMIT, || {
        views_match(agents, |agent, view| {
            let mut others = all.clone();
            others.remove(&agent.name);
            view.peers == others
        })
    });
}

/// Waits until every agent sees exactly `names` and `groups`.
fn wait_entries(
    what: &str,
    agents: &mut [&mut Agent],
    names: &[(&str, &str)],
    groups: &[(&str, &[&str])],
) {
    let names: BTreeMap<String, String> = names
        .iter()
        .map(|(k, pid)| (k.to_string(), pid.to_string()))
        .collect();
    let groups: BTreeMap<String, Vec<String>> = groups
        .iter()
        .map(|(k, pids)| {
            let mut pids: Vec<String> = pids.iter().map(ToString::to_string).collect();
            pids.sort_by_key(|p| pid_order(p));
            (k.to_string(), pids)
        })
        .collect();
    let expected = format!("{what}: names {names:?}, groups {groups:?}");
    wait_until(&expected, SETTLE_LIMIT, || {
        views_match(agents, |_, view| {
            view.names == names && view.groups == groups
        })
    });
}

/// A pid's `(incarnation, serial)`, parsed from how it displays (`<hex.serial>`).
fn pid_order(pid: &str) -> (u64, u64) {
    let inner = pid.trim_start_matches('<').trim_end_matches('>');
    let (incarnation, serial) = inner.split_once('.').expect("a pid");
    (
        u64::from_str_radix(incarnation, 16).expect("a hex incarnation"),
        serial.parse().expect("a serial"),
    )
}

/// Checks that every entry any agent sees belongs to a process alive on its node (one of
/// `agents`, in its current incarnation).
fn assert_no_stale_entries(agents: &mut [&mut Agent]) {
    let mut pids = Vec::new();
    for agent in agents.iter_mut() {
        let view = agent.view().unwrap_or_else(|e| panic!("{e}"));
        for (key, pid) in &view.names {
            pids.push((agent.name.clone(), format!("name {key}"), pid.clone()));
        }
        for (group, members) in &view.groups {
            for pid in members {
                pids.push((
                    agent.name.clone(),
                    format!("member of {group}"),
                    pid.clone(),
                ));
            }
        }
    }
    for (seen_on, entry, pid) in pids {
        let (incarnation, _) = pid_order(&pid);
        let owner = agents
            .iter_mut()
            .find(|a| a.incarnation == incarnation)
            .unwrap_or_else(|| {
                panic!("{seen_on} sees {entry} held by {pid}, of no live node incarnation")
            });
        let status = owner.status(&pid).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            status["alive"], true,
            "{seen_on} sees {entry} held by {pid}, which is dead on {}: {status}",
            owner.name
        );
    }
}

// ---------------------------------------------------------------------------------------
// Three agents on loopback
// ---------------------------------------------------------------------------------------

#[test]
fn three_agents_replicate_purge_a_killed_one_and_relink_its_restart() {
    let mut a = Agent::local("a");
    a.start("127.0.0.1:0", &[]);
    let seed = a.addr.clone();
    let mut b = Agent::local("b");
    b.start("127.0.0.1:0", &[&seed]);
    let mut c = Agent::local("c");
    c.start("127.0.0.1:0", &[&seed]);
    wait_linked(&mut [&mut a, &mut b, &mut c]);

    // A name registered on one node is seen on the others; a group with members on every
    // node is complete everywhere.
    let pa = a.process(Some("svc/a"), &["workers"]);
    wait_until("b and c see svc/a", SETTLE_LIMIT, || {
        let (on_b, on_c) = (b.whereis("svc/a")?, c.whereis("svc/a")?);
        let want = Some(pa.clone());
        if on_b == want && on_c == want {
            Ok(())
        } else {
            Err(format!("b: {on_b:?}, c: {on_c:?}, registered: {pa}"))
        }
    });
    let pb = b.process(Some("svc/b"), &["workers"]);
    let pc = c.process(Some("svc/c"), &["workers"]);
    let pc2 = c.process(None, &["workers"]);
    wait_entries(
        "every node sees the three names and the four workers",
        &mut [&mut a, &mut b, &mut c],
        &[("svc/a", &pa), ("svc/b", &pb), ("svc/c", &pc)],
        &[("workers", &[&pa, &pb, &pc, &pc2])],
    );

    // SIGKILL c's process: a and b purge everything of it.
    let old_incarnation = c.incarnation;
    c.kill();
    wait_until("a and b drop the killed node", SETTLE_LIMIT, || {
        views_match(&mut [&mut a, &mut b], |_, view| {
            !view.peers.contains_key("c")
        })
    });
    wait_entries(
        "a and b purge the killed node's entries",
        &mut [&mut a, &mut b],
        &[("svc/a", &pa), ("svc/b", &pb)],
        &[("workers", &[&pa, &pb])],
    );
    assert_no_stale_entries(&mut [&mut a, &mut b]);

    // A new process with the same node name: a new incarnation, which links, catches up,
    // and whose registrations replicate.
    let mut c = Agent::local("c");
    c.start("127.0.0.1:0", &[&seed]);
    assert_ne!(
        c.incarnation, old_incarnation,
        "a restart is a new incarnation"
    );
    wait_linked(&mut [&mut a, &mut b, &mut c]);
    let pc = c.process(Some("svc/c"), &["workers"]);
    wait_entries(
        "every node sees the restarted node's new entries and no old one",
        &mut [&mut a, &mut b, &mut c],
        &[("svc/a", &pa), ("svc/b", &pb), ("svc/c", &pc)],
        &[("workers", &[&pa, &pb, &pc])],
    );
    assert_no_stale_entries(&mut [&mut a, &mut b, &mut c]);
}

// ---------------------------------------------------------------------------------------
// A network partition between network namespaces
// ---------------------------------------------------------------------------------------

/// The prefix of every namespace this test creates; the test process's pid follows.
const NETNS_PREFIX: &str = "roster-os-";

/// The subnet of the test's namespaces (inside them only).
const SUBNET: &str = "10.213.7";

/// The port every node listens on (each namespace has its own ports).
const PORT: u16 = 7400;

/// The `ip` program.
fn ip_program() -> &'static str {
    if std::path::Path::new("/usr/sbin/ip").exists() {
        "/usr/sbin/ip"
    } else {
        "ip"
    }
}

/// Runs `ip args`; its stderr on failure.
fn ip(args: &[&str]) -> Result<(), String> {
    let output = Command::new(ip_program())
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("`ip {}` does not run: {e}", args.join(" ")))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(format!(
            "`ip {}` failed ({}): {}",
            args.join(" "),
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        ))
    }
}

/// Nodes in their own network namespaces, each with a veth pair to a bridge in another
/// namespace. Dropping it kills the agents, then deletes every namespace it created (the
/// veth pairs and the bridge go with them), even on panic.
struct NetLab {
    /// The nodes' namespaces, in node order.
    nodes: Vec<String>,
    /// The bridge's namespace.
    bridge: String,
    /// Every namespace created so far.
    created: Vec<String>,
    /// The agents, in node order.
    agents: Vec<Agent>,
}

impl NetLab {
    /// Creates the namespaces, the bridge and `n` linked nodes' namespaces, or `None` (with
    /// a message) if this machine does not let the test create namespaces.
    fn new(n: usize) -> Option<Self> {
        remove_stale_namespaces();
        let id = std::process::id();
        let mut lab = Self {
            nodes: (0..n).map(|i| format!("{NETNS_PREFIX}{id}-n{i}")).collect(),
            bridge: format!("{NETNS_PREFIX}{id}-br"),
            created: Vec::new(),
            agents: Vec::new(),
        };
        if let Err(e) = ip(&["netns", "add", &lab.bridge]) {
            let message = format!(
                "cannot create a network namespace (root and iproute2's `ip` are needed): {e}"
            );
            assert!(
                std::env::var_os("ROSTER_REQUIRE_NETNS").is_none(),
                "ROSTER_REQUIRE_NETNS is set: {message}"
            );
            eprintln!("SKIPPED the network partition test: {message}");
            return None;
        }
        lab.created.push(lab.bridge.clone());
        let br = lab.bridge.clone();
        let setup = |args: &[&str]| ip(args).unwrap_or_else(|e| panic!("namespace setup: {e}"));
        setup(&["-n", &br, "link", "set", "lo", "up"]);
        setup(&["-n", &br, "link", "add", "br0", "type", "bridge"]);
        setup(&["-n", &br, "link", "set", "br0", "up"]);
        for i in 0..n {
            let ns = lab.nodes[i].clone();
            ip(&["netns", "add", &ns]).unwrap_or_else(|e| panic!("namespace setup: {e}"));
            lab.created.push(ns.clone());
            let port = Self::bridge_port(i);
            let addr = format!("{}/24", Self::host(i));
            // The pair is created inside the node's namespace, its far end moved straight
            // into the bridge's: nothing ever appears in the root namespace.
            setup(&[
                "-n", &ns, "link", "add", "eth0", "type", "veth", "peer", "name", &port, "netns",
                &br,
            ]);
            setup(&["-n", &br, "link", "set", &port, "master", "br0"]);
            setup(&["-n", &br, "link", "set", &port, "up"]);
            setup(&["-n", &ns, "link", "set", "lo", "up"]);
            setup(&["-n", &ns, "addr", "add", &addr, "dev", "eth0"]);
            setup(&["-n", &ns, "link", "set", "eth0", "up"]);
        }
        Some(lab)
    }

    /// Node `i`'s address.
    fn host(i: usize) -> String {
        format!("{SUBNET}.{}", i + 1)
    }

    /// Node `i`'s cluster address.
    fn cluster_addr(i: usize) -> String {
        format!("{}:{PORT}", Self::host(i))
    }

    /// The bridge-side end of node `i`'s veth pair.
    fn bridge_port(i: usize) -> String {
        format!("veth{i}")
    }

    /// Starts an agent named `name` in node `i`'s namespace, seeded with every other node.
    fn start_agent(&mut self, i: usize, name: &str) {
        let mut command = Command::new(ip_program());
        command.args(["netns", "exec", &self.nodes[i], AGENT, "node"]);
        let mut agent = Agent::spawn(name, command);
        let seeds: Vec<String> = (0..self.nodes.len())
            .filter(|&j| j != i)
            .map(Self::cluster_addr)
            .collect();
        let seeds: Vec<&str> = seeds.iter().map(String::as_str).collect();
        agent.start(&Self::cluster_addr(i), &seeds);
        self.agents.push(agent);
    }

    /// Takes node `i`'s bridge port down (`false`: the node is cut off) or up.
    fn set_link(&self, i: usize, up: bool) {
        let state = if up { "up" } else { "down" };
        ip(&[
            "-n",
            &self.bridge,
            "link",
            "set",
            &Self::bridge_port(i),
            state,
        ])
        .unwrap_or_else(|e| panic!("{e}"));
    }
}

impl Drop for NetLab {
    fn drop(&mut self) {
        for agent in &mut self.agents {
            agent.kill();
        }
        for ns in self.created.iter().rev() {
            if let Err(e) = ip(&["netns", "delete", ns]) {
                eprintln!("cleanup: {e}");
            }
        }
    }
}

/// Deletes namespaces left by earlier runs of this test whose process is gone (killed
/// before its guard could run).
fn remove_stale_namespaces() {
    let Ok(output) = Command::new(ip_program()).args(["netns", "list"]).output() else {
        return;
    };
    for line in String::from_utf8_lossy(&output.stdout).lines() {
        let Some(name) = line.split_whitespace().next() else {
            continue;
        };
        let Some(rest) = name.strip_prefix(NETNS_PREFIX) else {
            continue;
        };
        let Some(pid) = rest.split('-').next().and_then(|p| p.parse::<u32>().ok()) else {
            continue;
        };
        if !std::path::Path::new(&format!("/proc/{pid}")).exists() {
            let _ = ip(&["netns", "delete", name]);
        }
    }
}

#[test]
fn a_healed_network_partition_leaves_one_leader_and_no_stale_entries() {
    let Some(mut lab) = NetLab::new(3) else {
        return;
    };
    for (i, name) in ["a", "b", "c"].into_iter().enumerate() {
        lab.start_agent(i, name);
    }
    let [a, b, c] = &mut lab.agents[..] else {
        unreachable!("three agents")
    };
    wait_linked(&mut [a, b, c]);
    let pa = a.process(Some("node/a"), &["all"]);
    let pb = b.process(Some("node/b"), &["all"]);
    let pc = c.process(Some("node/c"), &["all"]);
    wait_entries(
        "every node sees every node's name and member",
        &mut [a, b, c],
        &[("node/a", &pa), ("node/b", &pb), ("node/c", &pc)],
        &[("all", &[&pa, &pb, &pc])],
    );

    // Cut c off: each side declares the other down and purges its entries.
    lab.set_link(2, false);
    let [a, b, c] = &mut lab.agents[..] else {
        unreachable!("three agents")
    };
    wait_until("c to lose both peers", SETTLE_LIMIT, || {
        views_match(&mut [c], |_, view| view.peers.is_empty())
    });
    let (inc_a, inc_b) = (a.incarnation, b.incarnation);
    wait_until("a and b to lose c", SETTLE_LIMIT, || {
        views_match(&mut [a, b], |agent, view| {
            let other = if agent.name == "a" {
                ("b", inc_b)
            } else {
                ("a", inc_a)
            };
            view.peers.len() == 1 && view.peers.get(other.0) == Some(&other.1)
        })
    });

    // The same name on both sides: first on the majority side, then, a little later, on c.
    let leader_a = a.process(Some("leader"), &[]);
    let during_a = a.process(Some("during/a"), &[]);
    wait_until("b to see a's leader", SETTLE_LIMIT, || {
        let seen = b.whereis("leader")?;
        if seen.as_deref() == Some(leader_a.as_str()) {
            Ok(())
        } else {
            Err(format!("b: {seen:?}, a's leader: {leader_a}"))
        }
    });
    std::thread::sleep(Duration::from_millis(100));
    let leader_c = c.process(Some("leader"), &[]);
    let during_c = c.process(Some("during/c"), &[]);
    wait_entries(
        "c, cut off, sees only itself",
        &mut [c],
        &[
            ("node/c", &pc),
            ("leader", &leader_c),
            ("during/c", &during_c),
        ],
        &[("all", &[&pc])],
    );
    wait_entries(
        "a and b see only their side, with a's leader",
        &mut [a, b],
        &[
            ("node/a", &pa),
            ("node/b", &pb),
            ("leader", &leader_a),
            ("during/a", &during_a),
        ],
        &[("all", &[&pa, &pb])],
    );

    // Heal: one owner of "leader" everywhere (the oldest registration, a's), the loser
    // told why, both sides' other entries merged, nothing stale.
    lab.set_link(2, true);
    let [a, b, c] = &mut lab.agents[..] else {
        unreachable!("three agents")
    };
    wait_linked(&mut [a, b, c]);
    wait_entries(
        "every node agrees after the heal",
        &mut [a, b, c],
        &[
            ("node/a", &pa),
            ("node/b", &pb),
            ("node/c", &pc),
            ("leader", &leader_a),
            ("during/a", &during_a),
            ("during/c", &during_c),
        ],
        &[("all", &[&pa, &pb, &pc])],
    );
    let status = wait_until("c's leader to exit", SETTLE_LIMIT, || {
        let status = c.status(&leader_c)?;
        if status["alive"] == false {
            Ok(status)
        } else {
            Err(format!("c's leader {leader_c}: {status}"))
        }
    });
    assert_eq!(
        status["exit_reason"],
        json!({"kind": "conflict", "key": "leader", "winner": leader_a}),
        "c's leader {leader_c} lost to a's {leader_a}: {status}"
    );
    assert_eq!(a.status(&leader_a).unwrap()["alive"], true);

    // A few anti-entropy rounds later, nothing has come back or gone.
    std::thread::sleep(Duration::from_millis(3 * ANTI_ENTROPY_MS));
    let views: Vec<View> = [&mut *a, &mut *b, &mut *c]
        .into_iter()
        .map(|agent| agent.view().unwrap_or_else(|e| panic!("{e}")))
        .collect();
    assert!(
        views
            .windows(2)
            .all(|w| w[0].names == w[1].names && w[0].groups == w[1].groups),
        "the listings differ: {views:#?}"
    );
    assert_eq!(views[0].names.len(), 6, "the listings changed: {views:#?}");
    assert_eq!(views[0].names["leader"], leader_a, "{views:#?}");
    assert_no_stale_entries(&mut [a, b, c]);
}
