//! A service registry on a three-node cluster: servers in a replicated scope, transports
//! in a node-local one, a standby that takes a name over, node health, and split brain
//! while one node is cut off.
//!
//! The example starts nodes a, b and c on 127.0.0.1 (short failure detection and 100 ms
//! heartbeats, so it completes in seconds) with a split-brain policy: the expected
//! cluster is {a, b, c}, the majority side keeps writing, a minority side is fenced
//! (refuses new unique names). It shows:
//!
//! - servers registered as `server/ID` in the replicated scope `services`, found and
//!   listed from any node; transports as `transport/ID` in the local-only scope
//!   `transports`, seen by their own node only;
//! - a standby on a waiting with `scope.await_name` for `server/scheduler`, held on b,
//!   and taking it over when the holder dies (with a greater fencing token);
//! - node health and liveness (`nodes().health`, `nodes().liveness`);
//! - c cut off for a few seconds (`cluster().isolate`, feature `fault-injection`): the
//!   partition status of each side (`nodes().partition`), c fenced, a still writing, c's
//!   server gone from a's view; then the heal, after which all of it comes back.
//!
//! Run with `cargo run -p roster --example service_registry --features fault-injection`.

use std::time::Duration;

use roster::nodes::{
    HealthConfig, PartitionStatus, SplitBrainAction, SplitBrainConfig, SplitBrainStrategy,
};
use roster::{ClusterConfig, FailureDetection, Node, RegistryError, Scope, ScopeOptions};
use serde::{Deserialize, Serialize};

/// The meta of a `server/ID` registration.
#[derive(Debug, Serialize, Deserialize)]
struct Server {
    kind: String,
    port: u16,
}

/// How long any wait of the example may take before it gives up.
const DEADLINE: Duration = Duration::from_secs(20);

