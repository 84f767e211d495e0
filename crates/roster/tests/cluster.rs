//! Several nodes in one test process, over real loopback TCP and UDP.

use std::future::Future;
use std::time::Duration;

mod common;
use common::eventually;

use roster::TryRecvError;
use roster::{
    ClusterConfig, Delivery, Event, EventKind, ExitReason, FailureDetection, Node, Pattern, Reason,
};

const SECRET: &str = "cluster-test-secret";

async fn start(name: &str, seeds: &[&Node]) -> Node {
    start_with(name, seeds, SECRET).await
}

async fn start_with(name: &str, seeds: &[&Node], secret: &str) -> Node {
    start_configured(name, seeds, secret, Node::builder()).await
}

async fn start_configured(
    name: &str,
    seeds: &[&Node],
    secret: &str,
    builder: roster::NodeBuilder,
) -> Node {
    let seeds: Vec<String> = seeds
        .iter()
        .map(|n| n.cluster().addr().expect("clustered").to_string())
        .collect();
    let config = ClusterConfig::new("127.0.0.1:0".parse().unwrap(), secret)
        .seeds(seeds)
        .failure_detection(FailureDetection::Fast)
        .announce_interval(Duration::from_millis(200))
        .anti_entropy_interval(Duration::from_millis(300));
    builder
        .name(name)
        .cluster(config)
        .start()
        .expect("node starts")
}

async fn linked(nodes: &[&Node]) {
    for node in nodes {
        eventually("every node linked to every other", || {
            node.cluster().peers().len() == nodes.len() - 1
        })
        .await;
    }
}

async fn with_timeout<T>(f: impl Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(15), f)
        .await
        .expect("timed out")
}

