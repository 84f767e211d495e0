//! What the core carries for the node registry: this node's record (sent to every peer
//! after `Hello` and on every change), heartbeats, and the pings that measure each link's
//! round-trip time; and the same for the external nodes this node keeps. Records and
//! heartbeats from peers go into the host's [`NodeRegistry`](crate::nodes::NodeRegistry);
//! a node only speaks for itself and the external nodes it keeps, so any other record is
//! ignored.

use std::time::{Duration, Instant};

use super::barrier::is_barrier_ping;
use super::core::Core;
use super::host::ReplicaHost;
use super::wire::Frame;
use crate::nodes::{Heartbeat, NodeRecord, PeerSample};
use crate::vocab::pid::Incarnation;

impl Core {
    /// Sets this node's record: kept in the host's registry and sent to every linked peer
    /// (and to each peer that links later).
    pub fn set_own_record(&mut self, host: &dyn ReplicaHost, record: NodeRecord) {
        self.handle_local_ops(host);
        host.node_registry()
            .apply_record(record.clone(), host.now_ms());
        for (id, peer) in self.peers.iter_mut() {
            if self.links.get(*id).is_some() {
                peer.push(Frame::Node(record.clone()));
            }
        }
        self.own_record = Some(record);
    }

    /// Publishes this node's heartbeat: kept in the host's registry and sent to every
    /// linked peer.
    pub fn publish_heartbeat(&mut self, host: &dyn ReplicaHost, heartbeat: Heartbeat) {
        self.handle_local_ops(host);
        host.node_registry()
            .apply_heartbeat(self.me.get(), heartbeat.clone(), host.now_ms());
        for (id, peer) in self.peers.iter_mut() {
            if self.links.get(*id).is_some() {
                peer.push(Frame::Heartbeat(heartbeat.clone()));
            }
        }
    }

    /// Sets the record of an external node this node keeps (its
    /// [`keeper`](NodeRecord::keeper) is this node): kept in the host's registry and sent
    /// to every linked peer (and to each peer that links later) until
    /// [`Core::drop_kept`].
    pub fn set_kept_record(&mut self, host: &dyn ReplicaHost, record: NodeRecord) {
        self.handle_local_ops(host);
        host.node_registry()
            .apply_record(record.clone(), host.now_ms());
        for (id, peer) in self.peers.iter_mut() {
            if self.links.get(*id).is_some() {
                peer.push(Frame::Node(record.clone()));
            }
        }
        self.kept.insert(record.name.clone(), record);
    }

    /// Stops sending the record of the external node `name` to peers that link later (its
    /// offline record past its retention; peers drop it after theirs).
    pub fn drop_kept(&mut self, name: &str) {
        self.kept.remove(name);
    }

    /// Publishes a heartbeat of the external node of `incarnation`, which this node keeps:
    /// kept in the host's registry and sent to every linked peer.
    pub fn publish_kept_heartbeat(
        &mut self,
        host: &dyn ReplicaHost,
        incarnation: Incarnation,
        heartbeat: Heartbeat,
    ) {
        self.handle_local_ops(host);
        host.node_registry().apply_kept_heartbeat(
            self.me.get(),
            incarnation,
            heartbeat.clone(),
            host.now_ms(),
        );
        for (id, peer) in self.peers.iter_mut() {
            if self.links.get(*id).is_some() {
                peer.push(Frame::KeptHeartbeat {
                    node: incarnation,
                    heartbeat: heartbeat.clone(),
                });
            }
        }
    }

    /// Pings every linked peer now (their answers update the links' round-trip times).
    pub fn probe(&mut self, now: Instant) {
        self.tick(now);
        for (id, peer) in self.peers.iter_mut() {
            if self.links.get(*id).is_none() {
                continue;
            }
            let ping = self.next_ping;
            self.next_ping += 1;
            // An unanswered older ping is forgotten: only the latest is timed.
            peer.ping = Some((ping, now));
            peer.push(Frame::Ping { id: ping });
        }
    }

    /// What this node measures of each link for its heartbeat: round-trip time and queue.
    pub fn peer_samples(&self) -> Vec<PeerSample> {
        self.peers
            .iter()
            .filter(|(id, _)| self.links.get(**id).is_some())
            .filter_map(|(id, peer)| {
                let session = self.links.get(*id)?;
                Some(PeerSample {
                    name: peer.name.clone(),
                    incarnation: *id,
                    session: session.id.get(),
                    rtt_us: peer.rtt.map(|rtt| rtt.as_micros() as u64),
                    queued: peer.queued() as u64,
                })
            })
            .collect()
    }

    /// The round-trip time of the link to `peer`, once a ping was answered.
    pub fn rtt(&self, peer: Incarnation) -> Option<Duration> {
        self.links.get(peer)?;
        self.peers.get(&peer)?.rtt
    }

    pub(super) fn on_ping(&mut self, peer: Incarnation, id: u64) {
        if let Some(state) = self.peers.get_mut(&peer) {
            if is_barrier_ping(id) {
                // Behind every op of ours due to the peer, as the barrier needs.
                state.push_barrier(Frame::Pong { id });
            } else {
                state.push(Frame::Pong { id });
            }
        }
    }

    pub(super) fn on_pong(&mut self, peer: Incarnation, id: u64, now: Instant) {
        self.barriers.pong(peer, id);
        let Some(state) = self.peers.get_mut(&peer) else {
            return;
        };
        if let Some((sent_id, sent_at)) = state.ping
            && sent_id == id
        {
            state.rtt = Some(now.saturating_duration_since(sent_at));
            state.ping = None;
        }
    }

    pub(super) fn on_node_record(
        &mut self,
        host: &dyn ReplicaHost,
        peer: Incarnation,
        record: NodeRecord,
    ) {
        let speaks_for_it = match &record.keeper {
            None => record.incarnation == peer,
            Some(keeper) => keeper.incarnation == peer,
        };
        if speaks_for_it {
            host.node_registry().apply_record(record, host.now_ms());
        }
    }

    pub(super) fn on_kept_heartbeat(
        &mut self,
        host: &dyn ReplicaHost,
        peer: Incarnation,
        node: Incarnation,
        heartbeat: Heartbeat,
    ) {
        host.node_registry()
            .apply_kept_heartbeat(peer.get(), node, heartbeat, host.now_ms());
    }

    pub(super) fn on_heartbeat(
        &mut self,
        host: &dyn ReplicaHost,
        peer: Incarnation,
        heartbeat: Heartbeat,
    ) {
        host.node_registry()
            .apply_heartbeat(peer.get(), heartbeat, host.now_ms());
    }
}
