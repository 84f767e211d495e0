//! Direct tests of a core's link lifecycle (`links.rs`): sessions, replacement, severs,
//! dials and overload, with no sockets.

use std::net::SocketAddr;
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
        incarnation: inc(incarnation),
        name: "b",
        limits: Limits::DEFAULT,
    }
}

fn inc(n: u64) -> Incarnation {
    Incarnation::new(n)
}

/// Where the tests' peers listen.
fn addr(incarnation: u64) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 7000 + incarnation as u16))
}

/// Establishes a link to `incarnation` from an accepted connection; returns its session id.
fn link(node: &mut TestNode, incarnation: u64, now: Instant) -> SessionId {
    node.step(|core, host| {
        let admission = core.admit_handshake(now).expect("admitted");
        core.establish(host, admission, peer(incarnation), now)
    })
    .expect("established")
    .session
    .id
}

/// Takes the dial of `incarnation` the core decided and establishes its link at `now`;
/// returns its session id.
fn dialed_link(node: &mut TestNode, incarnation: u64, now: Instant) -> SessionId {
    let dial = node.core.poll_dial().expect("a dial is due");
    assert_eq!(
        (dial.peer, dial.addr),
        (inc(incarnation), addr(incarnation))
    );
    node.step(|core, host| core.establish(host, dial.admission, peer(incarnation), now))
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
    assert!(
        !a.core.link_lost(inc(2), old, now),
        "stale: nothing changes"
    );
    assert_eq!(a.core.link(inc(2)).map(|s| s.id), Some(new.session.id));
    assert!(a.core.link_lost(inc(2), new.session.id, now));
    assert_eq!(a.core.link(inc(2)), None);
}

#[test]
fn frames_of_another_session_are_ignored() {
    let now = Instant::now();
    let mut a = node();
    let session = link(&mut a, 2, now);
    let _ = a.core.poll_transmit(inc(2));
    let scopes = Frame::Scopes {
        joined: vec!["default".into()],
        left: Vec::new(),
    };
    a.step(|core, host| core.handle_frame(host, inc(2), session.next(), scopes.clone(), now));
    assert!(
        a.core.peers_in("default").is_empty(),
        "a stale frame counts for nothing"
    );
    a.step(|core, host| core.handle_frame(host, inc(2), session, scopes, now));
    assert_eq!(a.core.peers_in("default"), vec![inc(2)]);
}

#[test]
fn a_sever_closes_links_and_refuses_handshakes_admitted_before_it() {
    let now = Instant::now();
    let mut a = node();
    link(&mut a, 2, now);
    let in_flight = a.core.admit_handshake(now).expect("admitted");
    let until = now + Duration::from_secs(1);
    let closed = a.core.sever(now, until);
    assert_eq!(
        closed.iter().map(|(p, _)| *p).collect::<Vec<_>>(),
        vec![inc(2)]
    );
    assert_eq!(a.core.link(inc(2)), None);
    a.step(|core, host| core.handle_member_up(host, inc(2), addr(2), now));
    assert!(a.core.poll_dial().is_none(), "no dial during the sever");
    assert!(a.core.poll_timeout().is_some_and(|at| at <= until));
    a.step(|core, host| core.handle_timeout(host, until));
    let dial = a.core.poll_dial().expect("dials wait out the sever");
    assert_eq!((dial.peer, dial.addr), (inc(2), addr(2)));
    a.core.handshake_failed(dial.admission, until);
    let later = until + Duration::from_millis(1);
    let refused = a.step(|core, host| core.establish(host, in_flight, peer(2), later));
    assert_eq!(refused, Err(Refusal::SeveredMeanwhile));
    assert_eq!(a.core.link(inc(2)), None);
}

/// While links are severed no handshake is admitted, inbound or dialed, and so no link
/// appears on the severed node; the first handshake after the sever's end is admitted.
#[test]
fn a_severed_node_admits_no_handshake_until_the_sever_ends() {
    let now = Instant::now();
    let mut a = node();
    a.step(|core, host| core.handle_member_up(host, inc(2), addr(2), now));
    dialed_link(&mut a, 2, now);
    let until = now + Duration::from_millis(60);
    a.core.sever(now, until);
    for ms in 0..60 {
        let at = now + Duration::from_millis(ms);
        if a.core.poll_timeout().is_some_and(|due| due <= at) {
            a.step(|core, host| core.handle_timeout(host, at));
        }
        assert_eq!(
            a.core.admit_handshake(at).err(),
            Some(Refusal::Severed),
            "an inbound handshake {ms} ms into the sever"
        );
        assert!(
            a.core.poll_dial().is_none(),
            "a dial {ms} ms into the sever"
        );
        assert_eq!(a.core.link(inc(2)), None);
    }
    assert!(a.core.admit_handshake(until).is_ok(), "the sever is over");
}

