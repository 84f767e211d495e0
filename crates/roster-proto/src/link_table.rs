//! The record of every link's lifecycle: which peers membership lists alive, which are
//! being dialed and when the next dial of each is due, which links are established,
//! whether links are refused (severed, this node leaving, a peer that left), and which
//! unlisted peers have vanished.
//!
//! The replication core owns one (see `replication::links`) and changes it in the same
//! call as the peer's replication state, so it is the one source of truth for which peers
//! are linked. A handshake that was in flight when links were severed is refused when it
//! completes (it carries the [`Admission`] it started under). The table does no IO: it
//! decides which peers to dial ([`LinkTable::due_dials`]), and the shell connects.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crate::vocab::pid::Incarnation;

/// How long a peer that left the cluster on purpose stays refused a link
/// ([`Refusal::PeerLeft`]). Its node makes no new link once it starts to leave, but a
/// handshake it began just before may still complete here; the shell gives a handshake 5
/// seconds. A node that left never comes back under the same incarnation, so remembering
/// it longer would cost only memory.
const DEPARTED_MEMORY: Duration = Duration::from_secs(60);

/// When to redial a peer after a failed dial or a link that died young.
///
/// Delays double from `initial` up to `max`, each scaled by a random factor in [0.5, 1]
/// so that peers do not redial in lockstep. A link that lived at least `max` counts as
/// stable: losing it resets the delay, and the next dial is immediate.
///
/// ```ignore
/// let policy = RedialPolicy { initial: Duration::from_millis(20), max: Duration::from_secs(2) };
/// assert!(policy.delay(0, 1.0).is_zero());
/// assert_eq!(policy.delay(3, 1.0), Duration::from_millis(80));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RedialPolicy {
    /// The first wait.
    pub initial: Duration,
    /// The longest wait, and how long a link must live to count as stable.
    pub max: Duration,
}

impl Default for RedialPolicy {
    fn default() -> Self {
        Self {
            initial: Duration::from_millis(20),
            max: Duration::from_secs(2),
        }
    }
}

impl RedialPolicy {
    /// The wait before a dial after `failures` consecutive failures, scaled by `jitter`
    /// (clamped to [0.5, 1]).
    pub fn delay(&self, failures: u32, jitter: f64) -> Duration {
        if failures == 0 {
            return Duration::ZERO;
        }
        let doubled = self
            .initial
            .saturating_mul(1u32 << (failures - 1).min(20))
            .min(self.max);
        doubled.mul_f64(jitter.clamp(0.5, 1.0))
    }

    /// Whether a link that lived `lived` was stable (its loss resets the backoff).
    pub fn stable(&self, lived: Duration) -> bool {
        lived >= self.max
    }
}

/// Names one link of a core, unique among its links: tells a link from the one that
/// replaced it. Not a peer's incarnation, which names a node.
///
/// ```
/// use roster_proto::link_table::SessionId;
///
/// assert_eq!(SessionId::new(7).get(), 7);
/// assert_eq!(SessionId::new(7).to_string(), "7");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SessionId(u64);

impl SessionId {
    /// The session of number `n`.
    pub const fn new(n: u64) -> Self {
        Self(n)
    }

    /// Its number.
    pub const fn get(self) -> u64 {
        self.0
    }

    /// The session after this one.
    #[must_use]
    pub const fn next(self) -> Self {
        Self(self.0 + 1)
    }
}

impl std::fmt::Display for SessionId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

/// One established link, as the core records it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LinkSession {
    /// Unique among this core's links: tells a link from the one that replaced it.
    pub id: SessionId,
    /// When the link was established.
    pub established: Instant,
}

/// A connection's permit to run its handshake, from [`LinkTable::begin_handshake`] (an
/// inbound one) or [`LinkTable::due_dials`]: the state it started under, checked again
/// when it completes so that a sever in between refuses it. Neither `Copy` nor `Clone`:
/// each is ended once, by [`LinkTable::may_establish`] when its handshake completed or
/// [`LinkTable::handshake_failed`] when it did not, and an inbound one frees its place
/// among the handshakes in progress then.
#[derive(Debug, PartialEq, Eq)]
#[must_use = "an admission is ended by establishing its link or by handshake_failed"]
pub struct Admission {
    epoch: u64,
    /// The peer of a dial this table decided, and the dial's number; `None` for an
    /// inbound connection (counted among the inbound handshakes in progress).
    dialed: Option<(Incarnation, u64)>,
}

