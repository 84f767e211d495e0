//! The life of a core's links: membership's view of the peers, the dials the core decides
//! (with each peer's backoff), admission of handshakes, a completed handshake becoming a
//! link, a link lost, links severed, a peer declared dead or vanished.
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
//! membership:  handle_member_up(peer, addr) | handle_member_down(peer, left)
//! dialer:      poll_dial() → Dial { peer, addr, admission } → (connect, handshake)
//! acceptor:    admit_handshake → (handshake)
//! both:        establish(admission, peer) → Ok(session) → frames tagged with the session
//!              or handshake_failed(admission)
//! any end:     link_lost(peer, session) | sever | sever_peers | handle_member_down
//!              | CoreEvent::Overloaded | CoreEvent::Silent
//! shutdown:    leave (no dial, no new link) → … → close_all
//! ```
//!
//! Of two peers the one of the smaller incarnation dials. The core dials a member whenever
//! it has no link to it, after the backoff of its failures (a failed dial or a link that
//! died young) and after any sever; the deadlines are in [`Core::poll_timeout`], and
//! [`Core::poll_dial`] hands out each dial due, admitted.

use std::net::SocketAddr;
use std::time::Instant;

use super::core::{Core, CoreEvent};
use super::host::ReplicaHost;
use crate::nodes::LEFT_THE_CLUSTER;
use crate::vocab::key::Limits;
use crate::vocab::pid::Incarnation;

pub use crate::link_table::Dial;
use crate::link_table::{Admission, LinkSession, Refusal, SessionId};

/// The peer at the other end of a completed handshake.
#[derive(Debug, Clone, Copy)]
pub struct PeerHello<'a> {
    /// The peer's incarnation (its id in the cluster).
    pub incarnation: Incarnation,
    /// The peer's node name.
    pub name: &'a str,
    /// The limits the peer accepts.
    pub limits: Limits,
}

/// A linked peer, as [`Core::linked_peers`] lists it.
#[derive(Debug, Clone, Copy)]
pub struct LinkedPeer<'a> {
    /// The peer's incarnation.
    pub incarnation: Incarnation,
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

    /// The handshake of `admission` (inbound or dialed) failed at `now`, or its connection
    /// closed before it ended; a dialed peer is dialed again after its backoff. Returns
    /// whether the failure counted toward that backoff (not for an inbound admission, nor
    /// for a dial of a peer forgotten since).
    pub fn handshake_failed(&mut self, admission: Admission, now: Instant) -> bool {
        self.tick(now);
        self.links.handshake_failed(admission, now)
    }

    /// Membership lists the node `peer` alive, listening at `addr`: it is dialed whenever
    /// it has no link, if this node is the dialer of the pair ([`Core::poll_dial`]).
    pub fn handle_member_up(
        &mut self,
        host: &dyn ReplicaHost,
        peer: Incarnation,
        addr: SocketAddr,
        now: Instant,
    ) {
        self.handle_local_ops(host);
        self.tick(now);
        self.links.member_up(peer, addr);
    }

    /// Membership declared the node `peer` dead (`left`: it left the cluster on purpose):
    /// it is no longer dialed, its link, if any, is closed (returned), every entry of it
    /// purged with reason `NodeDown`, and its node record marked offline (as having left,
    /// [`LEFT_THE_CLUSTER`], whether or not its own leave record arrived first). A peer
    /// that left is also refused a link ([`Refusal::PeerLeft`]): a handshake it began
    /// before it left would bring its entries back. One declared dead without leaving may
    /// link again (it may have been wrongly declared dead, and comes back renewed).
    pub fn handle_member_down(
        &mut self,
        host: &dyn ReplicaHost,
        peer: Incarnation,
        left: bool,
        now: Instant,
    ) -> Option<LinkSession> {
        self.tick(now);
        if left {
            self.peer_gone(host, peer, LEFT_THE_CLUSTER, true, now)
        } else {
            self.peer_gone(host, peer, "declared dead by membership", false, now)
        }
    }

    /// The next dial due, admitted: connect to its address and end its admission with
    /// [`Core::establish`] or [`Core::handshake_failed`]. Drained after every call, as
    /// [`Core::poll_event`].
    pub fn poll_dial(&mut self) -> Option<Dial> {
        if self.dials.is_empty() {
            let now = self.clock?;
            self.dials.extend(self.links.due_dials(now));
        }
        self.dials.pop_front()
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
    pub fn link_lost(&mut self, peer: Incarnation, session: SessionId, now: Instant) -> bool {
        self.tick(now);
        let current = self.links.get(peer).is_some_and(|s| s.id == session);
        if current {
            self.drop_link(peer);
        }
        current
    }

    fn peer_gone(
        &mut self,
        host: &dyn ReplicaHost,
        peer: Incarnation,
        why: &str,
        left: bool,
        now: Instant,
    ) -> Option<LinkSession> {
        self.handle_local_ops(host);
        let link = if left {
            self.links.forget_departed(peer, now)
        } else {
            self.links.forget(peer)
        };
        self.forget_peer(host, peer);
        host.node_registry()
            .mark_offline(peer.get(), why, left, host.now_ms());
        self.links_changed();
        link
    }

    /// Closes every link at `now` and refuses new ones, handshakes in flight included,
    /// until `until`. Peers keep each other's entries and catch up by delta afterwards.
    /// Returns the links closed.
    pub fn sever(&mut self, now: Instant, until: Instant) -> Vec<(Incarnation, LinkSession)> {
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
        peers: &[Incarnation],
        now: Instant,
        until: Instant,
    ) -> Vec<(Incarnation, LinkSession)> {
        self.tick(now);
        let closed = self.links.sever_peers(peers, now, until);
        for (peer, _) in &closed {
            self.close_link(*peer);
        }
        self.links_changed();
        closed
    }

    /// Purges the peers unlinked past [`CoreConfig::vanish_grace`](super::core::CoreConfig::vanish_grace)
    /// that membership does not list, like dead ones.
    pub(super) fn purge_vanished(&mut self, host: &dyn ReplicaHost, now: Instant) {
        for peer in self.links.vanished(now, self.config.vanish_grace) {
            self.peer_gone(
                host,
                peer,
                "unlinked past the grace period and unknown to membership",
                false,
                now,
            );
            self.events.push_back(CoreEvent::Vanished { peer });
        }
    }

    /// The link to `peer`, if one is up.
    pub fn link(&self, peer: Incarnation) -> Option<LinkSession> {
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

    /// This node starts to leave the cluster at `now`: it dials no peer and admits no
    /// handshake from then on ([`Refusal::Leaving`]), and a handshake admitted before
    /// becomes no link. The links up stay, to carry what is queued, until
    /// [`Core::close_all`]: a peer that closes its link when it learns of the leave is
    /// not dialed again by a node that is going.
    pub fn leave(&mut self, now: Instant) {
        self.tick(now);
        self.links.leave();
    }

    /// Closes every link (shutdown); returns them.
    pub fn close_all(&mut self) -> Vec<(Incarnation, LinkSession)> {
        match self.clock {
            Some(now) => self.sever(now, now),
            // No input carried a time yet, so no link was ever established.
            None => Vec::new(),
        }
    }

    /// Removes the link to `peer` from the table and ends its replication state; a link
    /// that lived shorter than the redial policy's stable time counts as a failure.
    pub(super) fn drop_link(&mut self, peer: Incarnation) -> Option<LinkSession> {
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
