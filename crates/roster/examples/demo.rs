//! A tour of Roster: first one node (sessions with unique names, chat rooms as groups,
//! lifecycle events, dispatch, a crash, a kill, scopes and a local-only registry), then a
//! three-node cluster on 127.0.0.1 (replication, a late joiner, a conflict after a cut
//! link, cluster-wide dispatch, a node leaving).
//!
//! Run with `cargo run --release -p roster --example demo`.

use std::time::{Duration, Instant};

use roster::{ClusterConfig, Delivery, FailureDetection, Node, Pattern, Reason, Table};
use serde::{Deserialize, Serialize};

#[derive(Debug, Serialize, Deserialize)]
struct Session {
    user: u32,
    region: String,
}

#[derive(Debug, Serialize, Deserialize)]
enum ChatMessage {
    Say { from: u32, text: String },
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let node = Node::builder().name("demo-1").start()?;
    println!("node {node:?} started");

    // Watch every change under "session/" and "room/".
    let mut events = node
        .default_scope()
        .subscribe_many([Pattern::from("session/"), Pattern::from("room/")])?;
    let watcher = tokio::spawn(async move {
        let mut counts = std::collections::BTreeMap::<String, usize>::new();
        // The default scope never closes, so the watcher stops once events go quiet.
        while let Ok(Some(delivery)) =
            tokio::time::timeout(Duration::from_millis(500), events.recv()).await
        {
            match delivery {
                Delivery::Events(batch) => {
                    for event in batch {
                        let reason = match &event.reason {
                            Reason::Requested => "requested".to_string(),
                            Reason::Exit(exit) => format!("exit {exit:?}"),
                            Reason::ScopeDisconnected => "scope disconnected".to_string(),
                            other => format!("{other:?}"),
                        };
                        *counts
                            .entry(format!("{:?} ({reason})", event.kind))
                            .or_default() += 1;
                    }
                }
                Delivery::Lagged { missed } => println!("  watcher lagged, missed {missed}"),
            }
        }
        counts
    });

    // 1,000 sessions, each a spawned process with a unique name, each in one of 10 rooms.
    let started = Instant::now();
    for user in 0..1_000u32 {
        let meta = Session {
            user,
            region: if user % 2 == 0 { "eu" } else { "us" }.into(),
        };
        node.default_scope().spawn_named(
            &format!("session/user-{user}"),
            &meta,
            move |mut proc| async move {
                proc.join(&format!("room/{}", user % 10), &user).unwrap();
                while let Ok(ChatMessage::Say { from, text }) = proc.recv::<ChatMessage>().await {
                    if user == 7 {
                        println!("  user-7 received from user-{from}: {text}");
                    }
                    if text == "crash" && user == 13 {
                        panic!("user-13 was asked to crash");
                    }
                }
            },
        )?;
    }
    let spawn_time = started.elapsed();
    // Each session joins its room from its own task: give them a moment to run.
    while node.default_scope().membership_count() < 1_000 {
        tokio::task::yield_now().await;
    }
    println!(
        "spawned 1000 named sessions in {spawn_time:?}: {} names, {} memberships, {} members in room/7",
        node.default_scope().name_count(),
        node.default_scope().membership_count(),
        node.default_scope().member_count("room/7")
    );

    // Find a session by name and see where it is.
    let found = node
        .default_scope()
        .lookup("session/user-42")
        .expect("registered");
    let session: Session = found.meta.decode()?;
    println!(
        "lookup session/user-42 -> {} in {} (fencing token {})",
        found.pid, session.region, found.token
    );

    // A spawned name is taken: a second session for user 42 is refused without starting.
    let refused = node
        .default_scope()
        .spawn_named("session/user-42", &(), |_| async {});
    println!("second session/user-42: {}", refused.unwrap_err());

    // Message a whole room, encoded once for all members.
    let sent = node.default_scope().dispatch(
        "room/7",
        &ChatMessage::Say {
            from: 0,
            text: "hello room 7".into(),
        },
    )?;
    println!("dispatch to room/7 reached {} local members", sent.local);

