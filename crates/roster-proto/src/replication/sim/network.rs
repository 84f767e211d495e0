//! The simulated network: connections and membership, driving the cores' link lifecycle
//! ([`Core::handle_member_up`], [`Core::poll_dial`], [`Core::establish`],
//! [`Core::link_lost`], [`Core::sever`], ...) the way the tokio driver does, with every
//! step at a random time.
//!
//! A connection has two ends, the dialer's and the acceptor's. Each end runs its half of
//! the handshake and finishes it at its own time, so one end may be linked (and sending)
//! while the other is still in its handshake, or has already closed. Closing an end
//! drops what the other end sent it; the other end learns of the close after the frames
//! the closer sent have arrived (TCP's FIN after the data). A partition breaks a
//! connection at both ends, noticed after a random silence. The cores decide every dial:
//! each one [`Core::poll_dial`] hands out becomes a connection (or, to a node that is
//! gone or cut off, a connect that fails after a while).

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::time::{Duration, Instant};

use rand::Rng;

use super::{Sim, pair};
use crate::link_table::{Admission, LinkSession, RedialPolicy, Refusal, SessionId};
use crate::replication::links::{Dial, PeerHello};
use crate::replication::wire::Frame;
use crate::vocab::key::Limits;
use crate::vocab::pid::Incarnation;

/// The dialer's end of a connection is `ends[DIALER]`.
const DIALER: usize = 0;

/// A simulated TCP connection between two nodes.
pub(super) struct Conn {
    pub(super) ends: [End; 2],
    /// Broken by a partition or a crash: nothing crosses it any more, not even a close.
    pub(super) broken: bool,
}

/// One end of a connection.
pub(super) struct End {
    pub(super) node: usize,
    /// The incarnation of the node at this end (a restarted node has none of its ends).
    pub(super) incarnation: Incarnation,
    pub(super) state: EndState,
    /// Frames this end sent, in flight to the other end: (arrival, frame).
    pub(super) outbound: VecDeque<(Instant, Frame)>,
    /// When this end learns that the other end closed or the connection broke.
    close_notice: Option<Instant>,
    /// How many severs this end's node had seen when its handshake was admitted: a
    /// later sever, even one of 0 ms in the same instant, is one the handshake crossed.
    severs_before: u64,
}

#[derive(PartialEq, Eq)]
pub(super) enum EndState {
    /// Running its half of the handshake, done at `at`; `admission` from the core.
    Handshaking {
        admission: Admission,
        at: Instant,
    },
    /// A link of the core, with the session the core gave it.
    Linked {
        session: SessionId,
    },
    Closed,
}

/// Something due at a time; processed in time order.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Due {
    /// The front frame of `conn`'s end `from` arrives at the other end.
    Frame { conn: u64, from: usize },
    /// End `end` of `conn` finishes its handshake.
    Handshake { conn: u64, end: usize },
    /// End `end` of `conn` learns that the connection closed.
    Closed { conn: u64, end: usize },
    /// The connect of failing dial `id` gives up.
    DialFails { id: u64 },
}

/// A dial to a node that is gone or cut off: its connect fails at `at`.
pub(super) struct FailingDial {
    at: Instant,
    node: usize,
    admission: Admission,
}

