//! The life of a core's links: admission of handshakes and dials, a completed handshake
//! becoming a link, a link lost, links severed, a peer declared dead, and the dialing of
//! each peer with its backoff.
//!
//! The core is the one owner of this state: its [`LinkTable`](crate::link_table::LinkTable) says which peers are linked,
//! and each transition updates the table and the replication state of the peer in the
//! same call. The shell owns only the IO of each link (socket, tasks, byte counters),
//! keyed by the session id the core hands out, and acts on what these calls return; the
//! deterministic simulation drives the same calls through its simulated connections, so
//! the races between dials, handshakes, severs and closes are covered without sockets.
//!
//! A typical link, as the shell drives it:
//!
//! ```text
//! dial task:   claim_dial → dial_wait_until → dial_done? → admit_dial → (connect, handshake)
//! acceptor:    admit_handshake → (handshake)
//! both:        establish(admission, peer) → Ok(session) → frames tagged with the session
//!              or handshake_failed(admission)
//! any end:     link_lost(peer, session) | sever | sever_peers | peer_dead
//!              | CoreEvent::Overloaded
//! ```

use std::time::{Duration, Instant};

use super::core::Core;
use super::host::ReplicaHost;
use crate::nodes::LEFT_THE_CLUSTER;
use crate::vocab::key::Limits;

use crate::link_table::{Admission, LinkSession, Refusal, SessionId};

/// The peer at the other end of a completed handshake.
#[derive(Debug, Clone, Copy)]
pub struct PeerHello<'a> {
    /// The peer's incarnation (its id in the cluster).
    pub incarnation: u64,
    /// The peer's node name.
    pub name: &'a str,
    /// The limits the peer accepts.
    pub limits: Limits,
}

/// A linked peer, as [`Core::linked_peers`] lists it.
#[derive(Debug, Clone, Copy)]
pub struct LinkedPeer<'a> {
    /// The peer's incarnation.
    pub incarnation: u64,
    /// The peer's node name.
    pub name: &'a str,
    /// The limits the peer announced.
    pub limits: Limits,
    /// The link.
    pub session: LinkSession,
}

/// A completed handshake that became a link.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Established {
    /// The new link.
    pub session: LinkSession,
    /// The link to the same peer it replaced, whose connection must be closed.
    pub replaced: Option<LinkSession>,
}

impl Core {
    /// An inbound connection wants to run a handshake. The admission is ended by
    /// [`Core::establish`] if the handshake completes, by [`Core::handshake_failed`] if not.
    pub fn admit_handshake(&mut self, now: Instant) -> Result<Admission, Refusal> {
        self.tick(now);
        self.links.begin_handshake(now)
    }

    /// The handshake of `admission` (inbound or dialed) failed, or its connection closed
    /// before it ended.
    pub fn handshake_failed(&mut self, admission: Admission) {
        self.links.handshake_failed(admission);
    }

    /// This node wants to dial `peer` (dials are not bounded like inbound handshakes:
    /// there is at most one dial task per peer).
    pub fn admit_dial(&mut self, peer: u64, now: Instant) -> Result<Admission, Refusal> {
        self.tick(now);
        self.links.admit_dial(peer, now)
    }

    /// A handshake admitted at `admission` completed with `peer`: the link is recorded
    /// and the peer's replication starts (a `Hello` is queued), unless links were severed
    /// since. A link to the same peer is replaced (its session is returned, to be closed).
    pub fn establish(
        &mut self,
        host: &dyn ReplicaHost,
        admission: Admission,
        peer: PeerHello<'_>,
        now: Instant,
    ) -> Result<Established, Refusal> {
        self.handle_local_ops(host);
        self.tick(now);
        self.links.may_establish(admission, peer.incarnation, now)?;
        let replaced = self.drop_link(peer.incarnation);
        let session = LinkSession {
            id: self.next_session,
            established: now,
        };
        self.next_session = self.next_session.next();
        self.links.insert(peer.incarnation, session);
        self.open_link(host, peer.incarnation, peer.name, peer.limits, now);
        self.links_changed();
        Ok(Established { session, replaced })
    }

    /// The link of `session` to `peer` ended (error, end of stream, silence). The peer's
    /// entries stay: membership decides whether the node is down. Returns `false` if
    /// that link was already gone or replaced (nothing changes then).
    pub fn link_lost(&mut self, peer: u64, session: SessionId, now: Instant) -> bool {
        self.tick(now);
        let current = self.links.get(peer).is_some_and(|s| s.id == session);
        if current {
            self.drop_link(peer);
        }
        current
    }

    /// Membership declared the node `peer` dead (or it vanished): its link, if any, is
    /// closed (returned), every entry of it purged with reason `NodeDown`, and its node
    /// record marked offline.
    pub fn peer_dead(&mut self, host: &dyn ReplicaHost, peer: u64) -> Option<LinkSession> {
        self.peer_gone(host, peer, "declared dead by membership", false)
    }

    /// Membership says the node `peer` left the cluster on purpose: as
    /// [`Core::peer_dead`], but its record is marked offline as having left
    /// ([`LEFT_THE_CLUSTER`]), whether or not its own leave record arrived first.
    pub fn peer_left(&mut self, host: &dyn ReplicaHost, peer: u64) -> Option<LinkSession> {
        self.peer_gone(host, peer, LEFT_THE_CLUSTER, true)
    }

