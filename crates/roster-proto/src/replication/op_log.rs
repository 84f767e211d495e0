//! This node's own stream in one scope: its sequence and the log of its last ops.
//!
//! A peer that comes back gets the ops it missed from the log, or a snapshot when the log
//! no longer reaches back to where the peer is. The log is bounded twice, oldest ops
//! evicted first: by a count of ops and by the bytes they keep allocated. The count alone
//! does not bound memory, since an op carries its key and meta: 65 536 ops with 64 KiB
//! metas would hold 4 GiB, and once the entries are gone the log is what keeps their
//! metas alive. When the log shrinks to a quarter of its slot array, the array is given
//! back too.

use std::collections::VecDeque;

use crate::vocab::event::{ExitReason, Reason};
use crate::vocab::key::Key;
use crate::vocab::meta::Meta;
use crate::vocab::op::Op;

/// Bytes of one slot of the log, paid whatever the op.
const SLOT_BYTES: usize = size_of::<(u64, Op)>();

/// Bytes in front of the data of an `Arc<[u8]>` (the strong and weak counts).
const ARC_HEADER_BYTES: usize = 2 * size_of::<usize>();

/// Below this many slots the array is never shrunk: reallocating it would cost more than
/// it gives back.
const MIN_SHRINK_SLOTS: usize = 1024;

/// This node's own stream in one scope.
#[derive(Debug, Default)]
pub(super) struct OwnStream {
    /// Sequence of the last op (0 before the first).
    pub(super) seq: u64,
    /// `(seq, op)` of the last ops, oldest first, their sequences consecutive up to `seq`
    /// (or empty).
    log: VecDeque<(u64, Op)>,
    /// What the ops in `log` cost, by [`op_bytes`].
    bytes: usize,
}

impl OwnStream {
    /// Numbers `op` as the stream's next and keeps it in the log, evicting the oldest ops
    /// until the log holds at most `max_ops` ops and `max_bytes` bytes. An op larger than
    /// `max_bytes` on its own is numbered but not kept and empties the log: a peer without
    /// it needs a snapshot. Returns its sequence.
    pub(super) fn push(&mut self, op: Op, max_ops: usize, max_bytes: usize) -> u64 {
        self.seq += 1;
        let bytes = op_bytes(&op);
        let keep = max_ops > 0 && bytes <= max_bytes;
        // Evicting before pushing: pushing first would grow a full log's slot array to
        // twice `max_ops` slots.
        while !self.log.is_empty()
            && (!keep || self.log.len() >= max_ops || self.bytes + bytes > max_bytes)
        {
            self.pop_front();
        }
        if keep {
            self.log.push_back((self.seq, op));
            self.bytes += bytes;
        }
        self.release_slack();
        self.seq
    }

    /// Whether the log still holds every op after `position` (a peer at `position` can
    /// catch up by delta).
    pub(super) fn covers(&self, position: u64) -> bool {
        if position == self.seq {
            return true;
        }
        match self.log.front() {
            Some(&(first, _)) => position + 1 >= first && position <= self.seq,
            None => false,
        }
    }

    /// Up to `max` ops from sequence `next` on, if the log still holds `next`.
    /// The removals of names that lost a conflict still in the log, numbered up to `seq`:
    /// the latest ones, at most `max` of them and about `max_bytes` (by
    /// [`Op::approximate_bytes`]). A snapshot at `seq` does not show them (the names are
    /// gone), so its last chunk carries them, and the winner's node learns of a conflict
    /// it never saw the loser's claim of.
    pub(super) fn conflict_removals(&self, seq: u64, max: usize, max_bytes: usize) -> Vec<Op> {
        let mut bytes = 0;
        let mut removals: Vec<Op> = self
            .log
            .iter()
            .rev()
            .filter(|(at, op)| {
                *at <= seq
                    && matches!(
                        op,
                        Op::Unregister {
                            reason: Reason::Conflict { .. },
                            ..
                        }
                    )
            })
            .take(max)
            .take_while(|(_, op)| {
                bytes += op.approximate_bytes();
                bytes <= max_bytes
            })
            .map(|(_, op)| op.clone())
            .collect();
        removals.reverse();
        removals
    }

