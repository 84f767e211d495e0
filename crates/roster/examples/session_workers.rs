//! One worker per session, as Elixir's `Registry` with a `DynamicSupervisor` gives them,
//! in a session registry replicated across two nodes.
//!
//! The registry is a replicated scope, `sessions`, that both nodes connect to, so a
//! session started on one node is found from the other and cannot be started twice in
//! the cluster. The example starts two nodes on 127.0.0.1 and shows:
//!
//! - one worker per session with `scope.spawn_named("session/ID", &meta, ..)`;
//! - a second start of a running session, from either node, returning the running worker
//!   (the `Taken` error carries its pid);
//! - a session found from the other node (`lookup`, `node_name_of`);
//! - a worker that panics, and one that is killed (`node.kill`): each frees its name at
//!   once, and the restart succeeds (the first one on the other node) without a spurious
//!   `Taken`;
//! - a duplicate-key topic: a group `topic/…` that several workers join, reached with one
//!   `dispatch`, every worker reporting its receipt;
//! - `select` and `count_match` over the sessions' meta, and their typed forms
//!   `select_as` and `count_match_as`.
//!
//! Run with `cargo run -p roster --example session_workers`.

use std::time::Duration;

use roster::{
    ClusterConfig, Delivery, EventKind, FailureDetection, Node, Pid, Reason, RegistryError, Scope,
    Table,
};
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

/// The meta of a `session/ID` registration.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Session {
    user: String,
    plan: String,
    node: String,
}

/// What a session worker receives.
#[derive(Debug, Serialize, Deserialize)]
enum SessionMsg {
    /// An announcement to a topic the worker joined.
    Announce { topic: String, text: String },
    /// A bug in the worker: it panics.
    Crash,
}