/// The network state of a simulation.
#[derive(Default)]
pub(super) struct Network {
    pub(super) conns: BTreeMap<u64, Conn>,
    next_conn: u64,
    /// Membership news on its way: (when, node, peer's incarnation).
    pub(super) pending_members: Vec<(Instant, usize, Incarnation)>,
    /// Dials whose connect will fail, by id.
    pub(super) failing: BTreeMap<u64, FailingDial>,
    next_failing: u64,
    /// When each node's core last had a dial of a peer fail: its next dial of that peer
    /// must wait for the backoff.
    last_failure: BTreeMap<(usize, Incarnation), Instant>,
    /// Pairs (i < j) cut by a partition.
    pub(super) cut: BTreeSet<(usize, usize)>,
    /// Per node: incarnations its membership declared dead (until a heal).
    pub(super) declared_dead: BTreeMap<usize, BTreeSet<Incarnation>>,
    /// Per node: incarnations its membership reported as having left (for good: a node
    /// that left never comes back under its incarnation).
    pub(super) departed: BTreeMap<usize, BTreeSet<Incarnation>>,
    /// Incarnations of the nodes that started to leave.
    pub(super) leaving: BTreeSet<Incarnation>,
    /// The latest sever of each node: until when it lasts, and how many severs the node
    /// has had (the order of a sever and an admission in the same instant is in the count,
    /// not in the time).
    severed: BTreeMap<usize, Sever>,
    /// The same for each node cut off from one peer (by incarnation), as
    /// `isolate_from` does.
    severed_peers: BTreeMap<(usize, Incarnation), Sever>,
    /// Link-layer invariant violations seen during the run.
    pub(super) violations: Vec<String>,
    /// What happened to links during the run.
    pub(super) counts: LinkCounts,
    /// Frames and their encoded bytes (length prefix included) put on connections, counted
    /// only when set (the scale measurement; encoding every frame again would slow the
    /// sweep).
    pub(super) traffic: Option<(u64, u64)>,
}

/// What happened to links during a run: the simulation must cover each kind.
#[derive(Default, Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct LinkCounts {
    pub(super) established: u64,
    /// Completed handshakes the core refused (a sever since their admission).
    pub(super) refused_after_handshake: u64,
    /// Connections refused before their handshake.
    pub(super) refused_before_handshake: u64,
    /// Links a replacing link closed.
    pub(super) replaced: u64,
    /// Links lost while both ends were linked, or closed by a core.
    pub(super) lost: u64,
    /// Connections that closed while an end was still in its handshake.
    pub(super) closed_in_handshake: u64,
    pub(super) dial_failures: u64,
    /// Dials made again after a failure, once the backoff passed.
    pub(super) redials_after_backoff: u64,
    /// Peers purged as vanished (unlinked past the grace, unknown to membership).
    pub(super) vanished: u64,
    pub(super) severs: u64,
    /// Nodes cut off from one peer.
    pub(super) peer_severs: u64,
    /// Links a core closed because they brought nothing for its silence (half-open
    /// connections: one end never hears of the break).
    pub(super) silent: u64,
    /// Digests sent for anti-entropy (each core's periodic timer).
    pub(super) digests: u64,
    /// Links closed by membership's report that their peer left.
    pub(super) closed_on_leave: u64,
    /// Handshakes refused, before or after they ran, because an end was leaving or had
    /// left.
    pub(super) refused_for_a_departure: u64,
}

/// The severs of one node.
#[derive(Clone, Copy, Default)]
struct Sever {
    until: Option<Instant>,
    count: u64,
}

impl Sever {
    /// One more sever, lasting until `until`.
    fn record(&mut self, until: Instant) {
        self.until = Some(until);
        self.count += 1;
    }
}

impl Network {
    /// Whether `node`'s membership reported the node of incarnation `peer` as having left.
    fn has_departed(&self, node: usize, peer: Incarnation) -> bool {
        self.departed.get(&node).is_some_and(|d| d.contains(&peer))
    }

    /// How many severs of its links to `peer` `node` has had (of all its links, or of
    /// that peer's).
    fn severs_of(&self, node: usize, peer: Incarnation) -> u64 {
        self.severed.get(&node).map_or(0, |s| s.count)
            + self.severed_peers.get(&(node, peer)).map_or(0, |s| s.count)
    }

    /// Whether links from `node` to `peer` are severed at `now`.
    fn severed_at(&self, node: usize, peer: Incarnation, now: Instant) -> bool {
        let active = |s: Option<&Sever>| s.and_then(|s| s.until).is_some_and(|until| now < until);
        active(self.severed.get(&node)) || active(self.severed_peers.get(&(node, peer)))
    }

    /// Frames in flight on every connection.
    pub(super) fn in_flight(&self) -> usize {
        self.conns
            .values()
            .flat_map(|c| c.ends.iter())
            .map(|e| e.outbound.len())
            .sum()
    }

