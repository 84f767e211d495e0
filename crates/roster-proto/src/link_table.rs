//! The record of every link's lifecycle: which peers are being dialed, which links are
//! established, whether links are refused (severed), and how long to wait before the next
//! dial of a peer.
//!
//! The replication core owns one (see `replication::links`) and changes it in the same
//! call as the peer's replication state, so it is the one source of truth for which peers
//! are linked. A handshake that was in flight when links were severed is refused when it
//! completes (it carries the [`Admission`] it started under). The table does no IO: the
//! shell acts on what the core decides.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

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
/// inbound one) or [`LinkTable::admit_dial`]: the state it started under, checked again
/// when it completes so that a sever in between refuses it. Neither `Copy` nor `Clone`:
/// each is ended once, by [`LinkTable::may_establish`] when its handshake completed or
/// [`LinkTable::handshake_failed`] when it did not, and an inbound one frees its place
/// among the handshakes in progress then.
#[derive(Debug, PartialEq, Eq)]
#[must_use = "an admission is ended by establishing its link or by handshake_failed"]
pub struct Admission {
    epoch: u64,
    /// Counted among the inbound handshakes in progress.
    inbound: bool,
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
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Severed => "links are severed on this node",
            Self::SeveredMeanwhile => "links were severed while the handshake ran",
            Self::PeerSevered => "links to this peer are severed",
            Self::TooManyHandshakes => "too many handshakes in progress",
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
    /// A dial task for this peer exists.
    dialing: bool,
    /// Someone wanted a dial while the task existed: it must not end without another look.
    redial: bool,
    /// Consecutive failed dials or short-lived links.
    failures: u32,
    /// Since when the peer has had no link (after it had one).
    unlinked_since: Option<Instant>,
}

impl<L> Default for PeerSlot<L> {
    fn default() -> Self {
        Self {
            link: None,
            dialing: false,
            redial: false,
            failures: 0,
            unlinked_since: None,
        }
    }
}

/// Links by peer incarnation, with their dialing and admission state; generic over the
/// link type so its rules can be tested without sockets.
#[derive(Debug)]
pub struct LinkTable<L> {
    /// Ordered, so that what a sever closes and which peers vanish come out in the same
    /// order in every run (the simulation replays a seed by it).
    peers: BTreeMap<u64, PeerSlot<L>>,
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
    severed_peers: BTreeMap<u64, PeerSever>,
    handshakes: usize,
    max_handshakes: usize,
}

