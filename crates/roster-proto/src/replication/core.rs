//! The replication core: a deterministic state machine with no sockets, tasks or clocks.
//!
//! [`Core`] implements the replication contract (the repository's `docs/architecture.md`,
//! "The replication contract") for one node. It
//! takes inputs — local ops (drained from the node's outbox), frames from peers, peers
//! coming up or going down, scope changes, and time — and produces outputs: frames to send
//! to each peer ([`Core::poll_transmit`]), events for the driver ([`Core::poll_event`]) and
//! the next deadline ([`Core::poll_timeout`]). The tokio driver and the simulation harness
//! are thin shells around it. Time passed in must never go backwards.
//!
//! # Streams
//!
//! Each node numbers the ops of its own processes per scope, `1, 2, 3, ...`, and keeps the
//! last [`CoreConfig::op_log`] of them, within [`CoreConfig::op_log_bytes`]. A peer remembers the last sequence it applied of
//! each of our streams. When a link comes up, the peer's `Hello` says where it is; we send
//! the missing ops from the log, or a snapshot of our entries in the scope when the log no
//! longer covers the gap (or the peer never had our stream). A snapshot replaces the
//! peer's view of our entries, so entries we removed meanwhile cannot survive there; its
//! last chunk also carries the removals of names our processes lost in conflicts that the
//! log still holds, so that a winner's node learns of a loss it never saw the claim of.
//!
//! # Batching
//!
//! Live ops for a peer accumulate until the driver takes them with `poll_transmit`, which
//! turns everything queued into as few frames as the frame caps (op count and bytes)
//! allow: while one write is in flight the next batch grows, with no timer. Control frames
//! keep their place in the queue, after the ops queued before them. Catch-up (missed ops
//! from the log, or a snapshot) is not queued: `poll_transmit` reads a frame of it per
//! call, so it goes out as fast as the peer's socket drains and only live ops count
//! against [`CoreConfig::max_queued_ops`]. Messages may overtake a catch-up in progress.
//! Every interval each linked peer also gets a `Ping`, so a silent link can be detected.
//!
//! # Anti-entropy
//!
//! Every [`CoreConfig::anti_entropy_interval`] we send each peer, per common scope, our
//! digest of its entries and the sequence we applied. A peer whose own digest at that
//! sequence differs sends a fresh snapshot and counts a repair
//! ([`CoreEvent::Repaired`]): divergence cannot go unnoticed.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::barrier::{Barrier, Barriers};
use super::host::ReplicaHost;
use super::op_log::OwnStream;
use super::peer::{CatchUp, FRAME_BYTES, Peer, take_frame};
use super::wire::{Dispatch, Frame, Message};
use crate::link_table::{Dial, LinkSession, LinkTable, RedialPolicy, SessionId};
use crate::nodes::NodeRecord;
use crate::store::ApplyOutcome;
use crate::store::{ScopeStore, SnapshotReceiver, SnapshotSize};
use crate::vocab::event::ExitReason;
use crate::vocab::event::Reason;
use crate::vocab::key::{Limits, ScopeName};
use crate::vocab::op::{Op, Restamp};
use crate::vocab::pid::Incarnation;

/// Tuning of a [`Core`].
#[derive(Debug, Clone)]
pub struct CoreConfig {
    /// Ops of each own stream kept for delta catch-up. A peer that missed more gets a
    /// snapshot. 65 536 ops cover a second of heavy churn; their slots alone take 6 MiB
    /// per scope, and their keys and metas are bounded by `op_log_bytes`.
    pub op_log: usize,
    /// Bytes the ops kept of each own stream may take, slots, keys and metas counted
    /// (see `op_log`). 16 MiB keeps the whole 65 536 ops when keys and metas are under
    /// 160 bytes, and bounds what a log of large metas keeps alive after churn.
    pub op_log_bytes: usize,
    /// Most ops per frame (ops and snapshot chunks). 4096 ops of ~60 bytes keep a frame
    /// near 256 KiB: large enough to amortize a write, small enough to interleave.
    pub max_ops_per_frame: usize,
    /// Live ops and messages queued for one peer before its link is declared overloaded
    /// and dropped (it catches up when it comes back). Bounds memory per slow peer.
    pub max_queued_ops: usize,
    /// How often digests are exchanged. Every linked peer is also pinged at least this
    /// often, so a link that brings nothing for [`silence`](Self::silence) is dead.
    pub anti_entropy_interval: Duration,
    /// A link whose peer sent nothing for this long is closed
    /// ([`CoreEvent::Silent`]; the peer is redialed while a member). Several
    /// anti-entropy intervals, so that a loaded peer is not taken for a dead one.
    pub silence: Duration,
    /// This node's limits: items from peers over them are skipped.
    pub limits: Limits,
    /// When to redial a peer after a failed dial or a link that died young.
    pub redial: RedialPolicy,
    /// Most inbound handshakes in progress at once; further connections are refused at
    /// once. Each costs at most a few KiB until its handshake ends or times out.
    pub max_handshakes: usize,
    /// How long a peer membership does not list may stay unlinked before it is purged
    /// like a dead one: its node may have gone before membership ever reported it up
    /// here, so no down would come.
    pub vanish_grace: Duration,
}