    /// The connection and end of `node` that carry its link of `session`.
    fn end_of_session(&self, node: usize, session: SessionId) -> Option<(u64, usize)> {
        self.conns.iter().find_map(|(id, conn)| {
            conn.ends
                .iter()
                .position(|e| e.node == node && e.state == EndState::Linked { session })
                .map(|end| (*id, end))
        })
    }
}

impl Sim {
    fn delay(&mut self) -> Duration {
        Duration::from_millis(self.rng.random_range(0..=self.max_delay_ms))
    }

    /// Whether `node`'s membership lists the node of incarnation `peer` alive.
    pub(super) fn member(&self, node: usize, peer: Incarnation) -> bool {
        self.nodes[node]
            .as_ref()
            .is_some_and(|n| n.core.links.is_member(peer))
    }

    /// Membership of `node` lists the node of incarnation `peer` alive, now or, one time
    /// in three, up to 2.5 s later (gossip is slow to reach it); a node that is gone by
    /// then is never listed.
    pub(super) fn member_up_sometime(&mut self, node: usize, peer: Incarnation) {
        if self.rng.random_bool(1.0 / 3.0) {
            let at = self.now + Duration::from_millis(self.rng.random_range(0..2500));
            self.net.pending_members.push((at, node, peer));
        } else {
            self.member_up(node, peer);
        }
    }

    /// Membership of `node` lists the node of incarnation `peer` alive.
    pub(super) fn member_up(&mut self, node: usize, peer: Incarnation) {
        let now = self.now;
        if self.net.has_departed(node, peer) {
            // Membership never lists a member that left again.
            return;
        }
        let Some(index) = self.index_of(peer) else {
            return;
        };
        let Some(n) = self.nodes[node].as_mut() else {
            return;
        };
        let addr = std::net::SocketAddr::from(([10, 0, 0, 1], 7000 + index as u16));
        n.step(|core, host| core.handle_member_up(host, peer, addr, now));
        self.flush(node);
    }

    /// Makes the connections of the dials `node`'s core decided.
    pub(super) fn start_dials(&mut self, node: usize, dials: Vec<Dial>) {
        for dial in dials {
            if let Some(failed) = self.net.last_failure.remove(&(node, dial.peer)) {
                self.net.counts.redials_after_backoff += 1;
                let waited = self.now.saturating_duration_since(failed);
                let least = RedialPolicy::default().initial / 2;
                if waited < least {
                    self.net.violations.push(format!(
                        "t={} n{node}: redialed {} {waited:?} after a failed dial (backoff {least:?})",
                        self.elapsed_ms(),
                        dial.peer
                    ));
                }
            }
            self.connect(node, dial);
        }
    }

    /// The dial of `node` to `dial.peer` connects, or fails after a while if nobody
    /// answers.
    fn connect(&mut self, node: usize, dial: Dial) {
        let now = self.now;
        let Dial {
            peer, admission, ..
        } = dial;
        let target = self
            .index_of(peer)
            .filter(|&to| !self.net.cut.contains(&pair(node, to)));
        let Some(to) = target else {
            // Nobody answers (the node is gone or cut off): the connect times out.
            let at = now + Duration::from_millis(self.rng.random_range(1..=200));
            let id = self.net.next_failing;
            self.net.next_failing += 1;
            self.net.failing.insert(
                id,
                FailingDial {
                    at,
                    node,
                    admission,
                },
            );
            return;
        };
        let at_dialer = now + self.delay() * 2 + Duration::from_millis(1);
        let at_acceptor = now + self.delay() * 2 + Duration::from_millis(1);
        let dialer_inc = self.nodes[node].as_ref().expect("alive").incarnation;
        let acceptor = self.nodes[to].as_mut().expect("alive");
        let accepted = acceptor.core.admit_handshake(now);
        let conn_id = self.net.next_conn;
        self.net.next_conn += 1;
        let (dialer_severs, acceptor_severs) = (
            self.net.severs_of(node, peer),
            self.net.severs_of(to, dialer_inc),
        );
        let end = |node, incarnation, severs_before, state| End {
            node,
            incarnation,
            state,
            outbound: VecDeque::new(),
            close_notice: None,
            severs_before,
        };
        let mut conn = Conn {
            ends: [
                end(
                    node,
                    dialer_inc,
                    dialer_severs,
                    EndState::Handshaking {
                        admission,
                        at: at_dialer,
                    },
                ),
                end(to, peer, acceptor_severs, EndState::Closed),
            ],
            broken: false,
        };
        match accepted {
            Ok(admission) => {
                conn.ends[1].state = EndState::Handshaking {
                    admission,
                    at: at_acceptor,
                }
            }
            // Refused before the handshake: closed at once.
            Err(refusal) => {
                self.net.counts.refused_before_handshake += 1;
                if refusal == Refusal::Leaving {
                    self.net.counts.refused_for_a_departure += 1;
                }
                conn.ends[DIALER].close_notice = Some(now + self.delay());
            }
        }
        self.net.conns.insert(conn_id, conn);
    }

