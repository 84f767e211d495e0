//! Alert rules against real clusters of agents (OS processes), delivered to a webhook the
//! test runs: a stopped agent makes `node_degraded` fire and resolve, a killed one
//! `node_offline`; with three expected nodes, majority and fence, killing two makes the
//! survivor's `split_brain` and `fence_raised` fire, and both resolve when they are back.
//! An agent cut off by fault injection (`POST /api/faults/isolate`), alive all along,
//! makes `split_brain` and `node_offline` fire on both sides and resolve when it heals; and
//! names taken on both sides of such a cut make `conflict_storm` fire on both agents when
//! it heals, each conflict counted once per agent, then resolve. Each alert fires once and
//! resolves once, and is recorded in the history.

#[allow(dead_code)]
mod history_support;
mod support;

use std::path::Path;
use std::time::Duration;

use history_support::{Agent, Webhook};
use serde_json::Value;
use support::{eventually, get, isolate, peers, session_holding};

/// How long a cluster may take to form or notice a death, on a loaded machine.
const DEADLINE: Duration = Duration::from_secs(45);

/// Writes a settings file with `rules` (TOML tables) and the webhook.
fn config(dir: &Path, rules: &str, webhook: &Webhook) -> String {
    let path = dir.join("roster.toml");
    std::fs::write(
        &path,
        format!("{rules}\n[[alerts.webhooks]]\nurl = \"{}\"\n", webhook.url),
    )
    .unwrap();
    path.to_str().unwrap().to_owned()
}

/// The webhook's alerts raised by `node` for `rule` about `subject` (after the first
/// `webhook.skip` deliveries).
fn delivered(webhook: &Webhook, node: &str, rule: &str, subject: &str) -> Vec<Value> {
    webhook
        .received()
        .into_iter()
        .skip(webhook.skip())
        .filter(|a| a["node"] == node && a["rule"] == rule && a["subject"] == subject)
        .collect()
}

/// Waits until the webhook got `state` for the alert, returning it.
fn wait_for(webhook: &Webhook, node: &str, rule: &str, subject: &str, state: &str) -> Value {
    eventually(
        &format!("{node}: {rule} about {subject} {state}"),
        DEADLINE,
        || {
            delivered(webhook, node, rule, subject)
                .into_iter()
                .find(|a| a["state"] == state)
        },
    )
}

fn all_online(agent: &Agent, count: usize) {
    eventually(
        &format!("{} sees {count} online nodes", agent.name),
        DEADLINE,
        || {
            let (_, nodes) = get(&agent.url("/api/nodes"));
            let online = nodes
                .as_array()?
                .iter()
                .filter(|n| n["status"] == "online")
                .count();
            (online == count).then_some(())
        },
    );
}

/// The alert's firing and resolved deliveries: exactly one of each, same id.
fn fired_and_resolved_once(webhook: &Webhook, node: &str, rule: &str, subject: &str) {
    let alerts = delivered(webhook, node, rule, subject);
    let firing: Vec<&Value> = alerts.iter().filter(|a| a["state"] == "firing").collect();
    let resolved: Vec<&Value> = alerts.iter().filter(|a| a["state"] == "resolved").collect();
    assert_eq!((firing.len(), resolved.len()), (1, 1), "{alerts:?}");
    assert_eq!(firing[0]["id"], resolved[0]["id"]);
    assert!(resolved[0]["resolved_at_ms"].as_u64() >= firing[0]["fired_at_ms"].as_u64());
}

fn recorded(agent: &Agent, rule: &str, subject: &str) -> Vec<String> {
    let (status, page) = get(&agent.url("/api/audit?kind=alert"));
    assert_eq!(status, 200, "{page}");
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["rule"] == rule && r["subject"] == subject)
        .map(|r| r["state"].as_str().unwrap().to_owned())
        .collect()
}

fn signal(agent: &Agent, signal: rustix::process::Signal) {
    let pid = agent.pid();
    rustix::process::kill_process(pid, signal).expect("signal");
}

