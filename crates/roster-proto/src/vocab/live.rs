//! Which local processes are alive: one bit per process serial.
//!
//! Every entry of a local process is checked against this set on reads, so that a process
//! that died is invisible at once, before its entries are removed. A bit in a dense array
//! costs one cache line for thousands of processes, and entries need no pointer to their
//! process: copying a group's member list touches no shared reference count.
//!
//! Hand-written because no crate offers a concurrent, growable bitset with lock-free reads
//! and reclamation of fully dead ranges; it is small and built on `arc-swap` and std
//! atomics only.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use arc_swap::ArcSwap;

/// Serials per chunk: 65 536 bits, 8 KiB.
const CHUNK_BITS: u64 = 1 << 16;
const WORDS: usize = (CHUNK_BITS / 64) as usize;

/// `counts` packs, in one atomic so that "every serial used and none alive" is decided
/// atomically, the processes ever started in the chunk (high half) and those alive (low).
const STARTED: u64 = 1 << 32;
const LIVE: u64 = 1;

struct Chunk {
    words: Box<[AtomicU64]>,
    counts: AtomicU64,
}

impl Chunk {
    fn new() -> Self {
        Self {
            words: (0..WORDS).map(|_| AtomicU64::new(0)).collect(),
            counts: AtomicU64::new(0),
        }
    }
}

/// The set of live local process serials.
#[derive(Default)]
pub struct LiveSet {
    /// Chunk `i` covers serials `i * CHUNK_BITS .. (i + 1) * CHUNK_BITS`; `None` once every
    /// process of a full chunk has died (the memory is returned).
    chunks: ArcSwap<Vec<Option<Arc<Chunk>>>>,
    grow: Mutex<()>,
    exits: Exits,
}

/// How many exits began (a process marked dead) and how many finished (its entries
/// removed); in between, a dead process may still be listed. Kept off the cache line
/// that every read of the set loads.
#[derive(Default)]
#[repr(align(128))]
struct Exits {
    began: AtomicU64,
    finished: AtomicU64,
}

/// A reading of [`LiveSet::exits_finished`], taken before reading entries: with
/// [`LiveSet::settled_since`] it tells whether any process died since.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExitMark(u64);

fn locate(serial: u64) -> (usize, usize, u64) {
    let chunk = (serial / CHUNK_BITS) as usize;
    let bit = serial % CHUNK_BITS;
    (chunk, (bit / 64) as usize, 1u64 << (bit % 64))
}

impl LiveSet {
    /// Whether `serial` is alive. Lock-free.
    #[inline]
    pub fn contains(&self, serial: u64) -> bool {
        let (chunk, word, mask) = locate(serial);
        match self.chunks.load().get(chunk) {
            Some(Some(c)) => c.words[word].load(Ordering::Acquire) & mask != 0,
            _ => false,
        }
    }

    /// Marks a new process alive. Serials are handed out in increasing order and each is
    /// inserted once.
    pub fn insert(&self, serial: u64) {
        let (index, word, mask) = locate(serial);
        let chunk = match self.chunks.load().get(index) {
            Some(Some(c)) => c.clone(),
            _ => self.grow_to(index),
        };
        chunk.counts.fetch_add(STARTED + LIVE, Ordering::AcqRel);
        chunk.words[word].fetch_or(mask, Ordering::Release);
    }

    fn grow_to(&self, index: usize) -> Arc<Chunk> {
        let _grow = self.grow.lock().unwrap_or_else(|e| e.into_inner());
        let current = self.chunks.load_full();
        if let Some(Some(c)) = current.get(index) {
            return c.clone();
        }
        let mut chunks: Vec<Option<Arc<Chunk>>> = (*current).clone();
        if chunks.len() <= index {
            chunks.resize_with(index + 1, || Some(Arc::new(Chunk::new())));
        }
        let chunk = chunks[index].clone().expect("just created");
        self.chunks.store(Arc::new(chunks));
        chunk
    }

    /// An exit begins: called before the process is marked dead ([`LiveSet::remove`]),
    /// and followed by [`LiveSet::exit_finished`] once its entries are removed.
    pub fn exit_begins(&self) {
        self.exits.began.fetch_add(1, Ordering::SeqCst);
    }

