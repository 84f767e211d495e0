//! Every duration, size and count the API takes, fed 0, 1 and the type's maximum: each is
//! refused with a typed error or clamped as its documentation says, never a panic or a
//! hang, and a node started with it still works.

mod common;

use std::time::Duration;

use common::{cluster_config, eventually, fully_linked, start_clustered, within};
use roster::Incarnation;
use roster::nodes::{HealthConfig, HealthConfigError};
use roster::{
    ClusterConfig, FailureDetection, MIN_SCOPE_TTL, Node, NodeBuilder, ScopeError, ScopeOptions,
    StartError, Table,
};

const DURATIONS: [Duration; 3] = [Duration::ZERO, Duration::from_nanos(1), Duration::MAX];
const SIZES: [usize; 3] = [0, 1, usize::MAX];

/// A started node does its job: a name, a group, a message, an event.
async fn works(node: &Node) {
    let scope = node.default_scope();
    let mut events = scope.subscribe("probe/").expect("a valid pattern");
    let mut p = node.new_process();
    // A key or meta limit of 0 or 1 refuses these with a typed error: that is fine too.
    if p.register("probe/name", &1u8).is_ok() {
        assert_eq!(scope.whereis("probe/name"), Some(p.pid()));
        within("the registration's event", events.recv()).await;
    }
    let _ = p.join("probe/group", &());
    if node.send(p.pid(), &"ping").is_ok() {
        assert_eq!(
            within("the message", p.recv::<String>()).await,
            Ok("ping".into())
        );
    }
}

#[tokio::test]
async fn node_sizes_are_refused_clamped_or_work() {
    type Setter = fn(NodeBuilder, usize) -> NodeBuilder;
    let setters: [(&str, Setter); 6] = [
        ("max_key_bytes", |b, v| b.max_key_bytes(v)),
        ("max_meta_bytes", |b, v| b.max_meta_bytes(v)),
        ("max_message_bytes", |b, v| b.max_message_bytes(v)),
        ("mailbox_capacity", |b, v| b.mailbox_capacity(v)),
        ("mailbox_bytes", |b, v| b.mailbox_bytes(v)),
        ("subscription_capacity", |b, v| b.subscription_capacity(v)),
    ];
    for (name, set) in setters {
        for value in SIZES {
            match set(Node::builder(), value).start() {
                Ok(node) => works(&node).await,
                // The refusals: mailbox_bytes below max_message_bytes, and a key limit
                // that the node's own name is over.
                Err(StartError::MailboxBytes { bytes, .. }) => {
                    assert_eq!((name, bytes), ("mailbox_bytes", value));
                    assert!(value < 1 << 20, "{name} = {value} refused");
                }
                Err(StartError::InvalidName(_)) => {
                    assert_eq!(name, "max_key_bytes");
                    assert!(value < "roster".len(), "{name} = {value} refused");
                }
                Err(other) => panic!("{name} = {value}: unexpected {other}"),
            }
        }
    }
}

#[tokio::test]
async fn health_settings_are_refused_or_work() {
    let zero = HealthConfig::new().heartbeat_interval(Duration::ZERO);
    assert_eq!(zero.validate(), Err(HealthConfigError::ZeroInterval));
    assert!(matches!(
        Node::builder().health(zero).start(),
        Err(StartError::Health(HealthConfigError::ZeroInterval))
    ));
    let none_kept = HealthConfig::new().heartbeats_kept(0);
    assert_eq!(
        none_kept.validate(),
        Err(HealthConfigError::NoHeartbeatsKept)
    );
    let nan = HealthConfig::new().app_threshold("backlog", f64::NAN);
    assert!(matches!(
        nan.validate(),
        Err(HealthConfigError::BadAppThreshold(metric)) if metric == "backlog"
    ));

    let mut configs = Vec::new();
    for d in DURATIONS {
        if !d.is_zero() {
            configs.push(HealthConfig::new().heartbeat_interval(d));
        }
        configs.push(HealthConfig::new().offline_retention(d));
        configs.push(HealthConfig::new().max_rtt(Some(d)));
    }
    for n in [1, usize::MAX] {
        configs.push(HealthConfig::new().heartbeats_kept(n));
    }
    for n in [0, 1, u64::MAX] {
        configs.push(HealthConfig::new().max_queued(Some(n)));
    }
    for n in [0, 1, u32::MAX] {
        configs.push(HealthConfig::new().missed_heartbeats(n));
    }
    for above in [0.0, 1.0, f64::MAX, f64::MIN] {
        configs.push(HealthConfig::new().app_threshold("backlog", above));
    }
    for health in configs {
        let node = Node::builder()
            .name("h")
            .health(health.clone())
            .start()
            .unwrap_or_else(|e| panic!("{health:?} refused: {e}"));
        node.nodes().set_app_metric("backlog", f64::MAX);
        let liveness = node.nodes().check_now();
        assert_eq!(liveness.len(), 1, "{health:?}");
        assert!(node.nodes().health("h").is_some(), "{health:?}");
        for since in [0, 1, u64::MAX] {
            let beats = node.nodes().heartbeats("h", since);
            assert_eq!(
                beats.is_empty(),
                since == u64::MAX,
                "{health:?}, since {since}"
            );
        }
        works(&node).await;
    }
}

