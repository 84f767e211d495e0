//! The node registry of a three-node cluster: who the nodes are, how they are doing, how
//! they are linked, and node events as they happen.
//!
//! The example starts api-1 (role `api`), then worker-1 and worker-2 (role `worker`), on
//! 127.0.0.1, each with labels and a version, and heartbeats every 200 ms. api-1 watches
//! the node events from the start. It shows:
//!
//! - the `Up` events of the nodes as they join, then every node's record and a filtered
//!   list (`nodes().list` with a `NodeFilter` by role and label);
//! - heartbeats with host metrics and application metrics (`set_app_metric`,
//!   `check_now`, `heartbeats(name, 0)`), and a heartbeat event of a subscriber that opted
//!   in to them (`nodes().subscribe(.., true)`);
//! - the cluster graph (`cluster().graph()`: nodes and links with round-trip times) and
//!   api-1's link sessions (`cluster().link_sessions()`);
//! - worker-2 set `Draining`, then shut down: api-1 sees the `Status` and `Down` events,
//!   and the link session to worker-2 closed, with why.
//!
//! Run with `cargo run -p roster --example node_registry`.

use std::collections::VecDeque;
use std::time::Duration;

use roster::nodes::{HealthConfig, NodeEvent, NodeStatus};
use roster::{ClusterConfig, Delivery, FailureDetection, Node, NodeFilter, Pattern, Subscription};

/// How long any wait of the example may take before it gives up.
const DEADLINE: Duration = Duration::from_secs(15);

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let api = start_node("api-1", "api", "eu", "1.4.2", None);
    let watch = api.nodes().watch(Pattern::All);
    let known: Vec<&str> = watch.nodes.iter().map(|n| n.record.name.as_str()).collect();
    println!(
        "api-1 started and watches node events; it knows: {}",
        known.join(", ")
    );
    let mut events = NodeEvents::new(watch.events);

    let worker1 = start_node("worker-1", "worker", "eu", "2.0.0", Some(&api));
    let worker2 = start_node("worker-2", "worker", "us", "2.0.1", Some(&api));
    let nodes = [&api, &worker1, &worker2];
    // The two workers come up in either order.
    for _ in 0..2 {
        let up = events
            .next(
                "the workers up",
                |e| matches!(e, NodeEvent::Up { record, .. } if record.name.starts_with("worker-")),
            )
            .await;
        if let NodeEvent::Up { record, first_seen } = up {
            println!(
                "event on api-1: Up {} (role {}, version {}, {})",
                record.name,
                record.role,
                record.version,
                if first_seen { "new" } else { "back" }
            );
        }
    }
    wait_until("the three nodes to link and know each other", || {
        nodes.iter().all(|n| {
            n.cluster().peers().len() == 2 && n.nodes().list(&NodeFilter::default()).len() == 3
        })
    })
    .await;

    // Every node's record, as worker-2 knows them.
    println!("\nnodes, as worker-2 knows them:");
    for info in worker2.nodes().list(&NodeFilter::default()) {
        let r = &info.record;
        let labels: Vec<String> = r.labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
        println!(
            "  {}: role {}, labels {}, version {}, {}, at {}",
            r.name,
            r.role,
            labels.join(","),
            r.version,
            info.status,
            r.addrs.first().map_or("-", String::as_str)
        );
    }
    let eu_workers: Vec<String> = api
        .nodes()
        .list(&NodeFilter::default().role("worker").label("domain", "eu"))
        .into_iter()
        .map(|n| n.record.name)
        .collect();
    println!(
        "workers in domain eu, as api-1 lists them: {}",
        eu_workers.join(", ")
    );

    // Application metrics ride on heartbeats. A subscriber that opts in sees heartbeats
    // as events too.
    let mut beats = NodeEvents::new(
        api.nodes()
            .subscribe(Pattern::Exact("worker-1".into()), true),
    );
    worker1.nodes().set_app_metric("jobs_queued", 17.0);
    worker2.nodes().set_app_metric("jobs_queued", 3.0);
    for n in nodes {
        n.nodes().check_now();
    }
    let beat = beats.next("a heartbeat of worker-1 with its metric", |e| {
        matches!(e, NodeEvent::Heartbeat { heartbeat, .. } if heartbeat.app.contains_key("jobs_queued"))
    })
    .await;
    if let NodeEvent::Heartbeat { name, heartbeat } = beat {
        println!(
            "\nheartbeat event on api-1 from {name}: jobs_queued {}",
            heartbeat.app["jobs_queued"]
        );
    }
    drop(beats);
    wait_until(
        "api-1 to hold heartbeats of both workers with metrics and round-trip times",
        || {
            ["worker-1", "worker-2"].iter().all(|name| {
                api.nodes().heartbeats(name, 0).last().is_some_and(|h| {
                    h.app.contains_key("jobs_queued")
                        && h.peers.len() == 2
                        && h.peers.iter().all(|p| p.rtt_us.is_some())
                })
            })
        },
    )
    .await;
    println!("last heartbeats, as api-1 holds them:");
    for name in ["worker-1", "worker-2"] {
        let beats = api.nodes().heartbeats(name, 0);
        let h = beats.last().expect("a heartbeat");
        let peers: Vec<String> = h
            .peers
            .iter()
            .map(|p| format!("{} {}us", p.name, p.rtt_us.unwrap_or_default()))
            .collect();
        println!(
            "  {name} ({} kept): jobs_queued {}, cpu load {:.2}, memory {} of {} MiB, {} processes, links to {}",
            beats.len(),
            h.app["jobs_queued"],
            h.cpu_load,
            h.mem_used_bytes >> 20,
            h.mem_total_bytes >> 20,
            h.processes,
            peers.join(", ")
        );
    }

    // The graph: nodes, and one link per connected pair with its round-trip time.
    wait_until(
        "api-1's graph to show 3 links with round-trip times",
        || {
            let graph = api.cluster().graph();
            graph.links.len() == 3 && graph.links.iter().all(|l| l.rtt.is_some())
        },
    )
    .await;
    let graph = api.cluster().graph();
    println!("\ncluster graph, as api-1 sees it:");
    for node in &graph.nodes {
        println!("  node {} ({}, {})", node.name, node.role, node.status);
    }
    for link in &graph.links {
        // Each pair once, reported by one of its two ends: print it in name order.
        let (x, y) = if link.source < link.target {
            (&link.source, &link.target)
        } else {
            (&link.target, &link.source)
        };
        println!(
            "  link {x} <-> {y} ({}, rtt {}us, as {} measured it)",
            link.kind,
            link.rtt.expect("waited for").as_micros(),
            link.source
        );
    }
    println!("api-1's link sessions:");
    for s in api.cluster().link_sessions() {
        println!(
            "  session {} to {}: {}, {} frames out / {} in, {} bytes out / {} in",
            s.session,
            s.peer,
            if s.closed.is_some() { "closed" } else { "live" },
            s.frames_out,
            s.frames_in,
            s.bytes_out,
            s.bytes_in
        );
    }

    // worker-2 drains, then leaves: api-1 sees each step as an event.
    println!("\nworker-2 is set Draining, then shut down");
    worker2
        .nodes()
        .set_status(NodeStatus::Draining, "deploying 2.1.0")
        .expect("draining is a status a node gives itself");
    let status = events.next("worker-2 draining", |e| {
        matches!(e, NodeEvent::Status { name, new: NodeStatus::Draining, .. } if name == "worker-2")
    })
    .await;
    print_event(&status);
    worker2.shutdown().await;
    let down = events
        .next(
            "worker-2 down",
            |e| matches!(e, NodeEvent::Down { name, .. } if name == "worker-2"),
        )
        .await;
    print_event(&down);
    wait_until("api-1 to close its link to worker-2", || {
        api.cluster().peers().len() == 1
    })
    .await;
    let liveness: Vec<String> = api
        .nodes()
        .liveness()
        .into_iter()
        .map(|l| format!("{} {}", l.name, l.status))
        .collect();
    println!("liveness, as api-1 sees it: {}", liveness.join(", "));
    for s in api.cluster().link_sessions() {
        if let (true, Some((_, why))) = (s.peer == "worker-2", &s.closed) {
            println!("api-1's session {} to worker-2 closed: {why}", s.session);
        }
    }

    api.shutdown().await;
    worker1.shutdown().await;
    println!("\ndone");
}

