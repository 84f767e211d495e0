//! The replication state the core keeps per peer: what the peer is connected to and has
//! applied, the snapshots it is sending us, how far it is in catching up with our
//! streams, and the frames queued for it; and how ops are cut into frames.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::wire::Frame;
use crate::store::{ScopeStore, SnapshotCursor, SnapshotReceiver};
use crate::vocab::key::{Limits, ScopeName};
use crate::vocab::op::Op;

/// Bytes of ops a frame carries at most (besides [`CoreConfig::max_ops_per_frame`]) before
/// the next frame starts, one op at least: keeps every frame far below the receivers'
/// 64 MiB frame cap whatever the meta sizes, and frames short enough to interleave.
pub(super) const FRAME_BYTES: usize = 1024 * 1024;

/// Approximate encoded size of an op.
fn encoded_bytes(op: &Op) -> usize {
    op.approximate_bytes()
}

/// The next frame's worth of `ops`: at most `max` of them, and no more once they reach
/// [`FRAME_BYTES`]; what is not taken stays in the iterator.
pub(super) fn take_frame(ops: &mut impl Iterator<Item = Op>, max: usize) -> Vec<Op> {
    let mut frame = Vec::new();
    let mut bytes = 0;
    while frame.len() < max && bytes < FRAME_BYTES {
        let Some(op) = ops.next() else { break };
        bytes += encoded_bytes(&op);
        frame.push(op);
    }
    frame
}

/// How far a peer is in catching up with one of our streams. Catch-up is read as the
/// peer's socket drains ([`Core::poll_transmit`]), never queued at once: it does not count
/// against [`CoreConfig::max_queued_ops`], so a peer that was dropped for overload always
/// converges once it keeps up.
#[derive(Debug)]
pub(super) enum CatchUp {
    /// Ops from sequence `next` on are still to be sent from the op log.
    Log { next: u64 },
    /// A snapshot at `seq` is being sent, read from `store` a chunk at a time where
    /// `cursor` is (never copied whole, never read under the lock for more than a chunk).
    Snapshot {
        seq: u64,
        store: Arc<ScopeStore>,
        cursor: SnapshotCursor,
        started: bool,
    },
}

/// What we know of one peer (keyed by its incarnation).
#[derive(Debug)]
pub(super) struct Peer {
    pub(super) name: String,
    /// The limits the peer announced in its handshake.
    pub(super) limits: Limits,
    /// Scopes the peer is connected to.
    pub(super) scopes: BTreeSet<ScopeName>,
    /// The last sequence applied of each of the peer's streams.
    pub(super) applied: HashMap<ScopeName, u64>,
    /// Snapshots of the peer's streams being received.
    pub(super) receiving: HashMap<ScopeName, SnapshotReceiver>,
    /// Scopes in which the peer is caught up with our stream, so that new ops flow.
    pub(super) synced: BTreeSet<ScopeName>,
    /// Scopes in which the peer is catching up with our stream (never also `synced`).
    pub(super) catching_up: BTreeMap<ScopeName, CatchUp>,
    /// Frames waiting for the driver: control frames, messages and live ops.
    pub(super) queue: VecDeque<Frame>,
    /// Live ops and messages in `queue`, for the overload bound.
    pub(super) queued_ops: usize,
    /// Approximate bytes of the ops in the last `Ops` frame of `queue`.
    pub(super) tail_bytes: usize,
    /// Round-trip time of the last answered ping on the current link.
    pub(super) rtt: Option<Duration>,
    /// The ping of the current link waiting for its answer: (id, sent at).
    pub(super) ping: Option<(u64, Instant)>,
    /// Barrier pings and pongs held until the peer has caught up with our streams, so that
    /// they follow every op sent before them (`barrier.rs`).
    pub(super) after_catch_up: Vec<Frame>,
    /// When the current link last brought a frame (or was established): a link silent for
    /// [`CoreConfig::silence`](super::core::CoreConfig::silence) is closed.
    pub(super) last_heard: Option<Instant>,
}

impl Peer {
    pub(super) fn new(name: String, limits: Limits) -> Self {
        Self {
            name,
            limits,
            scopes: BTreeSet::new(),
            applied: HashMap::new(),
            receiving: HashMap::new(),
            synced: BTreeSet::new(),
            catching_up: BTreeMap::new(),
            queue: VecDeque::new(),
            queued_ops: 0,
            tail_bytes: 0,
            rtt: None,
            ping: None,
            after_catch_up: Vec::new(),
            last_heard: None,
        }
    }

    /// Forgets everything about the current link (queued frames, catch-ups, snapshots
    /// being received).
    pub(super) fn reset_link_state(&mut self) {
        // A new queue: the old one may have grown large for a slow peer.
        self.queue = VecDeque::new();
        self.queued_ops = 0;
        self.synced.clear();
        self.catching_up.clear();
        self.receiving.clear();
        self.rtt = None;
        self.ping = None;
        self.after_catch_up.clear();
        self.last_heard = None;
    }

    /// Starts sending a snapshot of our stream in `scope` at `seq` (replacing any catch-up
    /// under way there); live ops of the scope wait in the log until it is sent.
    pub(super) fn start_snapshot(&mut self, store: &Arc<ScopeStore>, seq: u64) {
        self.synced.remove(&store.name);
        self.catching_up.insert(
            store.name.clone(),
            CatchUp::Snapshot {
                seq,
                store: store.clone(),
                cursor: SnapshotCursor::default(),
                started: false,
            },
        );
    }

    /// Queues a barrier ping or pong behind every op of ours sent or due to the peer: at
    /// once when it is caught up with all our streams, else after its catch-ups.
    pub(super) fn push_barrier(&mut self, frame: Frame) {
        if self.catching_up.is_empty() {
            self.push(frame);
        } else {
            self.after_catch_up.push(frame);
        }
    }

    /// Queues a control frame (counted with live ops only if it carries a message).
    pub(super) fn push(&mut self, frame: Frame) {
        if matches!(frame, Frame::Message(_) | Frame::Dispatch(_)) {
            self.queued_ops += 1;
        }
        self.queue.push_back(frame);
    }

    /// Live ops and messages queued.
    pub(super) fn queued(&self) -> usize {
        self.queued_ops
    }

    /// Appends ops of our stream, merging into the last queued frame when it continues it.
    pub(super) fn push_ops(&mut self, scope: &ScopeName, seq: u64, op: Op, max: usize) {
        self.queued_ops += 1;
        let bytes = encoded_bytes(&op);
        if let Some(Frame::Ops {
            scope: last_scope,
            first_seq,
            ops,
        }) = self.queue.back_mut()
            && last_scope == scope
            && *first_seq + ops.len() as u64 == seq
            && ops.len() < max
            && self.tail_bytes < FRAME_BYTES
        {
            ops.push(op);
            self.tail_bytes += bytes;
            return;
        }
        self.tail_bytes = bytes;
        self.queue.push_back(Frame::Ops {
            scope: scope.clone(),
            first_seq: seq,
            ops: vec![op],
        });
    }
}