/// A node that started to leave keeps its links but makes no new one: when a peer closes
/// its link on the leave notice, the leaving node does not dial it again (the peer would
/// see a link to a node it knows has left), admits no inbound handshake, and a handshake
/// it admitted before the leave becomes no link.
#[test]
fn a_leaving_node_keeps_its_links_and_makes_no_new_one() {
    let now = Instant::now();
    let mut a = node();
    for peer in [2, 3] {
        a.step(|core, host| core.handle_member_up(host, inc(peer), addr(peer), now));
    }
    let session = dialed_link(&mut a, 2, now);
    let in_flight = a.core.poll_dial().expect("the dial of 3");
    let inbound = a.core.admit_handshake(now).expect("admitted");
    a.core.leave(now);
    assert_eq!(a.core.link(inc(2)).map(|s| s.id), Some(session), "kept");
    assert!(a.core.link_lost(inc(2), session, now), "closed by the peer");
    let later = now + Duration::from_secs(60);
    while let Some(at) = a.core.poll_timeout().filter(|at| *at <= later) {
        a.step(|core, host| core.handle_timeout(host, at));
        assert!(a.core.poll_dial().is_none(), "a dial at {:?}", at - now);
    }
    assert_eq!(a.core.admit_handshake(later).err(), Some(Refusal::Leaving));
    for admission in [in_flight.admission, inbound] {
        let refused = a.step(|core, host| core.establish(host, admission, peer(3), later));
        assert_eq!(refused, Err(Refusal::Leaving));
    }
    assert!(a.core.linked_peers().next().is_none());
}

/// A handshake that was in flight when its peer left the cluster becomes no link (it
/// would bring back the entries purged on the leave); a peer declared dead without
/// leaving may link again (it may have been wrongly declared dead).
#[test]
fn a_handshake_of_a_peer_that_left_becomes_no_link() {
    let now = Instant::now();
    let mut a = node();
    let from_2 = a.core.admit_handshake(now).expect("admitted");
    let from_3 = a.core.admit_handshake(now).expect("admitted");
    for (peer, left) in [(2, true), (3, false)] {
        a.step(|core, host| core.handle_member_up(host, inc(peer), addr(peer), now));
        a.step(|core, host| core.handle_member_down(host, inc(peer), left, now));
    }
    let refused = a.step(|core, host| core.establish(host, from_2, peer(2), now));
    assert_eq!(refused, Err(Refusal::PeerLeft));
    assert_eq!(a.core.link(inc(2)), None);
    let renewed = a.step(|core, host| core.establish(host, from_3, peer(3), now));
    assert!(renewed.is_ok(), "{renewed:?}");
}

/// A peer that refuses every dial (severed, say) is dialed again after waits that double
/// from the policy's first wait, each scaled by a jitter in [0.5, 1]: seven or eight dials
/// in two seconds, not one every few microseconds.
#[test]
fn dials_to_a_peer_that_refuses_back_off_exponentially() {
    let start = Instant::now();
    let mut a = node();
    a.step(|core, host| core.handle_member_up(host, inc(2), addr(2), start));
    let policy = CoreConfig::default().redial;
    let mut dials = Vec::new();
    let mut now = start;
    while now < start + Duration::from_secs(2) {
        if let Some(dial) = a.core.poll_dial() {
            dials.push(now);
            assert!(
                a.core.handshake_failed(dial.admission, now),
                "a dial's failure counts"
            );
            assert!(a.core.poll_dial().is_none(), "one dial at a time");
        }
        let next = a.core.poll_timeout().expect("the next dial is scheduled");
        assert!(next > now, "a deadline that does not move on would spin");
        now = next;
        a.step(|core, host| core.handle_timeout(host, now));
    }
    assert_eq!(
        dials.first(),
        Some(&start),
        "a new member is dialed at once"
    );
    for (k, gap) in dials.windows(2).map(|w| w[1] - w[0]).enumerate() {
        let doubled = (policy.initial * (1 << k)).min(policy.max);
        assert!(
            gap >= doubled / 2 && gap <= doubled,
            "wait {k}: {gap:?} (doubled: {doubled:?})"
        );
    }
    // The shortest waits (10, 20, 40, ... ms) fit 7 redials in 2 s, the longest 6.
    assert!(
        (7..=8).contains(&dials.len()),
        "{} dials in 2 s",
        dials.len()
    );
}

