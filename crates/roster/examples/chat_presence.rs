//! Chat presence on a three-node cluster: who is online, on which node, in which channels.
//!
//! Every user is a process registered as `user/NAME` (its node's name in the meta); every
//! channel is a group `channel/NAME`. The example starts three nodes on 127.0.0.1 and
//! shows, from whichever node asks:
//!
//! - the users with their node and channels (`names("user/", ..)` and `groups_of(pid)`);
//! - the users of a channel (`members`);
//! - a message to a channel reaching every member on every node (`dispatch`), each member
//!   reporting its receipt;
//! - a user leaving a channel, then a user disconnecting (its process ends: its name and
//!   memberships vanish on every node);
//! - a node going down: another node removes all of its users and memberships in one
//!   batch of events.
//!
//! Run with `cargo run -p roster --example chat_presence`.

use std::time::Duration;

use roster::{
    ClusterConfig, Delivery, EventKind, FailureDetection, Node, Pattern, Pid, Reason, Scope,
};
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

/// The meta of a `user/NAME` registration.
#[derive(Debug, Serialize, Deserialize)]
struct User {
    node: String,
}

/// What a user process receives.
#[derive(Debug, Serialize, Deserialize)]
enum UserMsg {
    /// A message posted to a channel the user is in.
    Say {
        channel: String,
        from: String,
        text: String,
    },
    /// Leave a channel.
    Leave { channel: String },
    /// Disconnect: the process ends.
    Quit,
}

/// What a user process reports to the example when a message reaches it.
#[derive(Debug)]
struct Receipt {
    user: String,
    node: String,
    channel: String,
    from: String,
    text: String,
}

/// How long any wait of the example may take before it gives up.
const DEADLINE: Duration = Duration::from_secs(15);

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let n1 = start_node("n1", None);
    let n2 = start_node("n2", Some(&n1));
    let n3 = start_node("n3", Some(&n1));
    let nodes = [&n1, &n2, &n3];
    wait_until("the three nodes to link", || {
        nodes.iter().all(|n| n.cluster().peers().len() == 2)
    })
    .await;
    println!("three nodes linked on 127.0.0.1: n1, n2, n3");

    // Users: (name, node, channels).
    let (receipts_tx, mut receipts) = mpsc::unbounded_channel();
    let users: [(&str, &Node, &[&str]); 6] = [
        ("alice", &n1, &["general", "rust"]),
        ("bob", &n2, &["general", "go"]),
        ("frank", &n2, &["general"]),
        ("carol", &n3, &["rust"]),
        ("dave", &n3, &["general", "rust"]),
        ("erin", &n3, &["go"]),
    ];
    let mut pids = std::collections::BTreeMap::new();
    for (name, node, channels) in users {
        let pid = connect_user(node, name, channels, receipts_tx.clone());
        pids.insert(name, pid);
    }
    wait_until("every node to see 6 users in 9 channel memberships", || {
        nodes.iter().all(|n| {
            n.default_scope().name_count() == 6 && n.default_scope().membership_count() == 9
        })
    })
    .await;
    println!("6 users connected; every node sees 6 users and 9 channel memberships");

    // Who is online, asked of n2: each user with its node (from the meta) and channels.
    println!("\nusers, as n2 sees them:");
    print_users(n2.default_scope());

    // The users of a channel, asked of n1; the node of each member from its pid.
    println!("\nchannels, as n1 sees them:");
    for channel in ["channel/general", "channel/go", "channel/rust"] {
        println!("  {}", channel_line(&n1, channel));
    }

    // A message to a channel: one dispatch on n1; n1 delivers to its member, and hands one
    // frame to n3, which delivers to both of its members there.
    let sent = n1
        .default_scope()
        .dispatch(
            "channel/rust",
            &UserMsg::Say {
                channel: "channel/rust".into(),
                from: "alice".into(),
                text: "RustConf tickets are out".into(),
            },
        )
        .expect("the message encodes");
    println!(
        "\nalice posts to channel/rust: dispatched to {} local member(s) and {} other node(s)",
        sent.local, sent.remote_nodes
    );
    for r in collect_receipts(&mut receipts, 3).await {
        println!(
            "  {}@{} received {:?} on {} from {}",
            r.user, r.node, r.text, r.channel, r.from
        );
    }

    // dave leaves channel/rust (his process leaves the group itself).
    n3.send(
        pids["dave"],
        &UserMsg::Leave {
            channel: "channel/rust".into(),
        },
    )
    .expect("dave's mailbox takes the message");
    wait_until("n1 to see dave leave channel/rust", || {
        n1.default_scope().member_count("channel/rust") == 2
    })
    .await;
    println!("\ndave left channel/rust; n1 now sees:");
    println!("  {}", channel_line(&n1, "channel/rust"));

    // frank disconnects: his process ends, and with it his name and memberships, on
    // every node. n3 watches his name to see why it went.
    let mut frank_events = n3
        .default_scope()
        .subscribe("user/frank")
        .expect("a valid pattern");
    n2.send(pids["frank"], &UserMsg::Quit)
        .expect("frank's mailbox takes the message");
    let gone = next_batch(&mut frank_events, "n3 to hear that user/frank went").await;
    println!(
        "\nfrank disconnected: n3 saw {:?} of {} with reason {}",
        gone[0].kind,
        gone[0].key,
        reason(&gone[0].reason)
    );
    wait_until("every node to drop frank's name and memberships", || {
        nodes.iter().all(|n| {
            n.default_scope().whereis("user/frank").is_none()
                && n.default_scope().groups_of(pids["frank"]).is_empty()
                && n.default_scope().membership_count() == 7
        })
    })
    .await;
    println!("frank is gone on n1, n2 and n3; n1 now sees:");
    println!("  {}", channel_line(&n1, "channel/general"));

    // n3 goes down. n1 watches every user and channel: the removals of n3's users and
    // memberships arrive together, as one batch.
    let mut presence = n1
        .default_scope()
        .subscribe_many([Pattern::from("user/"), Pattern::from("channel/")])
        .expect("valid patterns");
    println!("\nn3 shuts down (it hosts carol, dave and erin)");
    n3.shutdown().await;
    let batch = next_batch(&mut presence, "n1 to remove n3's users").await;
    let mut removed_users: Vec<&str> = batch
        .iter()
        .filter(|e| e.kind == EventKind::Unregistered)
        .map(|e| e.key.as_str().trim_start_matches("user/"))
        .collect();
    removed_users.sort_unstable();
    let left = batch.iter().filter(|e| e.kind == EventKind::Left).count();
    let reasons: std::collections::BTreeSet<String> =
        batch.iter().map(|e| reason(&e.reason)).collect();
    println!(
        "n1 received one batch of {} events: {} users removed in one batch ({}) and {} memberships left, reason {}",
        batch.len(),
        removed_users.len(),
        removed_users.join(", "),
        left,
        reasons.into_iter().collect::<Vec<_>>().join(", ")
    );
    wait_until("n2 to drop n3's users too", || {
        n2.default_scope().name_count() == 2
    })
    .await;
    println!("\nusers, as n2 sees them after n3 left:");
    print_users(n2.default_scope());

    n1.shutdown().await;
    n2.shutdown().await;
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
        "chat presence example",
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