async fn next_events(sub: &mut roster::Subscription) -> Vec<Event> {
    match with_timeout(sub.recv()).await {
        Some(Delivery::Events(events)) => events,
        other => panic!("expected events, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_replicate_in_order_to_a_peer() {
    let a = start("a", &[]).await;
    let b = start("b", &[&a]).await;
    linked(&[&a, &b]).await;
    let mut events = b.default_scope().subscribe(Pattern::All).unwrap();

    let p = a.new_process();
    p.register("user/1", &1u8).unwrap();
    p.register("user/1", &2u8).unwrap();
    p.join("room/1", &"x").unwrap();
    p.leave("room/1").unwrap();
    p.unregister("user/1").unwrap();

    let mut seen = Vec::new();
    while seen.len() < 5 {
        seen.extend(next_events(&mut events).await);
    }
    let kinds: Vec<(EventKind, &str)> = seen.iter().map(|e| (e.kind, e.key.as_str())).collect();
    assert_eq!(
        kinds,
        [
            (EventKind::Registered, "user/1"),
            (EventKind::Registered, "user/1"),
            (EventKind::Joined, "room/1"),
            (EventKind::Left, "room/1"),
            (EventKind::Unregistered, "user/1"),
        ]
    );
    assert_eq!(
        seen[1]
            .previous_meta
            .as_ref()
            .unwrap()
            .decode::<u8>()
            .unwrap(),
        1
    );
    assert!(seen.iter().all(|e| e.pid == p.pid()));
    a.shutdown().await;
    b.shutdown().await;
}

/// Links whose readers poll their sockets after traffic (`ClusterConfig::read_poll`) carry
/// the same writes in the same order: lone writes (each read while the reader polls),
/// bursts larger than one read, and both directions at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn links_whose_readers_poll_after_traffic_replicate_everything_in_order() {
    let seeds = |nodes: &[&Node]| -> Vec<String> {
        nodes
            .iter()
            .map(|n| n.cluster().addr().expect("clustered").to_string())
            .collect()
    };
    let polling = |name: &str, seeds: Vec<String>| {
        let config = ClusterConfig::new("127.0.0.1:0".parse().unwrap(), SECRET)
            .seeds(seeds)
            .failure_detection(FailureDetection::Fast)
            .announce_interval(Duration::from_millis(200))
            .anti_entropy_interval(Duration::from_millis(300))
            .read_poll(Duration::from_millis(5));
        Node::builder()
            .name(name)
            .cluster(config)
            .start()
            .expect("node starts")
    };
    let a = polling("a", Vec::new());
    let b = polling("b", seeds(&[&a]));
    linked(&[&a, &b]).await;
    let mut events = b.default_scope().subscribe(Pattern::All).unwrap();

    // Lone writes, each seen before the next: every one but the first comes while B's
    // reader polls.
    let p = a.new_process();
    for i in 0..50u32 {
        let key = format!("lone/{i}");
        p.register(&key, &i).unwrap();
        eventually("b sees the lone write", || {
            b.default_scope().whereis(&key) == Some(p.pid())
        })
        .await;
    }
    // A burst from each side at once, larger than one read of the socket.
    let on_a: Vec<_> = (0..2000).map(|_| a.new_process()).collect();
    let on_b: Vec<_> = (0..2000).map(|_| b.new_process()).collect();
    for (i, (pa, pb)) in on_a.iter().zip(&on_b).enumerate() {
        pa.register(
            &format!("burst/a/{i}"),
            &"a meta long enough to fill the frames",
        )
        .unwrap();
        pb.register(
            &format!("burst/b/{i}"),
            &"b meta long enough to fill the frames",
        )
        .unwrap();
    }
    eventually("each node sees the other's burst", || {
        (0..2000).all(|i| {
            b.default_scope().whereis(&format!("burst/a/{i}")) == Some(on_a[i].pid())
                && a.default_scope().whereis(&format!("burst/b/{i}")) == Some(on_b[i].pid())
        })
    })
    .await;
    p.unregister("lone/0").unwrap();
    eventually("b sees the unregister", || {
        b.default_scope().whereis("lone/0").is_none()
    })
    .await;

    // B's events of A's writes came in the order A made them (B's own burst is there too).
    let mut seen = Vec::new();
    while seen.len() < 4051 {
        seen.extend(next_events(&mut events).await);
    }
    let lone: Vec<&str> = seen
        .iter()
        .filter(|e| e.key.starts_with("lone/"))
        .map(|e| e.key.as_str())
        .collect();
    let expected: Vec<String> = (0..50)
        .map(|i| format!("lone/{i}"))
        .chain(["lone/0".into()])
        .collect();
    assert_eq!(lone, expected);
    let burst: Vec<&str> = seen
        .iter()
        .filter(|e| e.key.starts_with("burst/a/"))
        .map(|e| e.key.as_str())
        .collect();
    let expected: Vec<String> = (0..2000).map(|i| format!("burst/a/{i}")).collect();
    assert_eq!(burst, expected);
    assert_eq!(a.cluster().stats().unwrap().bad_frames, 0);
    assert_eq!(b.cluster().stats().unwrap().bad_frames, 0);
    a.shutdown().await;
    b.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_late_joiner_catches_up_and_a_lost_node_is_purged() {
    let a = start("a", &[]).await;
    let procs: Vec<_> = (0..500).map(|_| a.new_process()).collect();
    for (i, p) in procs.iter().enumerate() {
        p.register(&format!("k/{i}"), &(i as u32)).unwrap();
        p.join("all", &()).unwrap();
    }
    let b = start("b", &[&a]).await;
    eventually("b sees a's 500 names", || {
        b.default_scope().name_count() == 500
    })
    .await;
    eventually("b sees a's 500 members", || {
        b.default_scope().member_count("all") == 500
    })
    .await;
    assert_eq!(
        b.default_scope()
            .lookup("k/42")
            .unwrap()
            .meta
            .decode::<u32>()
            .unwrap(),
        42
    );

    let mut events = b.default_scope().subscribe(Pattern::from("k/")).unwrap();
    a.shutdown().await;
    eventually("b purges a's names", || b.default_scope().name_count() == 0).await;
    eventually("b purges a's members", || {
        b.default_scope().member_count("all") == 0
    })
    .await;
    let batch = next_events(&mut events).await;
    assert_eq!(batch.len(), 500, "one batch for the whole purge");
    assert!(
        batch
            .iter()
            .all(|e| e.reason == Reason::Exit(ExitReason::NodeDown))
    );
    b.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn process_death_is_replicated() {
    let a = start("a", &[]).await;
    let b = start("b", &[&a]).await;
    linked(&[&a, &b]).await;
    let pid = a.spawn(|proc| async move {
        proc.register("worker", &()).unwrap();
        proc.join("workers", &()).unwrap();
        std::future::pending::<()>().await;
    });
    eventually("b sees the worker", || {
        b.default_scope().whereis("worker") == Some(pid)
    })
    .await;
    eventually("b sees the member", || {
        b.default_scope().member_count("workers") == 1
    })
    .await;
    assert!(a.kill(pid));
    eventually("b forgets the worker", || {
        b.default_scope().whereis("worker").is_none()
    })
    .await;
    eventually("b forgets the member", || {
        b.default_scope().member_count("workers") == 0
    })
    .await;
    a.shutdown().await;
    b.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_registration_of_one_name_leaves_one_owner() {
    let a = start("a", &[]).await;
    let b = start("b", &[&a]).await;
    linked(&[&a, &b]).await;
    let pa = a.new_process();
    let pb = b.new_process();
    let ra = pa.register("leader", &"a");
    let rb = pb.register("leader", &"b");
    assert!(ra.is_ok() || rb.is_ok());
    eventually("both agree on one owner", || {
        let (x, y) = (
            a.default_scope().whereis("leader"),
            b.default_scope().whereis("leader"),
        );
        x.is_some() && x == y
    })
    .await;
    let winner = a.default_scope().whereis("leader").unwrap();
    let (winner_proc, loser_proc) = if winner == pa.pid() {
        (&pa, &pb)
    } else {
        (&pb, &pa)
    };
    if ra.is_ok() && rb.is_ok() {
        eventually("the loser is told", || !loser_proc.is_alive()).await;
        assert_eq!(
            loser_proc.exit_reason(),
            Some(ExitReason::Conflict {
                key: "leader".into(),
                winner
            })
        );
    }
    assert!(winner_proc.is_alive());
    a.shutdown().await;
    b.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scopes_replicate_only_between_their_members() {
    let a = start("a", &[]).await;
    let b = start("b", &[&a]).await;
    let c = start("c", &[&a]).await;
    linked(&[&a, &b, &c]).await;
    let sa = a.connect("chat").unwrap();
    let sb = b.connect("chat").unwrap();
    let p = a.new_process();
    sa.register(&p, "room-owner", &()).unwrap();
    eventually("b sees the scoped name", || {
        sb.whereis("room-owner") == Some(p.pid())
    })
    .await;
    eventually("b lists a in the scope", || {
        b.cluster().peers_in("chat").len() == 1
    })
    .await;
    assert!(c.scope("chat").is_err());
    assert!(c.default_scope().whereis("room-owner").is_none());
    assert!(
        b.default_scope().whereis("room-owner").is_none(),
        "default scope is separate"
    );
    // c joins later and catches up.
    let sc = c.connect("chat").unwrap();
    eventually("c catches up on the scope", || {
        sc.whereis("room-owner") == Some(p.pid())
    })
    .await;
    // b leaves: nothing of it may come back.
    b.disconnect("chat").unwrap();
    let sb = b.connect("chat").unwrap();
    eventually("b resyncs after reconnect", || {
        sb.whereis("room-owner") == Some(p.pid())
    })
    .await;
    for n in [a, b, c] {
        n.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn remote_dispatch_reaches_every_member_once() {
    let a = start("a", &[]).await;
    let b = start("b", &[&a]).await;
    linked(&[&a, &b]).await;
    let mut local = a.new_process();
    local.join("room", &()).unwrap();
    let mut remote: Vec<_> = (0..3).map(|_| b.new_process()).collect();
    for p in &remote {
        p.join("room", &()).unwrap();
    }
    eventually("a sees 4 members", || {
        a.default_scope().member_count("room") == 4
    })
    .await;
    let sent = a.default_scope().dispatch("room", &"hello").unwrap();
    assert_eq!((sent.local, sent.remote_nodes), (1, 1));
    assert_eq!(with_timeout(local.recv::<String>()).await.unwrap(), "hello");
    for p in &mut remote {
        assert_eq!(with_timeout(p.recv::<String>()).await.unwrap(), "hello");
        assert!(
            p.try_recv::<String>() == Err(TryRecvError::Empty),
            "exactly once"
        );
    }
    // Direct sends keep their order.
    let sender = a.new_process();
    for i in 0..100u32 {
        sender.send(remote[0].pid(), &i).unwrap();
    }
    for i in 0..100u32 {
        let envelope = with_timeout(remote[0].recv_envelope()).await.unwrap();
        assert_eq!(envelope.decode::<u32>().unwrap(), i);
        assert_eq!(envelope.from(), Some(sender.pid()));
    }
    a.shutdown().await;
    b.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_with_the_wrong_secret_never_links() {
    let a = start("a", &[]).await;
    let intruder = start_with("x", &[&a], "wrong").await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(a.cluster().peers().is_empty());
    assert!(intruder.cluster().peers().is_empty());
    a.shutdown().await;
    intruder.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rolling_restart_replaces_each_incarnation() {
    let a = start("a", &[]).await;
    let mut b = start("b", &[&a]).await;
    let c = start("c", &[&a]).await;
    linked(&[&a, &b, &c]).await;
    let pb = b.new_process();
    pb.register("b-worker", &()).unwrap();
    eventually("everyone sees b's worker", || {
        a.default_scope().whereis("b-worker").is_some()
            && c.default_scope().whereis("b-worker").is_some()
    })
    .await;
    let old = b.incarnation();
    // Restart b: the old incarnation goes away, a new one comes up with the same name.
    drop(pb);
    b.shutdown().await;
    b = start("b", &[&a]).await;
    assert_ne!(b.incarnation(), old);
    linked(&[&a, &b, &c]).await;
    eventually("old incarnation's names are gone", || {
        a.default_scope().whereis("b-worker").is_none()
            && c.default_scope().whereis("b-worker").is_none()
    })
    .await;
    let pb = b.new_process();
    pb.register("b-worker", &2u8).unwrap();
    eventually("the new incarnation's name replicates", || {
        a.default_scope().whereis("b-worker") == Some(pb.pid())
            && c.default_scope().whereis("b-worker") == Some(pb.pid())
    })
    .await;
    for n in [a, b, c] {
        n.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_lost_at_once_are_both_purged() {
    let a = start("a", &[]).await;
    let b = start("b", &[&a]).await;
    let c = start("c", &[&a]).await;
    let d = start("d", &[&a]).await;
    linked(&[&a, &b, &c, &d]).await;
    let keep: Vec<_> = [&b, &c, &d]
        .iter()
        .map(|n| {
            let p = n.new_process();
            p.register(&format!("on/{}", n.name()), &()).unwrap();
            p.join("everyone", &()).unwrap();
            p
        })
        .collect();
    eventually("a sees 3 names", || a.default_scope().name_count() == 3).await;
    tokio::join!(b.shutdown(), c.shutdown());
    eventually("a keeps only d's name", || {
        a.default_scope().name_count() == 1
    })
    .await;
    eventually("a keeps only d's member", || {
        a.default_scope().member_count("everyone") == 1
    })
    .await;
    eventually("d agrees", || {
        d.default_scope().name_count() == 1 && d.default_scope().member_count("everyone") == 1
    })
    .await;
    assert!(a.default_scope().whereis("on/d").is_some());
    drop(keep);
    a.shutdown().await;
    d.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_staggered_start_converges() {
    let first = start("n0", &[]).await;
    let mut nodes = vec![first];
    let mut procs = Vec::new();
    for i in 1..4 {
        let p = nodes[i - 1].new_process();
        p.register(&format!("from/{}", i - 1), &()).unwrap();
        procs.push(p);
        tokio::time::sleep(Duration::from_millis(100)).await;
        let seeds: Vec<&Node> = vec![&nodes[0]];
        let n = start(&format!("n{i}"), &seeds).await;
        nodes.push(n);
    }
    let refs: Vec<&Node> = nodes.iter().collect();
    linked(&refs).await;
    for n in &nodes {
        eventually("every node sees the 3 names", || {
            n.default_scope().name_count() == 3
        })
        .await;
    }
    for n in nodes {
        n.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconnecting_a_scope_three_times_never_resurrects_entries() {
    let a = start("a", &[]).await;
    let b = start("b", &[&a]).await;
    linked(&[&a, &b]).await;
    let sa = a.connect("jobs").unwrap();
    let owner = a.new_process();
    for round in 0..3 {
        let sb = b.connect("jobs").unwrap();
        let key = format!("job/{round}");
        sa.register(&owner, &key, &()).unwrap();
        eventually("b sees the job", || sb.whereis(&key).is_some()).await;
        // Delete while b is disconnected: b must not see it again after reconnecting.
        b.disconnect("jobs").unwrap();
        sa.unregister(&owner, &key).unwrap();
        let sb = b.connect("jobs").unwrap();
        sa.register(&owner, &format!("marker/{round}"), &())
            .unwrap();
        eventually("b catches up", || {
            sb.whereis(&format!("marker/{round}")).is_some()
        })
        .await;
        assert!(
            sb.whereis(&key).is_none(),
            "round {round}: deleted entry came back"
        );
        b.disconnect("jobs").unwrap();
    }
    a.shutdown().await;
    b.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn register_and_kill_churn_leaves_no_stale_entries() {
    let a = start("a", &[]).await;
    let b = start("b", &[&a]).await;
    linked(&[&a, &b]).await;
    let churn = |node: Node, tag: &'static str| {
        tokio::spawn(async move {
            for i in 0..300 {
                let pid = node.spawn(move |proc| async move {
                    let _ = proc.register(&format!("churn/{tag}/{i}"), &());
                    let _ = proc.join("churners", &());
                    std::future::pending::<()>().await;
                });
                if i % 3 != 0 {
                    tokio::task::yield_now().await;
                    node.kill(pid);
                }
            }
        })
    };
    let (x, y) = (churn(a.clone(), "a"), churn(b.clone(), "b"));
    x.await.unwrap();
    y.await.unwrap();
    // 100 survivors per node (every third process), nothing else. Spawned processes may
    // still be registering when the churn loops end, so a count of 200 alone can be a
    // passing moment (199 survivors and one entry whose removal is on its way): wait for
    // the whole condition, which a stale entry would never meet.
    let owner_alive = |reg: &roster::Registration| {
        if reg.pid.incarnation() == a.incarnation() {
            a.is_alive(reg.pid)
        } else {
            b.is_alive(reg.pid)
        }
    };
    for n in [&a, &b] {
        eventually(
            "200 live names and 200 members, none held by a dead process",
            || {
                n.default_scope().name_count() == 200
                    && n.default_scope().member_count("churners") == 200
                    && n.default_scope()
                        .names("churn/", usize::MAX)
                        .unwrap()
                        .iter()
                        .all(|(_, reg)| owner_alive(reg))
            },
        )
        .await;
    }
    a.shutdown().await;
    b.shutdown().await;
}

/// A joiner gets the entries it never had in a snapshot: the resync bytes the sender counts
/// are the receiver's, they carry the entries, and a catch-up by delta adds none.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resync_bytes_count_a_joiners_snapshot_on_both_sides() {
    let a = start("a", &[]).await;
    let procs: Vec<_> = (0..500).map(|_| a.new_process()).collect();
    for (i, p) in procs.iter().enumerate() {
        p.register(&format!("k/{i}"), &()).unwrap();
    }
    assert_eq!(a.cluster().stats().unwrap().resync_bytes_sent, 0);
    let b = start("b", &[&a]).await;
    eventually("b syncs 500 names", || {
        b.default_scope().name_count() == 500
    })
    .await;
    eventually("b has read every resync byte a sent", || {
        b.cluster().stats().unwrap().resync_bytes_received
            == a.cluster().stats().unwrap().resync_bytes_sent
    })
    .await;
    let sent = a.cluster().stats().unwrap();
    // Each entry takes at least its key ("k/0".."k/499") and a pid on the wire.
    assert!(
        sent.resync_bytes_sent > 500 * 8,
        "a snapshot of 500 names in {} bytes",
        sent.resync_bytes_sent
    );
    assert!(sent.resync_bytes_sent <= sent.bytes_sent);

    a.cluster().sever_links(Duration::from_millis(300));
    eventually("the link is down", || a.cluster().peers().is_empty()).await;
    procs[0].unregister("k/0").unwrap();
    eventually("b catches up by delta", || {
        b.default_scope().name_count() == 499
    })
    .await;
    assert_eq!(
        a.cluster().stats().unwrap().resync_bytes_sent,
        sent.resync_bytes_sent,
        "a delta catch-up is no resync"
    );
    a.shutdown().await;
    b.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_conflict_loser_can_be_kept_alive_and_told() {
    let keep = || Node::builder().kill_conflict_losers(false);
    let a = start_configured("a", &[], SECRET, keep()).await;
    let b = start_configured("b", &[&a], SECRET, keep()).await;
    linked(&[&a, &b]).await;
    // Cut the links: both sides register the same name, unaware of each other.
    a.cluster().sever_links(Duration::from_millis(600));
    eventually("the link is down on both sides", || {
        a.cluster().peers().is_empty() && b.cluster().peers().is_empty()
    })
    .await;
    let pa = a.new_process();
    pa.register("leader", &"a").unwrap();
    tokio::time::sleep(Duration::from_millis(20)).await;
    let pb = b.new_process();
    pb.register("leader", &"b").unwrap();
    eventually("both agree after the links return", || {
        a.default_scope().whereis("leader") == Some(pa.pid())
            && b.default_scope().whereis("leader") == Some(pa.pid())
    })
    .await;
    assert!(pb.is_alive(), "the loser keeps running");
    eventually("the loser is told", || {
        let lost = pb.lost_names();
        if lost.is_empty() {
            return false;
        }
        assert_eq!(lost, [("leader".into(), pa.pid())]);
        true
    })
    .await;
    assert!(pa.lost_names().is_empty());
    assert!(
        b.default_scope().names_of(pb.pid()).is_empty(),
        "the loser no longer lists the name it lost: {:?}",
        b.default_scope().names_of(pb.pid())
    );
    assert_eq!(a.default_scope().names_of(pa.pid()), ["leader"]);
    a.shutdown().await;
    b.shutdown().await;
}