#[test]
fn degraded_and_offline_nodes_fire_and_resolve_once() {
    let webhook = Webhook::start();
    let dir = tempfile::tempdir().unwrap();
    let config = config(
        dir.path(),
        "[[alerts.rules]]\nkind = \"node_offline\"\nfor = \"1s\"\n[[alerts.rules]]\nkind = \"node_degraded\"\nfor = \"0s\"\n",
        &webhook,
    );
    let a = Agent::start("al-a", &dir.path().join("a"), &["--config", &config]);
    let seed = a.cluster.clone();
    let b = Agent::start(
        "al-b",
        &dir.path().join("b"),
        &["--config", &config, "--seed", &seed],
    );
    let c = Agent::start("al-c", &dir.path().join("c"), &["--seed", &seed]);
    all_online(&a, 3);
    all_online(&b, 3);

    // A stopped process misses its heartbeats: degraded, then back.
    signal(&c, rustix::process::Signal::STOP);
    wait_for(&webhook, "al-a", "node_degraded", "al-c", "firing");
    signal(&c, rustix::process::Signal::CONT);
    wait_for(&webhook, "al-a", "node_degraded", "al-c", "resolved");
    all_online(&a, 3);

    // A killed process is offline; a new one of that name resolves it.
    c.kill();
    let fired = wait_for(&webhook, "al-a", "node_offline", "al-c", "firing");
    assert_eq!(fired["message"], "node al-c is offline (for at least 1s)");
    wait_for(&webhook, "al-b", "node_offline", "al-c", "firing");
    let (status, alerts) = get(&a.url("/api/alerts"));
    assert_eq!(status, 200);
    assert!(
        alerts["firing"]
            .as_array()
            .unwrap()
            .iter()
            .any(|x| x["rule"] == "node_offline" && x["subject"] == "al-c"),
        "{alerts}"
    );
    let c = Agent::start("al-c", &dir.path().join("c"), &["--seed", &seed]);
    wait_for(&webhook, "al-a", "node_offline", "al-c", "resolved");
    wait_for(&webhook, "al-b", "node_offline", "al-c", "resolved");
    fired_and_resolved_once(&webhook, "al-a", "node_offline", "al-c");
    fired_and_resolved_once(&webhook, "al-b", "node_offline", "al-c");
    let (_, alerts) = get(&a.url("/api/alerts"));
    // Nothing about c fires any more. (On a loaded machine a node of the test may be
    // degraded for a moment by its own CPU load, which node_degraded reports: not c's.)
    assert!(
        !alerts["firing"]
            .as_array()
            .unwrap()
            .iter()
            .any(|x| x["subject"] == "al-c"),
        "{alerts}"
    );
    assert!(
        alerts["resolved"].as_array().unwrap().len() >= 2,
        "{alerts}"
    );
    assert!(
        alerts["webhooks_delivered"].as_u64().unwrap() >= 4,
        "{alerts}"
    );
    eventually("the alerts are in a's history", DEADLINE, || {
        (recorded(&a, "node_offline", "al-c") == ["resolved", "firing"]).then_some(())
    });
    drop((a, b, c));
}

#[test]
fn split_brain_and_fence_fire_on_the_minority_and_resolve_when_healed() {
    let webhook = Webhook::start();
    let dir = tempfile::tempdir().unwrap();
    let config = config(
        dir.path(),
        "[[alerts.rules]]\nkind = \"split_brain\"\n[[alerts.rules]]\nkind = \"fence_raised\"\n",
        &webhook,
    );
    let split = [
        "--config",
        &config,
        "--expected-node",
        "sb-a,sb-b,sb-c",
        "--split-brain-action",
        "fence",
    ];
    let a = Agent::start("sb-a", &dir.path().join("a"), &split);
    let seed = a.cluster.clone();
    let with_seed = |extra: &[&str]| -> Vec<String> {
        extra
            .iter()
            .map(|s| (*s).to_owned())
            .chain(["--seed".to_owned(), seed.clone()])
            .collect()
    };
    let args = with_seed(&split);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let b = Agent::start("sb-b", &dir.path().join("b"), &args);
    let c = Agent::start("sb-c", &dir.path().join("c"), &args);
    for agent in [&a, &b, &c] {
        all_online(agent, 3);
    }
    // While the cluster forms, a node may suspect a partition for a moment (its expected
    // nodes are not all reachable yet): wait until nothing fires, then count from there.
    for agent in [&a, &b, &c] {
        eventually(
            &format!("no alert firing on {}", agent.name),
            DEADLINE,
            || {
                let (_, alerts) = get(&agent.url("/api/alerts"));
                alerts["firing"].as_array()?.is_empty().then_some(())
            },
        );
    }
    webhook.set_skip(webhook.received().len());

    b.kill();
    c.kill();
    let split_brain = wait_for(&webhook, "sb-a", "split_brain", "sb-a", "firing");
    assert!(
        split_brain["message"]
            .as_str()
            .unwrap()
            .starts_with("sb-a suspects a partition: cannot reach sb-"),
        "{split_brain}"
    );
    wait_for(&webhook, "sb-a", "fence_raised", "sb-a", "firing");
    let (_, ready) = get(&a.url("/readyz"));
    assert_eq!(ready["status"], "not_ready", "fenced: {ready}");

    let b = Agent::start("sb-b", &dir.path().join("b"), &args);
    let c = Agent::start("sb-c", &dir.path().join("c"), &args);
    wait_for(&webhook, "sb-a", "split_brain", "sb-a", "resolved");
    wait_for(&webhook, "sb-a", "fence_raised", "sb-a", "resolved");
    fired_and_resolved_once(&webhook, "sb-a", "split_brain", "sb-a");
    fired_and_resolved_once(&webhook, "sb-a", "fence_raised", "sb-a");
    eventually("the fence is in a's history", DEADLINE, || {
        let (_, page) = get(&a
            .url("/api/audit?kind=fence_raised,fence_lowered,partition_detected,partition_healed"));
        let kinds: Vec<String> = page["items"]
            .as_array()?
            .iter()
            .map(|r| r["kind"].as_str().unwrap_or_default().to_owned())
            .collect();
        (kinds.contains(&"fence_raised".to_owned())
            && kinds.contains(&"fence_lowered".to_owned())
            && kinds.contains(&"partition_detected".to_owned())
            && kinds.contains(&"partition_healed".to_owned()))
        .then_some(())
    });
    drop((a, b, c));
}