    // Select: every EU session under "session/".
    let eu = node
        .default_scope()
        .count_match(Table::Names, Some("session/"), |e| {
            e.meta.decode::<Session>().is_ok_and(|s| s.region == "eu")
        })?;
    println!("sessions in eu: {eu}");

    // A crash removes the process's names and memberships, with reason Panicked.
    std::panic::set_hook(Box::new(|info| println!("  a process panicked: {info}")));
    let mut crash = node.default_scope().subscribe("session/user-13")?;
    node.default_scope().dispatch(
        "session/user-13",
        &ChatMessage::Say {
            from: 0,
            text: "crash".into(),
        },
    )?;
    if let Some(Delivery::Events(batch)) = crash.recv().await {
        println!(
            "  user-13's name went away with reason {:?}",
            batch[0].reason
        );
    }
    println!(
        "after the crash: session/user-13 registered? {}",
        node.default_scope().lookup("session/user-13").is_some()
    );

    // Kill a whole room's members.
    for member in node.default_scope().members("room/3").iter() {
        node.kill(member.pid());
    }
    println!(
        "killed room/3: {} members left, {} names left",
        node.default_scope().member_count("room/3"),
        node.default_scope().name_count()
    );

    // An isolated scope and a local-only registry.
    let jobs = node.connect("jobs")?;
    let leader = node.new_process();
    jobs.register(&leader, "leader/shard-7", &"v1")?;
    let cache = node.connect_with("connections", roster::ScopeOptions::new().local_only())?;
    let conn = node.new_process();
    cache.join(&conn, "peer/10.0.0.1", &())?;
    println!(
        "scopes {:?}: jobs leader {:?}; local-only members {}",
        node.scopes(),
        jobs.whereis("leader/shard-7"),
        cache.member_count("peer/")
    );
    node.disconnect("jobs")?;
    println!(
        "disconnected jobs: leader gone? {}",
        jobs.lookup("leader/shard-7").is_none()
    );

    // Stop every session: the watcher sees every removal.
    for (_, registration) in node.default_scope().names("session/", usize::MAX)? {
        node.kill(registration.pid);
    }
    println!(
        "all sessions stopped: {} names, {} memberships; events seen by the watcher:",
        node.default_scope().name_count(),
        node.default_scope().membership_count()
    );
    for (kind, count) in watcher.await? {
        println!("  {count:>5} x {kind}");
    }
    cluster_tour().await
}

/// Starts a clustered node on 127.0.0.1 that finds the others through `seeds`.
fn clustered(name: &str, seeds: &[&Node]) -> Result<Node, Box<dyn std::error::Error>> {
    let seeds: Vec<String> = seeds
        .iter()
        .filter_map(|n| n.cluster().addr())
        .map(|a| a.to_string())
        .collect();
    let config = ClusterConfig::new("127.0.0.1:0".parse()?, "demo secret")
        .seeds(seeds)
        .failure_detection(FailureDetection::Fast)
        .announce_interval(Duration::from_millis(200));
    Ok(Node::builder().name(name).cluster(config).start()?)
}

