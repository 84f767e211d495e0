//! What the cluster layer counts, and what it reports of its peers.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::SystemTime;

use crate::cluster::outlet::Moved;
use crate::pid::Incarnation;

/// Counters of the cluster layer (also exported as metrics by the binary).
#[derive(Debug, Default)]
pub(crate) struct ClusterCounters {
    pub(crate) handshake_failures: AtomicU64,
    pub(crate) links_established: AtomicU64,
    pub(crate) links_overloaded: AtomicU64,
    pub(crate) links_silent: AtomicU64,
    pub(crate) link_task_panics: AtomicU64,
    pub(crate) connections_refused: AtomicU64,
    pub(crate) accept_failures: AtomicU64,
    pub(crate) digest_repairs: AtomicU64,
    pub(crate) stream_gaps: AtomicU64,
    pub(crate) bad_frames: AtomicU64,
    pub(crate) items_skipped: AtomicU64,
    pub(crate) bytes_sent: AtomicU64,
    pub(crate) bytes_received: AtomicU64,
    pub(crate) resync_bytes_sent: AtomicU64,
    pub(crate) resync_bytes_received: AtomicU64,
}

impl ClusterCounters {
    /// Counts what a write to a link moved.
    pub(crate) fn count_sent(&self, moved: Moved) {
        self.bytes_sent.fetch_add(moved.sent, Ordering::Relaxed);
        if moved.resync > 0 {
            self.resync_bytes_sent
                .fetch_add(moved.resync, Ordering::Relaxed);
        }
    }
}

/// Counters of a node's cluster layer, as [`Cluster::stats`](crate::Cluster::stats) reports them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ClusterStats {
    /// Bytes written to peer links (frames and their length prefixes).
    pub bytes_sent: u64,
    /// Bytes read from peer links.
    pub bytes_received: u64,
    /// Of [`bytes_sent`](Self::bytes_sent), the bytes of resyncs: snapshot chunks (a link
    /// that comes up to a peer that never had this node's entries or is too far behind for
    /// a delta, a gap in a stream, a divergence found by anti-entropy) and requests for
    /// them, counted as they are handed to the link. A peer that comes back within the op
    /// log catches up by delta, with ordinary op frames, which are not counted here.
    pub resync_bytes_sent: u64,
    /// Of [`bytes_received`](Self::bytes_received), the bytes of resyncs from peers (as
    /// [`resync_bytes_sent`](Self::resync_bytes_sent)).
    pub resync_bytes_received: u64,
    /// Links that completed the handshake.
    pub links_established: u64,
    /// Links refused: failed dials, bad handshakes, wrong secrets or versions.
    pub handshake_failures: u64,
    /// Links dropped because a peer could not keep up.
    pub links_overloaded: u64,
    /// Links closed because the peer sent nothing for several anti-entropy intervals
    /// (a peer always sends at least a ping per interval); each is redialed.
    pub links_silent: u64,
    /// Link reader or writer tasks that panicked (each tore its link down; a bug: please
    /// report it).
    pub link_task_panics: u64,
    /// Connections refused, before their handshake or once it completed: links severed,
    /// too many handshakes in progress (see the README's security section), this node
    /// leaving the cluster, or a peer that left it.
    pub connections_refused: u64,
    /// Failed `accept` calls on the cluster port (for example out of file descriptors).
    pub accept_failures: u64,
    /// Membership datagrams refused before decoding: a bad MAC (another cluster secret or
    /// cluster name, corruption, forgery) or a bad length. Logged at warn, at most one line
    /// per 10 s.
    pub refused_datagrams: u64,
    /// Divergences found by anti-entropy and repaired by a snapshot.
    pub digest_repairs: u64,
    /// Gaps found in peers' op streams (each repaired by a snapshot).
    pub stream_gaps: u64,
    /// Frames from peers that did not decode (each dropped its link).
    pub bad_frames: u64,
    /// Entries and messages from peers skipped because they are over this node's limits
    /// (the peer has larger limits; its link stays up).
    pub items_skipped: u64,
    /// Calls of a custom conflict resolver on this node that panicked; keep-oldest decided
    /// instead.
    pub resolver_panics: u64,
}

/// A peer as [`Cluster::peers`](crate::Cluster::peers) reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerInfo {
    /// The peer's name.
    pub name: String,
    /// Its incarnation.
    pub incarnation: Incarnation,
    /// Its cluster address.
    pub addr: SocketAddr,
    /// When the current link was established.
    pub linked_since: SystemTime,
    /// Identifies the current link (changes on every reconnect).
    pub session: u64,
}