impl Default for CoreConfig {
    fn default() -> Self {
        Self {
            op_log: 65_536,
            op_log_bytes: 16 * 1024 * 1024,
            max_ops_per_frame: 4096,
            max_queued_ops: 1_000_000,
            anti_entropy_interval: Duration::from_secs(2),
            silence: Duration::from_secs(10),
            limits: Limits::DEFAULT,
            redial: RedialPolicy::default(),
            max_handshakes: 64,
            vanish_grace: Duration::from_secs(15),
        }
    }
}

/// Something the driver should know or act on.
#[derive(Debug, Clone, PartialEq, Eq)]
#[allow(missing_docs, reason = "the variant docs say what the fields are")]
pub enum CoreEvent {
    /// The peer's queue overflowed: the link of `session` is closed here (the peer
    /// resyncs when it comes back); close its connection.
    Overloaded {
        peer: Incarnation,
        session: SessionId,
    },
    /// The peer sent nothing on the link of `session` for
    /// [`CoreConfig::silence`]: the link is closed here; close its connection.
    Silent {
        peer: Incarnation,
        session: SessionId,
    },
    /// A digest mismatch was found and a snapshot sent to repair it.
    Repaired { peer: Incarnation, scope: ScopeName },
    /// A peer sent ops with a gap in its stream; a snapshot was requested.
    GapDetected { peer: Incarnation, scope: ScopeName },
    /// Items from a peer were over this node's limits and skipped: entries with a longer
    /// key or larger meta, messages larger than `max_message_bytes`. The link stays.
    Skipped { peer: Incarnation, items: usize },
    /// A peer sent a message for a local process: deliver it (a process that is gone just
    /// does not get it, as in Erlang).
    Deliver(Message),
    /// A peer dispatched a message to the local owner and members of a key.
    Dispatch(Dispatch),
    /// A peer that membership does not list stayed unlinked for
    /// [`CoreConfig::vanish_grace`]: it was purged like a dead one.
    Vanished { peer: Incarnation },
    /// The smallest limits among the linked peers changed (a link came or went); `None`
    /// without a link. What this node writes is checked against them.
    PeerLimits(Option<Limits>),
}

/// Why [`Core::send_message`] or [`Core::send_dispatch`] did not queue a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unsent {
    /// The peer has no link.
    NoLink,
    /// The payload is over the peer's `max_message_bytes`.
    TooLarge {
        /// The peer's `max_message_bytes`.
        max: usize,
    },
}

/// The replication state machine of one node; see the [module docs](self).
///
/// Call order: after any `handle_*` call, drain [`Core::poll_transmit`] for every peer,
/// then [`Core::poll_event`], and re-arm the timer from [`Core::poll_timeout`].
pub struct Core {
    pub(super) me: Incarnation,
    pub(super) config: CoreConfig,
    streams: BTreeMap<ScopeName, OwnStream>,
    /// Replication state per peer, linked or not.
    pub(super) peers: BTreeMap<Incarnation, Peer>,
    /// The one record of which peers are linked, and of dialing and admission.
    pub(super) links: LinkTable<LinkSession>,
    pub(super) next_session: SessionId,
    /// The time of the latest input that carried one.
    pub(super) clock: Option<Instant>,
    /// This node's record, sent to every peer after `Hello`.
    pub(super) own_record: Option<NodeRecord>,
    /// The records of the external nodes this node keeps, by name (sent after its own).
    pub(super) kept: BTreeMap<String, NodeRecord>,
    pub(super) next_ping: u64,
    pub(super) events: VecDeque<CoreEvent>,
    /// Dials decided and admitted, not yet handed out ([`Core::poll_dial`]).
    pub(super) dials: VecDeque<Dial>,
    next_anti_entropy: Option<Instant>,
    /// Barriers waiting for peers' answers (`barrier.rs`).
    pub(super) barriers: Barriers,
    /// The smallest limits among the linked peers as last reported
    /// ([`CoreEvent::PeerLimits`]); `None` without a link.
    reported_limits: Option<Limits>,
    /// A link opened since [`Core::take_deadline_forward`] last answered (the link table
    /// keeps its own flag for dials and vanishings).
    deadline_forward: bool,
}