/// Waits (at most 10 s) until `check` holds.
async fn until(
    what: &str,
    check: impl Fn() -> bool,
) -> Result<Duration, Box<dyn std::error::Error>> {
    let started = Instant::now();
    while !check() {
        if started.elapsed() > Duration::from_secs(10) {
            return Err(format!("timed out waiting for {what}").into());
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    Ok(started.elapsed())
}

async fn cluster_tour() -> Result<(), Box<dyn std::error::Error>> {
    println!("\n--- a three-node cluster on 127.0.0.1 ---");
    let a = clustered("a", &[])?;
    let b = clustered("b", &[&a])?;
    let took = until("a and b to link", || a.cluster().peers().len() == 1).await?;
    println!(
        "a and b linked in {took:?} (a at {})",
        a.cluster().addr().expect("clustered")
    );

    // 10,000 workers on a, replicated to b.
    let workers: Vec<_> = (0..10_000).map(|_| a.new_process()).collect();
    for (i, w) in workers.iter().enumerate() {
        w.register(&format!("worker/{i}"), &(i as u32))?;
        w.join("workers", &())?;
    }
    let took = until("b to see a's workers", || {
        b.default_scope().name_count() == 10_000
    })
    .await?;
    println!("b sees a's 10000 workers {took:?} after the last write");

    // A late joiner catches up with a snapshot.
    let c = clustered("c", &[&a])?;
    let took = until("c to catch up", || {
        c.default_scope().name_count() == 10_000
            && c.default_scope().member_count("workers") == 10_000
    })
    .await?;
    println!("c started late and caught up with 10000 names and members in {took:?}");

    // Cut a's links, let both sides register the same name, then let the links return.
    a.cluster().sever_links(Duration::from_millis(500));
    until("the cut", || a.cluster().peers().is_empty()).await?;
    let first = a.new_process();
    first.register("leader", &"a")?;
    tokio::time::sleep(Duration::from_millis(10)).await;
    let second = b.new_process();
    second.register("leader", &"b")?;
    println!(
        "during the cut: a says leader is {:?}, b says {:?}",
        a.default_scope().whereis("leader"),
        b.default_scope().whereis("leader")
    );
    until("agreement on the leader", || {
        let owners = [
            a.default_scope().whereis("leader"),
            b.default_scope().whereis("leader"),
            c.default_scope().whereis("leader"),
        ];
        owners.iter().all(|o| *o == Some(first.pid()))
    })
    .await?;
    println!(
        "after the heal every node agrees: leader is {} (keep-oldest); the other got {:?}; fencing token {}",
        first.pid(),
        second.exit_reason(),
        a.default_scope()
            .lookup("leader")
            .expect("registered")
            .token
    );

    // One frame per remote node, delivered to every member there.
    let mut listener = c.new_process();
    listener.join("room", &())?;
    until("a to see c's member", || {
        a.default_scope().member_count("room") == 1
    })
    .await?;
    let sent = a.default_scope().dispatch("room", &"hello from a")?;
    let heard: String = listener.recv().await?;
    println!(
        "a dispatched to room: {} remote node(s); c's member heard {heard:?}",
        sent.remote_nodes
    );

    // The node registry: every node's record, status and links, from any node.
    c.nodes()
        .set_status(roster::nodes::NodeStatus::Draining, "demo maintenance")?;
    until("a to see c draining", || {
        a.nodes()
            .get("c")
            .is_some_and(|n| n.status == roster::nodes::NodeStatus::Draining)
    })
    .await?;
    until(
        "a heartbeat of every peer with its round-trip times",
        || {
            ["b", "c"].iter().all(|n| {
                a.nodes()
                    .heartbeats(n, 0)
                    .last()
                    .is_some_and(|h| h.peers.iter().all(|p| p.rtt_us.is_some()))
            })
        },
    )
    .await?;
    for node in a.nodes().liveness() {
        let health = a.nodes().health(&node.name).expect("listed");
        println!(
            "  node {}: {}, rtt from a {:?}, last heartbeat: {} names, load {:.2}",
            node.name,
            node.status,
            health.rtt,
            health.last_heartbeat.as_ref().map_or(0, |h| h.names),
            health.last_heartbeat.as_ref().map_or(0.0, |h| h.cpu_load),
        );
    }
    let graph = a.cluster().graph();
    let links: Vec<String> = graph
        .links
        .iter()
        .map(|l| format!("{}-{} ({})", l.source, l.target, l.kind))
        .collect();
    println!(
        "graph: {} nodes, links {links:?}; partition suspected: {:?}",
        graph.nodes.len(),
        a.nodes()
            .check_partition_now()
            .map(|s| s.partition_suspected)
    );

    // A node leaves: the others drop its entries in one batch.
    let mut events = b.default_scope().subscribe(Pattern::from("worker/"))?;
    a.shutdown().await;
    let took = until("b to drop a's workers", || {
        b.default_scope().name_count() == 0
    })
    .await?;
    if let Some(Delivery::Events(batch)) = events.recv().await {
        println!(
            "a left: b removed its {} workers in {took:?}, one batch of {} events, reason {:?}",
            10_000,
            batch.len(),
            batch[0].reason
        );
    }
    println!("b's stats: {:?}", b.cluster().stats().expect("clustered"));
    drop(workers);
    b.shutdown().await;
    c.shutdown().await;
    Ok(())
}
