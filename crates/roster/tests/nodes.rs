//! The node registry across real nodes on loopback: records and status, heartbeats,
//! degraded thresholds, offline nodes and their retention, restarts.

mod common;

use std::time::Duration;

use common::{cluster_config, eventually, fully_linked, start_clustered, within};
use roster::nodes::{HealthConfig, NodeEvent, NodeStatus};
use roster::{Node, NodeFilter, SendError};

/// Fast heartbeats and a short retention, for tests; no RTT or missed-heartbeat
/// threshold, so that a loaded test machine does not turn nodes degraded.
fn health() -> HealthConfig {
    HealthConfig::new()
        .heartbeat_interval(Duration::from_millis(100))
        .offline_retention(Duration::from_secs(2))
        .max_rtt(None)
        .missed_heartbeats(0)
}

fn start(name: &str, role: &str, seeds: &[&Node], health: HealthConfig) -> Node {
    let builder = Node::builder()
        .role(role)
        .label("domain", if name == "c" { "us" } else { "eu" })
        .version("1.2.3")
        .health(health);
    start_clustered(builder, name, cluster_config("nodes", seeds))
}

async fn three() -> (Node, Node, Node) {
    let a = start("a", "api", &[], health());
    let b = start("b", "api", &[&a], health());
    let c = start("c", "worker", &[&a], health());
    within(
        "three nodes link",
        eventually("links", || fully_linked(&[&a, &b, &c])),
    )
    .await;
    (a, b, c)
}

