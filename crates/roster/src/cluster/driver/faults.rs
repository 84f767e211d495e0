//! Fault injection (feature `fault-injection`): links severed, the node cut off the
//! cluster or off some members, for a while.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::link::Link;
use super::{Cluster, lock};
use crate::clock::deadline_after;
use crate::cluster::link_table::LinkSession;
use crate::cluster::membership::MemberId;
use crate::pid::Incarnation;
use crate::replication::core::Core;

impl Cluster {
    /// Closes every link and refuses new ones for `duration`, handshakes in flight
    /// included; membership is untouched, so peers keep each other's entries and catch up
    /// by delta when the links come back.
    pub(crate) fn sever_links(self: &Arc<Self>, duration: Duration) {
        let now = Instant::now();
        let until = deadline_after(now, duration);
        let closed = self.sever_with(|core| core.sever(now, until));
        node_info!(self, links = closed, ?duration, "links severed");
    }

    /// Severs links as `sever` does it in the core, under the IO table's lock: each link
    /// it closed loses its IO (the core redials its members when the sever ends). Returns
    /// how many links it closed.
    fn sever_with(
        self: &Arc<Self>,
        sever: impl FnOnce(&mut Core) -> Vec<(Incarnation, LinkSession)>,
    ) -> usize {
        let (closed, outputs) = {
            let mut io = lock(&self.io);
            let (closed, outputs) = self.core_step(|core, _| sever(core));
            let links: Vec<(Incarnation, Option<Link>)> = closed
                .iter()
                .map(|(peer, session)| {
                    let link = self.take_closed(&mut io, *peer, Some(session.id), "severed");
                    (*peer, link)
                })
                .collect();
            (links, outputs)
        };
        for (peer, link) in &closed {
            if let Some(link) = link {
                self.announce_closed(*peer, link, "severed");
            }
        }
        let count = closed.len();
        drop(closed);
        self.act(outputs);
        count
    }

    /// Fault injection: severs links and drops every membership datagram in and out for
    /// `duration`, so that this node and the others declare each other dead, as a
    /// network partition would.
    pub(crate) fn isolate(self: &Arc<Self>, duration: Duration) {
        if let Some(membership) = lock(&self.membership).as_ref() {
            membership.isolate(deadline_after(Instant::now(), duration).into());
        }
        self.sever_links(duration);
    }

    /// Fault injection: cuts this node off the members named in `names` for `duration`
    /// (membership datagrams dropped both ways, links closed and refused), as a
    /// partition between them would. Returns how many members were cut off.
    pub(crate) fn isolate_from(self: &Arc<Self>, names: &[&str], duration: Duration) -> usize {
        let until = deadline_after(Instant::now(), duration);
        let peers: Vec<MemberId> = self
            .members()
            .into_iter()
            .filter(|m| names.contains(&m.name.as_str()))
            .collect();
        if let Some(membership) = lock(&self.membership).as_ref() {
            let addrs: Vec<_> = peers.iter().map(|m| m.addr).collect();
            membership.isolate_from(&addrs, until.into());
        }
        let incarnations: Vec<Incarnation> = peers
            .iter()
            .map(|m| Incarnation::new(m.incarnation))
            .collect();
        let closed = self.sever_with(|core| core.sever_peers(&incarnations, Instant::now(), until));
        node_info!(
            self,
            peers = peers.len(),
            links = closed,
            ?duration,
            "cut off from members"
        );
        peers.len()
    }
}