/// The arguments as `&str`s.
fn strs(args: &[String]) -> Vec<&str> {
    args.iter().map(String::as_str).collect()
}

/// `extra` after `--cluster-name cluster`: a cluster that agents of tests run meanwhile,
/// which may be handed the ports of agents this one knew, never merge with.
fn in_cluster(cluster: &str, extra: &[&str]) -> Vec<String> {
    ["--cluster-name", cluster]
        .iter()
        .chain(extra)
        .map(|s| (*s).to_owned())
        .collect()
}

/// Waits until no alert is firing on `agent` (a cluster that forms may suspect a partition
/// for a moment).
fn quiet(agent: &Agent) {
    eventually(
        &format!("no alert firing on {}", agent.name),
        DEADLINE,
        || {
            let (_, alerts) = get(&agent.url("/api/alerts"));
            alerts["firing"].as_array()?.is_empty().then_some(())
        },
    );
}

/// Checks the deliveries of `node`'s `node_degraded` alerts about `subject`: a node cut
/// off may be degraded (missed heartbeats) for a moment before it is offline, or not at
/// all; each firing it had resolved once.
fn degraded_resolved_if_fired(webhook: &Webhook, node: &str, subject: &str) {
    let alerts = delivered(webhook, node, "node_degraded", subject);
    let firing: Vec<&Value> = alerts.iter().filter(|a| a["state"] == "firing").collect();
    let resolved: Vec<&Value> = alerts.iter().filter(|a| a["state"] == "resolved").collect();
    assert!(firing.len() <= 1, "{alerts:?}");
    assert_eq!(firing.len(), resolved.len(), "{alerts:?}");
}

#[test]
fn an_isolated_agent_fires_split_brain_and_node_offline_on_both_sides_once_and_they_resolve_once() {
    let webhook = Webhook::start();
    let dir = tempfile::tempdir().unwrap();
    let config = config(
        dir.path(),
        "[[alerts.rules]]\nkind = \"split_brain\"\nfor = \"1s\"\n[[alerts.rules]]\nkind = \"node_offline\"\nfor = \"1s\"\n[[alerts.rules]]\nkind = \"node_degraded\"\nfor = \"1s\"\n",
        &webhook,
    );
    // A cluster name of its own: the agents of the other tests never merge with it.
    let named = |extra: &[&str]| in_cluster("isolated-alerts", extra);
    let a = Agent::start(
        "iso-al-a",
        &dir.path().join("a"),
        &strs(&named(&["--config", &config])),
    );
    let seed = a.cluster.clone();
    let b = Agent::start(
        "iso-al-b",
        &dir.path().join("b"),
        &strs(&named(&["--seed", &seed])),
    );
    let c = Agent::start(
        "iso-al-c",
        &dir.path().join("c"),
        &strs(&named(&[
            "--config",
            &config,
            "--fault-injection",
            "--seed",
            &seed,
        ])),
    );
    for agent in [&a, &b, &c] {
        all_online(agent, 3);
    }
    quiet(&a);
    quiet(&c);
    webhook.set_skip(webhook.received().len());

    // c stays up, but nothing reaches it nor leaves it: each side sees the other gone.
    isolate(&c.http, "15s");
    wait_for(&webhook, "iso-al-a", "split_brain", "iso-al-a", "firing");
    wait_for(&webhook, "iso-al-a", "node_offline", "iso-al-c", "firing");
    let cut = wait_for(&webhook, "iso-al-c", "split_brain", "iso-al-c", "firing");
    assert!(
        cut["message"]
            .as_str()
            .unwrap()
            .starts_with("iso-al-c suspects a partition: cannot reach iso-al-a, iso-al-b"),
        "{cut}"
    );
    for peer in ["iso-al-a", "iso-al-b"] {
        wait_for(&webhook, "iso-al-c", "node_offline", peer, "firing");
    }

    // The cut heals by itself: every alert resolves.
    wait_for(&webhook, "iso-al-a", "split_brain", "iso-al-a", "resolved");
    wait_for(&webhook, "iso-al-a", "node_offline", "iso-al-c", "resolved");
    wait_for(&webhook, "iso-al-c", "split_brain", "iso-al-c", "resolved");
    for peer in ["iso-al-a", "iso-al-b"] {
        wait_for(&webhook, "iso-al-c", "node_offline", peer, "resolved");
    }
    for agent in [&a, &b, &c] {
        all_online(agent, 3);
    }
    quiet(&a);
    quiet(&c);
    fired_and_resolved_once(&webhook, "iso-al-a", "split_brain", "iso-al-a");
    fired_and_resolved_once(&webhook, "iso-al-a", "node_offline", "iso-al-c");
    fired_and_resolved_once(&webhook, "iso-al-c", "split_brain", "iso-al-c");
    for peer in ["iso-al-a", "iso-al-b"] {
        fired_and_resolved_once(&webhook, "iso-al-c", "node_offline", peer);
        degraded_resolved_if_fired(&webhook, "iso-al-c", peer);
    }
    degraded_resolved_if_fired(&webhook, "iso-al-a", "iso-al-c");
    assert!(
        delivered(&webhook, "iso-al-a", "node_offline", "iso-al-b").is_empty(),
        "b was never cut off from a"
    );
    eventually("the alerts are in c's history", DEADLINE, || {
        (recorded(&c, "split_brain", "iso-al-c") == ["resolved", "firing"]).then_some(())
    });
    drop((a, b, c));
}