impl Admission {
    /// The peer dialed under this admission; `None` for an inbound connection.
    pub fn dialed(&self) -> Option<Incarnation> {
        self.dialed.map(|(peer, _)| peer)
    }
}

/// A connection the core wants made: connect to `addr`, run the handshake, and end the
/// admission with the link (`Core::establish`) or its failure (`Core::handshake_failed`).
#[derive(Debug)]
pub struct Dial {
    /// The peer's incarnation.
    pub peer: Incarnation,
    /// Where membership says it listens.
    pub addr: SocketAddr,
    /// The dial's permit, checked again when its handshake completes.
    pub admission: Admission,
}

/// Why a connection or a completed handshake was not admitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Refusal {
    /// Links are severed (fault injection) until a later time.
    Severed,
    /// Links were severed while this one was being established.
    SeveredMeanwhile,
    /// Links to this peer are severed (this node is cut off from it) until a later time.
    PeerSevered,
    /// Too many handshakes are in progress.
    TooManyHandshakes,
    /// This node is leaving the cluster: it makes no new link.
    Leaving,
    /// The peer left the cluster on purpose: a link to it would bring back the entries
    /// purged when it left.
    PeerLeft,
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Severed => "links are severed on this node",
            Self::SeveredMeanwhile => "links were severed while the handshake ran",
            Self::PeerSevered => "links to this peer are severed",
            Self::TooManyHandshakes => "too many handshakes in progress",
            Self::Leaving => "this node is leaving the cluster",
            Self::PeerLeft => "the peer left the cluster",
        })
    }
}

/// Links to one peer refused until `until`, by the sever of `epoch`.
#[derive(Debug, Clone, Copy)]
struct PeerSever {
    until: Instant,
    epoch: u64,
}

/// What the table knows of one peer.
#[derive(Debug)]
struct PeerSlot<L> {
    link: Option<L>,
    /// Membership lists the peer alive, at this address.
    member: Option<SocketAddr>,
    /// The number of the dial of this peer in flight (its admission not yet ended).
    dialing: Option<u64>,
    /// No dial before then (the backoff after a failed dial or a link that died young).
    dial_after: Option<Instant>,
    /// Consecutive failed dials or short-lived links.
    failures: u32,
    /// Since when the peer has had no link (after it had one).
    unlinked_since: Option<Instant>,
}

impl<L> Default for PeerSlot<L> {
    fn default() -> Self {
        Self {
            link: None,
            member: None,
            dialing: None,
            dial_after: None,
            failures: 0,
            unlinked_since: None,
        }
    }
}

/// Links by peer incarnation, with their dialing and admission state; generic over the
/// link type so its rules can be tested without sockets.
#[derive(Debug)]
pub struct LinkTable<L> {
    /// This node's incarnation: of two peers, the smaller dials.
    me: Incarnation,
    /// Ordered, so that what a sever closes and which peers vanish come out in the same
    /// order in every run (the simulation replays a seed by it).
    peers: BTreeMap<Incarnation, PeerSlot<L>>,
    policy: RedialPolicy,
    /// Every link refused until then (a sever of all links).
    severed_until: Option<Instant>,
    /// Bumped by every sever, of all links or of some peers': an admission carries the
    /// epoch it was given at, and a sever recorded at a later epoch refuses it.
    epoch: u64,
    /// The epoch of the last sever of all links.
    severed_at: u64,
    /// Peers whose links are refused until a time (this node cut off from them), kept
    /// apart from their slots: a peer declared dead meanwhile is still refused.
    severed_peers: BTreeMap<Incarnation, PeerSever>,
    handshakes: usize,
    max_handshakes: usize,
    /// Something changed that may make a dial due: [`LinkTable::due_dials`] looks again.
    replan: bool,
    /// A deadline of [`LinkTable::next_deadline`] may have come forward since
    /// [`LinkTable::take_rescheduled`] last answered.
    rescheduled: bool,
    /// The number of the next dial: the end of a dial admitted before its peer was
    /// forgotten and listed again is told from the current one's.
    next_dial: u64,
    /// This node is leaving the cluster ([`LinkTable::leave`]): no dial, no new link.
    leaving: bool,
    /// Peers that left the cluster on purpose, with when this node learned it: refused a
    /// link for [`DEPARTED_MEMORY`].
    departed: BTreeMap<Incarnation, Instant>,
}