#[tokio::test]
async fn scope_leases_are_refused_or_never_expire() {
    let node = Node::builder().start().expect("starts");
    for ttl in [Duration::ZERO, Duration::from_nanos(1)] {
        assert_eq!(
            node.connect_with("leased", ScopeOptions::new().ttl(ttl))
                .map(|s| s.scope_name().to_owned()),
            Err(ScopeError::TtlTooShort {
                ttl,
                min: MIN_SCOPE_TTL
            })
        );
    }
    assert_eq!(
        node.connect_with("default", ScopeOptions::new().ttl(Duration::MAX))
            .map(|s| s.scope_name().to_owned()),
        Err(ScopeError::DefaultScope)
    );
    for (name, options) in [
        ("forever", ScopeOptions::new()),
        ("forever-local", ScopeOptions::new().local_only()),
    ] {
        let scope = node
            .connect_with(name, options.ttl(Duration::MAX))
            .expect("a lease too long for the clock never expires");
        let p = node.new_process();
        scope.register(&p, "k", &()).expect("registers");
        drop(p);
        tokio::task::yield_now().await;
        assert!(scope.is_connected());
    }
    let shortest = node
        .connect_with("short", ScopeOptions::new().ttl(MIN_SCOPE_TTL))
        .expect("the shortest lease");
    eventually("the shortest lease to expire", || !shortest.is_connected()).await;
}

#[tokio::test]
async fn query_limits_of_0_1_and_max_return_that_many_at_most() {
    let node = Node::builder().start().expect("starts");
    let scope = node.default_scope();
    let processes: Vec<_> = (0..3).map(|_| node.new_process()).collect();
    for (i, p) in processes.iter().enumerate() {
        p.register(&format!("n/{i}"), &(i as u8))
            .expect("registers");
        p.join("g/1", &(i as u8)).expect("joins");
        p.join(&format!("g/{}", i + 2), &()).expect("joins");
    }
    for limit in SIZES {
        let expect = limit.min(3);
        assert_eq!(scope.names("n/", limit).expect("a prefix").len(), expect);
        assert_eq!(
            scope.groups("g/", limit).expect("a prefix").len(),
            limit.min(4)
        );
        assert_eq!(scope.members_limited("g/1", limit).len(), expect);
        assert_eq!(scope.local_members_limited("g/1", limit).len(), expect);
        let selected = scope
            .select_as::<u8, _>(Table::Names, Some("n/"), limit, |_, _| true)
            .expect("a prefix");
        assert_eq!(selected.items.len(), expect);
    }
}

/// Counts every panic of this test binary from now on (a panic on a node's own thread, such
/// as its flusher's, would not fail a test by itself).
fn count_panics() -> std::sync::Arc<std::sync::atomic::AtomicUsize> {
    let panics = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = panics.clone();
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        previous(info);
    }));
    panics
}