/// How long c is cut off: long enough for the others to declare it dead (about two
/// seconds with `FailureDetection::Fast`) and for the example to look at both sides.
const ISOLATION: Duration = Duration::from_secs(5);

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let a = start_node("a", None);
    let b = start_node("b", Some(&a));
    let c = start_node("c", Some(&a));
    let nodes = [&a, &b, &c];
    wait_until("a, b and c to link and know each other", || {
        nodes.iter().all(|n| {
            n.cluster().peers().len() == 2
                && ["a", "b", "c"].iter().all(|m| n.nodes().get(m).is_some())
        })
    })
    .await;
    println!(
        "nodes a, b and c linked on 127.0.0.1 (split brain: majority of a, b, c; the minority is fenced)"
    );

    // Servers in a replicated scope; transports in a node-local one.
    let services: Vec<Scope> = nodes
        .iter()
        .map(|n| n.connect("services").expect("a valid scope name"))
        .collect();
    let transports: Vec<Scope> = nodes
        .iter()
        .map(|n| {
            n.connect_with("transports", ScopeOptions::new().local_only())
                .expect("a valid scope name")
        })
        .collect();
    wait_until("every node to share the services scope", || {
        nodes
            .iter()
            .all(|n| n.cluster().peers_in("services").len() == 2)
    })
    .await;
    let servers = [
        (0, "server/api-1", "api", 8081),
        (1, "server/api-2", "api", 8082),
        (2, "server/db", "postgres", 5432),
    ];
    // The processes stay alive as long as these handles.
    let mut held = Vec::new();
    for (i, key, kind, port) in servers {
        let process = nodes[i].new_process();
        let meta = Server {
            kind: kind.into(),
            port,
        };
        services[i]
            .register(&process, key, &meta)
            .expect("the server name is free");
        transports[i]
            .register(&process, &format!("transport/tcp-{port}"), &port)
            .expect("the transport name is free");
        held.push(process);
    }
    wait_until("every node to see the 3 servers", || {
        services
            .iter()
            .all(|s| s.names("server/", 100).map_or(0, |n| n.len()) == 3)
    })
    .await;

    println!("\nservers, listed from b:");
    print_servers(&b, &services[1]);
    println!("\nserver/db found from every node:");
    for (node, scope) in nodes.iter().zip(&services) {
        let found = scope.lookup("server/db").expect("the db is registered");
        let server: Server = found.meta.decode().expect("a server's meta");
        println!(
            "  from {}: server/db is {} on {} ({}, port {})",
            node.name(),
            found.pid,
            node.node_name_of(found.pid).expect("linked"),
            server.kind,
            server.port
        );
    }
    println!("\ntransports (local-only scope):");
    for (node, scope) in nodes.iter().zip(&transports) {
        let keys: Vec<String> = scope
            .names("transport/", 100)
            .expect("a valid prefix")
            .into_iter()
            .map(|(k, _)| k.to_string())
            .collect();
        println!("  {} sees only its own: {}", node.name(), keys.join(", "));
    }

    // A standby: the scheduler runs on b; a standby on a waits for its name.
    let scheduler = b.new_process();
    let first = services[1]
        .register(
            &scheduler,
            "server/scheduler",
            &Server {
                kind: "scheduler".into(),
                port: 9000,
            },
        )
        .expect("the scheduler name is free");
    wait_until("a to see the scheduler on b", || {
        services[0].whereis("server/scheduler") == Some(scheduler.pid())
    })
    .await;
    println!(
        "\nserver/scheduler runs on b ({}, fencing token {}); a standby on a waits for it",
        scheduler.pid(),
        first.token
    );
    let standby_scope = services[0].clone();
    let standby_node = a.clone();
    let standby = tokio::spawn(async move {
        let standby = standby_node.new_process();
        let meta = Server {
            kind: "scheduler".into(),
            port: 9001,
        };
        let registration = standby_scope
            .await_name(&standby, "server/scheduler", &meta)
            .await
            .expect("the standby gets the name");
        (standby, registration)
    });
    drop(scheduler);
    println!("the scheduler on b dies");
    let (standby, taken) = tokio::time::timeout(DEADLINE, standby)
        .await
        .expect("the standby took over in time")
        .expect("the standby task ran");
    println!(
        "the standby on a took server/scheduler over: {} with fencing token {} (> {})",
        taken.pid, taken.token, first.token
    );
    wait_until("c to see the standby as the scheduler", || {
        services[2].whereis("server/scheduler") == Some(standby.pid())
    })
    .await;
    println!(
        "c now finds server/scheduler on {}",
        c.node_name_of(standby.pid()).expect("linked")
    );
    held.push(standby);

    // Node health, as a sees it.
    for n in nodes {
        n.nodes().check_now();
    }
    wait_until(
        "a to have a heartbeat of b and c with round-trip times",
        || {
            ["b", "c"].iter().all(|name| {
                a.nodes()
                    .health(name)
                    .is_some_and(|h| h.rtt.is_some() && h.last_heartbeat.is_some())
            })
        },
    )
    .await;
    println!("\nhealth, as a sees it:");
    print_health(&a);

    // Split brain: c is cut off. Each side checks its own view.
    println!("\nc is cut off from a and b for {ISOLATION:?}");
    c.cluster().isolate(ISOLATION);
    wait_until("each side to see the other unreachable", || {
        let suspected = |n: &Node, unreachable: &[&str]| {
            n.nodes()
                .check_partition_now()
                .is_some_and(|s| s.partition_suspected && s.unreachable == unreachable)
        };
        suspected(&a, &["c"]) && suspected(&b, &["c"]) && suspected(&c, &["a", "b"])
    })
    .await;
    for n in nodes {
        print_partition(n.name(), &n.nodes().partition().expect("clustered"));
    }
    wait_until("a to see c offline, and c to see a and b offline", || {
        let offline = |n: &Node, name: &str| {
            n.nodes()
                .get(name)
                .is_some_and(|i| i.status == roster::nodes::NodeStatus::Offline)
        };
        offline(&a, "c") && offline(&c, "a") && offline(&c, "b")
    })
    .await;
    println!("health during the partition, as a sees it:");
    print_health(&a);
    println!("health during the partition, as c sees it:");
    print_health(&c);
    wait_until("a to drop c's server", || {
        services[0].whereis("server/db").is_none()
    })
    .await;
    println!("servers, listed from a during the partition (c's server/db is gone from its view):");
    print_servers(&a, &services[0]);
    println!("new names during the partition:");
    try_new_server(&a, &services[0], "server/cache-a", &mut held);
    try_new_server(&c, &services[2], "server/cache-c", &mut held);

    // The heal: membership finds c again, links come back, each side catches up.
    wait_until("the partition to heal on every node", || {
        nodes.iter().all(|n| {
            n.nodes()
                .check_partition_now()
                .is_some_and(|s| !s.partition_suspected && !s.fenced)
        })
    })
    .await;
    println!("\nthe partition healed:");
    for n in nodes {
        print_partition(n.name(), &n.nodes().partition().expect("clustered"));
    }
    wait_until("a to see c's server again", || {
        services[0].whereis("server/db").is_some()
    })
    .await;
    wait_until("a to see c online again", || {
        a.nodes()
            .liveness()
            .iter()
            .all(|l| l.status == roster::nodes::NodeStatus::Online)
    })
    .await;
    println!("health after the heal, as a sees it:");
    print_health(&a);
    println!("servers, listed from a after the heal:");
    print_servers(&a, &services[0]);
    println!("new names after the heal:");
    try_new_server(&c, &services[2], "server/cache-c", &mut held);

    for n in nodes {
        n.shutdown().await;
    }
    println!("\ndone");
}

