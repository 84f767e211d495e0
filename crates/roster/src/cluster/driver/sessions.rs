//! Link sessions as operators see them: every live link with what crossed it, and a
//! bounded history of the links that closed, with when and why.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, SystemTime};

use super::link::Link;
use super::{Cluster, lock};
use crate::nodes::NodeEvent;
use crate::pid::Incarnation;

/// Closed link sessions kept for [`Cluster::link_sessions`](crate::Cluster::link_sessions).
pub(super) const CLOSED_KEPT: usize = 64;

/// How a link is carried.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LinkKind {
    /// Plain TCP.
    Tcp,
    /// TLS over TCP.
    Tls,
    /// Not a Roster link: an external node's tie to the member that keeps it (its
    /// heartbeats reach that member however the application takes them, e.g. over HTTP).
    /// Only in the cluster graph.
    External,
}

impl std::fmt::Display for LinkKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Tcp => "tcp",
            Self::Tls => "tls",
            Self::External => "external",
        })
    }
}

/// One link session: a live, authenticated connection to a peer, or one that closed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct LinkSession {
    /// The session id (this node's; changes with every new link).
    pub session: u64,
    /// The peer's name.
    pub peer: String,
    /// The peer's incarnation.
    pub peer_incarnation: Incarnation,
    /// This node's incarnation.
    pub local_incarnation: Incarnation,
    /// How the link is carried.
    pub kind: LinkKind,
    /// When the handshake completed.
    pub established_at: SystemTime,
    /// The round-trip time of the last answered ping (live links only).
    pub rtt: Option<Duration>,
    /// Bytes sent to the peer (frames and their length prefixes).
    pub bytes_out: u64,
    /// Bytes received from the peer.
    pub bytes_in: u64,
    /// Frames sent to the peer.
    pub frames_out: u64,
    /// Frames received from the peer.
    pub frames_in: u64,
    /// When it closed and why; `None` while it is live.
    pub closed: Option<(SystemTime, String)>,
}

impl Cluster {
    /// The session record of the live link `link` to `peer`.
    fn session_of(&self, peer: Incarnation, link: &Link, rtt: Option<Duration>) -> LinkSession {
        let meter = &link.meter;
        LinkSession {
            session: link.session.get(),
            peer: link.name.clone(),
            peer_incarnation: peer,
            local_incarnation: Incarnation::new(self.me.incarnation),
            // Only plain TCP links have an outlet (a TLS link's writer task does it all).
            kind: if link.outlet.is_some() {
                LinkKind::Tcp
            } else {
                LinkKind::Tls
            },
            established_at: link.established_at,
            rtt,
            bytes_out: meter.bytes_out.load(Ordering::Relaxed),
            bytes_in: meter.bytes_in.load(Ordering::Relaxed),
            frames_out: meter.frames_out.load(Ordering::Relaxed),
            frames_in: meter.frames_in.load(Ordering::Relaxed),
            closed: None,
        }
    }

    /// Records that the link `link` to `peer` closed for `reason`. Called while the IO
    /// table's lock that took the link out is held, so that a reader of
    /// [`Cluster::link_sessions`] finds the session live or closed, never neither nor
    /// both; then [`Cluster::announce_closed`] once the lock is released.
    pub(super) fn record_closed(&self, peer: Incarnation, link: &Link, reason: &str) {
        let mut session = self.session_of(peer, link, None);
        session.closed = Some((SystemTime::now(), reason.to_owned()));
        let mut closed = lock(&self.closed);
        if closed.len() >= CLOSED_KEPT {
            closed.pop_front();
        }
        closed.push_back(session);
    }

    /// Tells the node event subscribers that the link `link` to `peer` closed for
    /// `reason` (recorded by [`Cluster::record_closed`]).
    pub(super) fn announce_closed(&self, peer: Incarnation, link: &Link, reason: &str) {
        self.node.stores().nodes.publish(NodeEvent::LinkDown {
            peer: link.name.clone(),
            incarnation: peer,
            session: link.session.get(),
            reason: reason.to_owned(),
        });
    }

    /// How this node's links are carried.
    pub(crate) fn link_kind(&self) -> LinkKind {
        #[cfg(feature = "tls")]
        if self.tls.is_some() {
            return LinkKind::Tls;
        }
        LinkKind::Tcp
    }

    /// Every live link session, by peer name, then the latest closed ones, oldest first.
    /// Both read under the IO table's lock, under which a closing session moves from one
    /// to the other.
    pub(crate) fn link_sessions(self: &Arc<Self>) -> Vec<LinkSession> {
        let (mut sessions, closed): (Vec<LinkSession>, Vec<LinkSession>) = {
            let io = lock(&self.io);
            let core = lock(&self.core);
            let live = io
                .iter()
                .map(|(peer, link)| self.session_of(*peer, link, core.rtt(*peer)))
                .collect();
            (live, lock(&self.closed).iter().cloned().collect())
        };
        sessions.sort_by(|a, b| a.peer.cmp(&b.peer));
        sessions.extend(closed);
        sessions
    }
}

/// The history of closed sessions (bounded).
pub(super) type ClosedSessions = VecDeque<LinkSession>;
