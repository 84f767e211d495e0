//! A link's life as the shell drives it: the core decides and records every transition
//! (established, lost, severed, dead, see `roster_proto::replication::links`); the shell
//! starts or stops the link's IO in the same step under the IO table's lock, and keeps
//! the limits of the linked peers current for the write path.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Instant, SystemTime};

use tokio::sync::Notify;

use super::connect::LinkStream;
use super::link::{Link, LinkMeter};
use super::{Cluster, lock};
use crate::cluster::handshake::Greeting;
use crate::cluster::link_table::{Admission, SessionId};
use crate::cluster::membership::MemberId;
use crate::key::Limits;
use crate::nodes::NodeEvent;
use crate::pid::Incarnation;
use crate::replication::links::PeerHello;

impl Cluster {
    /// Turns a completed handshake into a link: the core checks it may still be admitted
    /// and records it, then its tasks start and its IO is filed, as one step under the IO
    /// table's lock. A link that ends at once therefore always finds its IO and is removed.
    pub(super) fn establish(
        self: &Arc<Self>,
        stream: LinkStream,
        peer: Greeting,
        admission: Admission,
    ) {
        let incarnation = Incarnation::new(peer.incarnation);
        let mut io = lock(&self.io);
        let hello = PeerHello {
            incarnation,
            name: &peer.name,
            limits: peer.limits,
        };
        let (established, outputs) =
            self.core_step(|core, node| core.establish(node, admission, hello, Instant::now()));
        let established = match established {
            Ok(established) => established,
            Err(refusal) => {
                drop(io);
                self.counters
                    .connections_refused
                    .fetch_add(1, Ordering::Relaxed);
                node_info!(self, peer = %peer.name, %refusal, "link refused after its handshake");
                self.act(outputs);
                return;
            }
        };
        let session = established.session.id;
        // Counted under the IO lock, which `sever_links` takes first: a link counted after
        // a sever began would look established during it, though it came before.
        self.counters
            .links_established
            .fetch_add(1, Ordering::Relaxed);
        let wake = Arc::new(Notify::new());
        let meter = Arc::new(LinkMeter::default());
        let (tasks, outlet) = self.spawn_link_tasks(stream, incarnation, session, &wake, &meter);
        let replaced = io.insert(
            incarnation,
            Link {
                session,
                name: peer.name.clone(),
                addr: peer.addr,
                established_at: SystemTime::now(),
                meter,
                outlet,
                wake,
                tasks,
            },
        );
        if let Some(old) = &replaced {
            self.record_closed(incarnation, old, "replaced by a new link");
        }
        drop(io);
        if let Some(old) = &replaced {
            self.announce_closed(incarnation, old, "replaced by a new link");
        }
        drop(replaced);
        self.node.stores().nodes.publish(NodeEvent::LinkUp {
            peer: peer.name.clone(),
            incarnation,
            session: session.get(),
        });
        node_info!(self, peer = %peer.name, %incarnation, %session, "link established");
        self.act(outputs);
    }

    /// The link of `session` to `peer` ended (error, end of stream, silence). Its peer's
    /// entries stay: membership decides whether the node is down; if it is still a member,
    /// the core redials it (with backoff if the link died young). A stale session only has
    /// its IO dropped.
    pub(super) fn link_lost(
        self: &Arc<Self>,
        peer: Incarnation,
        session: SessionId,
        why: &'static str,
    ) {
        let (link, outputs) = {
            let mut io = lock(&self.io);
            let link = self.take_closed(&mut io, peer, Some(session), why);
            let (_, outputs) =
                self.core_step(|core, _| core.link_lost(peer, session, Instant::now()));
            (link, outputs)
        };
        if let Some(link) = &link {
            node_info!(self, peer = %link.name, %session, reason = why, "link lost");
            self.announce_closed(peer, link, why);
        }
        drop(link);
        self.act(outputs);
    }

    /// The core closed the link of `session` itself (overload, silence: `why`): its IO
    /// goes (the core redials the peer while it is a member).
    pub(super) fn link_closed_by_core(
        self: &Arc<Self>,
        peer: Incarnation,
        session: SessionId,
        why: &'static str,
    ) {
        let link = self.take_closed(&mut lock(&self.io), peer, Some(session), why);
        if let Some(link) = &link {
            self.announce_closed(peer, link, why);
        }
        drop(link);
    }

    /// Membership lists the node `member` alive: the core dials it if this node is the
    /// dialer of the pair.
    pub(super) fn member_up(self: &Arc<Self>, member: &MemberId) {
        let ((), outputs) = self.core_step(|core, node| {
            core.handle_member_up(
                node,
                Incarnation::new(member.incarnation),
                member.addr,
                Instant::now(),
            );
        });
        self.act(outputs);
    }

    /// The node `peer` is gone for good (`left`: on purpose): its link is closed and its
    /// entries purged with reason `NodeDown`.
    pub(super) fn peer_dead(self: &Arc<Self>, peer: Incarnation, left: bool) {
        let (link, outputs) = {
            let mut io = lock(&self.io);
            let (_, outputs) = self
                .core_step(|core, node| core.handle_member_down(node, peer, left, Instant::now()));
            let link = self.take_closed(&mut io, peer, None, "the peer is dead");
            (link, outputs)
        };
        if let Some(link) = &link {
            self.announce_closed(peer, link, "the peer is dead");
        }
        drop(link);
        self.act(outputs);
    }

    /// Takes the IO of `peer`'s link out of the table `io` (borrowed from its lock), if
    /// it is that of `session` (any, if `None`), and records its session closed for `why`
    /// under that lock (see [`Cluster::record_closed`]).
    pub(super) fn take_closed(
        &self,
        io: &mut HashMap<Incarnation, Link>,
        peer: Incarnation,
        session: Option<SessionId>,
        why: &str,
    ) -> Option<Link> {
        let link = match io.get(&peer) {
            Some(link) if session.is_none_or(|s| s == link.session) => io.remove(&peer),
            _ => None,
        }?;
        self.record_closed(peer, &link, why);
        Some(link)
    }
}

/// The smallest limits among linked peers, readable without a lock (`usize::MAX` each
/// while no peer is linked).
pub(super) struct PeerLimits([AtomicUsize; 3]);

impl Default for PeerLimits {
    fn default() -> Self {
        Self(std::array::from_fn(|_| AtomicUsize::new(usize::MAX)))
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
