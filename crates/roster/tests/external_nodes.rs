//! External nodes across real nodes on loopback: a worker that is not a member, kept by
//! one node, seen by every node with the same records, filters, graph and events; marked
//! offline when its heartbeats stop or its keeper goes; one keeper per name.

mod common;

use std::time::Duration;

use common::{cluster_config, eventually, fully_linked, start_clustered, within};
use roster::nodes::{ExternalError, ExternalNode, HealthConfig, Heartbeat, NodeEvent, NodeStatus};
use roster::{LinkKind, Node, NodeFilter, Pattern};

fn health(external_timeout: Duration) -> HealthConfig {
    HealthConfig::new()
        .heartbeat_interval(Duration::from_millis(50))
        .external_timeout(external_timeout)
        .max_rtt(None)
        .missed_heartbeats(0)
}

fn start(name: &str, seeds: &[&Node], external_timeout: Duration) -> Node {
    let builder = Node::builder().health(health(external_timeout));
    start_clustered(builder, name, cluster_config("external", seeds))
}

async fn pair(external_timeout: Duration) -> (Node, Node) {
    let a = start("a", &[], external_timeout);
    let b = start("b", &[&a], external_timeout);
    within(
        "two nodes link",
        eventually("links", || fully_linked(&[&a, &b])),
    )
    .await;
    (a, b)
}

fn status_of(node: &Node, name: &str) -> Option<NodeStatus> {
    node.nodes().get(name).map(|n| n.status)
}