impl<L> LinkTable<L> {
    /// An empty table of the node of incarnation `me`: redials follow `policy`, at most
    /// `max_handshakes` inbound handshakes run at once.
    pub fn new(me: Incarnation, policy: RedialPolicy, max_handshakes: usize) -> Self {
        Self {
            me,
            replan: false,
            rescheduled: false,
            next_dial: 0,
            peers: BTreeMap::new(),
            policy,
            severed_until: None,
            epoch: 0,
            severed_at: 0,
            severed_peers: BTreeMap::new(),
            handshakes: 0,
            max_handshakes,
            leaving: false,
            departed: BTreeMap::new(),
        }
    }

    /// Whether links are refused at `now`.
    fn is_severed(&self, now: Instant) -> bool {
        self.severed_until.is_some_and(|until| until > now)
    }

    /// Until when links are refused, if they are.
    pub fn severed_until(&self, now: Instant) -> Option<Instant> {
        self.severed_until.filter(|until| *until > now)
    }

    /// Until when links to `peer` are refused (all links, or this peer's), if they are.
    pub fn peer_severed_until(&self, peer: Incarnation, now: Instant) -> Option<Instant> {
        let own = self
            .severed_peers
            .get(&peer)
            .map(|s| s.until)
            .filter(|until| *until > now);
        self.severed_until(now).max(own)
    }

    /// An inbound connection wants to run a handshake: admitted unless links are severed
    /// or too many handshakes run.
    pub fn begin_handshake(&mut self, now: Instant) -> Result<Admission, Refusal> {
        if self.leaving {
            return Err(Refusal::Leaving);
        }
        if self.is_severed(now) {
            return Err(Refusal::Severed);
        }
        if self.handshakes >= self.max_handshakes {
            return Err(Refusal::TooManyHandshakes);
        }
        self.handshakes += 1;
        Ok(Admission {
            epoch: self.epoch,
            dialed: None,
        })
    }

    /// The handshake of `admission` failed at `now` (or its connection closed before it
    /// ended); a dial's peer waits longer for the next. Returns whether it counted toward
    /// that backoff: not for an inbound admission, nor for a dial of a peer forgotten
    /// since.
    pub fn handshake_failed(&mut self, admission: Admission, now: Instant) -> bool {
        let Some(peer) = self.end(admission) else {
            return false;
        };
        self.dial_failed(peer, now);
        true
    }

    /// Ends `admission`: an inbound one frees its place, a dial's peer is no longer being
    /// dialed. Returns the dialed peer, if that dial was the one in flight.
    fn end(&mut self, admission: Admission) -> Option<Incarnation> {
        match admission.dialed {
            None => {
                self.handshakes = self.handshakes.saturating_sub(1);
                None
            }
            Some((peer, dial)) => {
                let slot = self.peers.get_mut(&peer)?;
                if slot.dialing != Some(dial) {
                    // Of a slot since forgotten: the current one is not its business.
                    return None;
                }
                slot.dialing = None;
                self.changed();
                Some(peer)
            }
        }
    }

    /// A dial of `peer` failed (or its link was refused) at `now`: the next waits longer.
    fn dial_failed(&mut self, peer: Incarnation, now: Instant) {
        let (me, policy) = (self.me, self.policy);
        if let Some(slot) = self.peers.get_mut(&peer) {
            slot.failures = slot.failures.saturating_add(1);
            slot.dial_after = backoff_until(me, policy, peer, slot.failures, now);
        }
        self.changed();
    }

    /// Records that the schedule of dials and vanishings may have changed.
    fn changed(&mut self) {
        self.replan = true;
        self.rescheduled = true;
    }

    /// Handshakes in progress.
    #[cfg(test)]
    pub fn handshakes(&self) -> usize {
        self.handshakes
    }

    /// Whether the completed handshake of `admission` (which ends here) with `peer` may
    /// become a link now: not while links to it are severed, nor if a sever of them came
    /// after the admission.
    pub fn may_establish(
        &mut self,
        admission: Admission,
        peer: Incarnation,
        now: Instant,
    ) -> Result<(), Refusal> {
        let admitted_at = admission.epoch;
        let dialed = self.end(admission);
        let peer_severed_at = self.severed_peers.get(&peer).map_or(0, |s| s.epoch);
        let verdict = if self.leaving {
            Err(Refusal::Leaving)
        } else if self.departed.contains_key(&peer) {
            Err(Refusal::PeerLeft)
        } else if self.is_severed(now) {
            Err(Refusal::Severed)
        } else if self.peer_severed_until(peer, now).is_some() {
            Err(Refusal::PeerSevered)
        } else if self.severed_at.max(peer_severed_at) > admitted_at {
            Err(Refusal::SeveredMeanwhile)
        } else {
            Ok(())
        };
        if verdict.is_err()
            && let Some(dialed) = dialed
        {
            self.dial_failed(dialed, now);
        }
        verdict
    }