/// Names taken on each side, one session each.
const STORM: usize = 12;

#[test]
fn names_taken_on_both_sides_of_an_isolation_make_a_conflict_storm_on_both_agents_once() {
    let webhook = Webhook::start();
    let dir = tempfile::tempdir().unwrap();
    // Fires at STORM conflicts, not before: a conflict counted twice on a node would make
    // it fire with a larger count than the names taken.
    let config = config(
        dir.path(),
        &format!(
            "[[alerts.rules]]\nkind = \"conflict_storm\"\nthreshold = {}\nwindow = \"8s\"\n",
            STORM - 1
        ),
        &webhook,
    );
    // A cluster name of its own: the agents of the other tests never merge with it.
    let named = |extra: &[&str]| in_cluster("conflict-storm", extra);
    let a = Agent::start(
        "storm-a",
        &dir.path().join("a"),
        &strs(&named(&["--config", &config])),
    );
    let b = Agent::start(
        "storm-b",
        &dir.path().join("b"),
        &strs(&named(&[
            "--config",
            &config,
            "--fault-injection",
            "--seed",
            &a.cluster,
        ])),
    );
    eventually("a and b are linked", DEADLINE, || {
        (peers(&a.http) == Some(1) && peers(&b.http) == Some(1)).then_some(())
    });
    isolate(&b.http, "8s");
    eventually("a has lost its link to b", DEADLINE, || {
        (peers(&a.http) == Some(0)).then_some(())
    });
    for i in 0..STORM {
        session_holding(&a.http, &format!("storm/{i}"), "120s");
    }
    for i in 0..STORM {
        session_holding(&b.http, &format!("storm/{i}"), "120s");
    }

    // When the cut heals, both agents see every conflict: a's process keeps each name,
    // b's loses it.
    for (agent, node) in [(&a, "storm-a"), (&b, "storm-b")] {
        let fired = wait_for(&webhook, node, "conflict_storm", node, "firing");
        assert_eq!(
            fired["message"],
            format!("{STORM} name conflicts in 8s (more than {})", STORM - 1),
            "each conflict once on {node}"
        );
        wait_for(&webhook, node, "conflict_storm", node, "resolved");
        fired_and_resolved_once(&webhook, node, "conflict_storm", node);
        // The agent answers throughout, and lists the storm among its recent alerts.
        let (status, alerts) = get(&agent.url("/api/alerts"));
        assert_eq!(status, 200, "{alerts}");
        assert!(
            alerts["resolved"]
                .as_array()
                .unwrap()
                .iter()
                .any(|x| x["rule"] == "conflict_storm" && x["id"] == fired["id"]),
            "{node}: {alerts}"
        );
        let rows = support::conflict_rows(&agent.http);
        assert_eq!(rows.len(), STORM, "{node}: {rows:?}");
        assert!(
            rows.iter()
                .all(|r| r["recorder"] == node && r["rule"] == "keep_oldest"),
            "{rows:?}"
        );
    }
    assert_eq!(
        recorded(&a, "conflict_storm", "storm-a"),
        ["resolved", "firing"]
    );
    drop((a, b));
}
