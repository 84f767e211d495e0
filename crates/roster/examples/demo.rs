//! A tour of Roster on one node: sessions with unique names, chat rooms as groups,
//! lifecycle events, dispatch, a crash, a kill, scopes and a local-only registry.
//!
//! Run with `cargo run --release -p roster --example demo`.

use std::time::{Duration, Instant};

use roster::{Delivery, Node, Pattern, Reason, Table};
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
    let mut events = node.subscribe_many([Pattern::from("session/"), Pattern::from("room/")])?;
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
        node.spawn_named(
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
    while node.membership_count() < 1_000 {
        tokio::task::yield_now().await;
    }
    println!(
        "spawned 1000 named sessions in {spawn_time:?}: {} names, {} memberships, {} members in room/7",
        node.registry_count(),
        node.membership_count(),
        node.member_count("room/7")
    );

    // Find a session by name and see where it is.
    let found = node.lookup("session/user-42").expect("registered");
    let session: Session = found.meta.decode()?;
    println!(
        "lookup session/user-42 -> {} in {} (fencing token {})",
        found.pid, session.region, found.token
    );

    // A spawned name is taken: a second session for user 42 is refused without starting.
    let refused = node.spawn_named("session/user-42", &(), |_| async {});
    println!("second session/user-42: {}", refused.unwrap_err());

    // Message a whole room, encoded once for all members.
    let sent = node.dispatch(
        "room/7",
        &ChatMessage::Say {
            from: 0,
            text: "hello room 7".into(),
        },
    )?;
    println!("dispatch to room/7 reached {} local members", sent.local);

    // Select: every EU session under "session/".
    let eu = node.count_match(Table::Names, Some("session/"), |e| {
        e.meta.decode::<Session>().is_ok_and(|s| s.region == "eu")
    })?;
    println!("sessions in eu: {eu}");

    // A crash removes the process's names and memberships, with reason Panicked.
    std::panic::set_hook(Box::new(|info| println!("  a process panicked: {info}")));
    let mut crash = node.subscribe("session/user-13")?;
    node.dispatch(
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
        node.lookup("session/user-13").is_some()
    );

    // Kill a whole room's members.
    for member in node.members("room/3").iter() {
        node.kill(member.pid());
    }
    println!(
        "killed room/3: {} members left, {} names left",
        node.member_count("room/3"),
        node.registry_count()
    );

    // An isolated scope and a local-only registry.
    let jobs = node.connect("jobs")?;
    let leader = node.process();
    jobs.register(&leader, "leader/shard-7", &"v1")?;
    let cache = node.connect_local("connections")?;
    let conn = node.process();
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
    for (_, registration) in node.registered("session/", usize::MAX)? {
        node.kill(registration.pid);
    }
    println!(
        "all sessions stopped: {} names, {} memberships; events seen by the watcher:",
        node.registry_count(),
        node.membership_count()
    );
    for (kind, count) in watcher.await? {
        println!("  {count:>5} x {kind}");
    }
    Ok(())
}
