//! Two sessions on two connected agents race for one name: with `?confirm=true` exactly
//! one is answered 200 (with the name's fencing token) and the other 409, every time;
//! every agent then shows the winner. Without confirmation both are told they hold it
//! until the conflict is resolved (the chaos checker's `two-owners`). To make the race
//! certain, the link between the two agents drops every packet for a moment shorter than
//! failure detection while both register: no partition is reported, both registrations
//! wait for the link, and the conflict is resolved once it carries packets again.
#![forbid(unsafe_code)]

mod common;

use std::sync::Barrier;
use std::time::Duration;

use common::api::Api;
use roster_chaos::cluster::Cluster;
use roster_chaos::history::Recorder;
use roster_chaos::time::poll;

/// The query that asks for a confirmed registration.
const CONFIRM: &str = "?confirm=true";

/// How many names the two sessions race for.
const RACES: usize = 5;

/// How long the two agents' packets are dropped while they register: well under the
/// cluster's failure detection, so the link stays up and no partition is reported.
const GLITCH: Duration = Duration::from_millis(600);

#[test]
fn two_confirmed_registrations_racing_for_a_name_never_both_succeed() {
    if !common::networks_available() {
        return;
    }
    let binary = roster_chaos::locate::roster_binary().expect("the roster binary");
    let mut cluster = Cluster::start(binary, 3, Recorder::default()).expect("cluster starts");
    let api = Api::new(&cluster, Duration::from_secs(10));
    let client = &api.client;
    let racers = [(0, api.session(0)), (1, api.session(1))];
    for race in 0..RACES {
        let key = format!("race/{race}");
        let start = Barrier::new(3);
        cluster.net.cut(0, 1).expect("drop the two agents' packets");
        let net = &mut cluster.net;
        let replies: Vec<(Option<u16>, Option<u64>, String)> = std::thread::scope(|s| {
            let handles: Vec<_> = racers
                .iter()
                .map(|(node, id)| {
                    let (start, client, key) = (&start, &client, &key);
                    let url = api.url(*node, &format!("/api/sessions/{id}/names/{key}{CONFIRM}"));
                    s.spawn(move || {
                        start.wait();
                        let reply = client.put(&url, None);
                        let token = reply.ok().and_then(|b| b["token"].as_u64());
                        (reply.status(), token, reply.summary())
                    })
                })
                .collect();
            start.wait();
            std::thread::sleep(GLITCH);
            net.heal().expect("heal");
            handles
                .into_iter()
                .map(|h| h.join().expect("racer"))
                .collect()
        });
        let won: Vec<_> = replies.iter().filter(|r| r.0 == Some(200)).collect();
        assert_eq!(
            won.len(),
            1,
            "race {race}: exactly one racer holds {key}: {replies:?}"
        );
        assert!(
            replies.iter().all(|r| matches!(r.0, Some(200 | 409))),
            "race {race}: the other is refused with 409: {replies:?}"
        );
        let token = won[0].1.expect("the answer carries the fencing token");
        // Every agent shows the winner, with a token no smaller than the one answered.
        poll(
            "every agent shows the winner",
            Duration::from_secs(10),
            Duration::from_millis(50),
            || {
                (0..3)
                    .all(|node| api.holder(node, &key).is_some_and(|(_, t)| t >= token))
                    .then_some(())
            },
        )
        .expect("converged on the winner");
    }
    drop(cluster);
}