    /// The dial of `node` to `peer` failed: its core backs off.
    fn dial_failed(&mut self, node: usize, admission: Admission) {
        let now = self.now;
        let peer = admission.dialed().expect("a dial's admission");
        self.net.counts.dial_failures += 1;
        if let Some(n) = self.nodes[node].as_mut() {
            // A dial of a peer declared dead (and perhaps listed again) meanwhile does not
            // count toward its backoff.
            if n.core.handshake_failed(admission, now) {
                self.net.last_failure.insert((node, peer), now);
            }
            self.flush(node);
        }
    }

    /// End `end` of `conn` closes: the other end loses what it sent and learns of the
    /// close after what this end sent has arrived.
    pub(super) fn close_end(&mut self, conn_id: u64, end: usize) {
        let delay = self.delay();
        self.close_end_noticed_after(conn_id, end, delay);
    }

    /// [`Sim::close_end`], the other end noticing `delay` after the close at the
    /// earliest.
    fn close_end_noticed_after(&mut self, conn_id: u64, end: usize, delay: Duration) {
        let now = self.now;
        let notice = now + delay;
        let Some(conn) = self.net.conns.get_mut(&conn_id) else {
            return;
        };
        conn.ends[end].state = EndState::Closed;
        conn.ends[end].close_notice = None;
        let last = conn.ends[end].outbound.back().map_or(now, |(at, _)| *at);
        let broken = conn.broken;
        let other = &mut conn.ends[1 - end];
        other.outbound.clear();
        // Over a broken connection the close does not cross either.
        if other.state != EndState::Closed && !broken {
            other.close_notice = Some(other.close_notice.unwrap_or(notice).min(last.max(notice)));
        }
        self.drop_if_closed(conn_id);
    }

    /// A partition or a crash broke `conn`: nothing more crosses it, and each open end
    /// notices after a while (a reset, a failed write), except, one time in four, one
    /// end that never hears of it (half open): only its core's silence timer closes it.
    pub(super) fn break_conn(&mut self, conn_id: u64) {
        let now = self.now;
        let half_open = self
            .rng
            .random_bool(0.25)
            .then(|| self.rng.random_range(0..2));
        let silences = [0, 1].map(|end| {
            (half_open != Some(end))
                .then(|| Duration::from_millis(self.rng.random_range(50..=1500)))
        });
        let Some(conn) = self.net.conns.get_mut(&conn_id) else {
            return;
        };
        conn.broken = true;
        for (end, silence) in conn.ends.iter_mut().zip(silences) {
            end.outbound.clear();
            if let Some(silence) = silence
                && end.state != EndState::Closed
                && end.close_notice.is_none()
            {
                end.close_notice = Some(now + silence);
            }
        }
    }

    fn drop_if_closed(&mut self, conn_id: u64) {
        if self
            .net
            .conns
            .get(&conn_id)
            .is_some_and(|c| c.ends.iter().all(|e| e.state == EndState::Closed))
        {
            self.net.conns.remove(&conn_id);
        }
    }

    /// Closes the end of `node` carrying its link of `session` (the core already dropped
    /// the link).
    pub(super) fn close_session(&mut self, node: usize, session: SessionId) {
        if let Some((conn, end)) = self.net.end_of_session(node, session) {
            self.close_end(conn, end);
        }
    }