    /// An exit that [`LiveSet::exit_begins`] announced finished: the process's entries are
    /// removed.
    pub fn exit_finished(&self) {
        self.exits.finished.fetch_add(1, Ordering::SeqCst);
    }

    /// The exits finished so far; take it before reading entries, then ask
    /// [`LiveSet::settled_since`].
    pub fn exits_finished(&self) -> ExitMark {
        ExitMark(self.exits.finished.load(Ordering::SeqCst))
    }

    /// Whether no exit was under way when `mark` was taken and none began since: every
    /// local process listed in entries read after `mark` was taken is still alive now, so
    /// a count of those entries needs no liveness check. (The exits that began never
    /// outnumber those finished earlier unless one was under way, or began since.)
    pub fn settled_since(&self, mark: ExitMark) -> bool {
        self.exits.began.load(Ordering::SeqCst) == mark.0
    }

    /// Marks a process dead; returns `false` if it was not alive.
    pub fn remove(&self, serial: u64) -> bool {
        let (index, word, mask) = locate(serial);
        let Some(Some(chunk)) = self.chunks.load().get(index).cloned() else {
            return false;
        };
        if chunk.words[word].fetch_and(!mask, Ordering::AcqRel) & mask == 0 {
            return false;
        }
        let counts = chunk.counts.fetch_sub(LIVE, Ordering::AcqRel) - LIVE;
        if counts == CHUNK_BITS * STARTED {
            // Every serial of the chunk was used and every process died: free it.
            let _grow = self.grow.lock().unwrap_or_else(|e| e.into_inner());
            let mut chunks: Vec<Option<Arc<Chunk>>> = (*self.chunks.load_full()).clone();
            chunks[index] = None;
            self.chunks.store(Arc::new(chunks));
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inserted_serials_are_alive_until_removed() {
        let set = LiveSet::default();
        for serial in [1, 2, 63, 64, 65_535, 65_536, 200_000] {
            assert!(!set.contains(serial));
            set.insert(serial);
            assert!(set.contains(serial));
        }
        assert!(set.remove(64));
        assert!(!set.contains(64));
        assert!(!set.remove(64), "a second removal reports nothing");
        assert!(set.contains(63) && set.contains(65_535));
        assert!(!set.contains(65), "never inserted");
    }

    #[test]
    fn settled_only_while_no_exit_is_under_way_or_begins() {
        let set = LiveSet::default();
        let mark = set.exits_finished();
        assert!(set.settled_since(mark));
        set.exit_begins();
        assert!(!set.settled_since(mark), "an exit began since the mark");
        let during = set.exits_finished();
        assert!(!set.settled_since(during), "an exit is under way");
        set.exit_finished();
        assert!(!set.settled_since(during), "it was under way at the mark");
        assert!(set.settled_since(set.exits_finished()));
    }

    #[test]
    fn a_full_chunk_of_dead_processes_is_freed() {
        let set = LiveSet::default();
        for serial in CHUNK_BITS..2 * CHUNK_BITS {
            set.insert(serial);
        }
        set.insert(2 * CHUNK_BITS);
        for serial in CHUNK_BITS..2 * CHUNK_BITS {
            assert!(set.remove(serial));
        }
        assert!(set.chunks.load()[1].is_none());
        assert!(set.contains(2 * CHUNK_BITS));
        assert!(!set.contains(CHUNK_BITS + 5));
    }

    #[test]
    fn concurrent_inserts_and_removals_agree() {
        let set = Arc::new(LiveSet::default());
        let threads: Vec<_> = (0..2u64)
            .map(|t| {
                let set = set.clone();
                std::thread::spawn(move || {
                    for i in 0..50_000u64 {
                        let serial = i * 2 + t;
                        set.insert(serial);
                        if i % 2 == 0 {
                            assert!(set.remove(serial));
                        }
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        for serial in 0..100_000u64 {
            assert_eq!(
                set.contains(serial),
                (serial / 2) % 2 == 1,
                "serial {serial}"
            );
        }
    }
}
