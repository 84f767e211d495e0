//! A restarted agent never hands out a fencing token below one it showed before, even when
//! the cluster's clocks had run ahead of its machine's wall clock and it registers before
//! it links to any peer (it starts its clocks past the reading saved in its data
//! directory).
//!
//! Two agents; `n1`'s clock 30 s ahead, so its registration of `k` carries a token 30 s
//! ahead, which `n0` shows. `n1` releases `k`; `n0` is killed with `kill -9` and restarted
//! cut off from `n1` (it cannot take in `n1`'s clock when a link comes up), and a session
//! on `n0` registers `k`: its token must be above the one `n0` showed before.
//!
//! Needs root, iproute2, nftables and libfaketime; with `CI` or `ROSTER_REQUIRE_NETNS` set
//! it fails when one is missing, elsewhere it skips with the reason.
#![forbid(unsafe_code)]

mod common;

use std::time::Duration;

use common::api::Api;
use roster_chaos::cluster::Cluster;
use roster_chaos::history::Recorder;
use roster_chaos::time::poll;

#[test]
fn a_restarted_agent_mints_no_token_below_one_it_showed() {
    if !common::networks_available() {
        return;
    }
    if roster_chaos::clock::libfaketime().is_none() {
        assert!(
            !common::required(),
            "libfaketime is not installed (apt-get install libfaketime)"
        );
        eprintln!("skipped: libfaketime is not installed");
        return;
    }
    let binary = roster_chaos::locate::roster_binary().expect("the roster binary");
    let mut cluster = Cluster::start(binary, 2, Recorder::default()).expect("cluster starts");
    let api = Api::new(&cluster, Duration::from_secs(5));
    assert!(cluster.skew_clock(1, 30).expect("skew n1"));
    poll(
        "n1's heartbeats 30 s ahead",
        Duration::from_secs(15),
        Duration::from_millis(250),
        || cluster.clock_offset_ms(1).filter(|ms| *ms > 25_000),
    )
    .expect("n1's clock ahead");

    let ahead = api.session(1);
    let name = format!("/api/sessions/{ahead}/names/restart/k");
    api.put_ok(1, &name);
    let (_, shown) = poll(
        "n0 shows n1's k",
        Duration::from_secs(10),
        Duration::from_millis(50),
        || api.holder(0, "restart/k"),
    )
    .expect("replicated to n0");
    // The agent saves its reading every 100 ms: wait until it covers the token shown.
    let clock_file = cluster.data_dir(0).join("clock");
    poll(
        "n0 saves a clock reading above the token it shows",
        Duration::from_secs(5),
        Duration::from_millis(50),
        || {
            let saved: u64 = std::fs::read_to_string(&clock_file)
                .ok()?
                .trim()
                .parse()
                .ok()?;
            (saved > shown).then_some(())
        },
    )
    .expect("the clock reading saved");
    let reply = api.client.delete(&api.url(1, &name));
    assert!(reply.ok().is_some(), "DELETE {name}: {}", reply.summary());
    poll(
        "n0 no longer shows k",
        Duration::from_secs(10),
        Duration::from_millis(50),
        || {
            (api.client
                .get(&api.url(0, "/api/registry/restart/k"))
                .status()
                == Some(404))
            .then_some(())
        },
    )
    .expect("released on n0");

    cluster.net.split(&[0], &[1]).expect("cut n0 off");
    cluster.restart(0).expect("n0 restarted");
    let fresh = api.session(0);
    api.put_ok(0, &format!("/api/sessions/{fresh}/names/restart/k"));
    let (_, token) = api.holder(0, "restart/k").expect("n0 shows its own k");
    assert!(
        token > shown,
        "n0 showed restart/k with token {shown} before its restart and {token} after"
    );
    drop(cluster);
}
