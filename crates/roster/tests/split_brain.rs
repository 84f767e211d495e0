//! Split brain over real sockets on loopback: one node of three is cut off
//! (`Cluster::isolate`: links severed, membership datagrams dropped both ways), each side
//! reaches its verdict from its own view, fencing refuses new unique names on the losing
//! side only, and everything is accepted again after the heal.

mod common;

use std::time::Duration;

use futures_util::FutureExt;

use common::{cluster_config, eventually, fully_linked, start_clustered, within};
use roster::Incarnation;
use roster::nodes::{
    HealthConfig, NodeEvent, SplitBrainAction, SplitBrainConfig, SplitBrainStrategy,
};
use roster::{Node, NodeFilter, Pattern, RegistryError};

const NAMES: [&str; 3] = ["a", "b", "c"];

fn start(name: &str, seeds: &[&Node], strategy: &SplitBrainStrategy, expected: &[&str]) -> Node {
    let config = cluster_config("split", seeds).split_brain(
        SplitBrainConfig::new()
            .expected(expected.iter().copied())
            .strategy(strategy.clone())
            .action(SplitBrainAction::Fence),
    );
    // Incarnations in start order: nodes started in the same millisecond are ordered by
    // incarnation, so the first started is the oldest.
    let incarnation = 1_000 + u64::from(name.as_bytes()[0]);
    let builder = Node::builder()
        .incarnation(Incarnation::new(incarnation))
        .health(HealthConfig::new().heartbeat_interval(Duration::from_millis(100)));
    start_clustered(builder, name, config)
}

/// Starts the nodes `names` expecting each other (the first started is the oldest; the
/// others announce themselves to it), waits until they are linked and know each other.
async fn cluster(strategy: &SplitBrainStrategy, names: &[&str]) -> Vec<Node> {
    let first = start(names[0], &[], strategy, names);
    let mut nodes = vec![first];
    for name in &names[1..] {
        let node = start(name, &[&nodes[0]], strategy, names);
        nodes.push(node);
    }
    within(
        "the nodes link and know each other",
        eventually("linked", || {
            fully_linked(&nodes.iter().collect::<Vec<_>>())
                && nodes
                    .iter()
                    .all(|n| names.iter().all(|m| n.nodes().get(m).is_some()))
                // A node started alone saw the others unreachable: its check lowers the
                // fence as membership finds them.
                && nodes.iter().all(|n| {
                    n.nodes()
                        .partition()
                        .is_some_and(|s| !s.partition_suspected && !s.fenced)
                })
        }),
    )
    .await;
    nodes
}

/// Cuts `nodes[isolated]` off, waits until every node checked a suspected partition,
/// and returns which nodes keep writing.
async fn split(nodes: &[Node], isolated: usize) -> Vec<bool> {
    nodes[isolated].cluster().isolate(Duration::from_secs(3600));
    let cut = nodes[isolated].name().to_owned();
    within(
        "each side sees the other unreachable",
        eventually("split", || {
            nodes.iter().all(|n| {
                let Some(status) = n.nodes().check_partition_now() else {
                    return false;
                };
                let expected: Vec<String> = if n.name() == cut {
                    NAMES
                        .iter()
                        .filter(|m| **m != cut)
                        .map(|m| m.to_string())
                        .collect()
                } else {
                    vec![cut.clone()]
                };
                status.unreachable == expected
            })
        }),
    )
    .await;
    nodes
        .iter()
        .map(|n| {
            n.nodes()
                .partition()
                .expect("clustered")
                .verdict
                .keeps_writing
        })
        .collect()
}

/// Registers a new name on every node; returns which succeeded, checking that each
/// refusal is `Fenced`.
fn try_new_names(nodes: &[Node], round: &str) -> Vec<bool> {
    nodes
        .iter()
        .map(|n| {
            let p = n.new_process();
            let result = p.register(&format!("{round}/{}", n.name()), &());
            let ok = match result {
                Ok(_) => true,
                Err(RegistryError::Fenced { reason, .. }) => {
                    assert!(!reason.is_empty());
                    false
                }
                Err(other) => panic!("unexpected error {other:?}"),
            };
            std::mem::forget(p);
            ok
        })
        .collect()
}