    /// Installs the link to `peer`, returning the one it replaces.
    pub fn insert(&mut self, peer: Incarnation, link: L) -> Option<L> {
        let slot = self.peers.entry(peer).or_default();
        slot.unlinked_since = None;
        slot.link.replace(link)
    }

    /// The link to `peer`.
    pub fn get(&self, peer: Incarnation) -> Option<&L> {
        self.peers.get(&peer).and_then(|slot| slot.link.as_ref())
    }

    /// Every link.
    pub fn links(&self) -> impl Iterator<Item = (Incarnation, &L)> {
        self.peers
            .iter()
            .filter_map(|(peer, slot)| slot.link.as_ref().map(|link| (*peer, link)))
    }

    /// Removes the link to `peer` at `now` if `is_it` says it is the one meant (same
    /// session); a link that lived shorter than the stable time counts as a failure for the
    /// redial backoff.
    pub fn remove_if(
        &mut self,
        peer: Incarnation,
        now: Instant,
        is_it: impl FnOnce(&L) -> bool,
        lived: impl FnOnce(&L) -> Duration,
    ) -> Option<L> {
        let slot = self.peers.get_mut(&peer)?;
        if !slot.link.as_ref().is_some_and(is_it) {
            return None;
        }
        let link = slot.link.take()?;
        slot.unlinked_since = Some(now);
        if self.policy.stable(lived(&link)) {
            slot.failures = 0;
        } else {
            slot.failures = slot.failures.saturating_add(1);
        }
        slot.dial_after = backoff_until(self.me, self.policy, peer, slot.failures, now);
        self.changed();
        Some(link)
    }

    /// This node leaves the cluster: from now on it dials no peer and makes no new link
    /// (a handshake inbound or dialed is refused with [`Refusal::Leaving`]); the links up
    /// stay until they are closed. A peer that closes its link on the leave notice is
    /// not dialed again, so it does not see a link to a node it knows has left.
    pub fn leave(&mut self) {
        self.leaving = true;
        self.changed();
    }

    /// Forgets `peer` entirely (it is dead), returning its link.
    pub fn forget(&mut self, peer: Incarnation) -> Option<L> {
        self.changed();
        self.peers.remove(&peer)?.link
    }

    /// Forgets `peer`, which left the cluster on purpose (learned at `now`), returning its
    /// link, and refuses it a link from now on: a handshake it began before it left
    /// becomes no link here. Peers that left more than a minute ago are
    /// forgotten, so the memory kept follows the rate of departures.
    pub fn forget_departed(&mut self, peer: Incarnation, now: Instant) -> Option<L> {
        self.departed
            .retain(|_, at| now.saturating_duration_since(*at) < DEPARTED_MEMORY);
        self.departed.insert(peer, now);
        self.forget(peer)
    }

    /// Closes every link at `now` and refuses new ones until `until`, including handshakes
    /// in flight; returns the links closed.
    pub fn sever(&mut self, now: Instant, until: Instant) -> Vec<(Incarnation, L)> {
        self.severed_until = Some(until);
        self.epoch += 1;
        self.severed_at = self.epoch;
        self.changed();
        self.peers
            .iter_mut()
            .filter_map(|(peer, slot)| {
                let link = slot.link.take()?;
                slot.unlinked_since = Some(now);
                Some((*peer, link))
            })
            .collect()
    }

    /// Closes the links to `peers` at `now` and refuses theirs until `until`, including
    /// handshakes in flight (an inbound one is refused once it says who it is from);
    /// returns the links closed.
    pub fn sever_peers(
        &mut self,
        peers: &[Incarnation],
        now: Instant,
        until: Instant,
    ) -> Vec<(Incarnation, L)> {
        self.epoch += 1;
        let epoch = self.epoch;
        self.changed();
        // A sever that ended still refuses the handshakes admitted before it: its epoch
        // is forgotten only while none is in flight.
        let in_flight = self.handshakes > 0 || self.peers.values().any(|s| s.dialing.is_some());
        if !in_flight {
            self.severed_peers.retain(|_, s| s.until > now);
        }
        let mut closed = Vec::new();
        for &peer in peers {
            let sever = self
                .severed_peers
                .entry(peer)
                .or_insert(PeerSever { until, epoch });
            *sever = PeerSever {
                until: sever.until.max(until),
                epoch,
            };
            if let Some(slot) = self.peers.get_mut(&peer)
                && let Some(link) = slot.link.take()
            {
                slot.unlinked_since = Some(now);
                closed.push((peer, link));
            }
        }
        closed
    }