    pub(super) fn read(&self, next: u64, max: usize) -> Option<Vec<Op>> {
        if next > self.seq {
            return Some(Vec::new());
        }
        let first = self.log.front()?.0;
        if next < first {
            return None;
        }
        let skip = (next - first) as usize;
        Some(
            self.log
                .iter()
                .skip(skip)
                .take(max)
                .map(|(_, op)| op.clone())
                .collect(),
        )
    }

    fn pop_front(&mut self) {
        if let Some((_, op)) = self.log.pop_front() {
            self.bytes -= op_bytes(&op);
        }
    }

    /// Gives back the slot array's unused part once three quarters of it are unused.
    fn release_slack(&mut self) {
        let capacity = self.log.capacity();
        if capacity > MIN_SHRINK_SLOTS && self.log.len() < capacity / 4 {
            self.log.shrink_to(self.log.len() * 2);
        }
    }
}

/// What an op costs in the log: its slot, plus the heap its key, meta and reason own.
/// While the entry lives its meta is shared with the store, but counting it whole bounds
/// what the log keeps alive once the entry is gone.
fn op_bytes(op: &Op) -> usize {
    SLOT_BYTES
        + match op {
            Op::Register { key, meta, .. } | Op::Join { key, meta, .. } => {
                key_bytes(key) + meta_bytes(meta)
            }
            Op::Unregister { key, reason, .. } | Op::Leave { key, reason, .. } => {
                key_bytes(key) + reason_bytes(reason)
            }
        }
}

fn key_bytes(key: &Key) -> usize {
    if key.is_heap_allocated() {
        key.capacity()
    } else {
        0
    }
}

fn meta_bytes(meta: &Meta) -> usize {
    if meta.is_empty() {
        0
    } else {
        ARC_HEADER_BYTES + meta.encoded_len()
    }
}