#[test]
fn a_link_that_dies_young_backs_the_next_dial_off() {
    let now = Instant::now();
    let mut a = node();
    a.step(|core, host| core.handle_member_up(host, inc(2), addr(2), now));
    let dial = a
        .core
        .poll_dial()
        .expect("a member with no link is dialed at once");
    let session = a
        .step(|core, host| core.establish(host, dial.admission, peer(2), now))
        .expect("established")
        .session
        .id;
    let lost_at = now + Duration::from_millis(5);
    assert!(a.core.link_lost(inc(2), session, lost_at));
    assert!(a.core.poll_dial().is_none(), "it died young: backs off");
    let initial = CoreConfig::default().redial.initial;
    let due = a.core.poll_timeout().expect("the redial's deadline");
    assert!(
        due >= lost_at + initial / 2 && due <= lost_at + initial,
        "the backoff with its jitter"
    );
    a.step(|core, host| core.handle_timeout(host, due));
    let session = dialed_link(&mut a, 2, due);
    let lived = CoreConfig::default().redial.max;
    assert!(a.core.link_lost(inc(2), session, due + lived));
    assert!(
        a.core.poll_dial().is_some(),
        "a stable link lost is redialed at once"
    );
}

/// The dialer of a pair is the smaller incarnation: the other waits for its dial.
#[test]
fn only_the_smaller_incarnation_dials() {
    let now = Instant::now();
    let mut b = TestNode::new("b", 5, CoreConfig::default());
    b.step(|core, host| core.handle_member_up(host, inc(2), addr(2), now));
    assert!(b.core.poll_dial().is_none());
    b.step(|core, host| core.handle_member_up(host, inc(9), addr(9), now));
    assert_eq!(b.core.poll_dial().map(|d| d.peer), Some(inc(9)));
}

/// A peer that membership never listed, unlinked for the vanish grace, is purged like a
/// dead one (its node may have gone before membership ever reported it); a member is not.
#[test]
fn an_unlisted_peer_unlinked_past_the_grace_vanishes() {
    let now = Instant::now();
    let mut a = node();
    let grace = CoreConfig::default().vanish_grace;
    let to_2 = link(&mut a, 2, now);
    let to_3 = link(&mut a, 3, now);
    a.step(|core, host| core.handle_member_up(host, inc(3), addr(3), now));
    assert!(a.core.link_lost(inc(2), to_2, now));
    assert!(a.core.link_lost(inc(3), to_3, now));
    let _ = std::iter::from_fn(|| a.core.poll_event()).count();
    assert!(a.core.poll_timeout().is_some_and(|at| at <= now + grace));
    a.step(|core, host| core.handle_timeout(host, now + grace));
    let events: Vec<CoreEvent> = std::iter::from_fn(|| a.core.poll_event()).collect();
    assert!(
        events.contains(&CoreEvent::Vanished { peer: inc(2) }),
        "{events:?}"
    );
    assert!(
        !events.contains(&CoreEvent::Vanished { peer: inc(3) }),
        "{events:?}"
    );
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
        let _ = a.step(|core, host| core.send_message(host, inc(2), message));
    }
    assert_eq!(a.core.link(inc(2)), None);
    let events: Vec<CoreEvent> = std::iter::from_fn(|| a.core.poll_event()).collect();
    assert!(
        events.contains(&CoreEvent::Overloaded {
            peer: inc(2),
            session
        }),
        "{events:?}"
    );
    assert!(!a.core.link_lost(inc(2), session, now), "already closed");
}

#[test]
fn a_dead_peer_loses_its_link_and_is_no_longer_dialed() {
    let now = Instant::now();
    let mut a = node();
    a.step(|core, host| core.handle_member_up(host, inc(2), addr(2), now));
    let session = dialed_link(&mut a, 2, now);
    let closed = a.step(|core, host| core.handle_member_down(host, inc(2), false, now));
    assert_eq!(closed.map(|s| s.id), Some(session));
    assert_eq!(a.core.link(inc(2)), None);
    a.step(|core, host| core.handle_timeout(host, now + Duration::from_secs(60)));
    assert!(a.core.poll_dial().is_none(), "not a member: not dialed");
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
            let admission = core.admit_handshake(now).expect("admitted");
            let hello = PeerHello {
                incarnation: inc(3),
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
    assert!(a.core.link_lost(inc(2), first, now));
    assert_eq!(limits(&mut a), Vec::new(), "unchanged: nothing reported");
    assert!(a.core.link_lost(inc(3), second, now));
    assert_eq!(limits(&mut a), vec![None], "no link: no limits");
}
