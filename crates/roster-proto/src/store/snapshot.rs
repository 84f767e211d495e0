//! Reading a snapshot of this node's entries in a scope a chunk at a time, in key order,
//! while writers go on.
//!
//! A snapshot is never copied whole: each chunk is read from the live indexes when the
//! peer's socket can take it, resuming after the last key (and, within a group, the last
//! member pid) of the previous chunk. So building it holds no lock for longer than a
//! chunk, and costs no memory beyond a chunk.
//!
//! # Why a chunked read is still a valid snapshot
//!
//! The receiver drops the origin's entries that no chunk mentioned, so every entry that
//! exists for the whole read must be in some chunk. It is: an entry whose key (or
//! member pid within a group) sorts at or before the cursor was present when the chunk
//! that moved the cursor past it was read, and later chunks start after the cursor. An
//! entry added or changed during the read may or may not be in it; its op is numbered
//! after the snapshot's sequence, and the peer gets it from the log once the snapshot is
//! complete (ops are assignments, so one it already reflects changes nothing).
//!
//! Keys go out in key order, which is also the cheapest order for the receiver to insert
//! into its ordered index.

use std::ops::Bound;

use super::ScopeStore;
use crate::vocab::key::Key;
use crate::vocab::op::Op;
use crate::vocab::pid::Pid;

/// Where a chunked snapshot read is (see the module docs of `store::snapshot`).
#[derive(Debug, Default)]
pub struct SnapshotCursor {
    phase: Phase,
}

#[derive(Debug, Default)]
enum Phase {
    /// Names after this key (from the first one if `None`) are still to be read.
    #[default]
    Names,
    NamesAfter(Key),
    /// Groups from this key on are still to be read; in the group of the key itself, the
    /// members with a pid above `after` (all if `None`).
    Groups {
        from: Option<Key>,
        after: Option<Pid>,
    },
    Done,
}

impl SnapshotCursor {
    /// Whether every entry was read.
    pub fn is_done(&self) -> bool {
        matches!(self.phase, Phase::Done)
    }
}

impl ScopeStore {
    /// The next chunk of the snapshot of this node's live entries (registrations, then
    /// joins): at most `max_ops` of them, and no more once their approximate size reaches
    /// `max_bytes` (one at least). Marks `cursor` done when nothing is left. Lock-free.
    pub fn snapshot_chunk(
        &self,
        cursor: &mut SnapshotCursor,
        max_ops: usize,
        max_bytes: usize,
    ) -> Vec<Op> {
        let max_ops = max_ops.max(1);
        let mut chunk = Vec::new();
        let mut bytes = 0;
        let full = |chunk: &Vec<Op>, bytes: usize| chunk.len() >= max_ops || bytes >= max_bytes;
        let guard = scc::Guard::new();
        if matches!(cursor.phase, Phase::Names | Phase::NamesAfter(_)) {
            let start = match &cursor.phase {
                Phase::NamesAfter(last) => Bound::Excluded(last.as_str()),
                _ => Bound::Unbounded,
            };
            let names = self.names.pin();
            let mut last = None;
            for key in self.name_index.from(start, &guard) {
                if full(&chunk, bytes) {
                    break;
                }
                last = Some(key);
                let Some(r) = names.get(key.as_str()) else {
                    continue;
                };
                if self.is_local(r.pid) && self.is_live(r.pid) {
                    let op = Op::Register {
                        key: key.to_key(),
                        pid: r.pid,
                        meta: r.meta.clone(),
                        registered_at: r.registered_at,
                        token: r.token,
                    };
                    bytes += op.approximate_bytes();
                    chunk.push(op);
                }
            }
            cursor.phase = match (full(&chunk, bytes), last) {
                (true, Some(last)) => Phase::NamesAfter(last.to_key()),
                _ => Phase::Groups {
                    from: None,
                    after: None,
                },
            };
            if full(&chunk, bytes) {
                return chunk;
            }
        }
        if let Phase::Groups { from, after } = &cursor.phase {
            // Owned: the walk below ends by moving the cursor on.
            let (from, mut after) = (from.clone(), *after);
            let start = match &from {
                Some(key) => Bound::Included(key.as_str()),
                None => Bound::Unbounded,
            };
            let groups = self.groups.pin();
            for key in self.group_index.from(start, &guard) {
                let from_here = from.as_ref().is_none_or(|from| *key != **from);
                if from_here {
                    after = None;
                }
                let Some(members) = groups.get(key.as_str()) else {
                    continue;
                };
                // The group's local members not read yet, by pid: a group larger than a
                // chunk is read across chunks from the last pid sent.
                let mut mine: Vec<_> = members
                    .iter()
                    .filter(|m| {
                        self.is_local(m.pid())
                            && self.is_live(m.pid())
                            && after.is_none_or(|a| m.pid() > a)
                    })
                    .collect();
                mine.sort_unstable_by_key(|m| m.pid());
                for m in mine {
                    if full(&chunk, bytes) {
                        cursor.phase = Phase::Groups {
                            from: Some(key.to_key()),
                            after,
                        };
                        return chunk;
                    }
                    let op = Op::Join {
                        key: key.to_key(),
                        pid: m.pid(),
                        meta: m.meta().clone(),
                    };
                    bytes += op.approximate_bytes();
                    chunk.push(op);
                    after = Some(m.pid());
                }
            }
            cursor.phase = Phase::Done;
        }
        chunk
    }
}