    /// Peers unlinked for at least `grace` at `now` that membership does not list alive:
    /// their node may have gone before membership ever reported it up here, so no down
    /// would come. They are returned once (then forgotten here).
    pub fn vanished(&mut self, now: Instant, grace: Duration) -> Vec<Incarnation> {
        let mut gone = Vec::new();
        for (peer, slot) in &mut self.peers {
            if slot.member.is_none()
                && slot
                    .unlinked_since
                    .is_some_and(|since| now.saturating_duration_since(since) >= grace)
            {
                slot.unlinked_since = None;
                gone.push(*peer);
            }
        }
        gone
    }

    /// Membership lists `peer` alive at `addr`: if this node is the dialer of the pair (the
    /// smaller incarnation), the peer is dialed whenever it has no link.
    pub fn member_up(&mut self, peer: Incarnation, addr: SocketAddr) {
        self.peers.entry(peer).or_default().member = Some(addr);
        self.changed();
    }

    /// Whether membership lists `peer` alive.
    pub fn is_member(&self, peer: Incarnation) -> bool {
        self.peers
            .get(&peer)
            .is_some_and(|slot| slot.member.is_some())
    }

    /// The dials due at `now`, each admitted: a member this node dials, with no link, no
    /// dial in flight and its backoff over. A dial a sever refuses waits until the sever
    /// ends. Each admission is ended by [`LinkTable::may_establish`] or
    /// [`LinkTable::handshake_failed`].
    pub fn due_dials(&mut self, now: Instant) -> Vec<Dial> {
        if !std::mem::take(&mut self.replan) || self.leaving {
            return Vec::new();
        }
        let me = self.me;
        let mut due = Vec::new();
        let mut deferred = Vec::new();
        for (&peer, slot) in &self.peers {
            let Some(addr) = slot.member else {
                continue;
            };
            if peer <= me
                || slot.link.is_some()
                || slot.dialing.is_some()
                || slot.dial_after.is_some_and(|at| at > now)
            {
                continue;
            }
            match self.peer_severed_until(peer, now) {
                Some(until) => deferred.push((peer, until)),
                None => due.push((peer, addr)),
            }
        }
        for (peer, until) in deferred {
            self.peers.get_mut(&peer).expect("listed").dial_after = Some(until);
            self.rescheduled = true;
        }
        due.into_iter()
            .map(|(peer, addr)| {
                let dial = self.next_dial;
                self.next_dial += 1;
                self.peers.get_mut(&peer).expect("listed").dialing = Some(dial);
                let admission = Admission {
                    epoch: self.epoch,
                    dialed: Some((peer, dial)),
                };
                Dial {
                    peer,
                    addr,
                    admission,
                }
            })
            .collect()
    }

    /// Time passed: the next [`LinkTable::due_dials`] looks for due dials again.
    pub fn replan(&mut self) {
        self.replan = true;
    }

    /// The earliest time at which a dial becomes due or an unlisted peer vanishes
    /// (unlinked for `grace`), if any.
    pub fn next_deadline(&self, grace: Duration) -> Option<Instant> {
        let me = self.me;
        self.peers
            .iter()
            .filter_map(|(&peer, slot)| match slot.member {
                Some(_)
                    if !self.leaving
                        && peer > me
                        && slot.link.is_none()
                        && slot.dialing.is_none() =>
                {
                    slot.dial_after
                }
                Some(_) => None,
                None => slot.unlinked_since.map(|since| since + grace),
            })
            .min()
    }

    /// Whether [`LinkTable::next_deadline`] may have come forward since the last call.
    pub fn take_rescheduled(&mut self) -> bool {
        std::mem::take(&mut self.rescheduled)
    }

    /// How long the next dial of `peer` waits for its backoff (jitter included).
    #[cfg(test)]
    pub fn dial_delay(&self, peer: Incarnation) -> Duration {
        let failures = self.peers.get(&peer).map_or(0, |slot| slot.failures);
        self.policy.delay(failures, jitter(self.me, peer, failures))
    }
}

/// When the next dial of `peer` may start after `failures` failures at `now`; `None`: at
/// once.
fn backoff_until(
    me: Incarnation,
    policy: RedialPolicy,
    peer: Incarnation,
    failures: u32,
    now: Instant,
) -> Option<Instant> {
    let delay = policy.delay(failures, jitter(me, peer, failures));
    (!delay.is_zero()).then(|| now + delay)
}