    /// Every connection of a crashed node breaks; its dials die with it.
    pub(super) fn crash_links(&mut self, node: usize, incarnation: Incarnation) {
        self.net.failing.retain(|_, f| f.node != node);
        self.net.last_failure.retain(|(n, _), _| *n != node);
        self.net.pending_members.retain(|(_, n, _)| *n != node);
        if let Some(sever) = self.net.severed.get_mut(&node) {
            sever.until = None;
        }
        for ((_, _), sever) in self
            .net
            .severed_peers
            .range_mut((node, Incarnation::new(0))..=(node, Incarnation::new(u64::MAX)))
        {
            sever.until = None;
        }
        let conns: Vec<u64> = self
            .net
            .conns
            .iter()
            .filter(|(_, c)| c.ends.iter().any(|e| e.incarnation == incarnation))
            .map(|(id, _)| *id)
            .collect();
        for id in conns {
            let conn = self.net.conns.get_mut(&id).expect("listed");
            let end = conn
                .ends
                .iter()
                .position(|e| e.incarnation == incarnation)
                .expect("listed");
            conn.ends[end].outbound.clear();
            self.close_end(id, end);
        }
    }

    /// Membership of `node` declared the node of incarnation `peer` dead (`left`: it left
    /// on purpose): only a node it listed (no down comes for a node membership never
    /// reported up), but a leave notice whatever it listed (as the shell's `LeftEarlier`).
    pub(super) fn declare_dead(&mut self, node: usize, peer: Incarnation, left: bool) {
        let now = self.now;
        let Some(n) = self.nodes[node].as_mut() else {
            return;
        };
        if !left && !n.core.links.is_member(peer) {
            return;
        }
        if let Some(session) = n.step(|core, host| core.handle_member_down(host, peer, left, now)) {
            if left {
                self.net.counts.closed_on_leave += 1;
            }
            self.close_session(node, session.id);
        }
        if left {
            self.net.departed.entry(node).or_default().insert(peer);
        }
        // A member listed again later starts afresh, with no backoff.
        self.net.last_failure.remove(&(node, peer));
        self.flush(node);
    }

    /// Puts what the core of `from` has for `peer` on the connection of its current link.
    pub(super) fn send(&mut self, from: usize, peer: Incarnation, frames: Vec<Frame>) {
        let Some(session) = self.nodes[from].as_ref().and_then(|n| n.core.link(peer)) else {
            return;
        };
        let Some((conn_id, end)) = self.net.end_of_session(from, session.id) else {
            self.net.violations.push(format!(
                "t={} n{from} has a link to {peer} (session {}) that no connection carries",
                self.elapsed_ms(),
                session.id
            ));
            return;
        };
        if self.net.conns[&conn_id].broken {
            return;
        }
        for frame in frames {
            if matches!(frame, Frame::Digest { .. }) {
                self.net.counts.digests += 1;
            }
            if let Some((count, bytes)) = &mut self.net.traffic {
                *count += 1;
                *bytes += frame.encode().len() as u64 + 4;
            }
            let delay = self.delay();
            let end = &mut self.net.conns.get_mut(&conn_id).expect("found").ends[end];
            let arrival = end
                .outbound
                .back()
                .map_or(self.now + delay, |(last, _)| (*last).max(self.now + delay));
            end.outbound.push_back((arrival, frame));
        }
    }

    /// The earliest thing due at or before now, if any.
    fn next_due(&self) -> Option<(Instant, Due)> {
        let mut due: Vec<(Instant, Due)> = Vec::new();
        for (&conn, c) in &self.net.conns {
            for (end, e) in c.ends.iter().enumerate() {
                let receiver = &c.ends[1 - end];
                if let (Some((at, _)), EndState::Linked { .. }) =
                    (e.outbound.front(), &receiver.state)
                {
                    due.push((*at, Due::Frame { conn, from: end }));
                }
                if let EndState::Handshaking { at, .. } = e.state {
                    due.push((at, Due::Handshake { conn, end }));
                }
                if let Some(at) = e.close_notice {
                    due.push((at, Due::Closed { conn, end }));
                }
            }
        }
        for (&id, failing) in &self.net.failing {
            due.push((failing.at, Due::DialFails { id }));
        }
        due.into_iter().filter(|(at, _)| *at <= self.now).min()
    }