/// How long any wait of the example may take before it gives up.
const DEADLINE: Duration = Duration::from_secs(15);

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    // The default panic message of the crashing worker would interleave with the output.
    std::panic::set_hook(Box::new(|info| {
        println!("  (a worker panicked: {})", panic_text(info));
    }));

    let a = start_node("a", None);
    let b = start_node("b", Some(&a));
    let sessions_a = a.connect("sessions").expect("a valid scope name");
    let sessions_b = b.connect("sessions").expect("a valid scope name");
    wait_until("a and b to link and share the sessions scope", || {
        a.cluster().peers_in("sessions").len() == 1 && b.cluster().peers_in("sessions").len() == 1
    })
    .await;
    println!(
        "nodes a and b linked on 127.0.0.1, both connected to the replicated scope \"sessions\""
    );

    let (receipts_tx, mut receipts) = mpsc::unbounded_channel::<String>();
    let start = |node: &Node, scope: &Scope, id: &str, user: &str, plan: &str| {
        start_session(node, scope, id, user, plan, receipts_tx.clone())
    };

    // One worker per session, on either node.
    println!("\nstarting sessions:");
    let s1 = start(&a, &sessions_a, "s1", "alice", "pro");
    let s2 = start(&b, &sessions_b, "s2", "bob", "free");
    let s3 = start(&b, &sessions_b, "s3", "carol", "pro");
    let s4 = start(&a, &sessions_a, "s4", "dave", "free");
    wait_until("both nodes to see 4 sessions in topic/all", || {
        [&sessions_a, &sessions_b].iter().all(|s| {
            s.names("session/", 100).map_or(0, |n| n.len()) == 4 && s.member_count("topic/all") == 4
        })
    })
    .await;

    // A session started on b, found from a.
    let found = sessions_a.lookup("session/s2").expect("a sees b's session");
    let meta: Session = found.meta.decode().expect("a session's meta");
    println!(
        "\na looks up session/s2: {} on node {} (user {}, plan {})",
        found.pid,
        a.node_name_of(found.pid).expect("b is linked"),
        meta.user,
        meta.plan
    );

    // A second start of a running session returns the running worker, from either node.
    println!("\nstarting s1 again:");
    let again_b = start(&b, &sessions_b, "s1", "alice", "pro");
    let again_a = start(&a, &sessions_a, "s1", "alice", "pro");
    assert_eq!(again_a, again_b, "one worker for s1");

    // A crash: s3's worker (on b) panics. Its name is free at once; a sees it go, with
    // the reason, and restarts the session on a.
    let mut s3_events = sessions_a.subscribe("session/s3").expect("a valid pattern");
    println!("\ns3's worker on b is sent a message that makes it panic");
    b.send(s3, &SessionMsg::Crash)
        .expect("s3's mailbox takes the message");
    let event = loop {
        let batch = next_batch(&mut s3_events, "a to see s3's worker go").await;
        if let Some(e) = batch
            .into_iter()
            .find(|e| e.kind == EventKind::Unregistered)
        {
            break e;
        }
    };
    println!(
        "\ns3's worker crashed on b: a saw {:?} of {} with reason {}",
        event.kind,
        event.key,
        reason(&event.reason)
    );
    let s3_again = start(&a, &sessions_a, "s3", "carol", "pro");
    assert_ne!(s3_again, s3, "a new worker");

    // A kill: s4's worker (on a) is killed; the name is free as soon as `kill` returns.
    assert!(a.kill(s4), "s4's worker was alive on a");
    println!(
        "\ns4's worker killed on a: session/s4 now {:?}",
        sessions_a.whereis("session/s4")
    );
    let s4_again = start(&a, &sessions_a, "s4", "dave", "free");
    assert_ne!(s4_again, s4, "a new worker");

    // A duplicate-key topic: every worker joined topic/all, the pro ones topic/pro too.
    let mut workers = vec![s1, s2, s3_again, s4_again];
    workers.sort();
    wait_until(
        "both nodes to see the restarted workers in topic/all",
        || {
            [&sessions_a, &sessions_b].iter().all(|s| {
                let mut members = s.members("topic/all").pids();
                members.sort();
                members == workers
            })
        },
    )
    .await;
    let sent = sessions_b
        .dispatch(
            "topic/all",
            &SessionMsg::Announce {
                topic: "topic/all".into(),
                text: "maintenance at 02:00".into(),
            },
        )
        .expect("the message encodes");
    println!(
        "\nb dispatches to topic/all ({} members): {} local, {} other node(s)",
        sessions_b.member_count("topic/all"),
        sent.local,
        sent.remote_nodes
    );
    for receipt in collect_receipts(&mut receipts, 4).await {
        println!("  {receipt}");
    }
    let sent = sessions_a
        .dispatch(
            "topic/pro",
            &SessionMsg::Announce {
                topic: "topic/pro".into(),
                text: "new pro feature".into(),
            },
        )
        .expect("the message encodes");
    println!(
        "a dispatches to topic/pro: {} local, {} other node(s)",
        sent.local, sent.remote_nodes
    );
    for receipt in collect_receipts(&mut receipts, 2).await {
        println!("  {receipt}");
    }

    // Select and count over the sessions' meta, asked of b.
    println!("\nqueries on b:");
    let pro = sessions_b
        .select(Table::Names, Some("session/"), |e| {
            e.meta.decode::<Session>().is_ok_and(|s| s.plan == "pro")
        })
        .expect("a valid prefix");
    let keys: Vec<&str> = pro.iter().map(|e| e.key.as_str()).collect();
    println!("  select pro sessions: {}", keys.join(", "));
    let free = sessions_b
        .count_match(Table::Names, Some("session/"), |e| {
            e.meta.decode::<Session>().is_ok_and(|s| s.plan == "free")
        })
        .expect("a valid prefix");
    println!("  count_match free sessions: {free}");
    let on_a = sessions_b
        .select_as::<Session, _>(Table::Names, Some("session/"), 100, |_, s| s.node == "a")
        .expect("a valid prefix");
    let users: Vec<String> = on_a
        .items
        .iter()
        .map(|d| format!("{} ({})", d.key, d.meta.user))
        .collect();
    println!("  select_as sessions on node a: {}", users.join(", "));
    let counted = sessions_b
        .count_match_as::<Session, _>(Table::Names, Some("session/"), |_, s| s.node == "b")
        .expect("a valid prefix");
    println!(
        "  count_match_as sessions on node b: {} ({} undecodable)",
        counted.matched, counted.undecodable
    );
    let members = sessions_b
        .count_match(Table::Groups, Some("topic/"), |_| true)
        .expect("a valid prefix");
    println!("  count_match topic memberships: {members}");

    a.shutdown().await;
    b.shutdown().await;
    println!("\ndone");
}