/// The backoff's random factor in [0.5, 1] for the `failures`th failure of the pair: a
/// hash, so that a core decides its dials from its inputs alone (a simulation replays
/// them), and peers that failed together do not redial in lockstep.
fn jitter(me: Incarnation, peer: Incarnation, failures: u32) -> f64 {
    let mut bytes = [0u8; 20];
    bytes[..8].copy_from_slice(&me.get().to_le_bytes());
    bytes[8..16].copy_from_slice(&peer.get().to_le_bytes());
    bytes[16..].copy_from_slice(&failures.to_le_bytes());
    let hash = xxhash_rust::xxh3::xxh3_64(&bytes);
    // The top 53 bits as a fraction in [0, 1).
    0.5 + 0.5 * ((hash >> 11) as f64 / (1u64 << 53) as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    const POLICY: RedialPolicy = RedialPolicy {
        initial: Duration::from_millis(20),
        max: Duration::from_secs(2),
    };

    fn inc(n: u64) -> Incarnation {
        Incarnation::new(n)
    }

    /// This node: every peer of the tests has a larger incarnation, so this node dials.
    const ME: Incarnation = Incarnation::new(0);

    fn addr(peer: Incarnation) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], 7000 + peer.get() as u16))
    }

    /// Membership lists `peer`; its dial, due at once, is taken.
    fn dial(table: &mut LinkTable<u8>, peer: Incarnation, now: Instant) -> Admission {
        table.member_up(peer, addr(peer));
        let mut due = table.due_dials(now);
        assert_eq!(due.len(), 1, "one dial due");
        let dial = due.remove(0);
        assert_eq!((dial.peer, dial.addr), (peer, addr(peer)));
        dial.admission
    }

    /// A peer that left is refused a link for `DEPARTED_MEMORY`, then forgotten when a
    /// later departure is recorded; a peer forgotten as dead (not left) is not refused.
    #[test]
    fn a_departed_peer_is_refused_a_link_until_it_is_forgotten() {
        let now = Instant::now();
        let mut table: LinkTable<u8> = LinkTable::new(ME, POLICY, 4);
        let in_flight = table.begin_handshake(now).expect("admitted");
        table.insert(inc(7), 1);
        assert_eq!(table.forget_departed(inc(7), now), Some(1));
        assert_eq!(
            table.may_establish(in_flight, inc(7), now),
            Err(Refusal::PeerLeft)
        );
        table.forget(inc(8));
        let admission = table.begin_handshake(now).expect("admitted");
        assert_eq!(table.may_establish(admission, inc(8), now), Ok(()));
        let later = now + DEPARTED_MEMORY;
        table.forget_departed(inc(9), later);
        assert_eq!(
            table.departed.keys().copied().collect::<Vec<_>>(),
            vec![inc(9)],
            "7 left {DEPARTED_MEMORY:?} before 9: forgotten"
        );
        let admission = table.begin_handshake(later).expect("admitted");
        assert_eq!(table.may_establish(admission, inc(7), later), Ok(()));
    }

    #[test]
    fn delays_double_up_to_the_max_with_jitter() {
        assert_eq!(POLICY.delay(0, 1.0), Duration::ZERO);
        assert_eq!(POLICY.delay(1, 1.0), Duration::from_millis(20));
        assert_eq!(POLICY.delay(3, 1.0), Duration::from_millis(80));
        assert_eq!(POLICY.delay(40, 1.0), Duration::from_secs(2));
        assert_eq!(POLICY.delay(3, 0.5), Duration::from_millis(40));
        assert_eq!(POLICY.delay(3, 0.0), Duration::from_millis(40));
    }

    #[test]
    fn a_short_lived_link_backs_off_and_a_stable_one_resets() {
        let mut table: LinkTable<u8> = LinkTable::new(ME, POLICY, 4);
        for round in 1..=3 {
            table.insert(inc(7), round);
            let lost = table.remove_if(
                inc(7),
                Instant::now(),
                |_| true,
                |_| Duration::from_millis(1),
            );
            assert_eq!(lost, Some(round));
        }
        let delay = table.dial_delay(inc(7));
        assert!(
            (Duration::from_millis(40)..=Duration::from_millis(80)).contains(&delay),
            "80 ms with a jitter in [0.5, 1]: {delay:?}"
        );
        table.insert(inc(7), 9);
        table.remove_if(inc(7), Instant::now(), |_| true, |_| Duration::from_secs(3));
        assert_eq!(table.dial_delay(inc(7)), Duration::ZERO);
    }

    #[test]
    fn a_stale_session_does_not_remove_the_current_link() {
        let mut table: LinkTable<u8> = LinkTable::new(ME, POLICY, 4);
        table.insert(inc(7), 2);
        assert_eq!(
            table.remove_if(inc(7), Instant::now(), |l| *l == 1, |_| Duration::ZERO),
            None
        );
        assert!(table.get(inc(7)).is_some());
    }

    #[test]
    fn a_sever_refuses_new_and_in_flight_handshakes() {
        let now = Instant::now();
        let mut table: LinkTable<u8> = LinkTable::new(ME, POLICY, 4);
        let in_flight = table.begin_handshake(now).unwrap();
        let also_in_flight = table.begin_handshake(now).unwrap();
        table.insert(inc(1), 1);
        let closed = table.sever(now, now + Duration::from_secs(1));
        assert_eq!(closed, vec![(inc(1), 1)]);
        assert_eq!(table.begin_handshake(now), Err(Refusal::Severed));
        assert_eq!(
            table.may_establish(in_flight, inc(1), now),
            Err(Refusal::Severed)
        );
        let later = now + Duration::from_secs(2);
        assert_eq!(
            table.may_establish(also_in_flight, inc(1), later),
            Err(Refusal::SeveredMeanwhile)
        );
        let fresh = table.begin_handshake(later).unwrap();
        assert_eq!(table.may_establish(fresh, inc(1), later), Ok(()));
    }

    /// Cutting this node off some peers refuses their links, dials and handshakes in
    /// flight until the cut ends, and nobody else's.
    #[test]
    fn a_sever_of_some_peers_refuses_theirs_only() {
        let now = Instant::now();
        let mut table: LinkTable<u8> = LinkTable::new(ME, POLICY, 4);
        table.insert(inc(1), 1);
        table.insert(inc(2), 2);
        let from_1 = table.begin_handshake(now).unwrap();
        let from_2 = table.begin_handshake(now).unwrap();
        let until = now + Duration::from_secs(1);
        assert_eq!(table.sever_peers(&[inc(1)], now, until), vec![(inc(1), 1)]);
        assert_eq!(table.get(inc(2)), Some(&2), "the other link stays");
        table.member_up(inc(1), addr(inc(1)));
        assert!(table.due_dials(now).is_empty(), "no dial of a peer cut off");
        assert_eq!(
            table.next_deadline(Duration::from_secs(9)),
            Some(until),
            "its dial waits out the cut"
        );
        assert_eq!(table.peer_severed_until(inc(1), now), Some(until));
        assert_eq!(table.peer_severed_until(inc(2), now), None);
        assert_eq!(
            table.may_establish(from_1, inc(1), now),
            Err(Refusal::PeerSevered)
        );
        assert_eq!(table.may_establish(from_2, inc(2), now), Ok(()));
        let (late, fresh) = (
            table.begin_handshake(now).unwrap(),
            table.begin_handshake(now).unwrap(),
        );
        let later = until + Duration::from_millis(1);
        assert!(!table.handshake_failed(late, later), "inbound: no backoff");
        assert_eq!(table.peer_severed_until(inc(1), later), None);
        assert_eq!(
            table.may_establish(fresh, inc(1), later),
            Ok(()),
            "admitted after the cut"
        );
        let crossed = table.begin_handshake(later).unwrap();
        table.sever_peers(&[inc(1)], later, later);
        assert_eq!(
            table.may_establish(crossed, inc(1), later),
            Err(Refusal::SeveredMeanwhile),
            "a cut of no time still refuses what crossed it"
        );
    }

    /// A cut that ended before another cut began still refuses a handshake admitted
    /// before it (the second cut once forgot the first's epoch).
    #[test]
    fn an_ended_cut_still_refuses_what_crossed_it() {
        let now = Instant::now();
        let mut table: LinkTable<u8> = LinkTable::new(ME, POLICY, 4);
        let crossed = table.begin_handshake(now).unwrap();
        table.sever_peers(&[inc(1)], now, now + Duration::from_millis(2));
        let later = now + Duration::from_millis(8);
        table.sever_peers(&[inc(2)], later, later + Duration::from_millis(80));
        assert_eq!(
            table.may_establish(crossed, inc(1), later + Duration::from_millis(3)),
            Err(Refusal::SeveredMeanwhile)
        );
    }

    #[test]
    fn pending_handshakes_are_bounded() {
        let now = Instant::now();
        let mut table: LinkTable<u8> = LinkTable::new(ME, POLICY, 2);
        let first = table.begin_handshake(now).unwrap();
        let second = table.begin_handshake(now).unwrap();
        assert_eq!(table.begin_handshake(now), Err(Refusal::TooManyHandshakes));
        let dial = dial(&mut table, inc(1), now);
        table.handshake_failed(dial, now);
        assert_eq!(table.handshakes(), 2, "a dial frees no inbound place");
        table.handshake_failed(first, now);
        let third = table
            .begin_handshake(now)
            .expect("a failed handshake frees its place");
        assert_eq!(table.handshakes(), 2);
        assert_eq!(table.may_establish(second, inc(1), now), Ok(()));
        assert_eq!(
            table.handshakes(),
            1,
            "an established one frees its place too"
        );
        assert_eq!(
            table.may_establish(third, inc(1), now + Duration::from_secs(1)),
            Ok(())
        );
        assert_eq!(table.handshakes(), 0);
    }

    #[test]
    fn a_peer_unlinked_past_the_grace_and_not_a_member_has_vanished_once() {
        let start = Instant::now();
        let mut table: LinkTable<u8> = LinkTable::new(ME, POLICY, 2);
        table.insert(inc(7), 1);
        table.insert(inc(8), 1);
        table.remove_if(inc(7), start, |_| true, |_| Duration::ZERO);
        table.remove_if(inc(8), start, |_| true, |_| Duration::ZERO);
        let grace = Duration::from_secs(3);
        assert_eq!(table.next_deadline(grace), Some(start + grace));
        assert!(
            table
                .vanished(start + Duration::from_secs(2), grace)
                .is_empty()
        );
        table.member_up(inc(8), addr(inc(8)));
        let later = start + Duration::from_secs(4);
        assert_eq!(table.vanished(later, grace), vec![inc(7)], "8 is a member");
        assert!(table.vanished(later, grace).is_empty(), "reported once");
        table.forget(inc(8));
        table.insert(inc(8), 2);
        assert!(table.vanished(later, grace).is_empty(), "8 is linked again");
    }

    #[test]
    fn a_member_is_dialed_once_at_a_time_and_again_after_its_backoff() {
        let now = Instant::now();
        let mut table: LinkTable<u8> = LinkTable::new(ME, POLICY, 2);
        let first = dial(&mut table, inc(5), now);
        assert!(table.due_dials(now).is_empty(), "one dial in flight");
        table.handshake_failed(first, now);
        assert!(table.due_dials(now).is_empty(), "it backs off");
        let after = table
            .next_deadline(Duration::from_secs(9))
            .expect("a redial is due later");
        assert!(after > now && after <= now + POLICY.initial, "{after:?}");
        table.replan();
        let second = table.due_dials(after);
        assert_eq!(second.len(), 1, "due after the backoff");
        let admission = second.into_iter().next().expect("one").admission;
        assert_eq!(table.may_establish(admission, inc(5), after), Ok(()));
        table.insert(inc(5), 1);
        assert!(table.due_dials(after).is_empty(), "linked");
        let lived = POLICY.max;
        table.remove_if(inc(5), after + lived, |_| true, |_| lived);
        assert_eq!(
            table.due_dials(after + lived).len(),
            1,
            "a stable link lost is redialed at once"
        );
    }

    #[test]
    fn the_larger_incarnation_never_dials_and_nobody_dials_a_dead_peer() {
        let now = Instant::now();
        let mut table: LinkTable<u8> = LinkTable::new(inc(10), POLICY, 2);
        table.member_up(inc(5), addr(inc(5)));
        assert!(table.due_dials(now).is_empty(), "5 dials 10");
        table.member_up(inc(12), addr(inc(12)));
        assert_eq!(table.due_dials(now).len(), 1, "10 dials 12");
        table.forget(inc(12));
        table.replan();
        assert!(table.due_dials(now).is_empty(), "12 is gone");
        assert_eq!(table.next_deadline(Duration::from_secs(1)), None);
    }

    #[test]
    fn a_dialed_link_refused_after_its_handshake_backs_off() {
        let now = Instant::now();
        let mut table: LinkTable<u8> = LinkTable::new(ME, POLICY, 2);
        let admission = dial(&mut table, inc(5), now);
        table.sever(now, now);
        assert_eq!(
            table.may_establish(admission, inc(5), now),
            Err(Refusal::SeveredMeanwhile)
        );
        assert!(table.due_dials(now).is_empty(), "backs off");
        assert!(table.dial_delay(inc(5)) > Duration::ZERO);
    }
}