    /// Processes everything due until nothing is.
    pub(super) fn run_network(&mut self) {
        while let Some((_, due)) = self.next_due() {
            match due {
                Due::Frame { conn, from } => self.on_frame(conn, from),
                Due::Handshake { conn, end } => self.on_handshake(conn, end),
                Due::Closed { conn, end } => self.on_closed(conn, end),
                Due::DialFails { id } => {
                    let failing = self.net.failing.remove(&id).expect("due");
                    self.dial_failed(failing.node, failing.admission);
                }
            }
        }
    }

    fn on_frame(&mut self, conn_id: u64, from: usize) {
        let conn = self.net.conns.get_mut(&conn_id).expect("due");
        let (_, frame) = conn.ends[from].outbound.pop_front().expect("due");
        let sender = conn.ends[from].incarnation;
        let receiver = &conn.ends[1 - from];
        let EndState::Linked { session } = receiver.state else {
            unreachable!("frames are due only at linked ends");
        };
        let to = receiver.node;
        // Every frame crosses the real encoder and decoder.
        let frame = Frame::decode(&frame.encode(), &Limits::CEILING).expect("valid frame");
        if std::env::var_os("ROSTER_SIM_TRACE").is_some() {
            println!("t={} {sender}->n{to}: {frame:?}", self.elapsed_ms());
        }
        let node = self.nodes[to]
            .as_mut()
            .expect("a linked end's node is alive");
        node.step(|core, host| core.handle_frame(host, sender, session, frame, self.now));
        self.flush(to);
    }

    fn on_handshake(&mut self, conn_id: u64, end: usize) {
        let now = self.now;
        let conn = self.net.conns.get(&conn_id).expect("due");
        let severs_before = conn.ends[end].severs_before;
        let (node, peer) = (conn.ends[end].node, conn.ends[1 - end].incarnation);
        let Some(peer_name) = self
            .index_of(peer)
            .and_then(|i| self.nodes[i].as_ref())
            .map(|n| n.name.clone())
        else {
            // The peer crashed mid-handshake; its close notice fails this end.
            return self.on_closed(conn_id, end);
        };
        // Taken out of the end: the core ends it, whatever comes of the handshake.
        let state = std::mem::replace(
            &mut self.net.conns.get_mut(&conn_id).expect("due").ends[end].state,
            EndState::Closed,
        );
        let EndState::Handshaking { admission, .. } = state else {
            unreachable!("due only while handshaking");
        };
        let n = self.nodes[node]
            .as_mut()
            .expect("a handshaking end's node is alive");
        let hello = PeerHello {
            incarnation: peer,
            name: &peer_name,
            limits: Limits::DEFAULT,
        };
        let established = n.step(|core, host| core.establish(host, admission, hello, now));
        match established {
            Ok(established) => {
                self.net.counts.established += 1;
                let me = self.nodes[node].as_ref().expect("alive").incarnation;
                if self.net.leaving.contains(&me) {
                    self.net.violations.push(format!(
                        "t={} n{node}: link to {peer} established while leaving",
                        self.elapsed_ms()
                    ));
                }
                if self.net.has_departed(node, peer) {
                    self.net.violations.push(format!(
                        "t={} n{node}: link to {peer} established after it left",
                        self.elapsed_ms()
                    ));
                }
                if self.net.severed_at(node, peer, now)
                    || self.net.severs_of(node, peer) != severs_before
                {
                    self.net.violations.push(format!(
                        "t={} n{node}: link to {peer} established across a sever",
                        self.elapsed_ms()
                    ));
                }
                let conn = self.net.conns.get_mut(&conn_id).expect("due");
                conn.ends[end].state = EndState::Linked {
                    session: established.session.id,
                };
                if let Some(old) = established.replaced {
                    self.net.counts.replaced += 1;
                    // A reader of the old link that already saw its end reports it late:
                    // the core must not take that for the new link.
                    let reader_in_flight = self
                        .net
                        .end_of_session(node, old.id)
                        .is_some_and(|(c, e)| self.net.conns[&c].ends[e].close_notice.is_some());
                    self.close_session(node, old.id);
                    if reader_in_flight {
                        let n = self.nodes[node].as_mut().expect("alive");
                        if n.core.link_lost(peer, old.id, now) {
                            self.net.violations.push(format!(
                                "t={} n{node}: a late loss of replaced link {} closed the new one",
                                self.elapsed_ms(),
                                old.id
                            ));
                        }
                    }
                }
            }
            Err(refusal) => {
                self.net.counts.refused_after_handshake += 1;
                if matches!(refusal, Refusal::Leaving | Refusal::PeerLeft) {
                    self.net.counts.refused_for_a_departure += 1;
                }
                self.log.push(format!(
                    "t={} n{node}: link to {peer} refused after its handshake: {refusal}",
                    self.elapsed_ms()
                ));
                self.close_end(conn_id, end);
            }
        }
        self.flush(node);
    }

