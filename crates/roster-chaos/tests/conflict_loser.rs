//! Regression tests of what the chaos test found, each a partition of real agents in
//! network namespaces, a few seconds long.
//!
//! 1. A session that loses one name in a conflict after a partition heals must not lose
//!    its other names and groups while it stays alive (the agent builds its node with
//!    `kill_conflict_losers(false)`: the session loses only that name).
//! 2. The fencing token of a name only grows as one node sees it: after a conflict (the
//!    survivor is re-stamped above both), after the rival holder unregistered before the
//!    heal, and after the rival holder's node died during the partition (a node keeps an
//!    older registration back until its owner's node re-stamps it above the token it
//!    showed).
//!
//! The first test in detail:
//! Three agents; `n2` is cut off long enough to be declared down; a session on `n0` takes
//! `x` and a session on `n2` takes `x` too (the later registration), plus `y` and a
//! group. After the heal the conflict on `x` goes to `n0`'s session (keep oldest). The
//! loser must then either be ended (its keepalive answers 404) or still hold `y` and its
//! group: a session whose process lost every entry while the session stayed alive
//! (keepalives 200, `GET /api/sessions/{id}` without names) is the bug it pins down.
#![forbid(unsafe_code)]

mod common;

use std::time::Duration;

use common::api::Api;
use roster_chaos::cluster::Cluster;
use roster_chaos::history::Recorder;
use roster_chaos::time::poll;
use serde_json::Value;

#[test]
fn a_session_that_loses_one_name_in_a_conflict_keeps_its_other_entries_or_ends() {
    if !common::networks_available() {
        return;
    }
    let binary = roster_chaos::locate::roster_binary().expect("the roster binary");
    let mut cluster = Cluster::start(binary, 3, Recorder::default()).expect("cluster starts");
    let api = Api::new(&cluster, Duration::from_secs(5));
    let (client, url) = (&api.client, |node, path: &str| api.url(node, path));
    let winner = api.session(0);
    let loser = api.session(2);
    let put = |node, path: String| api.put_ok(node, &path);
    put(0, format!("/api/sessions/{winner}/names/conflict/x"));
    // n2 alone: declared down by the others, so both sides accept their own `x`.
    cluster.net.split(&[2], &[0, 1]).expect("cut n2 off");
    poll(
        "n0 sees n2 unreachable",
        Duration::from_secs(30),
        Duration::from_millis(200),
        || (cluster.partition_suspected(0) == Some(true)).then_some(()),
    )
    .expect("partition detected");
    poll(
        "n2 no longer shows n0's x",
        Duration::from_secs(30),
        Duration::from_millis(200),
        || {
            let reply = client.get(&url(2, "/api/registry/conflict/x"));
            (reply.status() == Some(404)).then_some(())
        },
    )
    .expect("n0's entries purged on n2");
    put(2, format!("/api/sessions/{loser}/names/conflict/x"));
    put(2, format!("/api/sessions/{loser}/names/conflict/y"));
    put(2, format!("/api/sessions/{loser}/groups/conflict/g"));
    cluster.net.heal().expect("heal");
    cluster
        .wait_formed(Duration::from_secs(60))
        .expect("cluster formed again");
    let owner_of_x = poll(
        "every node shows one owner of x",
        Duration::from_secs(30),
        Duration::from_millis(200),
        || {
            let owners: Vec<Value> = (0..3)
                .map(|i| {
                    client
                        .get(&url(i, "/api/registry/conflict/x"))
                        .ok()
                        .map_or(Value::Null, |b| b["pid"].clone())
                })
                .collect();
            (owners.windows(2).all(|w| w[0] == w[1]) && !owners[0].is_null())
                .then(|| owners[0].clone())
        },
    )
    .expect("conflict resolved");
    let winner_pid = client
        .get(&url(0, &format!("/api/sessions/{winner}")))
        .ok()
        .expect("winner alive")["pid"]
        .clone();
    assert_eq!(owner_of_x, winner_pid, "keep-oldest: n0's session keeps x");
    let keepalive = client.put(&url(2, &format!("/api/sessions/{loser}/keepalive")), None);
    if keepalive.status() == Some(404) {
        return; // the loser was ended as a whole: consistent
    }
    assert!(
        keepalive.ok().is_some(),
        "keepalive: {}",
        keepalive.summary()
    );
    let view = client.get(&url(2, &format!("/api/sessions/{loser}")));
    let body = view.ok().expect("the loser's session is alive").clone();
    let again = client.put(
        &url(2, &format!("/api/sessions/{loser}/names/conflict/z")),
        None,
    );
    let y = client.get(&url(0, "/api/registry/conflict/y"));
    let g = client.get(&url(0, "/api/groups/conflict/g"));
    assert!(
        y.ok().is_some() && g.ok().is_some_and(|g| g["count"] == 1),
        "the session lost x in a conflict and is still alive (keepalive 200), yet its other \
         name and its group are gone: {body}; y: {}; group: {}; a new registration: {} (agent bug: the node kills \
         conflict losers, see this file's doc)",
        y.summary(),
        g.summary(),
        again.summary()
    );
    drop(cluster);
}

