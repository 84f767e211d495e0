//! The demo's steps: each asks the agents' HTTP API to do something a registry is for, and
//! checks what every node then says. A step that does not hold stops the demo with what it
//! expected and what it saw.

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use ureq::http::Method;

use super::DemoArgs;
use super::cluster::{self, DemoAgent};
use super::say;
use crate::cli::client::{Client, ClientError, encode};

/// How long replication or failure detection may take before a step gives up.
const SETTLE: Duration = Duration::from_secs(20);

/// Why the tour stopped.
#[derive(Debug, thiserror::Error)]
pub enum TourError {
    /// The cluster could not start.
    #[error(transparent)]
    Cluster(#[from] cluster::ClusterError),
    /// An agent refused or failed a call.
    #[error("{agent}: {error}")]
    Api {
        /// The agent asked.
        agent: String,
        /// What it answered.
        error: ClientError,
    },
    /// A step did not hold.
    #[error("step {step} did not hold within {SETTLE:?}: {what}")]
    Check {
        /// The step.
        step: usize,
        /// What was expected.
        what: String,
    },
    /// The data directory could not be made.
    #[error("cannot make the data directory: {0}")]
    DataDir(std::io::Error),
}

/// An agent of the tour and its client.
struct Agent {
    process: DemoAgent,
    client: Client,
}

impl Agent {
    fn call(&self, method: Method, path: &str, body: Option<Value>) -> Result<Value, TourError> {
        self.client
            .send(method, path, body.as_ref())
            .map_err(|error| TourError::Api {
                agent: self.process.name.clone(),
                error,
            })
    }

    fn get(&self, path: &str) -> Result<Value, TourError> {
        self.call(Method::GET, path, None)
    }

    /// A new session of `ttl` named `name`; returns its id and pid.
    fn session(&self, name: &str, ttl: &str) -> Result<(String, String), TourError> {
        let session = self.call(
            Method::POST,
            "/api/sessions",
            Some(json!({ "ttl": ttl, "name": name })),
        )?;
        Ok((text(&session, "id"), text(&session, "pid")))
    }
}

fn text(value: &Value, field: &str) -> String {
    value
        .get(field)
        .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_owned))
        .unwrap_or_default()
}