#[tokio::test]
async fn cluster_durations_and_sizes_are_clamped_or_work() {
    let panics = count_panics();
    type Setter = fn(ClusterConfig, Duration, usize) -> ClusterConfig;
    let setters: [(&str, Setter); 9] = [
        ("announce_interval", |c, d, _| c.announce_interval(d)),
        ("anti_entropy_interval", |c, d, _| {
            c.anti_entropy_interval(d)
        }),
        ("redial_backoff initial", |c, d, _| {
            c.redial_backoff(d, Duration::from_secs(2))
        }),
        ("redial_backoff max", |c, d, _| {
            c.redial_backoff(Duration::from_millis(20), d)
        }),
        ("op_log", |c, _, n| c.op_log(n)),
        ("op_log_bytes", |c, _, n| c.op_log_bytes(n)),
        ("max_queued_ops", |c, _, n| c.max_queued_ops(n)),
        ("busy_poll", |c, d, _| c.busy_poll(d)),
        ("read_poll", |c, d, _| c.read_poll(d)),
    ];
    for (name, set) in setters {
        for (d, n) in DURATIONS.into_iter().zip(SIZES) {
            // A node with the setting, and a plain one it links to: the setting's timers
            // and bounds run against a live peer.
            let plain = start_clustered(Node::builder(), "plain", cluster_config("bad", &[]));
            let config = set(cluster_config("bad", &[&plain]), d, n);
            let odd = start_clustered(Node::builder(), "odd", config);
            eventually(&format!("{name} = {d:?}/{n}: linked"), || {
                fully_linked(&[&plain, &odd])
            })
            .await;
            let p = odd.new_process();
            // Two writes: the second finds whatever the first left running (a flusher
            // polling for the next write, a backoff, a timer).
            for key in ["replicated", "replicated-too"] {
                p.register(key, &()).expect("registers");
                eventually(&format!("{name} = {d:?}/{n}: {key}"), || {
                    plain.default_scope().whereis(key) == Some(p.pid())
                })
                .await;
            }
            odd.shutdown().await;
            plain.shutdown().await;
        }
    }
    assert_eq!(
        panics.load(std::sync::atomic::Ordering::SeqCst),
        0,
        "no thread panicked"
    );
}

#[tokio::test]
async fn fault_injection_durations_are_clamped() {
    let a = start_clustered(Node::builder(), "a", cluster_config("faults", &[]));
    let b = start_clustered(Node::builder(), "b", cluster_config("faults", &[&a]));
    eventually("a and b linked", || fully_linked(&[&a, &b])).await;
    for d in [Duration::ZERO, Duration::from_nanos(1)] {
        a.cluster().sever_links(d);
        a.cluster().isolate(d);
        a.cluster().isolate_from(&["b"], d);
        eventually("links back after a short cut", || fully_linked(&[&a, &b])).await;
    }
    // The longest: the links stay down for as long as the process runs.
    a.cluster().sever_links(Duration::MAX);
    eventually("a severed", || a.cluster().peers().is_empty()).await;
    b.cluster().isolate(Duration::MAX);
    assert!(b.cluster().isolate_from(&["a"], Duration::MAX) <= 1);
    a.shutdown().await;
    b.shutdown().await;
    let lone = Node::builder()
        .cluster(
            ClusterConfig::new("127.0.0.1:0".parse().unwrap(), "s")
                .failure_detection(FailureDetection::Fast),
        )
        .start()
        .expect("starts");
    lone.cluster().isolate(Duration::MAX);
    lone.shutdown().await;
}

#[tokio::test]
async fn incarnations_of_0_1_and_max_replicate() {
    for incarnation in [0, 1, u64::MAX] {
        let plain = start_clustered(Node::builder(), "plain", cluster_config("inc", &[]));
        let builder = Node::builder().incarnation(Incarnation::new(incarnation));
        let odd = start_clustered(builder, "odd", cluster_config("inc", &[&plain]));
        assert_eq!(odd.incarnation(), Incarnation::new(incarnation));
        let p = odd.new_process();
        p.register("k", &()).expect("registers");
        eventually(&format!("incarnation {incarnation}: replicated"), || {
            plain.default_scope().whereis("k") == Some(p.pid())
        })
        .await;
        assert_eq!(plain.node_name_of(p.pid()).as_deref(), Some("odd"));
        odd.shutdown().await;
        eventually(&format!("incarnation {incarnation}: removed"), || {
            plain.default_scope().whereis("k").is_none()
        })
        .await;
        plain.shutdown().await;
    }
}