impl Core {
    /// The core of the node of incarnation `me`.
    pub fn new(me: Incarnation, config: CoreConfig) -> Self {
        Self {
            me,
            links: LinkTable::new(me, config.redial, config.max_handshakes),
            config,
            streams: BTreeMap::new(),
            peers: BTreeMap::new(),
            next_session: SessionId::new(1),
            clock: None,
            own_record: None,
            kept: BTreeMap::new(),
            next_ping: 1,
            events: VecDeque::new(),
            dials: VecDeque::new(),
            next_anti_entropy: None,
            barriers: Barriers::default(),
            reported_limits: None,
            deadline_forward: false,
        }
    }

    /// The set of linked peers changed: reports their smallest limits if they changed.
    pub(super) fn links_changed(&mut self) {
        let limits = self.linked_limits();
        if limits != self.reported_limits {
            self.reported_limits = limits;
            self.events.push_back(CoreEvent::PeerLimits(limits));
        }
    }

    /// Linked peers connected to `scope`.
    pub fn peers_in(&self, scope: &str) -> Vec<Incarnation> {
        self.peers
            .iter()
            .filter(|(id, p)| self.links.get(**id).is_some() && p.scopes.contains(scope))
            .map(|(id, _)| *id)
            .collect()
    }

    /// Sets a barrier in `scope`: pings every peer that is linked and that we replicate
    /// `scope` to (caught up or catching up), behind every op of ours due to it; reached
    /// once each has answered or lost its link, at once when there is no such peer. See
    /// [`Barrier`] for what its answers prove.
    pub fn barrier(&mut self, host: &dyn ReplicaHost, scope: &str) -> Barrier {
        self.handle_local_ops(host);
        let peers = self
            .peers
            .iter()
            .filter(|(id, p)| {
                self.links.get(**id).is_some()
                    && (p.synced.contains(scope) || p.catching_up.contains_key(scope))
            })
            .map(|(id, _)| *id)
            .collect();
        let (barrier, pings) = self.barriers.set(peers);
        for (peer, id) in pings {
            if let Some(state) = self.peers.get_mut(&peer) {
                state.push_barrier(Frame::Ping { id });
            }
        }
        barrier
    }

    /// Our sequence in a scope's stream (for tests and metrics).
    pub fn own_seq(&self, scope: &str) -> u64 {
        self.streams.get(scope).map_or(0, |s| s.seq)
    }

    /// Starts the replication state of a new link to `peer` (incarnation); the link table
    /// already lists it.
    ///
    /// A peer with the same name and another incarnation is a restarted node: every entry
    /// of the old incarnation is purged at once.
    pub(super) fn open_link(
        &mut self,
        host: &dyn ReplicaHost,
        peer: Incarnation,
        name: &str,
        limits: Limits,
        now: Instant,
    ) {
        let stale: Vec<Incarnation> = self
            .peers
            .iter()
            .filter(|(id, p)| **id != peer && p.name == name)
            .map(|(id, _)| *id)
            .collect();
        for old in stale {
            self.forget_peer(host, old);
        }
        let state = self
            .peers
            .entry(peer)
            .or_insert_with(|| Peer::new(name.to_owned(), limits));
        state.limits = limits;
        state.reset_link_state();
        state.last_heard = Some(now);
        self.deadline_forward = true;
        self.barriers.link_gone(peer);
        let scopes = host.replicated_scopes();
        let positions = scopes
            .iter()
            .filter_map(|s| state.applied.get(&s.name).map(|seq| (s.name.clone(), *seq)))
            .collect();
        let clock = scopes.iter().map(|s| s.clock_reading()).max().unwrap_or(0);
        state.push(Frame::Hello {
            scopes: scopes.iter().map(|s| s.name.clone()).collect(),
            positions,
            clock,
        });
        if let Some(record) = &self.own_record {
            state.push(Frame::Node(record.clone()));
        }
        for record in self.kept.values() {
            state.push(Frame::Node(record.clone()));
        }
        if self.next_anti_entropy.is_none() {
            self.next_anti_entropy = Some(now + self.config.anti_entropy_interval);
        }
    }

    /// Ends the replication state of the link to `peer` (the link table no longer lists
    /// it): its entries stay, and the next link resyncs by delta.
    pub(super) fn close_link(&mut self, peer: Incarnation) {
        if let Some(state) = self.peers.get_mut(&peer) {
            state.reset_link_state();
        }
        self.barriers.link_gone(peer);
    }

    /// Forgets `peer` and purges every entry of it with reason `NodeDown`.
    pub(super) fn forget_peer(&mut self, host: &dyn ReplicaHost, peer: Incarnation) {
        self.barriers.link_gone(peer);
        if self.peers.remove(&peer).is_some() || host.has_entries_of(peer.get()) {
            let reason = Reason::Exit(ExitReason::NodeDown);
            for scope in host.replicated_scopes() {
                scope.purge_origin(peer.get(), &reason);
            }
        }
    }

