//! Name conflicts in real clusters.
//!
//! In process, with the agent's feeder and alerts on the newer node: names registered on
//! both nodes before they link (the older node is cut off meanwhile) conflict when they
//! do, and the newer registrations lose (the default rule keeps the oldest); each is
//! recorded in the history with key, winner, loser and rule, and more than the threshold
//! in the window makes `conflict_storm` fire, then resolve once the window has passed,
//! delivered to a webhook.
//!
//! With agents as OS processes: one agent is cut off (`POST /api/faults/isolate`), the
//! same name is taken through a session on each side, and after the heal both agents
//! record the conflict once each, with the same winner, loser and rule; in their own
//! SQLite files, or under their own names in one PostgreSQL database, where the audit log
//! lists it as one item recorded by both. Either agent finds it by the other's name.

#[allow(dead_code)]
mod history_support;
mod support;

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
    // a links to no one until b has taken the same names: otherwise a's announce may
    // reach b first and b find them taken.
    a.cluster().isolate(Duration::from_secs(3));
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
            rule,
            winner_node,
            loser_node,
        } = &row.record.kind
        else {
            panic!("{row:?}");
        };
        assert_eq!(rule.as_deref(), Some("keep_oldest"), "{row:?}");
        assert_eq!(winner_node.as_deref(), Some("conf-a"), "{row:?}");
        assert_eq!(loser_node.as_deref(), Some("conf-b"), "{row:?}");
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

/// How long agents may take to form a cluster, notice an isolation or heal, on a loaded
/// machine.
const DEADLINE: Duration = Duration::from_secs(60);

/// Two linked agents, `b` started with `--fault-injection`: cuts `b` off, takes `key`
/// through a session on `a`, then on `b`, and waits for the heal, until both agents have
/// one owner for it, the same. Returns the two sessions' pids (a's, b's) and the owner.
fn conflict_across_isolation(
    a: &history_support::Agent,
    b: &history_support::Agent,
    key: &str,
) -> (String, String, String) {
    use support::{eventually, get, isolate, peers, session_holding};
    eventually("a and b are linked", DEADLINE, || {
        (peers(&a.http) == Some(1) && peers(&b.http) == Some(1)).then_some(())
    });
    isolate(&b.http, "8s");
    eventually("a has lost its link to b", DEADLINE, || {
        (peers(&a.http) == Some(0)).then_some(())
    });
    let on_a = session_holding(&a.http, key, "120s");
    let on_b = session_holding(&b.http, key, "120s");
    assert_ne!(on_a, on_b);
    let owner = eventually(
        "after the heal a and b agree on one owner",
        DEADLINE,
        || {
            let linked = peers(&a.http) == Some(1) && peers(&b.http) == Some(1);
            let owners: Vec<String> = [a, b]
                .iter()
                .filter_map(|agent| {
                    let (status, found) = get(&agent.url(&format!("/api/registry/{key}")));
                    (status == 200).then(|| found["pid"].as_str().unwrap_or_default().to_owned())
                })
                .collect();
            (linked && owners.len() == 2 && owners[0] == owners[1]).then(|| owners[0].clone())
        },
    );
    assert!(
        owner == on_a || owner == on_b,
        "{owner} is one of {on_a}, {on_b}"
    );
    (on_a, on_b, owner)
}

/// The `name_conflict` items of `key` in the audit log of `agent`.
fn conflicts_of(agent: &history_support::Agent, key: &str) -> Vec<serde_json::Value> {
    support::conflict_rows(&agent.http)
        .into_iter()
        .filter(|row| row["key"] == key)
        .collect()
}