/// Starts node `name` on 127.0.0.1 (a free port) with a role, a `domain` label and a
/// version, announcing itself to `seed`.
fn start_node(name: &str, role: &str, domain: &str, version: &str, seed: Option<&Node>) -> Node {
    let seeds: Vec<String> = seed
        .map(|s| {
            s.cluster()
                .addr()
                .expect("the seed is clustered")
                .to_string()
        })
        .into_iter()
        .collect();
    let config = ClusterConfig::new(
        "127.0.0.1:0".parse().expect("a socket address"),
        "node registry example",
    )
    .seeds(seeds)
    .failure_detection(FailureDetection::Fast)
    .announce_interval(Duration::from_millis(200));
    Node::builder()
        .name(name)
        .role(role)
        .label("domain", domain)
        .version(version)
        .health(HealthConfig::new().heartbeat_interval(Duration::from_millis(200)))
        .cluster(config)
        .start()
        .expect("the node starts")
}

/// A subscription to node events, with the events of a batch not looked at yet.
struct NodeEvents {
    events: Subscription<NodeEvent>,
    queued: VecDeque<NodeEvent>,
}

impl NodeEvents {
    fn new(events: Subscription<NodeEvent>) -> Self {
        Self {
            events,
            queued: VecDeque::new(),
        }
    }

    /// The next event that `wanted` accepts; the events before it are skipped.
    async fn next(&mut self, what: &str, wanted: impl Fn(&NodeEvent) -> bool) -> NodeEvent {
        let deadline = tokio::time::Instant::now() + DEADLINE;
        loop {
            while let Some(event) = self.queued.pop_front() {
                if wanted(&event) {
                    return event;
                }
            }
            match tokio::time::timeout_at(deadline, self.events.recv()).await {
                Ok(Some(Delivery::Events(batch))) => self.queued.extend(batch),
                Ok(Some(Delivery::Lagged { .. })) => {}
                Ok(None) => panic!("the node events ended before {what}"),
                Err(_) => panic!("timed out waiting for {what}"),
            }
        }
    }
}

/// Prints a status or down event.
fn print_event(event: &NodeEvent) {
    match event {
        NodeEvent::Status {
            name,
            old,
            new,
            reason,
        } => println!("event on api-1: Status {name} {old} -> {new} ({reason})"),
        NodeEvent::Down {
            name, reason, left, ..
        } => println!(
            "event on api-1: Down {name} ({reason}; {})",
            if *left { "left" } else { "died" }
        ),
        other => println!("event on api-1: {other:?}"),
    }
}

/// Polls `check` until it holds; panics naming `what` after the deadline.
async fn wait_until(what: &str, check: impl Fn() -> bool) {
    let deadline = tokio::time::Instant::now() + DEADLINE;
    while !check() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