/// Waits for the first event of `events` matching `what`, skipping others.
async fn next_event(
    events: &mut roster::Subscription<NodeEvent>,
    what: &str,
    matches: impl Fn(&NodeEvent) -> bool,
) -> NodeEvent {
    within(what, async {
        loop {
            let batch = events
                .recv()
                .await
                .expect("open")
                .into_events()
                .expect("no lag");
            if let Some(event) = batch.into_iter().find(|e| matches(e)) {
                return event;
            }
        }
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_external_node_is_seen_everywhere_like_a_member() {
    let (a, b) = pair(Duration::from_secs(60)).await;
    let mut on_b = b.nodes().subscribe(Pattern::from("worker-1"), true);
    a.nodes()
        .ensure_external(
            "worker-1",
            ExternalNode::new()
                .role("worker")
                .label("zone", "eu")
                .version("3.1")
                .addr("10.0.0.9:80"),
        )
        .expect("registered");
    let up = next_event(&mut on_b, "Up on b", |e| matches!(e, NodeEvent::Up { .. })).await;
    let NodeEvent::Up { record, first_seen } = up else {
        unreachable!()
    };
    assert!(first_seen);
    assert_eq!(record.keeper.as_ref().map(|k| k.name.as_str()), Some("a"));
    assert_eq!(
        (record.role.as_str(), record.version.as_str()),
        ("worker", "3.1")
    );

    let mut beat = Heartbeat::at(42);
    beat.app.insert("jobs".into(), 7.0);
    a.nodes()
        .external_heartbeat("worker-1", beat)
        .expect("kept by a");
    let NodeEvent::Heartbeat { heartbeat, .. } = next_event(&mut on_b, "its heartbeat on b", |e| {
        matches!(e, NodeEvent::Heartbeat { .. })
    })
    .await
    else {
        unreachable!()
    };
    assert_eq!(heartbeat.app["jobs"], 7.0);
    assert_eq!(b.nodes().heartbeats("worker-1", 0).len(), 1);

    // The same filters as members.
    let names = |node: &Node, filter: NodeFilter| -> Vec<String> {
        node.nodes()
            .list(&filter)
            .into_iter()
            .map(|n| n.record.name)
            .collect()
    };
    assert_eq!(
        names(&b, NodeFilter::default().external(true)),
        vec!["worker-1"]
    );
    assert_eq!(
        names(&b, NodeFilter::default().external(false)),
        vec!["a", "b"]
    );
    assert_eq!(
        names(&b, NodeFilter::default().role("worker").label("zone", "eu")),
        vec!["worker-1"]
    );
    assert_eq!(
        names(&b, NodeFilter::default().status(NodeStatus::Online)).len(),
        3
    );

    // In the graph, hanging off its keeper.
    let graph = b.cluster().graph();
    let node = graph
        .nodes
        .iter()
        .find(|n| n.name == "worker-1")
        .expect("in the graph");
    assert_eq!(node.keeper.as_deref(), Some("a"));
    assert!(
        graph
            .links
            .iter()
            .any(|l| l.source == "a" && l.target == "worker-1" && l.kind == LinkKind::External)
    );

    // A description change is a new revision, an Updated event.
    a.nodes()
        .ensure_external(
            "worker-1",
            ExternalNode::new().role("worker").version("3.2"),
        )
        .expect("updated");
    let NodeEvent::Updated { record } = next_event(&mut on_b, "Updated on b", |e| {
        matches!(e, NodeEvent::Updated { .. })
    })
    .await
    else {
        unreachable!()
    };
    assert_eq!(record.version, "3.2");

    // Not a member: no partition when it goes, and nobody fences.
    a.nodes()
        .set_external_status("worker-1", NodeStatus::Offline, "decommissioned")
        .expect("kept by a");
    let down = next_event(&mut on_b, "Down on b", |e| {
        matches!(e, NodeEvent::Down { .. })
    })
    .await;
    assert!(
        matches!(down, NodeEvent::Down { left: true, ref reason, .. } if reason == "decommissioned")
    );
    let partition = b.nodes().check_partition_now().expect("clustered");
    assert!(
        partition.unreachable.is_empty() && !partition.fenced,
        "{partition:?}"
    );
    a.shutdown().await;
    b.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silence_marks_it_offline_and_a_heartbeat_brings_it_back() {
    let (a, b) = pair(Duration::from_millis(300)).await;
    let mut on_b = b.nodes().subscribe(Pattern::from("worker-2"), false);
    a.nodes()
        .ensure_external("worker-2", ExternalNode::new())
        .expect("registered");
    next_event(&mut on_b, "Up", |e| matches!(e, NodeEvent::Up { .. })).await;
    let down = next_event(&mut on_b, "Down after the timeout", |e| {
        matches!(e, NodeEvent::Down { .. })
    })
    .await;
    assert!(
        matches!(down, NodeEvent::Down { left: false, .. }),
        "{down:?}"
    );
    assert_eq!(status_of(&b, "worker-2"), Some(NodeStatus::Offline));
    a.nodes()
        .external_heartbeat("worker-2", Heartbeat::at(1))
        .expect("still kept by a");
    let back = next_event(&mut on_b, "Up again", |e| matches!(e, NodeEvent::Up { .. })).await;
    assert!(
        matches!(
            back,
            NodeEvent::Up {
                first_seen: false,
                ..
            }
        ),
        "{back:?}"
    );
    assert_eq!(status_of(&a, "worker-2"), Some(NodeStatus::Online));
    a.shutdown().await;
    b.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_keeper_per_name_and_a_late_peer_learns_the_kept_nodes() {
    let (a, b) = pair(Duration::from_secs(60)).await;
    a.nodes()
        .ensure_external("worker-3", ExternalNode::new())
        .expect("registered");
    within(
        "b knows worker-3",
        eventually("record", || {
            status_of(&b, "worker-3") == Some(NodeStatus::Online)
        }),
    )
    .await;
    assert_eq!(
        b.nodes()
            .ensure_external("worker-3", ExternalNode::new())
            .map(|_| ()),
        Err(ExternalError::KeptElsewhere {
            name: "worker-3".into(),
            keeper: "a".into()
        })
    );
    assert_eq!(
        b.nodes().external_heartbeat("worker-3", Heartbeat::at(1)),
        Err(ExternalError::NotKeptHere("worker-3".into()))
    );
    assert_eq!(
        b.nodes()
            .ensure_external("a", ExternalNode::new())
            .map(|_| ()),
        Err(ExternalError::IsMember("a".into()))
    );
    assert!(matches!(
        b.nodes().ensure_external("", ExternalNode::new()),
        Err(ExternalError::Invalid(_))
    ));
    assert!(matches!(
        a.nodes()
            .set_external_status("worker-3", NodeStatus::Unreachable, "no"),
        Err(ExternalError::Unsettable(NodeStatus::Unreachable))
    ));

    let c = start("c", &[&a], Duration::from_secs(60));
    within(
        "c knows worker-3",
        eventually("record", || {
            status_of(&c, "worker-3") == Some(NodeStatus::Online)
        }),
    )
    .await;
    a.shutdown().await;
    b.shutdown().await;
    c.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_kept_nodes_go_offline_with_their_keeper() {
    let (a, b) = pair(Duration::from_secs(60)).await;
    a.nodes()
        .ensure_external("worker-4", ExternalNode::new())
        .expect("registered");
    within(
        "b knows worker-4",
        eventually("record", || {
            status_of(&b, "worker-4") == Some(NodeStatus::Online)
        }),
    )
    .await;
    let mut on_b = b.nodes().subscribe(Pattern::from("worker-4"), false);
    a.shutdown().await;
    let down = next_event(&mut on_b, "Down with its keeper", |e| {
        matches!(e, NodeEvent::Down { .. })
    })
    .await;
    assert!(
        matches!(down, NodeEvent::Down { left: false, ref reason, .. } if reason == "its keeper a is offline"),
        "{down:?}"
    );
    // Once its keeper is gone, another node may keep it.
    b.nodes()
        .ensure_external("worker-4", ExternalNode::new())
        .expect("b keeps it now");
    let record = b.nodes().get("worker-4").expect("known").record;
    assert_eq!(record.keeper.map(|k| k.name), Some("b".to_owned()));
    b.shutdown().await;
}