/// Polls `check` until it holds; fails step `step` saying `what` after [`SETTLE`].
fn settle(step: usize, what: &str, mut check: impl FnMut() -> bool) -> Result<(), TourError> {
    let end = Instant::now() + SETTLE;
    while !check() {
        if Instant::now() >= end {
            return Err(TourError::Check {
                step,
                what: what.to_owned(),
            });
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    Ok(())
}

/// The statuses `agent` gives the nodes, by name.
fn statuses(agent: &Agent) -> Vec<(String, String)> {
    let mut nodes: Vec<(String, String)> = agent
        .get("/api/nodes")
        .ok()
        .and_then(|v| v.as_array().cloned())
        .unwrap_or_default()
        .iter()
        .map(|n| (text(n, "name"), text(n, "status")))
        .collect();
    nodes.sort();
    nodes
}

/// The owner's node of `key` as `agent` sees it.
fn owner_node(agent: &Agent, key: &str) -> Option<String> {
    agent
        .get(&format!("/api/registry/{}", encode(key, true)))
        .ok()
        .map(|name| text(&name, "node"))
}

fn member_count(agent: &Agent, key: &str) -> usize {
    agent
        .get(&format!("/api/groups/{}", encode(key, true)))
        .ok()
        .and_then(|group| group.get("count").and_then(Value::as_u64))
        .unwrap_or(0) as usize
}

/// Runs the tour; see the [module docs](super).
pub fn run(args: &DemoArgs) -> Result<(), TourError> {
    let (data, _cleanup) =
        cluster::data_dir(args.data_dir.as_deref()).map_err(TourError::DataDir)?;
    let names = ["demo-1", "demo-2", "demo-3"];

    say::step(1, "A cluster of three agents on loopback");
    let first = DemoAgent::start(
        names[0],
        cluster::free_or_any(args.port),
        &data,
        None,
        &names,
    )?;
    let seed = first.cluster.clone();
    let mut agents = vec![first];
    for name in &names[1..] {
        agents.push(DemoAgent::start(name, 0, &data, Some(&seed), &names)?);
    }
    let agents: Vec<Agent> = agents
        .into_iter()
        .map(|process| Agent {
            client: process.client(),
            process,
        })
        .collect();
    for agent in &agents {
        say::line(&format!(
            "{}  http {}  cluster {}",
            agent.process.name, agent.process.url, agent.process.cluster
        ));
    }
    let all_online: Vec<(String, String)> = names
        .iter()
        .map(|n| ((*n).to_owned(), "online".to_owned()))
        .collect();
    settle(1, "every agent sees three nodes online", || {
        agents.iter().all(|a| statuses(a) == all_online)
    })?;
    say::ok("every agent sees demo-1, demo-2 and demo-3 online");
    say::line(&format!(
        "their logs: {}",
        data.join("demo-N.log").display()
    ));
    say::line(&format!("dashboard: {}/", agents[0].process.url));

    say::step(2, "A unique name, registered on demo-1, found from demo-3");
    let (user, _) = agents[0].session("user-123", "30s")?;
    agents[0].call(
        Method::PUT,
        &format!("/api/sessions/{user}/names/session/user-123"),
        Some(json!({ "meta": { "region": "eu-west" } })),
    )?;
    say::line(
        "PUT demo-1 /api/sessions/<id>/names/session/user-123  {\"meta\": {\"region\": \"eu-west\"}}",
    );
    settle(2, "demo-3 finds session/user-123 on demo-1", || {
        owner_node(&agents[2], "session/user-123").as_deref() == Some("demo-1")
    })?;
    say::ok("GET demo-3 /api/registry/session/user-123 -> owned by a process of demo-1");

    say::step(
        3,
        "The same name from demo-2 is refused: one owner per name, cluster-wide",
    );
    let (other, _) = agents[1].session("user-123-elsewhere", "30s")?;
    match agents[1].client.send(
        Method::PUT,
        &format!("/api/sessions/{other}/names/session/user-123"),
        Some(&json!({ "meta": null })),
    ) {
        Err(ClientError::Refused {
            status: 409,
            message,
            ..
        }) => {
            say::ok(&format!("409: {message}"));
        }
        other => {
            return Err(TourError::Check {
                step: 3,
                what: format!("a conflict (409), got {other:?}"),
            });
        }
    }

    say::step(4, "A group across three nodes, and a message to all of it");
    let mut members = Vec::new();
    for agent in &agents {
        let (id, _) = agent.session(&format!("chat-{}", agent.process.name), "30s")?;
        agent.call(
            Method::PUT,
            &format!("/api/sessions/{id}/groups/room/42"),
            Some(json!({ "meta": { "node": agent.process.name } })),
        )?;
        members.push(id);
    }
    settle(4, "every agent counts three members in room/42", || {
        agents.iter().all(|a| member_count(a, "room/42") == 3)
    })?;
    say::ok("room/42 has a member on each of demo-1, demo-2 and demo-3");
    let sent = agents[1].call(
        Method::POST,
        "/api/dispatch",
        Some(json!({ "key": "room/42", "message": { "text": "hello, room 42" } })),
    )?;
    say::line(&format!("POST demo-2 /api/dispatch room/42 -> {sent}"));
    for (agent, id) in agents.iter().zip(&members) {
        let messages = agent.get(&format!("/api/sessions/{id}/messages?wait=5s"))?;
        let got = messages.as_array().map_or(0, Vec::len);
        if got == 0 {
            return Err(TourError::Check {
                step: 4,
                what: format!("the member on {} got the message", agent.process.name),
            });
        }
    }
    say::ok("each member, on its own node, received the message");

    say::step(5, "A process ends: its memberships go everywhere at once");
    agents[1].call(
        Method::DELETE,
        &format!("/api/sessions/{}", members[1]),
        None,
    )?;
    settle(5, "every agent counts two members in room/42", || {
        agents.iter().all(|a| member_count(a, "room/42") == 2)
    })?;
    say::ok("DELETE the session on demo-2 -> room/42 has two members on every node");

    say::step(
        6,
        "A lease lapses: a session not kept alive loses its names",
    );
    let told = watch(&agents[2], "leader/");
    let (lease, _) = agents[1].session("short-lived", "2s")?;
    agents[1].call(
        Method::PUT,
        &format!("/api/sessions/{lease}/names/leader/shard-7"),
        Some(json!({ "meta": { "term": 1 } })),
    )?;
    settle(6, "demo-1 finds leader/shard-7", || {
        owner_node(&agents[0], "leader/shard-7").as_deref() == Some("demo-2")
    })?;
    say::line("leader/shard-7 held by a 2 s session on demo-2, no keepalive...");
    settle(6, "leader/shard-7 is gone everywhere", || {
        agents
            .iter()
            .all(|a| owner_node(a, "leader/shard-7").is_none())
    })?;
    say::ok("the lease lapsed: leader/shard-7 is free on every node");
    let mut events = Vec::new();
    settle(6, "demo-3 is told leader/shard-7 came and went", || {
        events.extend(told.try_iter());
        events.iter().any(|e| e.starts_with("registered"))
            && events.iter().any(|e| e.starts_with("unregistered"))
    })?;
    for event in &events {
        say::line(&format!(
            "demo-3 was told (GET /api/events?pattern=leader/): {event}"
        ));
    }

    say::step(
        7,
        "A partition: demo-2 cut off for 8 s, and one name taken on both sides",
    );
    let (bob_1, _) = agents[0].session("bob-on-demo-1", "60s")?;
    let (bob_2, _) = agents[1].session("bob-on-demo-2", "60s")?;
    agents[1].call(
        Method::POST,
        "/api/faults/isolate",
        Some(json!({ "for": "8s" })),
    )?;
    say::line(
        "POST demo-2 /api/faults/isolate {\"for\": \"8s\"}   (the agents run with --fault-injection)",
    );
    agents[0].call(
        Method::PUT,
        &format!("/api/sessions/{bob_1}/names/user/bob"),
        Some(json!({ "meta": { "side": "demo-1" } })),
    )?;
    agents[1].call(
        Method::PUT,
        &format!("/api/sessions/{bob_2}/names/user/bob"),
        Some(json!({ "meta": { "side": "demo-2" } })),
    )?;
    say::ok("user/bob registered on demo-1 and, cut off, on demo-2: each side took it");
    let mut verdict = Value::Null;
    settle(7, "demo-2 suspects a partition", || {
        verdict = agents[1].get("/api/partition").unwrap_or(Value::Null);
        verdict["partition_suspected"] == true
    })?;
    say::line(&format!(
        "split-brain check on demo-2: {} (keeps writing: {}; advisory, so not fenced)",
        text(&verdict, "reason"),
        text(&verdict, "keeps_writing")
    ));
    settle(
        7,
        "after the heal every agent holds one owner of user/bob",
        || {
            let owners: Vec<Option<String>> =
                agents.iter().map(|a| owner_node(a, "user/bob")).collect();
            owners.iter().all(|o| o.is_some() && *o == owners[0])
                && agents.iter().all(|a| {
                    a.get("/api/partition")
                        .is_ok_and(|p| p["partition_suspected"] == false)
                })
        },
    )?;
    let winner = owner_node(&agents[2], "user/bob").unwrap_or_default();
    say::ok(&format!(
        "healed: user/bob has one owner on every node, the registration on {winner} (the older one: the default conflict rule keeps the oldest)"
    ));

    say::step(8, "A node dies (kill -9): the others drop its entries");
    let mut agents = agents;
    let mut dead = agents.pop().map(|a| a.process);
    if let Some(process) = dead.as_mut() {
        process.kill();
    }
    settle(8, "demo-1 and demo-2 see demo-3 offline", || {
        agents.iter().all(|a| {
            statuses(a)
                .iter()
                .any(|(n, s)| n == "demo-3" && s == "offline")
        })
    })?;
    settle(8, "room/42 has one member left", || {
        agents.iter().all(|a| member_count(a, "room/42") == 1)
    })?;
    say::ok("demo-3 is offline on demo-1 and demo-2, and its member of room/42 is gone");
    say::line("(membership declared it dead: it sent no leave and no cleanup of its own)");
    let partition = agents[0].get("/api/partition")?;
    say::line(&format!(
        "split-brain check on demo-1: {} (keeps writing: {})",
        text(&partition, "reason"),
        text(&partition, "keeps_writing")
    ));
    drop(dead);

    say::step(
        9,
        "demo-3 restarts: a new incarnation, and the cluster is whole again",
    );
    let process = DemoAgent::start(names[2], 0, &data, Some(&seed), &names)?;
    agents.push(Agent {
        client: process.client(),
        process,
    });
    settle(9, "every agent sees three nodes online again", || {
        agents.iter().all(|a| statuses(a) == all_online)
    })?;
    settle(9, "the partition check heals on demo-1", || {
        agents[0]
            .get("/api/partition")
            .is_ok_and(|p| p["partition_suspected"] == false)
    })?;
    say::ok("demo-1, demo-2 and demo-3 online everywhere; no partition suspected");

    say::step(
        10,
        "Still there: session/user-123, kept alive by its session",
    );
    agents[0].call(
        Method::PUT,
        &format!("/api/sessions/{user}/keepalive"),
        None,
    )?;
    if owner_node(&agents[1], "session/user-123").as_deref() != Some("demo-1") {
        return Err(TourError::Check {
            step: 10,
            what: "demo-2 still finds session/user-123 on demo-1".to_owned(),
        });
    }
    say::ok("demo-2 finds session/user-123 on demo-1");

    say::step(
        11,
        "What demo-1 recorded (its history, SQLite in its data directory)",
    );
    let audit = agents[0].get("/api/audit?limit=500")?;
    let mut kinds: std::collections::BTreeMap<String, usize> = std::collections::BTreeMap::new();
    for row in audit
        .get("items")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        *kinds.entry(text(row, "kind")).or_default() += 1;
    }
    let summary: Vec<String> = kinds.iter().map(|(k, n)| format!("{k} {n}")).collect();
    say::line(&format!("GET /api/audit: {}", summary.join(", ")));
    if !kinds.contains_key("node_down") {
        return Err(TourError::Check {
            step: 11,
            what: "demo-1's audit log holds demo-3's death".to_owned(),
        });
    }
    say::ok(
        "demo-3's death is in demo-1's audit log, with the links and partition checks around it",
    );

    say::blank();
    if args.exit {
        say::line("Done: stopping the cluster.");
    } else {
        say::line(&format!(
            "The cluster keeps running: open {}/ for the dashboard, or try\n  roster nodes --addr {}\n  roster watch --nodes --addr {}\nCtrl-C stops it.",
            agents[0].process.url, agents[0].process.url, agents[1].process.url
        ));
        wait_for_ctrl_c();
    }
    // Each leaves the cluster (SIGTERM), so the others see it go at once.
    for agent in &mut agents {
        agent.process.stop(Duration::from_secs(5));
    }
    Ok(())
}

/// Follows the registry events of `agent` under `prefix` in a thread: one line per event
/// (kind, key, node, reason), on the returned channel, until the agent goes. Returns once
/// the stream is open (or could not be).
fn watch(agent: &Agent, prefix: &str) -> std::sync::mpsc::Receiver<String> {
    let (tx, rx) = std::sync::mpsc::channel();
    let (open_tx, open) = std::sync::mpsc::channel();
    let client = agent.client.clone();
    let path = format!("/api/events?pattern={}", encode(prefix, false));
    std::thread::spawn(move || {
        let connected = move || {
            let _ = open_tx.send(());
        };
        let _ = client.events(&path, connected, |_, data| {
            let Ok(event) = serde_json::from_str::<Value>(data) else {
                return true;
            };
            let line = format!(
                "{} {} (node {}, reason {})",
                text(&event, "kind"),
                text(&event, "key"),
                text(&event, "node"),
                text(&event, "reason")
            );
            tx.send(line).is_ok()
        });
    });
    // Dropped unsent if the stream could not open: the step's check then says so.
    let _ = open.recv_timeout(SETTLE);
    rx
}

/// Blocks until SIGINT or SIGTERM.
fn wait_for_ctrl_c() {
    let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    else {
        return;
    };
    runtime.block_on(crate::agent::shutdown_signal());
}