/// The fencing token of the name that survives a conflict must end above both
/// contenders' tokens: the winner's owner re-stamps it. A node of the losing side showed
/// the loser's token; if the survivor keeps its own older, smaller token, that node sees the
/// token go down and a downstream system fenced at the loser's token rejects the rightful
/// owner.
#[test]
fn the_name_that_survives_a_conflict_gets_a_token_above_both() {
    survivor_token_after_heal(false);
}

/// The same partition, but the losing side's holder unregisters `x` before the heal: there
/// is no conflict, and `n0`'s older registration comes back to `n2` with its older token,
/// smaller than the one `n2` showed for `x` during the partition. Fencing tokens are
/// monotonic per key (a downstream system fenced at the token `n2` handed out would
/// reject `n0`'s owner), so `n2` must not see the token go down.
#[test]
fn a_name_that_comes_back_after_a_heal_does_not_show_a_smaller_token() {
    survivor_token_after_heal(true);
}

/// `x` registered on `n0`, `n2` cut off, `x` registered on `n2` (a larger token); with
/// `release`, `n2`'s holder unregisters it again before the heal. After the heal every
/// node must show one owner of `x` with a token above the one `n2` showed.
fn survivor_token_after_heal(release: bool) {
    if !common::networks_available() {
        return;
    }
    let binary = roster_chaos::locate::roster_binary().expect("the roster binary");
    let mut cluster = Cluster::start(binary, 3, Recorder::default()).expect("cluster starts");
    let api = Api::new(&cluster, Duration::from_secs(5));
    let (client, url) = (&api.client, |node, path: &str| api.url(node, path));
    let token_on = |node| api.holder(node, "fence/x");
    let older = api.session(0);
    let newer = api.session(2);
    let put = |node, path: String| api.put_ok(node, &path);
    put(0, format!("/api/sessions/{older}/names/fence/x"));
    let (_, winner_token) = token_on(0).expect("n0 shows its x");
    cluster.net.split(&[2], &[0, 1]).expect("cut n2 off");
    poll(
        "n2 no longer shows n0's x",
        Duration::from_secs(30),
        Duration::from_millis(200),
        || (client.get(&url(2, "/api/registry/fence/x")).status() == Some(404)).then_some(()),
    )
    .expect("n0's entries purged on n2");
    put(2, format!("/api/sessions/{newer}/names/fence/x"));
    let (_, loser_token) = token_on(2).expect("n2 shows its x");
    assert!(
        loser_token > winner_token,
        "the later registration has the larger token"
    );
    if release {
        let path = format!("/api/sessions/{newer}/names/fence/x");
        let reply = client.delete(&url(2, &path));
        assert!(reply.ok().is_some(), "DELETE {path}: {}", reply.summary());
    }
    cluster.net.heal().expect("heal");
    cluster
        .wait_formed(Duration::from_secs(60))
        .expect("cluster formed again");
    // Every node agrees on the owner, and on a token above both contenders'.
    let seen = poll(
        "every node shows one owner of x with a token above both contenders'",
        Duration::from_secs(30),
        Duration::from_millis(200),
        || {
            let seen: Vec<Option<(String, u64)>> = (0..3).map(&token_on).collect();
            let agreed = seen.windows(2).all(|w| w[0] == w[1]) && seen[0].is_some();
            let above = seen[0].as_ref().is_some_and(|(_, t)| *t > loser_token);
            (agreed && above).then_some(seen)
        },
    );
    let now: Vec<Option<(String, u64)>> = (0..3).map(&token_on).collect();
    assert!(
        seen.is_ok(),
        "after the heal the nodes show {now:?}: the survivor's token is not above the loser's \
         {loser_token} (the winner registered with {winner_token}); n2 showed {loser_token} \
         before, so its token went down"
    );
    drop(cluster);
}