    /// Takes the ops of local writes from `host`, in the order they were applied:
    /// numbered into our streams and queued for the peers that are caught up.
    ///
    /// Every call of the core that is given the host does this first, so that our stream
    /// is never behind what a frame, a timer, a barrier or a message reacts to; the host
    /// calls this alone when it has nothing else to hand in (local writes were made).
    pub fn handle_local_ops(&mut self, host: &dyn ReplicaHost) {
        let ops = host.take_local_ops();
        if ops.is_empty() {
            return;
        }
        for (scope_name, epoch, op) in ops {
            let current = host.replicated_scope(&scope_name);
            if current.is_none_or(|s| s.epoch != epoch) {
                // Queued before a disconnect: must not reach anyone.
                continue;
            }
            let stream = self.streams.entry(scope_name.clone()).or_default();
            let seq = stream.push(op.clone(), self.config.op_log, self.config.op_log_bytes);
            for (id, peer) in self.peers.iter_mut() {
                // `synced` is cleared when a link ends, so this is almost always decided
                // by it, without a lookup in the link table.
                if peer.synced.contains(&scope_name) && self.links.get(*id).is_some() {
                    peer.push_ops(&scope_name, seq, op.clone(), self.config.max_ops_per_frame);
                }
            }
        }
        self.restart_outrun_catch_ups(host);
        self.check_overload();
    }

    /// Peers catching up from the log whose next op the log no longer holds (they were
    /// slower than our writes) get a snapshot instead.
    fn restart_outrun_catch_ups(&mut self, host: &dyn ReplicaHost) {
        let mut outrun = Vec::new();
        for (id, peer) in &self.peers {
            for (scope, catch_up) in &peer.catching_up {
                if let CatchUp::Log { next } = catch_up
                    && !self.streams.get(scope).is_some_and(|s| s.covers(next - 1))
                {
                    outrun.push((*id, scope.clone()));
                }
            }
        }
        for (peer, scope) in outrun {
            match host.replicated_scope(&scope) {
                Some(state) => self.send_snapshot(peer, &state),
                None => {
                    if let Some(p) = self.peers.get_mut(&peer) {
                        p.catching_up.remove(&scope);
                    }
                }
            }
        }
    }

    /// Closes the links of peers whose queue went over the bound.
    fn check_overload(&mut self) {
        let max = self.config.max_queued_ops;
        let over: Vec<Incarnation> = self
            .peers
            .iter()
            .filter(|(_, p)| p.queued_ops > max)
            .map(|(id, _)| *id)
            .collect();
        for peer in over {
            if let Some(session) = self.drop_link(peer) {
                self.events.push_back(CoreEvent::Overloaded {
                    peer,
                    session: session.id,
                });
            }
        }
    }

    /// This node connected to a replicated scope: tell the peers and send them our
    /// (possibly empty) snapshot of it.
    pub fn handle_scope_connected(&mut self, host: &dyn ReplicaHost, scope: &ScopeName) {
        self.handle_local_ops(host);
        let Some(state) = host.replicated_scope(scope) else {
            return;
        };
        let ids: Vec<Incarnation> = self
            .peers
            .keys()
            .copied()
            .filter(|id| self.links.get(*id).is_some())
            .collect();
        for id in ids {
            let peer = self.peers.get_mut(&id).expect("listed above");
            peer.push(Frame::Scopes {
                joined: vec![scope.clone()],
                left: Vec::new(),
            });
            if peer.scopes.contains(scope) {
                self.send_snapshot(id, &state);
            }
        }
        self.check_overload();
    }

    /// This node disconnected from a scope (its local view is already dropped): tell the
    /// peers, and forget the streams of the scope.
    pub fn handle_scope_disconnected(&mut self, scope: &ScopeName) {
        self.streams.remove(scope);
        for (id, peer) in self.peers.iter_mut() {
            peer.applied.remove(scope);
            peer.receiving.remove(scope);
            peer.synced.remove(scope);
            peer.catching_up.remove(scope);
            if self.links.get(*id).is_some() {
                peer.push(Frame::Scopes {
                    joined: Vec::new(),
                    left: vec![scope.clone()],
                });
            }
        }
    }

