//! Direct tests of a core's link lifecycle (`links.rs`): sessions, replacement, severs,
//! dials and overload, with no sockets.

use std::time::{Duration, Instant};

use super::pair::TestNode;
use crate::link_table::{Refusal, SessionId};
use crate::replication::core::{CoreConfig, CoreEvent};
use crate::replication::links::PeerHello;
use crate::replication::wire::Frame;
use crate::vocab::key::Limits;
use crate::vocab::pid::{Incarnation, Pid};

/// A process on the peer.
const PID: Pid = Pid::new(Incarnation::new(2), 1);

fn node() -> TestNode {
    TestNode::new("a", 1, CoreConfig::default())
}

fn peer(incarnation: u64) -> PeerHello<'static> {
    PeerHello {
        incarnation,
        name: "b",
        limits: Limits::DEFAULT,
    }
}

/// Establishes a link to `incarnation` as a dialer would; returns its session id.
fn link(node: &mut TestNode, incarnation: u64, now: Instant) -> SessionId {
    node.step(|core, host| {
        let admission = core.admit_dial(incarnation, now).expect("admitted");
        core.establish(host, admission, peer(incarnation), now)
    })
    .expect("established")
    .session
    .id
}

#[test]
fn a_late_loss_of_a_replaced_link_leaves_the_new_one() {
    let now = Instant::now();
    let mut a = node();
    let old = link(&mut a, 2, now);
    let new = a.step(|core, host| {
        let admission = core.admit_handshake(now).expect("admitted");
        core.establish(host, admission, peer(2), now)
    });
    let new = new.expect("established");
    assert_eq!(new.replaced.map(|s| s.id), Some(old));
    assert!(!a.core.link_lost(2, old, now), "stale: nothing changes");
    assert_eq!(a.core.link(2).map(|s| s.id), Some(new.session.id));
    assert!(a.core.link_lost(2, new.session.id, now));
    assert_eq!(a.core.link(2), None);
}

#[test]
fn frames_of_another_session_are_ignored() {
    let now = Instant::now();
    let mut a = node();
    let session = link(&mut a, 2, now);
    let _ = a.core.poll_transmit(2);
    let scopes = Frame::Scopes {
        joined: vec!["default".into()],
        left: Vec::new(),
    };
    a.step(|core, host| core.handle_frame(host, 2, session.next(), scopes.clone(), now));
    assert!(
        a.core.peers_in("default").is_empty(),
        "a stale frame counts for nothing"
    );
    a.step(|core, host| core.handle_frame(host, 2, session, scopes, now));
    assert_eq!(a.core.peers_in("default"), vec![2]);
}

#[test]
fn a_sever_closes_links_and_refuses_handshakes_admitted_before_it() {
    let now = Instant::now();
    let mut a = node();
    link(&mut a, 2, now);
    let in_flight = a.core.admit_handshake(now).expect("admitted");
    let until = now + Duration::from_secs(1);
    let closed = a.core.sever(now, until);
    assert_eq!(closed.iter().map(|(p, _)| *p).collect::<Vec<_>>(), vec![2]);
    assert_eq!(a.core.link(2), None);
    assert_eq!(a.core.admit_dial(2, now), Err(Refusal::Severed));
    assert_eq!(
        a.core.dial_wait_until(2, now, 1.0),
        until,
        "dials wait out the sever"
    );
    let later = until + Duration::from_millis(1);
    let refused = a.step(|core, host| core.establish(host, in_flight, peer(2), later));
    assert_eq!(refused, Err(Refusal::SeveredMeanwhile));
    assert_eq!(a.core.link(2), None);
}

#[test]
fn a_link_that_dies_young_backs_the_next_dial_off() {
    let now = Instant::now();
    let mut a = node();
    let session = link(&mut a, 2, now);
    assert!(a.core.link_lost(2, session, now + Duration::from_millis(5)));
    let wait = a.core.dial_wait_until(2, now, 1.0) - now;
    assert_eq!(wait, CoreConfig::default().redial.initial);
    let session = link(&mut a, 2, now);
    let lived = CoreConfig::default().redial.max;
    assert!(a.core.link_lost(2, session, now + lived));
    assert_eq!(a.core.dial_wait_until(2, now + lived, 1.0), now + lived);
}

#[test]
fn an_overloaded_link_is_closed_by_the_core_with_its_session() {
    let now = Instant::now();
    let mut a = TestNode::new(
        "a",
        1,
        CoreConfig {
            max_queued_ops: 2,
            ..CoreConfig::default()
        },
    );
    let session = link(&mut a, 2, now);
    for _ in 0..3 {
        let message = crate::replication::wire::Message {
            to: PID,
            from: None,
            payload: crate::vocab::meta::Meta::EMPTY,
        };
        let _ = a.step(|core, host| core.send_message(host, 2, message));
    }
    assert_eq!(a.core.link(2), None);
    let events: Vec<CoreEvent> = std::iter::from_fn(|| a.core.poll_event()).collect();
    assert!(
        events.contains(&CoreEvent::Overloaded { peer: 2, session }),
        "{events:?}"
    );
    assert!(!a.core.link_lost(2, session, now), "already closed");
}

#[test]
fn a_dead_peer_loses_its_link_and_its_dial_claim_ends() {
    let now = Instant::now();
    let mut a = node();
    assert!(a.core.claim_dial(2));
    let session = link(&mut a, 2, now);
    assert!(a.core.dial_done(2, true), "linked: the dial task ends");
    let closed = a.step(|core, host| core.peer_dead(host, 2));
    assert_eq!(closed.map(|s| s.id), Some(session));
    assert_eq!(a.core.link(2), None);
    assert!(a.core.claim_dial(2), "a new dial task may start");
}

/// The smallest limits among the linked peers are reported when a link comes or goes
/// and they change, and only then.
#[test]
fn peer_limits_are_reported_as_links_come_and_go() {
    let now = Instant::now();
    let mut a = node();
    let limits = |a: &mut TestNode| -> Vec<Option<Limits>> {
        std::iter::from_fn(|| a.core.poll_event())
            .filter_map(|e| match e {
                CoreEvent::PeerLimits(limits) => Some(limits),
                _ => None,
            })
            .collect()
    };
    let first = link(&mut a, 2, now);
    assert_eq!(limits(&mut a), vec![Some(Limits::DEFAULT)]);
    let small = Limits {
        max_meta_bytes: 100,
        ..Limits::DEFAULT
    };
    let second = a
        .step(|core, host| {
            let admission = core.admit_dial(3, now).expect("admitted");
            let hello = PeerHello {
                incarnation: 3,
                name: "c",
                limits: small,
            };
            core.establish(host, admission, hello, now)
        })
        .expect("established")
        .session
        .id;
    assert_eq!(
        limits(&mut a),
        vec![Some(Limits::DEFAULT.min(small))],
        "the smaller peer sets them"
    );
    assert!(a.core.link_lost(2, first, now));
    assert_eq!(limits(&mut a), Vec::new(), "unchanged: nothing reported");
    assert!(a.core.link_lost(3, second, now));
    assert_eq!(limits(&mut a), vec![None], "no link: no limits");
}
