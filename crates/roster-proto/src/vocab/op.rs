//! Ops: the unit of change that a local write produces and replication ships.
//!
//! Every write to a replicated scope, local or remote, is one of these. A local write
//! validates, applies to the store, emits events and, still under the key's shard lock,
//! appends its op to the node's outbox; the replication core drains the outbox, numbers the
//! ops of each (origin, scope) stream and sends them to the peers of the scope. A peer
//! applies the same op to its store. Ops are assignments (set this entry, remove that one),
//! so replaying an op a peer already reflects changes nothing.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard};

use serde::{Deserialize, Serialize};

use crate::vocab::event::Reason;
use crate::vocab::key::{Key, ScopeName};
use crate::vocab::meta::Meta;
use crate::vocab::pid::Pid;

/// One change to one entry of a scope, owned by the node of `pid`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[allow(missing_docs, reason = "the variant docs say what the fields are")]
pub enum Op {
    /// `key` is (or stays) registered to `pid` with this meta and these clock readings.
    Register {
        key: Key,
        pid: Pid,
        meta: Meta,
        registered_at: u64,
        token: u64,
    },
    /// `pid` no longer holds `key`.
    Unregister { key: Key, pid: Pid, reason: Reason },
    /// `pid` is a member of group `key` with this meta.
    Join { key: Key, pid: Pid, meta: Meta },
    /// `pid` is no longer a member of group `key`.
    Leave { key: Key, pid: Pid, reason: Reason },
}

impl Op {
    /// The key the op changes.
    pub fn key(&self) -> &Key {
        match self {
            Self::Register { key, .. }
            | Self::Unregister { key, .. }
            | Self::Join { key, .. }
            | Self::Leave { key, .. } => key,
        }
    }

    /// Encoded length of the op's meta (0 for removals).
    pub fn meta_len(&self) -> usize {
        match self {
            Self::Register { meta, .. } | Self::Join { meta, .. } => meta.encoded_len(),
            Self::Unregister { .. } | Self::Leave { .. } => 0,
        }
    }

    /// Approximate encoded size of the op, for frame size caps: its key and meta, plus a
    /// generous bound for the pid, clock readings and tags.
    pub fn approximate_bytes(&self) -> usize {
        self.key().len() + self.meta_len() + 32
    }

    /// The process whose entry the op changes.
    pub fn pid(&self) -> Pid {
        match self {
            Self::Register { pid, .. }
            | Self::Unregister { pid, .. }
            | Self::Join { pid, .. }
            | Self::Leave { pid, .. } => *pid,
        }
    }
}

/// A request to the node of `pid`: its registration of `key` arrived with a fencing token
/// smaller than `above`, a token the requesting node showed for `key` earlier (the name
/// changed owner while the two nodes were apart), so the requester keeps it back until
/// the owner's node gives it a fresh token greater than `above`.
///
/// ```
/// use roster_proto::op::Restamp;
/// use roster_proto::pid::{Incarnation, Pid};
///
/// let request = Restamp { key: "leader".into(), pid: Pid::new(Incarnation::new(1), 7), above: 42 };
/// assert_eq!(request.above, 42);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Restamp {
    /// The name.
    pub key: Key,
    /// The owner the requester was sent for `key`.
    pub pid: Pid,
    /// The token the owner's new one must exceed.
    pub above: u64,
}

/// An op waiting in the outbox: its scope's name and epoch (which connection of the scope
/// it belongs to), and the op.
pub type Outgoing = (ScopeName, u64, Op);

/// Ops of local writes waiting for the replication core, in the order they were applied.
#[derive(Default)]
pub struct Outbox {
    ops: Mutex<Vec<Outgoing>>,
    /// Set when the node left its cluster: nothing drains the outbox any more.
    closed: AtomicBool,
}

impl Outbox {
    /// Queues the op of a local write in `scope` (connected as `epoch`); nothing once closed.
    pub fn push(&self, scope: ScopeName, epoch: u64, op: Op) {
        if !self.closed.load(Ordering::Relaxed) {
            self.lock().push((scope, epoch, op));
        }
    }

    /// Drops what is queued and every later op (the node left its cluster).
    pub fn close(&self) {
        self.closed.store(true, Ordering::Relaxed);
        drop(std::mem::take(&mut *self.lock()));
    }

    /// Takes every queued op. The outbox keeps room for as many as it held: writes come
    /// in bursts (a loop of deaths queues one op each while the flusher takes them), and a
    /// queue that restarts empty would grow again by doubling, copying what it holds.
    pub fn take(&self) -> Vec<Outgoing> {
        let mut ops = self.lock();
        let room = ops.len();
        std::mem::replace(&mut *ops, Vec::with_capacity(room))
    }

    /// Whether nothing is queued.
    pub fn is_empty(&self) -> bool {
        self.lock().is_empty()
    }

    fn lock(&self) -> MutexGuard<'_, Vec<Outgoing>> {
        // A push or a take cannot leave the Vec half-changed, so poisoning is ignored.
        self.ops.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vocab::event::{ExitReason, Reason};
    use crate::vocab::pid::Incarnation;

    fn op() -> Op {
        Op::Leave {
            key: "k".into(),
            pid: Pid::new(Incarnation::new(1), 1),
            reason: Reason::Exit(ExitReason::Normal),
        }
    }

    #[test]
    fn a_closed_outbox_drops_what_it_held_and_everything_after() {
        let outbox = Outbox::default();
        outbox.push("s".into(), 1, op());
        outbox.close();
        assert!(outbox.is_empty());
        outbox.push("s".into(), 1, op());
        assert!(
            outbox.is_empty(),
            "a node out of its cluster must not queue ops"
        );
    }
}