    /// A frame arrived from `peer` on the link of session `session` at `now`. A frame of
    /// a link that is no longer the peer's current one is ignored.
    pub fn handle_frame(
        &mut self,
        host: &dyn ReplicaHost,
        peer: Incarnation,
        session: SessionId,
        frame: Frame,
        now: Instant,
    ) {
        self.handle_local_ops(host);
        self.tick(now);
        if self.links.get(peer).is_none_or(|s| s.id != session) {
            return;
        }
        let Some(state) = self.peers.get_mut(&peer) else {
            return;
        };
        state.last_heard = Some(now);
        match frame {
            Frame::Hello {
                scopes,
                positions,
                clock,
            } => {
                for scope in host.replicated_scopes() {
                    scope.observe_clock(clock);
                }
                self.on_hello(host, peer, scopes, positions);
            }
            Frame::Scopes { joined, left } => self.on_scopes(host, peer, joined, left),
            Frame::Ops {
                scope,
                first_seq,
                ops,
            } => self.on_ops(host, peer, scope, first_seq, ops),
            Frame::Snapshot {
                scope,
                seq,
                size,
                ops,
                last,
            } => self.on_snapshot(host, peer, scope, seq, size, ops, last),
            Frame::Digest { scope, seq, digest } => self.on_digest(host, peer, scope, seq, digest),
            Frame::Resync { scope } => {
                if let Some(state) = host.replicated_scope(&scope) {
                    self.send_snapshot(peer, &state);
                }
            }
            Frame::Message(message) => {
                if message.payload.encoded_len() > self.config.limits.max_message_bytes {
                    self.skipped(peer, 1);
                } else {
                    self.events.push_back(CoreEvent::Deliver(message));
                }
            }
            Frame::Dispatch(dispatch) => {
                if dispatch.payload.encoded_len() > self.config.limits.max_message_bytes {
                    self.skipped(peer, 1);
                } else {
                    self.events.push_back(CoreEvent::Dispatch(dispatch));
                }
            }
            Frame::Ping { id } => self.on_ping(peer, id),
            Frame::Pong { id } => self.on_pong(peer, id, now),
            Frame::Node(record) => self.on_node_record(host, peer, record),
            Frame::Heartbeat(heartbeat) => self.on_heartbeat(host, peer, heartbeat),
            Frame::KeptHeartbeat { node, heartbeat } => {
                self.on_kept_heartbeat(host, peer, node, heartbeat);
            }
            Frame::Restamp { scope, names } => self.on_restamp(host, &scope, names),
        }
        self.check_overload();
    }

    fn on_hello(
        &mut self,
        host: &dyn ReplicaHost,
        peer: Incarnation,
        scopes: Vec<ScopeName>,
        positions: Vec<(ScopeName, u64)>,
    ) {
        let positions: HashMap<ScopeName, u64> = positions.into_iter().collect();
        let state = self.peers.get_mut(&peer).expect("checked by handle_frame");
        state.scopes = scopes.into_iter().collect();
        // Scopes the peer left while we were not linked: drop what we hold of it there.
        for scope in host.replicated_scopes() {
            if !state.scopes.contains(&scope.name) {
                state.applied.remove(&scope.name);
                if scope.digest(peer.get()) != 0 {
                    scope.purge_origin(peer.get(), &Reason::ScopeDisconnected);
                }
            }
        }
        let common: Vec<Arc<ScopeStore>> = host
            .replicated_scopes()
            .into_iter()
            .filter(|s| state.scopes.contains(&s.name))
            .collect();
        for scope in common {
            let stream = self.streams.entry(scope.name.clone()).or_default();
            match positions.get(&scope.name) {
                Some(&position) if stream.covers(position) => {
                    let peer_state = self.peers.get_mut(&peer).expect("exists");
                    peer_state.synced.remove(&scope.name);
                    peer_state
                        .catching_up
                        .insert(scope.name.clone(), CatchUp::Log { next: position + 1 });
                }
                _ => self.send_snapshot(peer, &scope),
            }
        }
    }

    fn on_scopes(
        &mut self,
        host: &dyn ReplicaHost,
        peer: Incarnation,
        joined: Vec<ScopeName>,
        left: Vec<ScopeName>,
    ) {
        for scope in left {
            let state = self.peers.get_mut(&peer).expect("checked by handle_frame");
            state.scopes.remove(&scope);
            state.applied.remove(&scope);
            state.receiving.remove(&scope);
            state.synced.remove(&scope);
            state.catching_up.remove(&scope);
            if let Some(s) = host.replicated_scope(&scope) {
                s.purge_origin(peer.get(), &Reason::ScopeDisconnected);
            }
        }
        for scope in joined {
            let state = self.peers.get_mut(&peer).expect("checked by handle_frame");
            state.scopes.insert(scope.clone());
            if let Some(s) = host.replicated_scope(&scope) {
                self.send_snapshot(peer, &s);
            }
        }
    }