/// Starts node `name` on 127.0.0.1 (a free port), announcing itself to `seed`.
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
        "session workers example",
    )
    .seeds(seeds)
    .failure_detection(FailureDetection::Fast)
    .announce_interval(Duration::from_millis(200));
    Node::builder()
        .name(name)
        .cluster(config)
        .start()
        .expect("the node starts")
}

/// Starts the worker of session `id` in `scope`, or returns the one already running
/// (as `DynamicSupervisor.start_child` with a via-name returns `{:already_started, pid}`).
fn start_session(
    node: &Node,
    scope: &Scope,
    id: &str,
    user: &str,
    plan: &str,
    receipts: mpsc::UnboundedSender<String>,
) -> Pid {
    let node = node.name().to_owned();
    let meta = Session {
        user: user.to_owned(),
        plan: plan.to_owned(),
        node: node.clone(),
    };
    let key = format!("session/{id}");
    let worker_scope = scope.clone();
    let worker_meta = meta.clone();
    let worker_key = key.clone();
    let started = scope.spawn_named(&key, &meta, move |mut proc| async move {
        let topics = if worker_meta.plan == "pro" {
            vec!["topic/all", "topic/pro"]
        } else {
            vec!["topic/all"]
        };
        for topic in topics {
            worker_scope
                .join(&proc, topic, &worker_meta.user)
                .expect("the worker joins its topic");
        }
        while let Ok(message) = proc.recv::<SessionMsg>().await {
            match message {
                SessionMsg::Announce { topic, text } => {
                    let _ = receipts.send(format!(
                        "{worker_key} ({}@{}) received {text:?} on {topic}",
                        worker_meta.user, worker_meta.node
                    ));
                }
                SessionMsg::Crash => panic!("{worker_key} hit a bug"),
            }
        }
    });
    match started {
        Ok(pid) => {
            println!("  {key} started on {node}: {pid}");
            pid
        }
        Err(RegistryError::Taken { owner, .. }) => {
            println!("  {key} already running (asked on {node}): {owner}");
            owner
        }
        Err(other) => panic!("{key} could not start: {other}"),
    }
}

/// The next `count` receipts, sorted.
async fn collect_receipts(
    receipts: &mut mpsc::UnboundedReceiver<String>,
    count: usize,
) -> Vec<String> {
    let mut got = Vec::new();
    while got.len() < count {
        let receipt = tokio::time::timeout(DEADLINE, receipts.recv())
            .await
            .unwrap_or_else(|_| panic!("only {} of {count} workers got the message", got.len()))
            .expect("the workers are running");
        got.push(receipt);
    }
    got.sort();
    got
}

/// The next batch of events of `events`.
async fn next_batch(events: &mut roster::Subscription, what: &str) -> Vec<roster::Event> {
    match tokio::time::timeout(DEADLINE, events.recv()).await {
        Ok(Some(Delivery::Events(batch))) => batch,
        Ok(Some(Delivery::Lagged { missed })) => panic!("{what}: lagged, missed {missed}"),
        Ok(None) => panic!("{what}: the subscription ended"),
        Err(_) => panic!("timed out waiting for {what}"),
    }
}

/// A reason in words.
fn reason(reason: &Reason) -> String {
    match reason {
        Reason::Requested => "requested".to_owned(),
        Reason::Exit(exit) => format!("exit {exit:?}"),
        other => format!("{other:?}"),
    }
}

/// The message of a panic.
fn panic_text(info: &std::panic::PanicHookInfo<'_>) -> String {
    if let Some(text) = info.payload().downcast_ref::<&str>() {
        (*text).to_owned()
    } else if let Some(text) = info.payload().downcast_ref::<String>() {
        text.clone()
    } else {
        "a panic".to_owned()
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