fn reason_bytes(reason: &Reason) -> usize {
    match reason {
        Reason::Exit(ExitReason::Conflict { key, .. }) => key_bytes(key),
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vocab::pid::Incarnation;
    use crate::vocab::pid::Pid;

    fn register(key: &str, meta_len: usize) -> Op {
        Op::Register {
            key: key.into(),
            pid: Pid::new(Incarnation::new(1), 1),
            meta: Meta::from_bytes(&vec![7; meta_len]),
            registered_at: 1,
            token: 1,
        }
    }

    /// The bytes of the ops in the log, counted afresh.
    fn recount(stream: &OwnStream) -> usize {
        stream.log.iter().map(|(_, op)| op_bytes(op)).sum()
    }

    #[test]
    fn an_op_costs_its_slot_and_the_heap_it_owns() {
        assert_eq!(op_bytes(&register("short", 0)), SLOT_BYTES);
        assert_eq!(
            op_bytes(&register("short", 1000)),
            SLOT_BYTES + ARC_HEADER_BYTES + 1000
        );
        let long = "a key longer than twenty-four bytes";
        assert!(op_bytes(&register(long, 0)) >= SLOT_BYTES + long.len());
        let removal = Op::Unregister {
            key: "short".into(),
            pid: Pid::new(Incarnation::new(1), 1),
            reason: Reason::Exit(ExitReason::Conflict {
                key: long.into(),
                winner: Pid::new(Incarnation::new(2), 1),
            }),
        };
        assert!(op_bytes(&removal) >= SLOT_BYTES + long.len());
    }

    /// A snapshot at a sequence carries the conflict removals the log holds up to it, the
    /// latest when there are more than it takes, in their order.
    #[test]
    fn conflict_removals_are_the_logged_losses_up_to_a_sequence() {
        let loss = |key: &str| Op::Unregister {
            key: key.into(),
            pid: Pid::new(Incarnation::new(1), 1),
            reason: Reason::Conflict {
                winner: Pid::new(Incarnation::new(2), 1),
                loser: Pid::new(Incarnation::new(1), 1),
                rule: crate::vocab::conflict::DecidedBy::KeepOldest,
            },
        };
        let exit = Op::Unregister {
            key: "k".into(),
            pid: Pid::new(Incarnation::new(1), 1),
            reason: Reason::Exit(ExitReason::Normal),
        };
        let mut stream = OwnStream::default();
        for op in [register("k", 0), loss("a"), exit, loss("b"), loss("c")] {
            stream.push(op, 100, usize::MAX);
        }
        let keys =
            |ops: Vec<Op>| -> Vec<String> { ops.iter().map(|op| op.key().to_string()).collect() };
        let all = usize::MAX;
        assert_eq!(keys(stream.conflict_removals(5, 10, all)), ["a", "b", "c"]);
        assert_eq!(keys(stream.conflict_removals(4, 10, all)), ["a", "b"]);
        assert_eq!(keys(stream.conflict_removals(5, 2, all)), ["b", "c"]);
        assert_eq!(
            keys(stream.conflict_removals(5, 10, 2 * loss("c").approximate_bytes())),
            ["b", "c"],
            "bounded by bytes too"
        );
        assert!(stream.conflict_removals(1, 10, all).is_empty());
    }

    #[test]
    fn the_count_bound_keeps_the_last_ops() {
        let mut stream = OwnStream::default();
        for i in 1..=10u64 {
            assert_eq!(stream.push(register("k", 0), 4, usize::MAX), i);
        }
        assert_eq!(stream.log.len(), 4);
        assert_eq!(stream.log.front().map(|(seq, _)| *seq), Some(7));
        assert!(stream.covers(6) && stream.covers(10));
        assert!(!stream.covers(5), "op 6 was evicted");
        assert_eq!(stream.read(7, 100).map(|ops| ops.len()), Some(4));
        assert_eq!(stream.read(6, 100), None);
        assert_eq!(stream.read(11, 100), Some(Vec::new()));
    }

    #[test]
    fn the_byte_bound_evicts_the_oldest_ops() {
        let budget = 64 * 1024;
        let cost = op_bytes(&register("k", 1024));
        let mut stream = OwnStream::default();
        for _ in 0..1000 {
            stream.push(register("k", 1024), 65_536, budget);
            assert!(stream.bytes <= budget);
            assert_eq!(stream.bytes, recount(&stream));
        }
        assert_eq!(stream.log.len(), budget / cost);
        let first = stream.log.front().map(|(seq, _)| *seq).unwrap();
        assert_eq!(first, 1000 - (budget / cost) as u64 + 1);
        assert!(stream.covers(first - 1));
        assert!(
            !stream.covers(first - 2),
            "a peer behind the log gets a snapshot"
        );
        assert_eq!(stream.read(first - 1, 10), None);
        // Small ops fit more per byte.
        for _ in 0..1000 {
            stream.push(register("k", 0), 65_536, budget);
        }
        assert_eq!(stream.log.len(), budget / SLOT_BYTES);
        assert_eq!(stream.bytes, recount(&stream));
    }

    #[test]
    fn an_op_over_the_whole_budget_empties_the_log() {
        let mut stream = OwnStream::default();
        for _ in 0..10 {
            stream.push(register("k", 10), 100, 4096);
        }
        assert_eq!(stream.push(register("k", 8192), 100, 4096), 11);
        assert!(stream.log.is_empty());
        assert_eq!(stream.bytes, 0);
        assert!(stream.covers(11), "a peer that has it all needs nothing");
        assert!(!stream.covers(10), "a peer without op 11 gets a snapshot");
        assert_eq!(stream.read(11, 10), None);
        stream.push(register("k", 10), 100, 4096);
        assert!(stream.covers(11));
        assert_eq!(stream.read(12, 10).map(|ops| ops.len()), Some(1));
    }

    #[test]
    fn the_slot_array_is_given_back_when_the_log_shrinks() {
        let mut stream = OwnStream::default();
        let budget = 1024 * 1024;
        for _ in 0..8192 {
            stream.push(register("k", 0), 65_536, budget);
        }
        assert!(stream.log.capacity() >= 8192);
        // Large ops now take the budget: few of them are left, and few slots.
        for _ in 0..16 {
            stream.push(register("k", 200 * 1024), 65_536, budget);
        }
        assert!(stream.log.len() <= 5);
        assert!(
            stream.log.capacity() <= MIN_SHRINK_SLOTS,
            "{} slots kept for {} ops",
            stream.log.capacity(),
            stream.log.len()
        );
    }

    #[test]
    fn the_count_bound_never_grows_the_array_past_it() {
        let mut stream = OwnStream::default();
        for _ in 0..5000 {
            stream.push(register("k", 0), 4096, usize::MAX);
        }
        assert_eq!(stream.log.len(), 4096);
        assert!(
            stream.log.capacity() < 2 * 4096,
            "{}",
            stream.log.capacity()
        );
    }
}