/// Four agents: `x` registered on `n0`; `n2` and `n3` cut off from `n0` and `n1`; `x`
/// registered on `n3` (a larger token, shown by `n2`); `n3` killed while cut off, so its
/// entry goes with it and no conflict ever happens; heal. `n2` showed the larger token for
/// `x` and must not show a smaller one after the heal.
#[test]
fn a_name_that_comes_back_after_its_rival_node_died_does_not_show_a_smaller_token() {
    if !common::networks_available() {
        return;
    }
    let binary = roster_chaos::locate::roster_binary().expect("the roster binary");
    let mut cluster = Cluster::start(binary, 4, Recorder::default()).expect("cluster starts");
    let api = Api::new(&cluster, Duration::from_secs(5));
    let (client, url) = (&api.client, |node, path: &str| api.url(node, path));
    let token_on = |node| api.holder(node, "fence/y");
    let older = api.session(0);
    let newer = api.session(3);
    let put = |node, path: String| api.put_ok(node, &path);
    put(0, format!("/api/sessions/{older}/names/fence/y"));
    let (_, first_token) = token_on(0).expect("n0 shows its y");
    cluster.net.split(&[0, 1], &[2, 3]).expect("split 2-2");
    // n3 registers next and n2 checks the token, so both must have dropped n0's entry (each
    // detects the cut on its own time).
    poll(
        "n2 and n3 no longer show n0's y",
        Duration::from_secs(30),
        Duration::from_millis(200),
        || {
            let gone = |node| client.get(&url(node, "/api/registry/fence/y")).status() == Some(404);
            (gone(2) && gone(3)).then_some(())
        },
    )
    .expect("n0's entries purged on n2 and n3");
    put(3, format!("/api/sessions/{newer}/names/fence/y"));
    let seen_on_n2 = poll(
        "n2 shows n3's y",
        Duration::from_secs(10),
        Duration::from_millis(100),
        || token_on(2),
    )
    .expect("replicated to n2");
    assert!(
        seen_on_n2.1 > first_token,
        "the later registration has the larger token"
    );
    cluster.kill(3);
    poll(
        "n2 drops dead n3's y",
        Duration::from_secs(30),
        Duration::from_millis(200),
        || (client.get(&url(2, "/api/registry/fence/y")).status() == Some(404)).then_some(()),
    )
    .expect("n3's entries purged on n2");
    cluster.net.heal().expect("heal");
    let after = poll(
        "n2 shows y again",
        Duration::from_secs(60),
        Duration::from_millis(200),
        || token_on(2),
    )
    .expect("n0's y back on n2");
    assert!(
        after.1 > seen_on_n2.1,
        "n2 showed y with token {} (n3's owner, during the partition), and after the heal shows \
         {after:?}: the token went down (n0's registration kept its token {first_token})",
        seen_on_n2.1
    );
    drop(cluster);
}
