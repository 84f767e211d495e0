//! Hybrid logical clock.
//!
//! Every registration carries two HLC readings: `registered_at` (decides keep-oldest and
//! keep-newest) and a fencing token (only grows for a key). A reading packs milliseconds
//! since the Unix epoch in the upper 48 bits and a logical counter in the lower 16, so it
//! is a plain `u64` that is totally ordered, close to wall time, and strictly increasing on
//! each node even if the wall clock steps backwards.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

const LOGICAL_BITS: u32 = 16;

/// A hybrid logical clock shared by every writer of a node.
#[derive(Debug, Default)]
pub(crate) struct Hlc {
    last: AtomicU64,
}

impl Hlc {
    /// A new reading, strictly greater than every reading before it on this clock.
    pub(crate) fn tick(&self) -> u64 {
        let physical = wall_millis() << LOGICAL_BITS;
        let mut last = self.last.load(Ordering::Relaxed);
        loop {
            let next = physical.max(last + 1);
            match self
                .last
                .compare_exchange_weak(last, next, Ordering::AcqRel, Ordering::Relaxed)
            {
                Ok(_) => return next,
                Err(seen) => last = seen,
            }
        }
    }

    /// Moves the clock past a reading received from another node, so that every later
    /// reading here is greater (fencing tokens only grow across the cluster).
    pub(crate) fn observe(&self, remote: u64) {
        self.last.fetch_max(remote, Ordering::AcqRel);
    }
}

fn wall_millis() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readings_strictly_increase() {
        let clock = Hlc::default();
        let mut prev = clock.tick();
        for _ in 0..100_000 {
            let next = clock.tick();
            assert!(next > prev);
            prev = next;
        }
    }

    #[test]
    fn readings_stay_ahead_of_a_clock_that_was_ahead() {
        let clock = Hlc::default();
        let future = (wall_millis() + 60_000) << LOGICAL_BITS;
        clock.last.store(future, Ordering::Relaxed);
        assert_eq!(clock.tick(), future + 1);
    }
}