#[cfg(test)]
mod tests {
    use crate::store::test_support::{Discard, replicating_stores};
    use std::collections::BTreeSet;
    use std::sync::Arc;

    use crate::vocab::clock::Clock;

    use crate::store::SnapshotCursor;
    use crate::vocab::key::Key;
    use crate::vocab::meta::Meta;
    use crate::vocab::op::Op;
    use crate::vocab::pid::Pid;

    struct Fixed;

    impl Clock for Fixed {
        fn now_millis(&self) -> u64 {
            1_000
        }
    }

    fn entry(op: &Op) -> (Key, Pid) {
        (op.key().clone(), op.pid())
    }

    /// Entries that exist for the whole of a chunked read are all in it, whatever is
    /// added and removed between chunks, names and members of a group larger than a
    /// chunk alike; nothing is read twice.
    #[test]
    fn a_chunked_read_holds_every_entry_that_lasts_through_it() {
        let stores = replicating_stores(7, Arc::new(Fixed));
        let scope = stores.default_scope().clone();
        let procs: Vec<_> = (0..60)
            .map(|_| stores.new_process(Box::new(Discard)))
            .collect();
        for (i, p) in procs.iter().enumerate() {
            scope
                .register(p, Key::from(format!("name/{i:02}")), Meta::EMPTY)
                .unwrap();
            scope.join(p, Key::from("group/big"), Meta::EMPTY).unwrap();
        }
        let mut cursor = SnapshotCursor::default();
        let mut read = Vec::new();
        let mut round = 0;
        while !cursor.is_done() {
            let chunk = scope.snapshot_chunk(&mut cursor, 7, usize::MAX);
            assert!(chunk.len() <= 7);
            read.extend(chunk.iter().map(entry));
            // Churn between chunks: one process leaves everything it holds, and a new
            // name and membership appear.
            let gone = &procs[(round * 13) % 60];
            let _ = scope.unregister(gone, &Key::from(format!("name/{:02}", (round * 13) % 60)));
            let _ = scope.leave(gone, &Key::from("group/big"));
            let late = stores.new_process(Box::new(Discard));
            scope
                .register(&late, Key::from(format!("late/{round}")), Meta::EMPTY)
                .unwrap();
            scope
                .join(&late, Key::from("group/big"), Meta::EMPTY)
                .unwrap();
            round += 1;
        }
        let unique: BTreeSet<_> = read.iter().cloned().collect();
        assert_eq!(unique.len(), read.len(), "an entry was read twice");
        let churned: BTreeSet<usize> = (0..round).map(|r| (r * 13) % 60).collect();
        for (i, p) in procs
            .iter()
            .enumerate()
            .filter(|(i, _)| !churned.contains(i))
        {
            assert!(unique.contains(&(Key::from(format!("name/{i:02}")), p.pid)));
            assert!(unique.contains(&(Key::from("group/big"), p.pid)));
        }
    }
}