async fn verdicts_for(strategy: SplitBrainStrategy, isolated: usize, expect: [bool; 3]) {
    let nodes = cluster(&strategy, &NAMES).await;
    // Names and groups already held keep working on both sides.
    let holder = nodes[isolated].new_process();
    holder.register("held", &()).expect("no partition yet");
    holder.register("released", &()).expect("no partition yet");
    let cache = nodes[isolated]
        .connect_with("cache", roster::ScopeOptions::new().local_only())
        .expect("a local-only scope");
    let writing = split(&nodes, isolated).await;
    assert_eq!(writing, expect, "{strategy}");
    assert_eq!(
        try_new_names(&nodes, "during"),
        expect.to_vec(),
        "{strategy}"
    );
    // The fence refuses new names in replicated scopes only: everything else a fenced
    // node's processes do keeps working.
    holder.join("room", &()).expect("groups keep working");
    holder
        .register("held", &"new meta")
        .expect("a held name's meta can be updated");
    holder
        .unregister("released")
        .expect("a held name can be released");
    holder.leave("room").expect("a group can be left");
    cache
        .register(&holder, "local/new", &())
        .expect("a local-only scope takes new names");
    assert!(
        nodes[isolated].default_scope().whereis("held").is_some(),
        "reads keep working"
    );
    // Every side names the node its verdict depends on: the oldest, the primary, or none.
    let deciding = match &strategy {
        SplitBrainStrategy::Majority => None,
        SplitBrainStrategy::OldestNode => Some(NAMES[0].to_owned()),
        SplitBrainStrategy::ConfiguredPrimary(primary) => Some(primary.clone()),
    };
    for n in &nodes {
        let status = n
            .nodes()
            .partition()
            .expect("a clustered node has a status");
        assert_eq!(
            status.verdict.deciding_node,
            deciding,
            "{strategy} on {}",
            n.name()
        );
    }
    for n in nodes {
        n.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn majority_fences_the_isolated_minority() {
    verdicts_for(SplitBrainStrategy::Majority, 2, [true, true, false]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oldest_node_keeps_its_side_writing() {
    // The oldest (a) alone keeps writing; the majority without it is fenced.
    verdicts_for(SplitBrainStrategy::OldestNode, 0, [true, false, false]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_configured_primary_keeps_its_side_writing() {
    verdicts_for(
        SplitBrainStrategy::ConfiguredPrimary("c".into()),
        2,
        [false, false, true],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fenced_side_accepts_new_names_again_after_the_heal_and_events_tell_it() {
    let strategy = SplitBrainStrategy::Majority;
    let nodes = cluster(&strategy, &NAMES).await;
    let mut events = nodes[2]
        .nodes()
        .subscribe(Pattern::Exact("c".into()), false);
    nodes[2].cluster().isolate(Duration::from_secs(3));
    within(
        "c is fenced",
        eventually("fenced", || {
            nodes[2]
                .nodes()
                .check_partition_now()
                .is_some_and(|s| s.fenced)
        }),
    )
    .await;
    assert_eq!(try_new_names(&nodes, "cut"), vec![true, true, false]);
    within(
        "the partition heals",
        eventually("healed", || {
            nodes.iter().all(|n| {
                n.nodes()
                    .check_partition_now()
                    .is_some_and(|s| !s.partition_suspected && !s.fenced)
            })
        }),
    )
    .await;
    assert_eq!(try_new_names(&nodes, "healed"), vec![true, true, true]);
    let mut seen = Vec::new();
    while let Some(Some(delivery)) = events.recv().now_or_never() {
        seen.extend(delivery.into_events().unwrap_or_default());
    }
    let detected = seen
        .iter()
        .position(|e| matches!(e, NodeEvent::PartitionDetected { status, .. } if status.fenced));
    // The partition the nodes saw while they were starting may heal within these events
    // too: look for the heal after the fence.
    let healed = detected.and_then(|at| {
        seen[at..]
            .iter()
            .position(|e| matches!(e, NodeEvent::PartitionHealed { .. }))
    });
    assert!(
        detected.is_some() && healed.is_some(),
        "c saw the partition come and go: {seen:?}"
    );
    for n in nodes {
        n.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn half_of_the_expected_nodes_is_not_a_majority() {
    // Four expected nodes; a and b stay together, c and d are each cut off: the side of
    // two (as in a 2-2 split) is fenced like the sides of one. Under `Majority`, a 2-2
    // split fences both sides.
    let nodes = cluster(&SplitBrainStrategy::Majority, &["a", "b", "c", "d"]).await;
    nodes[2].cluster().isolate(Duration::from_secs(3600));
    nodes[3].cluster().isolate(Duration::from_secs(3600));
    within(
        "every side is fenced",
        eventually("fenced", || {
            nodes
                .iter()
                .all(|n| n.nodes().check_partition_now().is_some_and(|s| s.fenced))
        }),
    )
    .await;
    let status = nodes[0].nodes().partition().expect("clustered");
    assert_eq!(status.side, vec!["a".to_owned(), "b".to_owned()]);
    assert_eq!(
        status.verdict.reason,
        "this side reaches 2 of 4 expected nodes: not a strict majority"
    );
    for n in nodes {
        n.shutdown().await;
    }
}

#[tokio::test(flavor = "current_thread")]
async fn a_primary_outside_the_expected_nodes_is_refused_at_start() {
    let config = cluster_config("split", &[]).split_brain(
        SplitBrainConfig::new()
            .expected(["a", "b"])
            .strategy(SplitBrainStrategy::ConfiguredPrimary("z".into()))
            .action(SplitBrainAction::Fence),
    );
    let error = Node::builder()
        .name("a")
        .cluster(config)
        .start()
        .expect_err("refused");
    assert!(
        error
            .to_string()
            .contains("the configured primary \"z\" is not in the expected nodes"),
        "{error}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_two_two_split_under_majority_fences_both_sides_until_the_heal() {
    let nodes = cluster(&SplitBrainStrategy::Majority, &["a", "b", "c", "d"]).await;
    let cut = Duration::from_secs(4);
    for (node, others) in [
        (0, ["c", "d"]),
        (1, ["c", "d"]),
        (2, ["a", "b"]),
        (3, ["a", "b"]),
    ] {
        assert_eq!(nodes[node].cluster().isolate_from(&others, cut), 2);
    }
    within(
        "both sides of two are fenced",
        eventually("fenced", || {
            nodes.iter().all(|n| {
                n.nodes()
                    .check_partition_now()
                    .is_some_and(|s| s.fenced && s.side.len() == 2)
            })
        }),
    )
    .await;
    assert_eq!(
        nodes[0].nodes().partition().expect("clustered").side,
        ["a", "b"]
    );
    assert_eq!(
        nodes[2].nodes().partition().expect("clustered").side,
        ["c", "d"]
    );
    assert_eq!(try_new_names(&nodes, "split"), vec![false; 4]);
    within(
        "the heal lifts every fence",
        eventually("healed", || {
            nodes.iter().all(|n| {
                n.nodes()
                    .check_partition_now()
                    .is_some_and(|s| !s.partition_suspected && !s.fenced)
            })
        }),
    )
    .await;
    assert_eq!(try_new_names(&nodes, "after"), vec![true; 4]);
    for n in nodes {
        n.shutdown().await;
    }
}

/// The split-brain check runs on its own interval: with heartbeats an hour apart, a cut
/// is still reported and fenced within the check interval (nobody calls
/// `check_partition_now` here).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_check_runs_on_its_own_interval_not_the_heartbeats() {
    let start = |name: &str, seeds: &[&Node]| {
        let config = cluster_config("own-interval", seeds).split_brain(
            SplitBrainConfig::new()
                .expected(["p", "q", "r"])
                .action(SplitBrainAction::Fence)
                .check_interval(Duration::from_millis(50)),
        );
        let builder = Node::builder()
            .health(HealthConfig::new().heartbeat_interval(Duration::from_secs(3600)));
        start_clustered(builder, name, config)
    };
    let p = start("p", &[]);
    let q = start("q", &[&p]);
    let r = start("r", &[&p]);
    let nodes = [&p, &q, &r];
    within("linked", eventually("linked", || fully_linked(&nodes))).await;
    r.cluster().isolate(Duration::from_secs(3600));
    within(
        "r fences itself on its own timer",
        eventually("fenced", || {
            r.nodes().partition().is_some_and(|s| s.fenced)
                && p.nodes()
                    .partition()
                    .is_some_and(|s| s.unreachable == ["r"])
        }),
    )
    .await;
    for n in nodes {
        n.shutdown().await;
    }
}

/// With the expected cluster learned from the records, a crashed node counts as
/// unreachable until its record's retention ends; forgetting it on the survivors lowers
/// their fence at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forgetting_a_crashed_node_unfences_the_survivors() {
    let start = |name: &str, seeds: &[&Node]| {
        let config = cluster_config("forget", seeds).split_brain(
            SplitBrainConfig::new()
                .action(SplitBrainAction::Fence)
                .check_interval(Duration::from_millis(50)),
        );
        start_clustered(Node::builder(), name, config)
    };
    let x = start("x", &[]);
    let y = start("y", &[&x]);
    let z = start("z", &[&x]);
    let all = [&x, &y, &z];
    within(
        "linked, known and healthy",
        eventually("formed", || {
            fully_linked(&all)
                && all.iter().all(|n| {
                    n.nodes().list(&Default::default()).len() == 3
                        && n.nodes()
                            .partition()
                            .is_some_and(|s| !s.partition_suspected)
                })
        }),
    )
    .await;
    // y and z crash (cut off for good, never leaving): x is a minority of the three.
    y.cluster().isolate(Duration::MAX);
    z.cluster().isolate(Duration::MAX);
    within(
        "x sees them dead and fences itself",
        eventually("fenced", || {
            ["y", "z"].iter().all(|m| {
                x.nodes()
                    .get(m)
                    .is_some_and(|i| i.status == roster::nodes::NodeStatus::Offline)
            }) && x.nodes().partition().is_some_and(|s| s.fenced)
        }),
    )
    .await;
    assert!(matches!(
        x.new_process().register("while-fenced", &()),
        Err(RegistryError::Fenced { .. })
    ));
    x.nodes().forget("y").expect("y is offline");
    assert!(
        x.nodes().partition().is_some_and(|s| s.fenced),
        "z still counts"
    );
    x.nodes().forget("z").expect("z is offline");
    let status = x.nodes().partition().expect("clustered");
    assert!(!status.fenced && !status.partition_suspected, "{status:?}");
    x.new_process()
        .register("after-forget", &())
        .expect("x writes again");
    for n in all {
        n.shutdown().await;
    }
}

/// A standby on a fenced node keeps waiting through the fence: its holder released during
/// the partition, it takes the name once the partition heals (it does not fail `Fenced`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_standby_waits_through_a_fence_and_takes_the_name_after_the_heal() {
    let nodes = cluster(&SplitBrainStrategy::Majority, &NAMES).await;
    let c = &nodes[2];
    let holder = c.new_process();
    holder
        .register("lock", &"holder")
        .expect("no partition yet");
    let standby = c.new_process();
    let waiting = {
        let c = c.clone();
        let standby_pid = standby.pid();
        tokio::spawn(async move {
            let got = standby.await_name("lock", &"standby").await;
            (got, standby_pid, standby, c)
        })
    };
    c.cluster().isolate(Duration::from_secs(2));
    within(
        "c is fenced",
        eventually("fenced", || {
            c.nodes().check_partition_now().is_some_and(|s| s.fenced)
        }),
    )
    .await;
    drop(holder); // released while c refuses new names
    assert!(
        !waiting.is_finished(),
        "the standby keeps waiting through the fence"
    );
    let (got, pid, _standby, _c) = within("the standby takes the name after the heal", waiting)
        .await
        .expect("the task ends");
    let registration = got.expect("the standby gets the name, not Fenced");
    assert_eq!(registration.pid, pid);
    assert!(!c.nodes().partition().expect("clustered").fenced);
    for n in nodes {
        n.shutdown().await;
    }
}

/// A cut that membership does not see (the links of one node severed, its membership
/// datagrams still flowing): after the grace the others judge it unreachable, the same in
/// every view and in an event, the split-brain check counts it on the other side, and with
/// `Fence` it fences itself while the majority keeps writing. When links come back, so
/// does everything.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cut_membership_misses_is_unreachable_everywhere_and_fenced() {
    use roster::nodes::NodeStatus;
    let start = |name: &str, seeds: &[&Node]| {
        let config = cluster_config("unreachable", seeds).split_brain(
            SplitBrainConfig::new()
                .expected(["a", "b", "c"])
                .action(SplitBrainAction::Fence)
                .check_interval(Duration::from_millis(50)),
        );
        let health = HealthConfig::new()
            .heartbeat_interval(Duration::from_millis(100))
            .unreachable_after(Duration::from_millis(300));
        start_clustered(Node::builder().health(health), name, config)
    };
    let a = start("a", &[]);
    let b = start("b", &[&a]);
    let c = start("c", &[&a]);
    let all = [&a, &b, &c];
    within(
        "formed",
        eventually("formed", || {
            fully_linked(&all)
                && all.iter().all(|n| {
                    n.nodes()
                        .partition()
                        .is_some_and(|s| !s.partition_suspected)
                })
        }),
    )
    .await;
    let mut events = a.nodes().subscribe(Pattern::Exact("c".into()), false);
    c.cluster().sever_links(Duration::from_secs(2));
    within(
        "a judges c unreachable, c fences itself",
        eventually("cut", || {
            a.nodes()
                .get("c")
                .is_some_and(|i| i.status == NodeStatus::Unreachable)
                && c.nodes().partition().is_some_and(|s| s.fenced)
        }),
    )
    .await;
    // One status in every view of a.
    let listed = a.nodes().list(&Default::default());
    let c_listed = listed
        .iter()
        .find(|i| i.record.name == "c")
        .expect("listed");
    assert_eq!(c_listed.status, NodeStatus::Unreachable);
    let live = a.nodes().liveness();
    let c_live = live.iter().find(|l| l.name == "c").expect("in liveness");
    assert_eq!(c_live.status, NodeStatus::Unreachable);
    assert_eq!(
        a.nodes()
            .list(&NodeFilter::default().status(NodeStatus::Online))
            .iter()
            .map(|i| i.record.name.as_str())
            .collect::<Vec<_>>(),
        ["a", "b"]
    );
    let graph = a.cluster().graph();
    let c_node = graph
        .nodes
        .iter()
        .find(|n| n.name == "c")
        .expect("in the graph");
    assert_eq!(c_node.status, NodeStatus::Unreachable);
    assert!(
        graph
            .links
            .iter()
            .all(|l| l.source != "c" && l.target != "c"),
        "no link of a's to c: {:?}",
        graph.links
    );
    assert!(
        a.nodes()
            .health("c")
            .expect("known")
            .degraded_reasons
            .iter()
            .any(|r| r.contains("no link"))
    );
    // The majority writes, c does not.
    let status = a.nodes().partition().expect("clustered");
    assert_eq!(
        (status.unreachable.as_slice(), status.fenced),
        (&["c".to_owned()][..], false)
    );
    assert_eq!(
        try_new_names(&[a.clone(), b.clone(), c.clone()], "cut"),
        [true, true, false]
    );
    // The links come back: c is online and unfenced again.
    within(
        "healed",
        eventually("healed", || {
            a.nodes()
                .get("c")
                .is_some_and(|i| i.status == NodeStatus::Online)
                && c.nodes().partition().is_some_and(|s| !s.fenced)
        }),
    )
    .await;
    let mut statuses = Vec::new();
    while let Some(Some(delivery)) = events.recv().now_or_never() {
        for e in delivery.into_events().unwrap_or_default() {
            if let NodeEvent::Status { old, new, .. } = e {
                statuses.push((old, new));
            }
        }
    }
    assert!(
        statuses.contains(&(NodeStatus::Online, NodeStatus::Unreachable))
            && statuses.contains(&(NodeStatus::Unreachable, NodeStatus::Online)),
        "a told of c going and coming back: {statuses:?}"
    );
    for n in all {
        n.shutdown().await;
    }
}