fn knows_online(node: &Node, name: &str) -> bool {
    node.nodes()
        .get(name)
        .is_some_and(|n| n.status == NodeStatus::Online)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_node_holds_every_record_and_status_changes_reach_all() {
    let (a, b, c) = three().await;
    for n in [&a, &b, &c] {
        within(
            "records replicate",
            eventually("records", || {
                ["a", "b", "c"].iter().all(|m| knows_online(n, m))
            }),
        )
        .await;
    }
    let c_seen_from_a = a.nodes().get("c").expect("known");
    assert_eq!(c_seen_from_a.record.role, "worker");
    assert_eq!(c_seen_from_a.record.labels["domain"], "us");
    assert_eq!(c_seen_from_a.record.version, "1.2.3");
    assert_eq!(c_seen_from_a.record.incarnation, c.incarnation());
    assert_eq!(
        c_seen_from_a.record.addrs,
        vec![c.cluster().addr().expect("clustered").to_string()]
    );
    let apis: Vec<String> = b
        .nodes()
        .list(&NodeFilter::default().role("api").label("domain", "eu"))
        .into_iter()
        .map(|n| n.record.name)
        .collect();
    assert_eq!(apis, vec!["a".to_owned(), "b".to_owned()]);

    c.nodes()
        .set_status(NodeStatus::Draining, "maintenance window")
        .expect("allowed");
    for n in [&a, &b] {
        within(
            "the status replicates",
            eventually("draining", || {
                n.nodes().get("c").is_some_and(|i| {
                    i.status == NodeStatus::Draining
                        && i.record.status_reason == "maintenance window"
                })
            }),
        )
        .await;
    }
    assert_eq!(
        a.nodes()
            .list(&NodeFilter::default().status(NodeStatus::Draining))
            .len(),
        1
    );
    for n in [a, b, c] {
        n.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heartbeats_carry_metrics_and_round_trip_times() {
    let (a, b, c) = three().await;
    b.nodes().set_app_metric("sessions", 7.0);
    within(
        "heartbeats with a measured rtt arrive",
        eventually("rtt", || {
            a.nodes().heartbeats("b", 0).last().is_some_and(|beat| {
                beat.app.get("sessions") == Some(&7.0)
                    && beat.peers.len() == 2
                    && beat.peers.iter().all(|p| p.rtt_us.is_some())
            })
        }),
    )
    .await;
    let beat = a.nodes().heartbeats("b", 0).pop().expect("kept");
    assert_real_host_figures(&beat);
    assert_eq!(beat.members, 3);
    let health = a.nodes().health("b").expect("known");
    assert_eq!(health.status, NodeStatus::Online);
    assert!(health.rtt.is_some(), "a measured its own link to b");
    assert!(
        health.degraded_reasons.is_empty(),
        "{:?}",
        health.degraded_reasons
    );
    for n in [a, b, c] {
        n.shutdown().await;
    }
}

/// The heartbeat's host figures are this Linux host's, not the zeros a host whose
/// metrics cannot be read reports: memory within what `/proc/meminfo` shows, and a load
/// above zero when `/proc/loadavg` shows one.
fn assert_real_host_figures(beat: &roster::nodes::Heartbeat) {
    let meminfo = std::fs::read_to_string("/proc/meminfo").expect("/proc/meminfo");
    let total_kib: u64 = meminfo
        .lines()
        .find_map(|line| line.strip_prefix("MemTotal:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("MemTotal");
    assert!(
        beat.mem_total_bytes > 0 && beat.mem_total_bytes <= total_kib * 1024,
        "memory total {} (MemTotal {total_kib} KiB)",
        beat.mem_total_bytes
    );
    assert!(
        beat.mem_used_bytes > 0 && beat.mem_used_bytes < beat.mem_total_bytes,
        "memory used {} of {}",
        beat.mem_used_bytes,
        beat.mem_total_bytes
    );
    let loadavg = std::fs::read_to_string("/proc/loadavg").expect("/proc/loadavg");
    let one: f64 = loadavg
        .split_whitespace()
        .next()
        .and_then(|v| v.parse().ok())
        .expect("the one-minute load");
    assert!(beat.cpu_load.is_finite() && beat.cpu_load >= 0.0);
    if one >= 0.1 {
        assert!(
            beat.cpu_load > 0.0,
            "load {one} on the host, 0 in the heartbeat"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_degraded_threshold_flips_the_status_both_ways_in_every_view() {
    // The default thresholds, and one on the application's backlog.
    let strict = health()
        .max_rtt(Some(Duration::from_millis(250)))
        .missed_heartbeats(3)
        .app_threshold("backlog", 100.0);
    let a = start("a", "api", &[], health());
    let b = start("b", "api", &[&a], strict);
    within("linked", eventually("links", || fully_linked(&[&a, &b]))).await;
    b.nodes().set_app_metric("backlog", 500.0);
    within(
        "b turns degraded everywhere",
        eventually("degraded", || {
            [&a, &b].iter().all(|n| {
                n.nodes()
                    .get("b")
                    .is_some_and(|i| i.status == NodeStatus::Degraded)
            })
        }),
    )
    .await;
    let health = a.nodes().health("b").expect("known");
    assert_eq!(
        health.degraded_reasons,
        vec!["backlog is 500 (over 100)".to_owned()]
    );
    b.nodes().set_app_metric("backlog", 3.0);
    within(
        "b recovers everywhere",
        eventually("online", || [&a, &b].iter().all(|n| knows_online(n, "b"))),
    )
    .await;
    assert_eq!(
        a.nodes().get("b").expect("known").record.status_reason,
        "recovered: every threshold met"
    );
    a.shutdown().await;
    b.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_node_turns_offline_everywhere_keeps_its_last_seen_and_is_dropped_after_retention() {
    let (a, b, c) = three().await;
    within(
        "records",
        eventually("c known", || knows_online(&a, "c") && knows_online(&b, "c")),
    )
    .await;
    let on_c = c.new_process();
    // Cut off for good, as a crash looks from the others.
    c.cluster().isolate(Duration::from_secs(3600));
    // While c is still live to a (not declared dead yet), a message to its process waits
    // behind a link that is down: unreachable, not gone.
    within(
        "a's link to c is down",
        eventually("unreachable", || {
            a.send(on_c.pid(), &1u8) == Err(SendError::NodeUnreachable(on_c.pid()))
        }),
    )
    .await;
    for n in [&a, &b] {
        within(
            "c turns offline",
            eventually("offline", || {
                n.nodes()
                    .get("c")
                    .is_some_and(|i| i.status == NodeStatus::Offline)
            }),
        )
        .await;
    }
    // Offline: no live node runs c's processes any more.
    assert_eq!(
        a.send(on_c.pid(), &1u8),
        Err(SendError::NodeGone(on_c.pid()))
    );
    let seen = a.nodes().get("c").expect("kept while offline");
    let offline = seen.offline.expect("offline");
    assert!(seen.last_seen_ms <= offline.since_ms);
    assert!(!offline.left, "it did not leave on purpose");
    assert!(
        a.nodes()
            .liveness()
            .iter()
            .any(|n| n.name == "c" && n.status == NodeStatus::Offline)
    );
    within(
        "c is dropped after the retention",
        eventually("dropped", || {
            a.nodes().get("c").is_none() && b.nodes().get("c").is_none()
        }),
    )
    .await;
    for n in [a, b, c] {
        n.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_that_leaves_is_offline_as_left_and_a_restart_replaces_its_record() {
    let (a, b, c) = three().await;
    within("records", eventually("c known", || knows_online(&a, "c"))).await;
    let old = c.incarnation();
    c.shutdown().await;
    within(
        "c left",
        eventually("left", || {
            a.nodes()
                .get("c")
                .and_then(|i| i.offline)
                .is_some_and(|o| o.left)
        }),
    )
    .await;
    let c2 = start("c", "worker", &[&a], health());
    within(
        "the new incarnation replaces the old record",
        eventually("replaced", || {
            [&a, &b].iter().all(|n| {
                n.nodes().get("c").is_some_and(|i| {
                    i.record.incarnation == c2.incarnation() && i.status == NodeStatus::Online
                })
            })
        }),
    )
    .await;
    assert_ne!(old, c2.incarnation());
    for n in [a, b, c2] {
        n.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leave_is_told_from_a_death_even_when_the_leave_record_cannot_arrive() {
    let (a, b, c) = three().await;
    within(
        "records",
        eventually("c known", || knows_online(&a, "c") && knows_online(&b, "c")),
    )
    .await;
    let mut events = a.nodes().subscribe(roster::Pattern::from("c"), false);
    // Its links cut (membership's UDP still flows): the leave record waits out its bound
    // and never arrives; membership's leave notice must say it left.
    c.cluster().sever_links(Duration::from_secs(3600));
    c.shutdown().await;
    for n in [&a, &b] {
        within(
            "c is offline as left",
            eventually("left", || {
                n.nodes()
                    .get("c")
                    .and_then(|i| i.offline)
                    .is_some_and(|o| o.left && o.reason == roster::nodes::LEFT_THE_CLUSTER)
            }),
        )
        .await;
    }
    let down = within("a Down event", async {
        loop {
            let batch = events
                .recv()
                .await
                .expect("open")
                .into_events()
                .expect("no lag");
            if let Some(down) = batch
                .into_iter()
                .find(|e| matches!(e, NodeEvent::Down { .. }))
            {
                return down;
            }
        }
    })
    .await;
    assert!(
        matches!(down, NodeEvent::Down { left: true, .. }),
        "{down:?}"
    );
    for n in [a, b] {
        n.shutdown().await;
    }
}

fn pairs(node: &Node) -> Vec<(String, String)> {
    let mut pairs: Vec<(String, String)> = node
        .cluster()
        .graph()
        .links
        .into_iter()
        .map(|l| {
            if l.source < l.target {
                (l.source, l.target)
            } else {
                (l.target, l.source)
            }
        })
        .collect();
    pairs.sort();
    pairs
}

fn all_pairs() -> Vec<(String, String)> {
    [("a", "b"), ("a", "c"), ("b", "c")]
        .iter()
        .map(|(x, y)| (x.to_string(), y.to_string()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graph_links_follow_the_connections_and_agree_with_the_nodes() {
    let (a, b, c) = three().await;
    within(
        "every link is in the graph",
        eventually("graph", || pairs(&a) == all_pairs()),
    )
    .await;
    let graph = a.cluster().graph();
    let names: Vec<&str> = graph.nodes.iter().map(|n| n.name.as_str()).collect();
    assert_eq!(names, ["a", "b", "c"]);
    let listed: Vec<String> = a
        .nodes()
        .list(&NodeFilter::default())
        .into_iter()
        .map(|n| n.record.name)
        .collect();
    assert_eq!(names, listed);
    let own = a.cluster().link_sessions();
    assert_eq!(own.len(), 2);
    assert!(
        own.iter()
            .all(|s| s.closed.is_none() && s.frames_in > 0 && s.bytes_out > 0)
    );

    c.cluster().isolate(Duration::from_secs(2));
    within(
        "c's links leave the graph, c turns offline",
        eventually("cut", || {
            pairs(&a) == vec![("a".to_owned(), "b".to_owned())]
                && a.cluster()
                    .graph()
                    .nodes
                    .iter()
                    .any(|n| n.name == "c" && n.status == NodeStatus::Offline)
        }),
    )
    .await;
    let closed: Vec<_> = a
        .cluster()
        .link_sessions()
        .into_iter()
        .filter(|s| s.peer == "c" && s.closed.is_some())
        .collect();
    assert!(
        !closed.is_empty(),
        "the closed session is kept with its reason"
    );
    within(
        "after the heal every link is back",
        eventually("healed", || {
            pairs(&a) == all_pairs() && pairs(&c) == all_pairs()
        }),
    )
    .await;
    for n in [a, b, c] {
        n.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_events_tell_nodes_and_links() {
    // A node subscription is a `Subscription<NodeEvent>`: registry events cannot reach it
    // by construction, so only what it does get is checked here.
    use roster::{Delivery, Pattern};

    let a = start("a", "api", &[], health());
    let watch = a.nodes().watch(Pattern::All);
    assert_eq!(watch.nodes.len(), 1, "a knows itself");
    let mut events = watch.events;
    let mut beats = a.nodes().subscribe("b", true);
    let b = start("b", "api", &[&a], health());
    within("linked", eventually("links", || fully_linked(&[&a, &b]))).await;
    let mut seen: Vec<NodeEvent> = Vec::new();
    within(
        "b comes up and links",
        eventually("events", || {
            while let Some(Some(Delivery::Events(batch))) =
                futures_util::FutureExt::now_or_never(events.recv())
            {
                seen.extend(batch);
            }
            seen.iter().any(
                |e| matches!(e, NodeEvent::Up { record, first_seen: true } if record.name == "b"),
            ) && seen
                .iter()
                .any(|e| matches!(e, NodeEvent::LinkUp { peer, .. } if peer == "b"))
        }),
    )
    .await;
    assert!(
        !seen
            .iter()
            .any(|e| matches!(e, NodeEvent::Heartbeat { .. })),
        "heartbeats only for those who opt in"
    );
    within(
        "the opted-in subscriber gets b's heartbeats",
        eventually("beats", || {
            matches!(
                futures_util::FutureExt::now_or_never(beats.recv()),
                Some(Some(Delivery::Events(batch)))
                    if batch.iter().any(|e| matches!(e, NodeEvent::Heartbeat { name, .. } if name == "b"))
            )
        }),
    )
    .await;
    b.shutdown().await;
    within(
        "b's leave and the link's end are events",
        eventually("down", || {
            while let Some(Some(Delivery::Events(batch))) =
                futures_util::FutureExt::now_or_never(events.recv())
            {
                seen.extend(batch);
            }
            seen.iter()
                .any(|e| matches!(e, NodeEvent::Down { name, left: true, .. } if name == "b"))
                && seen
                    .iter()
                    .any(|e| matches!(e, NodeEvent::LinkDown { peer, .. } if peer == "b"))
        }),
    )
    .await;
    a.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn role_labels_and_version_change_at_run_time_everywhere() {
    let a = start("a", "api", &[], health());
    let b = start("b", "api", &[&a], health());
    within("linked", eventually("links", || fully_linked(&[&a, &b]))).await;
    within("a knows b", eventually("known", || knows_online(&a, "b"))).await;
    let mut events = a
        .nodes()
        .subscribe(roster::Pattern::Exact("b".into()), false);
    let before = b.nodes().get("b").expect("itself").record.revision;
    b.nodes().set_role("worker").expect("a short role");
    b.nodes().set_label("domain", "us").expect("a label");
    b.nodes().set_label("rack", "r7").expect("a label");
    b.nodes().set_version("2.0.0").expect("a short version");
    assert!(
        b.nodes().set_label(&"k".repeat(10_000), "v").is_err(),
        "over the bound: refused"
    );
    within(
        "a sees b's new record",
        eventually("updated", || {
            a.nodes().get("b").is_some_and(|info| {
                let r = &info.record;
                r.role == "worker"
                    && r.version == "2.0.0"
                    && r.labels.get("domain").map(String::as_str) == Some("us")
                    && r.labels.get("rack").map(String::as_str) == Some("r7")
                    && r.revision == before + 4
            })
        }),
    )
    .await;
    assert_eq!(
        a.nodes()
            .list(&NodeFilter::default().role("worker").label("rack", "r7"))
            .len(),
        1,
        "filters see the new record"
    );
    let mut updates = 0;
    while let Some(Some(delivery)) = futures_util::FutureExt::now_or_never(events.recv()) {
        updates += delivery
            .into_events()
            .unwrap_or_default()
            .iter()
            .filter(|e| matches!(e, NodeEvent::Updated { record } if record.name == "b"))
            .count();
    }
    assert!(updates >= 1, "a was told of b's new record");
    b.shutdown().await;
    a.shutdown().await;
}

/// The observer's own links are authoritative in its graph, and a node that has missed a
/// heartbeat has its reported links marked stale.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_graph_drops_links_the_observer_knows_closed_and_marks_silent_reports_stale() {
    // A long grace: c stays a node that is up, so only the links tell the cut.
    let patient = || health().unreachable_after(Duration::from_secs(3600));
    let a = start("a", "api", &[], patient());
    let b = start("b", "api", &[&a], patient());
    let c = start("c", "worker", &[&a], patient());
    within(
        "three nodes link and report their links",
        eventually("links", || {
            fully_linked(&[&a, &b, &c]) && a.cluster().graph().links.len() == 3
        }),
    )
    .await;
    c.cluster().sever_links(Duration::from_secs(3600));
    within(
        "a's graph: no link a-c at once; c's reports stale",
        eventually("graph", || {
            let links = a.cluster().graph().links;
            let touches = |l: &roster::GraphLink, n: &str| l.source == n || l.target == n;
            !links.iter().any(|l| touches(l, "a") && touches(l, "c"))
                && links.iter().filter(|l| touches(l, "c")).all(|l| l.stale)
                && links
                    .iter()
                    .any(|l| touches(l, "a") && touches(l, "b") && !l.stale)
        }),
    )
    .await;
    for n in [a, b, c] {
        n.shutdown().await;
    }
}