/// The `name_conflict` items of `key` in the audit log of `agent` about `node`
/// (`?node=`).
fn conflicts_about(
    agent: &history_support::Agent,
    key: &str,
    node: &str,
) -> Vec<serde_json::Value> {
    let (status, page) = support::get(&agent.url(&format!(
        "/api/audit?kind=name_conflict&node={node}&limit=1000"
    )));
    assert_eq!(status, 200, "{page}");
    page["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|row| row["key"] == key)
        .cloned()
        .collect()
}

/// What a `name_conflict` row says about the conflict (not who recorded it, nor when).
fn verdict(row: &serde_json::Value) -> [serde_json::Value; 6] {
    [
        "scope",
        "winner",
        "loser",
        "rule",
        "winner_node",
        "loser_node",
    ]
    .map(|f| row[f].clone())
}

/// Checks the verdict against the contenders: the owner won, by the default rule.
fn check_verdict(row: &serde_json::Value, on_a: &str, on_b: &str, owner: &str) {
    let loser = if owner == on_a { on_b } else { on_a };
    let (winner_node, loser_node) = if owner == on_a {
        ("iso-a", "iso-b")
    } else {
        ("iso-b", "iso-a")
    };
    assert_eq!(
        verdict(row),
        [
            "default",
            owner,
            loser,
            "keep_oldest",
            winner_node,
            loser_node
        ]
        .map(serde_json::Value::from),
        "{row}"
    );
}

#[test]
fn after_an_isolation_both_agents_record_the_conflict_with_its_winner_loser_and_rule() {
    let dir = tempfile::tempdir().unwrap();
    // A cluster name of its own: the agents of the other tests never merge with it.
    let a = history_support::Agent::start(
        "iso-a",
        &dir.path().join("a"),
        &["--cluster-name", "conflict-sqlite"],
    );
    let b = history_support::Agent::start(
        "iso-b",
        &dir.path().join("b"),
        &[
            "--cluster-name",
            "conflict-sqlite",
            "--fault-injection",
            "--seed",
            &a.cluster,
        ],
    );
    let (on_a, on_b, owner) = conflict_across_isolation(&a, &b, "user/bob");
    // Each agent keeps its own history: the winner's node records the conflict as well
    // as the loser's, each once, under its own name.
    let rows = support::eventually("both agents recorded the conflict", DEADLINE, || {
        let rows = [conflicts_of(&a, "user/bob"), conflicts_of(&b, "user/bob")];
        rows.iter().all(|r| !r.is_empty()).then_some(rows)
    });
    for (agent, rows) in [&a, &b].into_iter().zip(&rows) {
        assert_eq!(rows.len(), 1, "once on {}: {rows:?}", agent.name);
        assert_eq!(rows[0]["recorder"], agent.name.as_str(), "{}", rows[0]);
        assert_eq!(
            rows[0]["recorded_by"],
            serde_json::json!([agent.name]),
            "{}",
            rows[0]
        );
        check_verdict(&rows[0], &on_a, &on_b, &owner);
    }
    assert_eq!(verdict(&rows[0][0]), verdict(&rows[1][0]));
    // Asked about the other node, each agent lists its row: the other is the winner's or
    // the loser's node, not the recorder.
    for (agent, other) in [(&a, "iso-b"), (&b, "iso-a")] {
        let about = conflicts_about(agent, "user/bob", other);
        assert_eq!(about.len(), 1, "{} about {other}: {about:?}", agent.name);
        assert_eq!(about[0]["recorder"], agent.name.as_str());
    }
    assert!(conflicts_about(&a, "user/bob", "iso-c").is_empty());
    // Nothing more was recorded meanwhile.
    assert_eq!(conflicts_of(&a, "user/bob").len(), 1);
    assert_eq!(conflicts_of(&b, "user/bob").len(), 1);
}

#[test]
fn agents_sharing_a_postgres_history_list_the_conflict_once_recorded_by_both() {
    let server = history_support::Postgres::start();
    let url = server.url();
    let dir = tempfile::tempdir().unwrap();
    let a = history_support::Agent::start(
        "iso-a",
        &dir.path().join("a"),
        &["--history", &url, "--cluster-name", "conflict-postgres"],
    );
    let b = history_support::Agent::start(
        "iso-b",
        &dir.path().join("b"),
        &[
            "--history",
            &url,
            "--cluster-name",
            "conflict-postgres",
            "--fault-injection",
            "--seed",
            &a.cluster,
        ],
    );
    let (on_a, on_b, owner) = conflict_across_isolation(&a, &b, "user/carol");
    // Each agent writes its own row; the audit log lists the conflict once, recorded by
    // both.
    let item = support::eventually("both agents recorded the conflict", DEADLINE, || {
        let items = conflicts_of(&a, "user/carol");
        assert!(items.len() <= 1, "one item: {items:?}");
        let item = items.into_iter().next()?;
        (item["recorded_by"] == serde_json::json!(["iso-a", "iso-b"])).then_some(item)
    });
    check_verdict(&item, &on_a, &on_b, &owner);
    // One database: both agents list the same item, whichever node it is asked about.
    assert_eq!(conflicts_of(&b, "user/carol"), std::slice::from_ref(&item));
    for node in ["iso-a", "iso-b"] {
        assert_eq!(
            conflicts_about(&b, "user/carol", node),
            std::slice::from_ref(&item)
        );
    }
    drop((a, b));
}