    fn on_ops(
        &mut self,
        host: &dyn ReplicaHost,
        peer: Incarnation,
        scope: ScopeName,
        first_seq: u64,
        ops: Vec<Op>,
    ) {
        let Some(state) = host.replicated_scope(&scope) else {
            return;
        };
        let peer_state = self.peers.get_mut(&peer).expect("checked by handle_frame");
        if peer_state.receiving.contains_key(&scope) {
            return;
        }
        let Some(&applied) = peer_state.applied.get(&scope) else {
            return;
        };
        let last = first_seq + ops.len() as u64 - 1;
        if ops.is_empty() || last <= applied {
            return;
        }
        if first_seq > applied + 1 {
            peer_state.applied.remove(&scope);
            peer_state.push(Frame::Resync {
                scope: scope.clone(),
            });
            self.events
                .push_back(CoreEvent::GapDetected { peer, scope });
            return;
        }
        let fresh: Vec<Op> = ops
            .into_iter()
            .skip((applied + 1 - first_seq) as usize)
            .filter(|op| op.pid().incarnation() == peer)
            .collect();
        peer_state.applied.insert(scope.clone(), last);
        let fresh = self.within_limits(peer, fresh);
        let applied = state.apply_remote(fresh);
        self.applied(host, peer, scope, applied);
    }

    /// A chunk of a snapshot; the first one (the one with a `size`) starts it, replacing
    /// any snapshot of the stream still being received.
    #[allow(clippy::too_many_arguments, reason = "the fields of the frame")]
    fn on_snapshot(
        &mut self,
        host: &dyn ReplicaHost,
        peer: Incarnation,
        scope: ScopeName,
        seq: u64,
        size: Option<SnapshotSize>,
        ops: Vec<Op>,
        last: bool,
    ) {
        let Some(state) = host.replicated_scope(&scope) else {
            return;
        };
        let ops = self.within_limits(peer, ops);
        let peer_state = self.peers.get_mut(&peer).expect("checked by handle_frame");
        peer_state.applied.remove(&scope);
        if let Some(size) = size {
            let mut receiver = SnapshotReceiver::new(&state, peer.get());
            receiver.presize(&state, size);
            peer_state.receiving.insert(scope.clone(), receiver);
        }
        let receiver = peer_state
            .receiving
            .entry(scope.clone())
            .or_insert_with(|| SnapshotReceiver::new(&state, peer.get()));
        let applied = if last {
            let receiver = peer_state.receiving.remove(&scope).expect("inserted above");
            peer_state.applied.insert(scope.clone(), seq);
            receiver.finish(&state, ops)
        } else {
            receiver.apply_chunk(&state, ops)
        };
        self.applied(host, peer, scope, applied);
    }

    fn on_digest(
        &mut self,
        host: &dyn ReplicaHost,
        peer: Incarnation,
        scope: ScopeName,
        seq: u64,
        digest: u128,
    ) {
        let Some(state) = host.replicated_scope(&scope) else {
            return;
        };
        let own_seq = self.own_seq(&scope);
        if seq != own_seq || host.local_ops_pending() {
            // Ops are in flight: compare another time.
            return;
        }
        let Some(limits) = self.peers.get(&peer).map(|p| p.limits) else {
            return;
        };
        let ours = state.digest(self.me.get());
        // A peer with smaller limits skipped our entries over them: compare what it can
        // hold (a scan, only when the plain digests differ and the limits do).
        let matches = ours == digest
            || (limits.min(self.config.limits) != self.config.limits
                && state.local_digest_within(&limits) == digest);
        if !matches {
            self.events.push_back(CoreEvent::Repaired {
                peer,
                scope: scope.clone(),
            });
            self.send_snapshot(peer, &state);
        }
    }

    /// The ops this node's limits admit; the others are counted as skipped.
    fn within_limits(&mut self, peer: Incarnation, mut ops: Vec<Op>) -> Vec<Op> {
        let before = ops.len();
        ops.retain(|op| self.config.limits.admits(op.key(), op.meta_len()));
        if ops.len() < before {
            self.skipped(peer, before - ops.len());
        }
        ops
    }

    /// Acts on the outcome of applying ops of `peer`'s stream in `scope`: asks `peer` to
    /// re-stamp the registrations kept back, and hands the host the names its processes
    /// lost, whose removals go out with the local ops taken here.
    fn applied(
        &mut self,
        host: &dyn ReplicaHost,
        peer: Incarnation,
        scope: ScopeName,
        mut applied: ApplyOutcome,
    ) {
        if !applied.restamps.is_empty() {
            let names = std::mem::take(&mut applied.restamps);
            if let Some(peer_state) = self.peers.get_mut(&peer) {
                peer_state.push(Frame::Restamp { scope, names });
            }
        }
        if !applied.lost.is_empty() {
            host.names_lost(applied);
            self.handle_local_ops(host);
        }
    }

