//! A custom conflict resolver that panics must not break replication: the conflict is
//! decided by keep-oldest on every node, and the links keep replicating afterwards.

use std::sync::Arc;
use std::time::Duration;

mod common;
use common::{eventually, within};

use roster::{ConflictRule, ExitReason, Node, NodeBuilder, Winner};

const SECRET: &str = "resolver-panic-test-secret";

/// A node whose custom resolver panics on every conflict.
fn with_panicking_resolver() -> NodeBuilder {
    Node::builder().conflict_rule(ConflictRule::Custom(Arc::new(|key, _, _| {
        panic!("resolver bug on {key}")
    })))
}

fn start(name: &str, seeds: &[&Node], builder: NodeBuilder) -> Node {
    let config =
        common::cluster_config(SECRET, seeds).anti_entropy_interval(Duration::from_millis(300));
    common::start_clustered(builder, name, config)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_resolver_falls_back_to_keep_oldest_and_replication_goes_on() {
    let a = start("a", &[], with_panicking_resolver());
    let b = start("b", &[&a], with_panicking_resolver());
    // A node of the same process outside the conflict: it counts no panic of theirs.
    let bystander = start("bystander", &[], Node::builder());
    eventually("a and b linked", || {
        a.cluster().peers().len() == 1 && b.cluster().peers().len() == 1
    })
    .await;

    // Cut the links: both sides register the same name, unaware of each other.
    a.cluster().sever_links(Duration::from_secs(1));
    eventually("the links are down on both sides", || {
        a.cluster().peers().is_empty() && b.cluster().peers().is_empty()
    })
    .await;
    let pa = a.new_process();
    let ra = pa.register("leader", &"a").expect("free on a's side");
    let pb = b.new_process();
    let rb = pb.register("leader", &"b").expect("free on b's side");
    let (winner, loser) = match ConflictRule::KeepOldest.resolve("leader", &ra, &rb) {
        Winner::First => (&pa, &pb),
        Winner::Second => (&pb, &pa),
    };

    // The links come back; both resolvers panic on the conflict.
    eventually("both nodes agree on the keep-oldest winner", || {
        a.default_scope().whereis("leader") == Some(winner.pid())
            && b.default_scope().whereis("leader") == Some(winner.pid())
    })
    .await;
    eventually("the loser is ended", || !loser.is_alive()).await;
    assert_eq!(
        loser.exit_reason(),
        Some(ExitReason::Conflict {
            key: "leader".into(),
            winner: winner.pid()
        })
    );
    assert!(winner.is_alive());
    let panics = |node: &Node| node.cluster().stats().expect("clustered").resolver_panics;
    // The node that met the conflict counts it (the other may only have seen the loser
    // gone, if its catch-up came after the removal).
    assert!(
        panics(&a) + panics(&b) >= 1,
        "the resolving node counts its resolver's panics: a {}, b {}",
        panics(&a),
        panics(&b)
    );
    assert_eq!(panics(&bystander), 0, "counted per node, not per process");
    for node in [&a, &b] {
        let names: Vec<_> = node
            .default_scope()
            .names("", 10)
            .unwrap()
            .into_iter()
            .map(|(key, r)| (key, r.pid))
            .collect();
        assert_eq!(
            names,
            [("leader".into(), winner.pid())],
            "on {}",
            node.name()
        );
    }

    // What broke: nothing registered after the conflict replicated any more.
    let after_a = a.new_process();
    after_a.register("after/a", &()).unwrap();
    let after_b = b.new_process();
    after_b.register("after/b", &()).unwrap();
    eventually("a's later registration reaches b", || {
        b.default_scope().whereis("after/a") == Some(after_a.pid())
    })
    .await;
    eventually("b's later registration reaches a", || {
        a.default_scope().whereis("after/b") == Some(after_b.pid())
    })
    .await;
    assert_eq!(a.cluster().peers().len(), 1);
    assert_eq!(b.cluster().peers().len(), 1);

    within("a shuts down", a.shutdown()).await;
    within("b shuts down", b.shutdown()).await;
    within("the bystander shuts down", bystander.shutdown()).await;
}