impl<L> LinkTable<L> {
    /// An empty table: redials follow `policy`, at most `max_handshakes` inbound handshakes run at once.
    pub fn new(policy: RedialPolicy, max_handshakes: usize) -> Self {
        Self {
            peers: BTreeMap::new(),
            policy,
            severed_until: None,
            epoch: 0,
            severed_at: 0,
            severed_peers: BTreeMap::new(),
            handshakes: 0,
            max_handshakes,
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
    pub fn peer_severed_until(&self, peer: u64, now: Instant) -> Option<Instant> {
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
        if self.is_severed(now) {
            return Err(Refusal::Severed);
        }
        if self.handshakes >= self.max_handshakes {
            return Err(Refusal::TooManyHandshakes);
        }
        self.handshakes += 1;
        Ok(Admission {
            epoch: self.epoch,
            inbound: true,
        })
    }

    /// This node wants to dial `peer` (dials are not bounded like inbound handshakes: there
    /// is at most one per peer).
    pub fn admit_dial(&self, peer: u64, now: Instant) -> Result<Admission, Refusal> {
        if self.is_severed(now) {
            return Err(Refusal::Severed);
        }
        if self.peer_severed_until(peer, now).is_some() {
            return Err(Refusal::PeerSevered);
        }
        Ok(Admission {
            epoch: self.epoch,
            inbound: false,
        })
    }

    /// The handshake of `admission` failed (or its connection closed before it ended).
    pub fn handshake_failed(&mut self, admission: Admission) {
        self.end(admission);
    }

    /// Ends `admission`; the epoch it was admitted at.
    fn end(&mut self, admission: Admission) -> u64 {
        if admission.inbound {
            self.handshakes = self.handshakes.saturating_sub(1);
        }
        admission.epoch
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
        peer: u64,
        now: Instant,
    ) -> Result<(), Refusal> {
        let admitted_at = self.end(admission);
        let peer_severed_at = self.severed_peers.get(&peer).map_or(0, |s| s.epoch);
        if self.is_severed(now) {
            Err(Refusal::Severed)
        } else if self.peer_severed_until(peer, now).is_some() {
            Err(Refusal::PeerSevered)
        } else if self.severed_at.max(peer_severed_at) > admitted_at {
            Err(Refusal::SeveredMeanwhile)
        } else {
            Ok(())
        }
    }

    /// Installs the link to `peer`, returning the one it replaces.
    pub fn insert(&mut self, peer: u64, link: L) -> Option<L> {
        let slot = self.peers.entry(peer).or_default();
        slot.unlinked_since = None;
        slot.link.replace(link)
    }

    /// The link to `peer`.
    pub fn get(&self, peer: u64) -> Option<&L> {
        self.peers.get(&peer).and_then(|slot| slot.link.as_ref())
    }

    /// Every link.
    pub fn links(&self) -> impl Iterator<Item = (u64, &L)> {
        self.peers
            .iter()
            .filter_map(|(peer, slot)| slot.link.as_ref().map(|link| (*peer, link)))
    }

    /// Removes the link to `peer` at `now` if `is_it` says it is the one meant (same
    /// session); a link that lived shorter than the stable time counts as a failure for the
    /// redial backoff.
    pub fn remove_if(
        &mut self,
        peer: u64,
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
        Some(link)
    }

    /// Forgets `peer` entirely (it is dead), returning its link.
    pub fn forget(&mut self, peer: u64) -> Option<L> {
        let slot = self.peers.get_mut(&peer)?;
        let link = slot.link.take();
        slot.unlinked_since = None;
        if !slot.dialing {
            self.peers.remove(&peer);
        }
        link
    }

    /// Closes every link at `now` and refuses new ones until `until`, including handshakes
    /// in flight; returns the links closed.
    pub fn sever(&mut self, now: Instant, until: Instant) -> Vec<(u64, L)> {
        self.severed_until = Some(until);
        self.epoch += 1;
        self.severed_at = self.epoch;
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
    pub fn sever_peers(&mut self, peers: &[u64], now: Instant, until: Instant) -> Vec<(u64, L)> {
        self.epoch += 1;
        let epoch = self.epoch;
        self.severed_peers.retain(|_, s| s.until > now);
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
    /// their node may have gone before SWIM ever reported it up here, so no `Down` would
    /// come. They are returned once (then forgotten here).
    pub fn vanished(&mut self, now: Instant, grace: Duration, alive: &[u64]) -> Vec<u64> {
        let mut gone = Vec::new();
        for (peer, slot) in &mut self.peers {
            if slot
                .unlinked_since
                .is_some_and(|since| now.duration_since(since) >= grace)
                && !alive.contains(peer)
            {
                slot.unlinked_since = None;
                gone.push(*peer);
            }
        }
        gone
    }

    /// Claims the dialing of `peer`: `false` if a link is up, or if a dial task already
    /// exists (which is then told to look again before it ends, see
    /// [`LinkTable::dial_done`]).
    pub fn claim_dial(&mut self, peer: u64) -> bool {
        let slot = self.peers.entry(peer).or_default();
        if slot.link.is_some() {
            return false;
        }
        if slot.dialing {
            slot.redial = true;
            return false;
        }
        slot.dialing = true;
        true
    }

    /// Asked by the dial task of `peer` between attempts: `true` if it should end (a link
    /// is up, or the peer is not a member and nobody asked for a dial meanwhile), in which
    /// case its claim is released in the same step, so a link lost right after is always
    /// redialed by a new task.
    pub fn dial_done(&mut self, peer: u64, member: bool) -> bool {
        let Some(slot) = self.peers.get_mut(&peer) else {
            return true;
        };
        let done = slot.link.is_some() || (!member && !slot.redial);
        slot.redial = false;
        if done {
            slot.dialing = false;
        }
        done
    }

    /// The dial task of `peer` ended without [`LinkTable::dial_done`] (it was stopped).
    pub fn release_dial(&mut self, peer: u64) {
        if let Some(slot) = self.peers.get_mut(&peer) {
            slot.dialing = false;
            slot.redial = false;
        }
    }

    /// How long the dial task of `peer` should wait before its next attempt, given a
    /// random `jitter` in [0.5, 1].
    pub fn dial_delay(&self, peer: u64, jitter: f64) -> Duration {
        let failures = self.peers.get(&peer).map_or(0, |slot| slot.failures);
        self.policy.delay(failures, jitter)
    }

    /// A dial of `peer` failed.
    pub fn dial_failed(&mut self, peer: u64) {
        let slot = self.peers.entry(peer).or_default();
        slot.failures = slot.failures.saturating_add(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const POLICY: RedialPolicy = RedialPolicy {
        initial: Duration::from_millis(20),
        max: Duration::from_secs(2),
    };

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
        let mut table: LinkTable<u8> = LinkTable::new(POLICY, 4);
        for round in 1..=3 {
            table.insert(7, round);
            let lost = table.remove_if(7, Instant::now(), |_| true, |_| Duration::from_millis(1));
            assert_eq!(lost, Some(round));
        }
        assert_eq!(table.dial_delay(7, 1.0), Duration::from_millis(80));
        table.insert(7, 9);
        table.remove_if(7, Instant::now(), |_| true, |_| Duration::from_secs(3));
        assert_eq!(table.dial_delay(7, 1.0), Duration::ZERO);
    }

    #[test]
    fn a_stale_session_does_not_remove_the_current_link() {
        let mut table: LinkTable<u8> = LinkTable::new(POLICY, 4);
        table.insert(7, 2);
        assert_eq!(
            table.remove_if(7, Instant::now(), |l| *l == 1, |_| Duration::ZERO),
            None
        );
        assert!(table.get(7).is_some());
    }

    #[test]
    fn a_sever_refuses_new_and_in_flight_handshakes() {
        let now = Instant::now();
        let mut table: LinkTable<u8> = LinkTable::new(POLICY, 4);
        let in_flight = table.begin_handshake(now).unwrap();
        let also_in_flight = table.begin_handshake(now).unwrap();
        table.insert(1, 1);
        let closed = table.sever(now, now + Duration::from_secs(1));
        assert_eq!(closed, vec![(1, 1)]);
        assert_eq!(table.begin_handshake(now), Err(Refusal::Severed));
        assert_eq!(
            table.may_establish(in_flight, 1, now),
            Err(Refusal::Severed)
        );
        let later = now + Duration::from_secs(2);
        assert_eq!(
            table.may_establish(also_in_flight, 1, later),
            Err(Refusal::SeveredMeanwhile)
        );
        let fresh = table.begin_handshake(later).unwrap();
        assert_eq!(table.may_establish(fresh, 1, later), Ok(()));
    }

    /// Cutting this node off some peers refuses their links, dials and handshakes in
    /// flight until the cut ends, and nobody else's.
    #[test]
    fn a_sever_of_some_peers_refuses_theirs_only() {
        let now = Instant::now();
        let mut table: LinkTable<u8> = LinkTable::new(POLICY, 4);
        table.insert(1, 1);
        table.insert(2, 2);
        let from_1 = table.begin_handshake(now).unwrap();
        let from_2 = table.begin_handshake(now).unwrap();
        let until = now + Duration::from_secs(1);
        assert_eq!(table.sever_peers(&[1], now, until), vec![(1, 1)]);
        assert_eq!(table.get(2), Some(&2), "the other link stays");
        assert_eq!(table.admit_dial(1, now), Err(Refusal::PeerSevered));
        assert_eq!(table.peer_severed_until(1, now), Some(until));
        assert_eq!(table.peer_severed_until(2, now), None);
        assert_eq!(
            table.may_establish(from_1, 1, now),
            Err(Refusal::PeerSevered)
        );
        assert_eq!(table.may_establish(from_2, 2, now), Ok(()));
        let (late, fresh) = (
            table.admit_dial(2, now).unwrap(),
            table.begin_handshake(now).unwrap(),
        );
        let later = until + Duration::from_millis(1);
        table.handshake_failed(late);
        assert_eq!(table.peer_severed_until(1, later), None);
        assert_eq!(
            table.may_establish(fresh, 1, later),
            Ok(()),
            "admitted after the cut"
        );
        let crossed = table.begin_handshake(later).unwrap();
        table.sever_peers(&[1], later, later);
        assert_eq!(
            table.may_establish(crossed, 1, later),
            Err(Refusal::SeveredMeanwhile),
            "a cut of no time still refuses what crossed it"
        );
    }

    #[test]
    fn pending_handshakes_are_bounded() {
        let now = Instant::now();
        let mut table: LinkTable<u8> = LinkTable::new(POLICY, 2);
        let first = table.begin_handshake(now).unwrap();
        let second = table.begin_handshake(now).unwrap();
        assert_eq!(table.begin_handshake(now), Err(Refusal::TooManyHandshakes));
        let dial = table.admit_dial(1, now).expect("dials are not counted");
        table.handshake_failed(dial);
        assert_eq!(table.handshakes(), 2, "a dial frees no inbound place");
        table.handshake_failed(first);
        let third = table
            .begin_handshake(now)
            .expect("a failed handshake frees its place");
        assert_eq!(table.handshakes(), 2);
        assert_eq!(table.may_establish(second, 1, now), Ok(()));
        assert_eq!(
            table.handshakes(),
            1,
            "an established one frees its place too"
        );
        assert_eq!(
            table.may_establish(third, 1, now + Duration::from_secs(1)),
            Ok(())
        );
        assert_eq!(table.handshakes(), 0);
    }

    #[test]
    fn a_peer_unlinked_past_the_grace_and_not_a_member_has_vanished_once() {
        let start = Instant::now();
        let mut table: LinkTable<u8> = LinkTable::new(POLICY, 2);
        table.insert(7, 1);
        table.insert(8, 1);
        table.remove_if(7, start, |_| true, |_| Duration::ZERO);
        table.remove_if(8, start, |_| true, |_| Duration::ZERO);
        let grace = Duration::from_secs(3);
        assert!(
            table
                .vanished(start + Duration::from_secs(2), grace, &[])
                .is_empty()
        );
        let later = start + Duration::from_secs(4);
        assert_eq!(
            table.vanished(later, grace, &[8]),
            vec![7],
            "8 is still a member"
        );
        assert!(
            table.vanished(later, grace, &[8]).is_empty(),
            "reported once"
        );
        table.insert(8, 2);
        assert!(
            table.vanished(later, grace, &[]).is_empty(),
            "8 is linked again"
        );
    }

    #[test]
    fn one_dial_task_per_peer() {
        let mut table: LinkTable<u8> = LinkTable::new(POLICY, 2);
        assert!(table.claim_dial(5));
        assert!(!table.claim_dial(5));
        table.release_dial(5);
        table.insert(5, 1);
        assert!(!table.claim_dial(5));
    }

    /// The race that left a peer without a dial task: the task saw its link up and was
    /// about to end when the link was lost and a redial was asked for.
    #[test]
    fn a_dial_task_ends_and_releases_its_claim_in_one_step() {
        let mut table: LinkTable<u8> = LinkTable::new(POLICY, 2);
        assert!(table.claim_dial(5));
        table.insert(5, 1);
        assert!(table.dial_done(5, true), "linked: the task ends");
        table.remove_if(5, Instant::now(), |_| true, |_| Duration::ZERO);
        assert!(
            table.claim_dial(5),
            "the claim was released with the decision"
        );
    }

    #[test]
    fn a_redial_asked_for_during_a_dial_keeps_the_task_going() {
        let mut table: LinkTable<u8> = LinkTable::new(POLICY, 2);
        assert!(table.claim_dial(5));
        assert!(!table.claim_dial(5), "one task; it is told to look again");
        assert!(
            !table.dial_done(5, false),
            "membership said gone, but a redial was asked for"
        );
        assert!(table.dial_done(5, false));
        assert!(table.claim_dial(5));
    }
}