    /// `peer` kept back registrations of this node's processes in `scope` whose tokens are
    /// below ones it showed: each that a process still holds gets a fresh token, shipped
    /// with this node's next ops.
    fn on_restamp(&mut self, host: &dyn ReplicaHost, scope: &str, names: Vec<Restamp>) {
        let Some(state) = host.replicated_scope(scope) else {
            return;
        };
        for request in names {
            if request.pid.incarnation() == self.me {
                state.restamp(&request.key, request.pid, request.above);
            }
        }
    }

    fn skipped(&mut self, peer: Incarnation, items: usize) {
        self.events.push_back(CoreEvent::Skipped { peer, items });
    }

    /// Starts sending `peer` a full snapshot of our stream in `scope`; it is sent chunk by
    /// chunk as the peer's socket drains, then the peer continues from the log.
    fn send_snapshot(&mut self, peer: Incarnation, scope: &Arc<ScopeStore>) {
        let seq = self.streams.entry(scope.name.clone()).or_default().seq;
        let Some(peer_state) = self.peers.get_mut(&peer) else {
            return;
        };
        peer_state.start_snapshot(scope, seq);
    }

    /// Time passed: close the links silent for [`CoreConfig::silence`], purge the peers
    /// unlinked past [`CoreConfig::vanish_grace`] that membership does not list, make the
    /// dials whose backoff ended due ([`Core::poll_dial`]), and exchange digests if due.
    /// Early or repeated calls do nothing.
    pub fn handle_timeout(&mut self, host: &dyn ReplicaHost, now: Instant) {
        self.handle_local_ops(host);
        self.tick(now);
        self.close_silent_links(now);
        self.purge_vanished(host, now);
        self.links.replan();
        let Some(due) = self.next_anti_entropy else {
            return;
        };
        if now < due {
            return;
        }
        self.next_anti_entropy = Some(now + self.config.anti_entropy_interval);
        // Every linked peer hears from us at least once per interval, so a link that
        // stopped carrying frames can be told from a quiet one; its answer measures the
        // link's round-trip time.
        self.probe(now);
        let links = &self.links;
        for scope in host.replicated_scopes() {
            for (id, peer) in self.peers.iter_mut() {
                if links.get(*id).is_none() || peer.receiving.contains_key(&scope.name) {
                    continue;
                }
                if let Some(&seq) = peer.applied.get(&scope.name) {
                    peer.push(Frame::Digest {
                        scope: scope.name.clone(),
                        seq,
                        digest: scope.digest(id.get()),
                    });
                }
            }
        }
    }

    /// Queues a message for a process on node `peer`, after every op of ours written
    /// before it. Refused if the peer has no link or announced a smaller
    /// `max_message_bytes`.
    pub fn send_message(
        &mut self,
        host: &dyn ReplicaHost,
        peer: Incarnation,
        message: Message,
    ) -> Result<(), Unsent> {
        self.queue_for(
            host,
            peer,
            message.payload.encoded_len(),
            Frame::Message(message),
        )
    }

    /// Queues a dispatch to the owner and members of a key on node `peer`, after every op
    /// of ours written before it. Refused as [`Core::send_message`] is.
    pub fn send_dispatch(
        &mut self,
        host: &dyn ReplicaHost,
        peer: Incarnation,
        dispatch: Dispatch,
    ) -> Result<(), Unsent> {
        self.queue_for(
            host,
            peer,
            dispatch.payload.encoded_len(),
            Frame::Dispatch(dispatch),
        )
    }

    /// Queues `frame`, whose payload is `payload_bytes` long, for `peer`.
    fn queue_for(
        &mut self,
        host: &dyn ReplicaHost,
        peer: Incarnation,
        payload_bytes: usize,
        frame: Frame,
    ) -> Result<(), Unsent> {
        self.handle_local_ops(host);
        if self.links.get(peer).is_none() {
            return Err(Unsent::NoLink);
        }
        let Some(state) = self.peers.get_mut(&peer) else {
            return Err(Unsent::NoLink);
        };
        let max = state.limits.max_message_bytes;
        if payload_bytes > max {
            return Err(Unsent::TooLarge { max });
        }
        state.push(frame);
        self.check_overload();
        Ok(())
    }

