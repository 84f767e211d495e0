//! A link's life as the link table and the replication core see it together: a link is
//! established, lost, severed or declared dead in one step under the table's lock, and
//! the limits of the linked peers are kept current for the write path.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime};

use tokio::sync::Notify;

use super::connect::LinkStream;
use super::link::Link;
use super::{Cluster, lock};
use crate::cluster::handshake::Greeting;
use crate::cluster::link_table::{Admission, LinkTable};
use crate::key::Limits;

impl Cluster {
    /// Turns a completed handshake into a link: checks it may still be admitted, then
    /// tells the core, starts the link's tasks and inserts it, as one step under the link
    /// table's lock. A link that ends at once therefore always finds itself in the table.
    pub(super) fn establish(
        self: &Arc<Self>,
        stream: LinkStream,
        peer: Greeting,
        admission: Admission,
    ) {
        let incarnation = peer.incarnation;
        let (session, replaced, outputs) = {
            let mut table = lock(&self.links);
            if let Err(refusal) = table.may_establish(admission, Instant::now()) {
                drop(table);
                self.counters
                    .connections_refused
                    .fetch_add(1, Ordering::Relaxed);
                tracing::info!(peer = %peer.name, %refusal, "link refused after its handshake");
                return;
            }
            let session = self.next_session.fetch_add(1, Ordering::Relaxed);
            let ((), outputs) = self.core_step(|core, node| {
                core.handle_peer_down(node, incarnation, false);
                core.handle_peer_up(node, incarnation, &peer.name, peer.limits, Instant::now());
            });
            let wake = Arc::new(Notify::new());
            let last_heard = Arc::new(AtomicU64::new(self.clock_ms()));
            let (tasks, outlet) =
                self.spawn_link_tasks(stream, incarnation, session, &wake, &last_heard);
            let replaced = table.insert(
                incarnation,
                Link {
                    session,
                    name: peer.name.clone(),
                    addr: peer.addr,
                    limits: peer.limits,
                    established_at: SystemTime::now(),
                    established: Instant::now(),
                    last_heard,
                    outlet,
                    wake,
                    tasks,
                },
            );
            self.refresh_peer_limits(&table);
            (session, replaced, outputs)
        };
        drop(replaced);
        self.counters
            .links_established
            .fetch_add(1, Ordering::Relaxed);
        tracing::info!(peer = %peer.name, incarnation, session, "link established");
        self.act(outputs);
    }

    /// A link ended (error, end of stream, overload, silence). Its peer's entries stay:
    /// membership decides whether the node is down; if it is still a member, the dialer
    /// redials (with backoff if the link died young). A stale session does nothing.
    pub(super) fn link_lost(self: &Arc<Self>, peer: u64, session: u64, why: &'static str) {
        let (link, outputs) = {
            let mut table = lock(&self.links);
            let Some(link) = table.remove_if(
                peer,
                Instant::now(),
                |l| l.session == session,
                |l| l.established.elapsed(),
            ) else {
                return;
            };
            self.refresh_peer_limits(&table);
            let ((), outputs) =
                self.core_step(|core, node| core.handle_peer_down(node, peer, false));
            (link, outputs)
        };
        tracing::info!(peer = %link.name, session, reason = why, "link lost");
        drop(link);
        self.act(outputs);
        if let Some(member) = self.member(peer) {
            self.maybe_dial(member);
        }
    }

    /// The node `peer` is gone for good: its link is closed and its entries purged with
    /// reason `NodeDown`.
    pub(super) fn peer_dead(self: &Arc<Self>, peer: u64) {
        let (link, outputs) = {
            let mut table = lock(&self.links);
            let link = table.forget(peer);
            self.refresh_peer_limits(&table);
            let ((), outputs) =
                self.core_step(|core, node| core.handle_peer_down(node, peer, true));
            (link, outputs)
        };
        drop(link);
        self.act(outputs);
    }

    /// Closes every link and refuses new ones for `duration`, handshakes in flight
    /// included; membership is untouched, so peers keep each other's entries and catch up
    /// by delta when the links come back.
    pub(crate) fn sever_links(self: &Arc<Self>, duration: Duration) {
        let now = Instant::now();
        let (closed, outputs) = {
            let mut table = lock(&self.links);
            let closed = table.sever(now, now + duration);
            self.refresh_peer_limits(&table);
            let ((), outputs) = self.core_step(|core, node| {
                for (peer, _) in &closed {
                    core.handle_peer_down(node, *peer, false);
                }
            });
            (closed, outputs)
        };
        tracing::info!(links = closed.len(), ?duration, "links severed");
        let peers: Vec<u64> = closed.iter().map(|(peer, _)| *peer).collect();
        drop(closed);
        self.act(outputs);
        for peer in peers {
            if let Some(member) = self.member(peer) {
                self.maybe_dial(member);
            }
        }
    }

    /// Closes links whose peer has been silent too long (each is redialed).
    pub(super) fn close_silent_links(self: &Arc<Self>) {
        let now = self.clock_ms();
        let limit = self.silence.as_millis() as u64;
        let silent: Vec<(u64, u64, String)> = lock(&self.links)
            .links()
            .filter(|(_, l)| now.saturating_sub(l.last_heard.load(Ordering::Relaxed)) > limit)
            .map(|(peer, l)| (peer, l.session, l.name.clone()))
            .collect();
        for (peer, session, name) in silent {
            self.counters.links_silent.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(peer = %name, session, silence = ?self.silence, "peer sent nothing: closing the link");
            self.link_lost(peer, session, "peer silent");
        }
    }

    /// Recomputes the peer limits after the links changed (called with the table held).
    pub(super) fn refresh_peer_limits(&self, table: &LinkTable<Link>) {
        let min = table.links().map(|(_, l)| l.limits).reduce(Limits::min);
        self.peer_limits.set(min);
    }
}

/// The smallest limits among linked peers, readable without a lock (`usize::MAX` each
/// while no peer is linked).
pub(super) struct PeerLimits([AtomicUsize; 3]);

impl Default for PeerLimits {
    fn default() -> Self {
        PeerLimits(std::array::from_fn(|_| AtomicUsize::new(usize::MAX)))
    }
}

impl PeerLimits {
    pub(super) fn get(&self) -> Option<Limits> {
        let [key, meta, message] = self.0.each_ref().map(|a| a.load(Ordering::Relaxed));
        (key != usize::MAX).then_some(Limits {
            max_key_bytes: key,
            max_meta_bytes: meta,
            max_message_bytes: message,
        })
    }

    pub(super) fn set(&self, limits: Option<Limits>) {
        let values = limits.map_or([usize::MAX; 3], |l| {
            [l.max_key_bytes, l.max_meta_bytes, l.max_message_bytes]
        });
        for (atomic, value) in self.0.iter().zip(values) {
            atomic.store(value, Ordering::Relaxed);
        }
    }
}