/// Starts user `name` on `node`: a process registered as `user/NAME` that joins its
/// channels, reports every message it receives, leaves a channel or quits when told.
fn connect_user(
    node: &Node,
    name: &'static str,
    channels: &[&str],
    receipts: mpsc::UnboundedSender<Receipt>,
) -> Pid {
    let node_name = node.name().to_owned();
    let channels: Vec<String> = channels.iter().map(|c| format!("channel/{c}")).collect();
    let meta = User {
        node: node_name.clone(),
    };
    node.default_scope()
        .spawn_named(&format!("user/{name}"), &meta, move |mut proc| async move {
            for channel in &channels {
                proc.join(channel, &name)
                    .expect("the user joins its channel");
            }
            loop {
                match proc.recv::<UserMsg>().await {
                    Ok(UserMsg::Say {
                        channel,
                        from,
                        text,
                    }) => {
                        let _ = receipts.send(Receipt {
                            user: name.to_owned(),
                            node: node_name.clone(),
                            channel,
                            from,
                            text,
                        });
                    }
                    Ok(UserMsg::Leave { channel }) => {
                        proc.leave(&channel).expect("the user is in the channel");
                    }
                    // Quit, or the process was ended: dropping `proc` removes the
                    // user's name and memberships everywhere.
                    Ok(UserMsg::Quit) | Err(_) => return,
                }
            }
        })
        .expect("the user name is free")
}

/// Prints every user `scope` knows, with its node and channels.
fn print_users(scope: &Scope) {
    for (key, registration) in scope.names("user/", 100).expect("a valid prefix") {
        let user: User = registration.meta.decode().expect("a user's meta");
        let channels: Vec<String> = scope
            .groups_of(registration.pid)
            .iter()
            .map(|k| k.to_string())
            .collect();
        println!(
            "  {}@{} in {}",
            key.as_str().trim_start_matches("user/"),
            user.node,
            channels.join(", ")
        );
    }
}

/// `channel/NAME: user@node, ...` as `node` sees the channel.
fn channel_line(node: &Node, channel: &str) -> String {
    let mut users: Vec<String> = node
        .default_scope()
        .members(channel)
        .iter()
        .map(|m| {
            let name: String = m.meta().decode().expect("a member's meta is its name");
            let at = node.node_name_of(m.pid()).unwrap_or_else(|| "?".to_owned());
            format!("{name}@{at}")
        })
        .collect();
    users.sort();
    format!("{channel}: {}", users.join(", "))
}

/// The next `count` receipts, sorted by user.
async fn collect_receipts(
    receipts: &mut mpsc::UnboundedReceiver<Receipt>,
    count: usize,
) -> Vec<Receipt> {
    let mut got = Vec::new();
    while got.len() < count {
        let receipt = tokio::time::timeout(DEADLINE, receipts.recv())
            .await
            .unwrap_or_else(|_| panic!("only {} of {count} members got the message", got.len()))
            .expect("the users are running");
        got.push(receipt);
    }
    got.sort_by(|a, b| a.user.cmp(&b.user));
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