    /// The frames to send `peer` now, oldest first: everything queued, then at most one
    /// frame of catch-up per scope. Call it again as long as it returns frames and the
    /// socket takes them: catch-up is paced by the socket, not queued at once.
    #[must_use = "frames taken must be sent, or the peer misses them"]
    pub fn poll_transmit(&mut self, peer: Incarnation) -> Vec<Frame> {
        let max = self.config.max_ops_per_frame.max(1);
        let streams = &self.streams;
        if self.links.get(peer).is_none() {
            return Vec::new();
        }
        let Some(state) = self.peers.get_mut(&peer) else {
            return Vec::new();
        };
        state.queued_ops = 0;
        // Taken whole, so a queue that grew during a burst does not keep its capacity.
        let mut frames = Vec::from(std::mem::take(&mut state.queue));
        let mut done = Vec::new();
        for (scope, catch_up) in state.catching_up.iter_mut() {
            let stream = streams.get(scope);
            let own_seq = stream.map_or(0, |s| s.seq);
            match catch_up {
                CatchUp::Snapshot {
                    seq,
                    store,
                    cursor,
                    started,
                } => {
                    let mut chunk = store.snapshot_chunk(cursor, max, FRAME_BYTES);
                    let last = cursor.is_done();
                    if last && let Some(stream) = stream {
                        // The names our processes lost in conflicts are gone from the
                        // snapshot: their removals say who won, for the winner's node.
                        chunk.extend(stream.conflict_removals(*seq, max, FRAME_BYTES));
                    }
                    if !chunk.is_empty() || !*started || last {
                        frames.push(Frame::Snapshot {
                            scope: scope.clone(),
                            seq: *seq,
                            size: (!*started).then(|| store.snapshot_size()),
                            ops: chunk,
                            last,
                        });
                    }
                    *started = true;
                    if last {
                        *catch_up = CatchUp::Log { next: *seq + 1 };
                    }
                }
                CatchUp::Log { next } => {
                    let ops = stream.and_then(|s| s.read(*next, max));
                    match ops.map(|ops| take_frame(&mut ops.into_iter(), max)) {
                        Some(ops) if !ops.is_empty() => {
                            let first_seq = *next;
                            *next += ops.len() as u64;
                            frames.push(Frame::Ops {
                                scope: scope.clone(),
                                first_seq,
                                ops,
                            });
                        }
                        // Nothing new, or the log moved past the peer while it caught
                        // up: the next `handle_*` call turns that into a snapshot.
                        _ => {}
                    }
                }
            }
            if let CatchUp::Log { next } = catch_up
                && *next > own_seq
            {
                done.push(scope.clone());
            }
        }
        for scope in done {
            state.catching_up.remove(&scope);
            state.synced.insert(scope);
        }
        if state.catching_up.is_empty() {
            frames.append(&mut state.after_catch_up);
        }
        frames
    }

    /// Peers that have frames to send (queued, or catch-up under way).
    pub fn peers_with_transmits(&self) -> Vec<Incarnation> {
        self.peers
            .iter()
            .filter(|(id, p)| {
                !p.queue.is_empty() || (!p.catching_up.is_empty() && self.links.get(**id).is_some())
            })
            .map(|(id, _)| *id)
            .collect()
    }

    /// The next event for the driver.
    #[must_use]
    pub fn poll_event(&mut self) -> Option<CoreEvent> {
        self.events.pop_front()
    }

    /// When [`Core::handle_timeout`] next has work: the next anti-entropy round, or the
    /// time a link would have been silent too long.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        [
            self.silent_at(),
            self.next_anti_entropy,
            self.links.next_deadline(self.config.vanish_grace),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// Whether [`Core::poll_timeout`] may have come forward since the last call of this (a
    /// link opened: its silence deadline and the first anti-entropy round; a dial put off
    /// or a peer left unlinked): a driver that sleeps until the deadline it read re-arms
    /// then. No other input brings it forward, so a driver need not recompute the
    /// deadline after every call.
    pub fn take_deadline_forward(&mut self) -> bool {
        std::mem::take(&mut self.deadline_forward) | self.links.take_rescheduled()
    }

    /// When the first linked peer will have been silent for [`CoreConfig::silence`].
    fn silent_at(&self) -> Option<Instant> {
        self.peers
            .iter()
            .filter(|(id, _)| self.links.get(**id).is_some())
            .filter_map(|(_, p)| p.last_heard)
            .min()
            .map(|heard| heard + self.config.silence)
    }

    /// Closes the links whose peer sent nothing for [`CoreConfig::silence`] at `now`.
    fn close_silent_links(&mut self, now: Instant) {
        let silence = self.config.silence;
        let silent: Vec<Incarnation> = self
            .peers
            .iter()
            .filter(|(id, p)| {
                self.links.get(**id).is_some()
                    && p.last_heard.is_some_and(|heard| now >= heard + silence)
            })
            .map(|(id, _)| *id)
            .collect();
        for peer in silent {
            if let Some(session) = self.drop_link(peer) {
                self.events.push_back(CoreEvent::Silent {
                    peer,
                    session: session.id,
                });
            }
        }
    }
}