    fn on_closed(&mut self, conn_id: u64, end: usize) {
        let now = self.now;
        let conn = self.net.conns.get_mut(&conn_id).expect("due");
        let (node, peer) = (conn.ends[end].node, conn.ends[1 - end].incarnation);
        // Taken out of the end, which closes here whatever it was.
        let state = std::mem::replace(&mut conn.ends[end].state, EndState::Closed);
        match state {
            EndState::Handshaking { admission, .. } => {
                self.net.counts.closed_in_handshake += 1;
                if end == DIALER {
                    self.dial_failed(node, admission);
                } else if let Some(n) = self.nodes[node].as_mut() {
                    n.core.handshake_failed(admission, now);
                }
                self.close_end(conn_id, end);
            }
            EndState::Linked { session } => {
                self.net.counts.lost += 1;
                let n = self.nodes[node]
                    .as_mut()
                    .expect("a linked end's node is alive");
                n.step(|core, _| core.link_lost(peer, session, now));
                self.close_end(conn_id, end);
                self.flush(node);
            }
            EndState::Closed => {}
        }
    }

    /// Closes one end of a random connection whose ends are both linked (a read error).
    pub(super) fn drop_random_link(&mut self) {
        let linked: Vec<u64> = self
            .net
            .conns
            .iter()
            .filter(|(_, c)| {
                c.ends
                    .iter()
                    .all(|e| matches!(e.state, EndState::Linked { .. }))
            })
            .map(|(id, _)| *id)
            .collect();
        if linked.is_empty() {
            return;
        }
        let conn_id = linked[self.rng.random_range(0..linked.len())];
        let end = self.rng.random_range(0..2);
        // Half open: the other end hears nothing of the close until its silence timeout,
        // and may get a new connection from the same peer before.
        let half_open = self.rng.random_bool(0.5);
        self.log.push(format!(
            "t={} drop conn {conn_id} at end {end} (half open: {half_open})",
            self.elapsed_ms()
        ));
        let conn = self.net.conns.get(&conn_id).expect("listed");
        let (node, peer) = (conn.ends[end].node, conn.ends[1 - end].incarnation);
        let EndState::Linked { session } = conn.ends[end].state else {
            unreachable!("both ends are linked");
        };
        // The end's read failed: it tells its core and closes.
        let now = self.now;
        let n = self.nodes[node]
            .as_mut()
            .expect("a linked end's node is alive");
        n.step(|core, _| core.link_lost(peer, session, now));
        self.net.counts.lost += 1;
        let notice = if half_open {
            Duration::from_millis(self.rng.random_range(50..=1500))
        } else {
            self.delay()
        };
        self.close_end_noticed_after(conn_id, end, notice);
        self.flush(node);
    }

    /// `node` severs its links for `duration` (fault injection of the shell).
    pub(super) fn sever(&mut self, node: usize, duration: Duration) {
        let now = self.now;
        let Some(n) = self.nodes[node].as_mut() else {
            return;
        };
        let closed = n.core.sever(now, now + duration);
        self.net.counts.severs += 1;
        self.net
            .severed
            .entry(node)
            .or_default()
            .record(now + duration);
        self.severed(node, closed);
    }