    fn peer_gone(
        &mut self,
        host: &dyn ReplicaHost,
        peer: u64,
        why: &str,
        left: bool,
    ) -> Option<LinkSession> {
        self.handle_local_ops(host);
        let link = self.links.forget(peer);
        self.forget_peer(host, peer);
        host.node_registry()
            .mark_offline(peer, why, left, host.now_ms());
        self.links_changed();
        link
    }

    /// Closes every link at `now` and refuses new ones, handshakes in flight included,
    /// until `until`. Peers keep each other's entries and catch up by delta afterwards.
    /// Returns the links closed.
    pub fn sever(&mut self, now: Instant, until: Instant) -> Vec<(u64, LinkSession)> {
        self.tick(now);
        let closed = self.links.sever(now, until);
        for (peer, _) in &closed {
            self.close_link(*peer);
        }
        self.links_changed();
        closed
    }

    /// Closes the links to `peers` and refuses theirs, handshakes in flight included, until
    /// `until` (this node cut off from them). Returns the links closed.
    pub fn sever_peers(
        &mut self,
        peers: &[u64],
        now: Instant,
        until: Instant,
    ) -> Vec<(u64, LinkSession)> {
        self.tick(now);
        let closed = self.links.sever_peers(peers, now, until);
        for (peer, _) in &closed {
            self.close_link(*peer);
        }
        self.links_changed();
        closed
    }

    /// Peers unlinked for at least `grace` that membership does not list in `alive`: their
    /// node may have gone before membership ever reported it, so no death would come.
    /// They are purged like dead peers; returns them.
    pub fn purge_vanished(
        &mut self,
        host: &dyn ReplicaHost,
        now: Instant,
        grace: Duration,
        alive: &[u64],
    ) -> Vec<u64> {
        self.handle_local_ops(host);
        self.tick(now);
        let gone = self.links.vanished(now, grace, alive);
        for peer in &gone {
            self.peer_gone(
                host,
                *peer,
                "unlinked past the grace period and unknown to membership",
                false,
            );
        }
        gone
    }

    /// Claims the dialing of `peer` for a new dial task: `false` if a link is up or a
    /// task already exists (which is told to look again before it ends).
    pub fn claim_dial(&mut self, peer: u64) -> bool {
        self.links.claim_dial(peer)
    }

    /// When the dial task of `peer` should make its next attempt: after its backoff
    /// (scaled by a random `jitter` in [0.5, 1]) and after any sever.
    pub fn dial_wait_until(&self, peer: u64, now: Instant, jitter: f64) -> Instant {
        let backoff = now + self.links.dial_delay(peer, jitter);
        self.links
            .peer_severed_until(peer, now)
            .map_or(backoff, |until| until.max(backoff))
    }

    /// Asked by the dial task of `peer` before each attempt: `true` if it should end (a
    /// link is up, or the peer is not a `member` and nobody asked for a dial meanwhile);
    /// its claim is then released in the same step.
    pub fn dial_done(&mut self, peer: u64, member: bool) -> bool {
        self.links.dial_done(peer, member)
    }

    /// The dial task of `peer` stopped without [`Core::dial_done`] saying so.
    pub fn release_dial(&mut self, peer: u64) {
        self.links.release_dial(peer);
    }

    /// A dial of `peer` failed (the next waits longer).
    pub fn dial_failed(&mut self, peer: u64) {
        self.links.dial_failed(peer);
    }

    /// The link to `peer`, if one is up.
    pub fn link(&self, peer: u64) -> Option<LinkSession> {
        self.links.get(peer).copied()
    }

    /// Every link, with its peer.
    pub fn linked_peers(&self) -> impl Iterator<Item = LinkedPeer<'_>> {
        self.links.links().filter_map(|(incarnation, session)| {
            let peer = self.peers.get(&incarnation)?;
            Some(LinkedPeer {
                incarnation,
                name: &peer.name,
                limits: peer.limits,
                session: *session,
            })
        })
    }

    /// The smallest limits among the linked peers; `None` without a link (reported to the
    /// driver as [`CoreEvent::PeerLimits`](super::core::CoreEvent::PeerLimits)).
    pub(super) fn linked_limits(&self) -> Option<Limits> {
        self.linked_peers().map(|p| p.limits).reduce(Limits::min)
    }

    /// Closes every link (shutdown); returns them.
    pub fn close_all(&mut self) -> Vec<(u64, LinkSession)> {
        match self.clock {
            Some(now) => self.sever(now, now),
            // No input carried a time yet, so no link was ever established.
            None => Vec::new(),
        }
    }

    /// Removes the link to `peer` from the table and ends its replication state; a link
    /// that lived shorter than the redial policy's stable time counts as a failure.
    pub(super) fn drop_link(&mut self, peer: u64) -> Option<LinkSession> {
        let now = self.clock?;
        let session = self.links.remove_if(
            peer,
            now,
            |_| true,
            |s| now.saturating_duration_since(s.established),
        )?;
        self.close_link(peer);
        self.links_changed();
        Some(session)
    }

    /// Time never goes backwards for the core.
    pub(super) fn tick(&mut self, now: Instant) {
        self.clock = Some(self.clock.map_or(now, |c| c.max(now)));
    }
}
