//! Name conflicts in a real two-node cluster (in process, with the agent's feeder and
//! alerts on the newer node): names registered on both nodes before they link conflict
//! when they do, and the newer registrations lose (the default rule keeps the oldest);
//! each loss is recorded in the history with key, winner and loser, and more than the
//! threshold in the window makes `conflict_storm` fire, then resolve once the window has
//! passed, delivered to a webhook.

#[allow(dead_code)]
mod history_support;

use std::net::TcpListener;
use std::time::{Duration, Instant};

use roster::{ClusterConfig, FailureDetection, Node};
use roster_agent::alerts::Alerts;
use roster_agent::alerts::rules::{AlertSettings, Rule};
use roster_agent::history::settings::{Backend, HistorySettings};
use roster_agent::history::store::AuditQuery;
use roster_agent::history::{History, feeder};

const SECRET: &str = "conflict-test-secret";
const NAMES: usize = 20;
const THRESHOLD: u64 = 5;

fn node(name: &str, listen: &str, seeds: Vec<String>) -> Node {
    let config = ClusterConfig::new(listen.parse().unwrap(), SECRET)
        .seeds(seeds)
        .failure_detection(FailureDetection::Fast)
        .announce_interval(Duration::from_millis(200))
        .anti_entropy_interval(Duration::from_millis(300));
    Node::builder()
        .name(name)
        .cluster(config)
        .start()
        .expect("node starts")
}

async fn until<T>(what: &str, deadline: Duration, mut check: impl FnMut() -> Option<T>) -> T {
    let end = Instant::now() + deadline;
    loop {
        if let Some(value) = check() {
            return value;
        }
        assert!(Instant::now() < end, "not within {deadline:?}: {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conflicts_are_recorded_and_a_storm_fires_and_resolves() {
    let webhook = history_support::Webhook::start();
    let dir = tempfile::tempdir().unwrap();
    // b's address is known before b starts: a announces to it until it answers.
    let b_port = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .unwrap()
        .port();
    let b_addr = format!("127.0.0.1:{b_port}");
    let a = node("conf-a", "127.0.0.1:0", vec![b_addr.clone()]);
    let on_a: Vec<_> = (0..NAMES).map(|_| a.new_process()).collect();
    for (i, p) in on_a.iter().enumerate() {
        p.register(&format!("storm/{i}"), &"a").unwrap();
    }
    let history = History::open(
        &HistorySettings {
            backend: Backend::Sqlite(dir.path().join("history.sqlite3")),
            queue: 1024,
            heartbeat_retention: Duration::from_secs(3600),
        },
        "conf-b",
    )
    .await
    .unwrap()
    .unwrap();
    let b = node("conf-b", &b_addr, Vec::new());
    let _feeder = feeder::spawn(&b, history.recorder());
    let window = Duration::from_secs(2);
    let alerts = Alerts::start(
        &b,
        &AlertSettings {
            rules: vec![Rule::ConflictStorm {
                threshold: THRESHOLD,
                window,
            }],
            webhooks: vec![webhook.url.clone()],
        },
        Some(history.recorder().clone()),
    )
    .unwrap();
    let on_b: Vec<_> = (0..NAMES).map(|_| b.new_process()).collect();
    let registered_on_b = on_b
        .iter()
        .enumerate()
        .filter(|(i, p)| p.register(&format!("storm/{i}"), &"b").is_ok())
        .count();
    assert!(
        registered_on_b as u64 > THRESHOLD,
        "b registered {registered_on_b} names before linking"
    );

    let reader = history.reader().clone();
    let conflicts = until(
        "the conflicts are recorded",
        Duration::from_secs(30),
        || {
            let reader = reader.clone();
            let rows = futures_lite_block(async move {
                reader
                    .read(|store| {
                        store.audit(&AuditQuery {
                            kinds: vec!["name_conflict".into()],
                            limit: 100,
                            ..AuditQuery::default()
                        })
                    })
                    .await
                    .unwrap()
            });
            (rows.len() == registered_on_b).then_some(rows)
        },
    )
    .await;
    for row in &conflicts {
        let roster_agent::history::record::RecordKind::NameConflict {
            scope,
            key,
            winner,
            loser,
        } = &row.record.kind
        else {
            panic!("{row:?}");
        };
        assert_eq!(scope, "default");
        assert!(key.starts_with("storm/"), "{key}");
        assert_ne!(winner, loser);
        let i: usize = key["storm/".len()..].parse().unwrap();
        assert_eq!(
            winner,
            &on_a[i].pid().to_string(),
            "the older one wins: {row:?}"
        );
        assert_eq!(loser, &on_b[i].pid().to_string(), "{row:?}");
    }

    let fired = until("conflict_storm fires", Duration::from_secs(30), || {
        webhook
            .received()
            .into_iter()
            .find(|x| x["rule"] == "conflict_storm" && x["state"] == "firing")
    })
    .await;
    assert_eq!(fired["subject"], "conf-b");
    until("conflict_storm resolves", Duration::from_secs(30), || {
        webhook
            .received()
            .into_iter()
            .find(|x| x["rule"] == "conflict_storm" && x["state"] == "resolved")
    })
    .await;
    let storm: Vec<_> = webhook
        .received()
        .into_iter()
        .filter(|x| x["rule"] == "conflict_storm")
        .collect();
    assert_eq!(storm.len(), 2, "fires once, resolves once: {storm:?}");
    let (firing, resolved) = alerts.list();
    assert!(firing.is_empty());
    assert_eq!(resolved[0].id, fired["id"].as_u64().unwrap());
    a.shutdown().await;
    b.shutdown().await;
}

/// Runs `future` to completion on the current runtime from a synchronous closure.
fn futures_lite_block<T: Send + 'static>(future: impl Future<Output = T> + Send + 'static) -> T {
    tokio::task::block_in_place(|| tokio::runtime::Handle::current().block_on(future))
}