    /// `node` is cut off from the node of incarnation `peer` for `duration` (its links to
    /// it closed and refused, as `isolate_from` does on one side).
    pub(super) fn sever_peer(&mut self, node: usize, peer: Incarnation, duration: Duration) {
        let now = self.now;
        let Some(n) = self.nodes[node].as_mut() else {
            return;
        };
        let closed = n.core.sever_peers(&[peer], now, now + duration);
        self.net.counts.peer_severs += 1;
        self.net
            .severed_peers
            .entry((node, peer))
            .or_default()
            .record(now + duration);
        self.severed(node, closed);
    }

    /// The links a sever on `node` closed: their connections close (the core redials
    /// its members when the sever ends).
    fn severed(&mut self, node: usize, closed: Vec<(Incarnation, LinkSession)>) {
        for (_, session) in &closed {
            self.close_session(node, session.id);
        }
        self.flush(node);
    }

    /// Checks the link layer: every link a core lists is carried by an open connection
    /// end of its node, and every linked end is a link its core lists; with `healed`,
    /// every pair of live nodes is linked, both ends on the same connection.
    pub(super) fn check_links(&self, healed: bool) -> Vec<String> {
        let mut problems = Vec::new();
        for (id, conn) in &self.net.conns {
            for (end, e) in conn.ends.iter().enumerate() {
                let EndState::Linked { session } = e.state else {
                    continue;
                };
                let peer = conn.ends[1 - end].incarnation;
                let listed = self.nodes[e.node]
                    .as_ref()
                    .and_then(|n| n.core.link(peer))
                    .is_some_and(|s| s.id == session);
                if !listed {
                    problems.push(format!(
                        "n{}: connection {id} is linked (session {session}) but its core \
                         does not list that link to {peer}",
                        e.node
                    ));
                }
            }
        }
        let alive = self.alive();
        for &i in &alive {
            let node = self.nodes[i].as_ref().expect("alive");
            // Every inbound admission is ended once: the core counts as in progress
            // exactly the accepted ends still handshaking.
            let handshaking = self
                .net
                .conns
                .values()
                .map(|c| &c.ends[1 - DIALER])
                .filter(|e| e.node == i && matches!(e.state, EndState::Handshaking { .. }))
                .count();
            if node.core.links.handshakes() != handshaking {
                problems.push(format!(
                    "{}: its core counts {} inbound handshakes in progress, {handshaking} run",
                    node.name,
                    node.core.links.handshakes()
                ));
            }
            for link in node.core.linked_peers() {
                match self.net.end_of_session(i, link.session.id) {
                    Some((conn, end)) => {
                        let other = &self.net.conns[&conn].ends[1 - end];
                        if other.incarnation != link.incarnation {
                            problems.push(format!(
                                "{}: link {} to {} rides a connection to {}",
                                node.name, link.session.id, link.incarnation, other.incarnation
                            ));
                        }
                    }
                    None => problems.push(format!(
                        "{}: zombie link to {} (session {}): no open connection carries it",
                        node.name, link.incarnation, link.session.id
                    )),
                }
            }
        }
        if healed {
            for &a in &alive {
                for &b in alive.iter().filter(|&&b| b > a) {
                    let (na, nb) = (
                        self.nodes[a].as_ref().expect("alive"),
                        self.nodes[b].as_ref().expect("alive"),
                    );
                    let (la, lb) = (na.core.link(nb.incarnation), nb.core.link(na.incarnation));
                    let same_conn = la.zip(lb).is_some_and(|(la, lb)| {
                        let ca = self.net.end_of_session(a, la.id).map(|(c, _)| c);
                        ca.is_some() && ca == self.net.end_of_session(b, lb.id).map(|(c, _)| c)
                    });
                    if !same_conn {
                        problems.push(format!(
                            "{} and {} are not linked after the heal ({la:?}, {lb:?})",
                            na.name, nb.name
                        ));
                    }
                }
            }
        }
        problems
    }
}