/// Starts node `name` on 127.0.0.1 (a free port), announcing itself to `seed`, in a
/// cluster expected to be a, b and c where only a majority side keeps writing.
fn start_node(name: &str, seed: Option<&Node>) -> Node {
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
        "service registry example",
    )
    .seeds(seeds)
    .failure_detection(FailureDetection::Fast)
    .announce_interval(Duration::from_millis(200))
    .split_brain(
        SplitBrainConfig::new()
            .expected(["a", "b", "c"])
            .strategy(SplitBrainStrategy::Majority)
            .action(SplitBrainAction::Fence),
    );
    Node::builder()
        .name(name)
        .cluster(config)
        .health(HealthConfig::new().heartbeat_interval(Duration::from_millis(100)))
        .start()
        .expect("the node starts")
}

/// Prints the servers `scope` lists, with the node of each.
fn print_servers(node: &Node, scope: &Scope) {
    for (key, registration) in scope.names("server/", 100).expect("a valid prefix") {
        let server: Server = registration.meta.decode().expect("a server's meta");
        println!(
            "  {key} on {} ({}, port {})",
            node.node_name_of(registration.pid)
                .unwrap_or_else(|| "?".into()),
            server.kind,
            server.port
        );
    }
}

/// Prints the liveness and health of every node `node` knows.
fn print_health(node: &Node) {
    for live in node.nodes().liveness() {
        let health = node.nodes().health(&live.name).expect("a known node");
        let rtt = health
            .rtt
            .map_or("-".to_owned(), |rtt| format!("{}us", rtt.as_micros()));
        let names = health.last_heartbeat.as_ref().map_or(0, |h| h.names);
        let reasons = if health.degraded_reasons.is_empty() {
            String::new()
        } else {
            format!(" ({})", health.degraded_reasons.join("; "))
        };
        println!(
            "  {}: {}{reasons}, rtt {rtt}, {names} names in its last heartbeat",
            live.name, live.status
        );
    }
}

/// Prints a node's partition status.
fn print_partition(name: &str, status: &PartitionStatus) {
    println!(
        "  {name}: partition suspected {}, side [{}], unreachable [{}], keeps writing {} ({}), fenced {}",
        status.partition_suspected,
        status.side.join(", "),
        status.unreachable.join(", "),
        status.verdict.keeps_writing,
        status.verdict.reason,
        status.fenced
    );
}

/// Registers a new server name on `node`, printing whether the node accepted it.
fn try_new_server(node: &Node, scope: &Scope, key: &str, held: &mut Vec<roster::Process>) {
    let process = node.new_process();
    let meta = Server {
        kind: "cache".into(),
        port: 6379,
    };
    match scope.register(&process, key, &meta) {
        Ok(_) => {
            println!("  {}: {key} registered", node.name());
            held.push(process);
        }
        Err(e @ RegistryError::Fenced { .. }) => println!("  {}: {key} refused: {e}", node.name()),
        Err(other) => panic!("unexpected error registering {key}: {other}"),
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
