//! Hybrid logical clock.
//!
//! Every registration carries two HLC readings: `registered_at` (decides keep-oldest and
//! keep-newest) and a fencing token (only grows for a key). A reading packs milliseconds
//! since the Unix epoch in the upper 48 bits and a logical counter in the lower 16, so it
//! is a plain `u64` that is totally ordered, close to wall time, and strictly increasing on
//! each node even if the wall clock steps backwards.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

const LOGICAL_BITS: u32 = 16;

/// The physical time source of a node's hybrid logical clock.
///
/// The default is the system's wall clock; simulations pass a virtual one so that runs
/// replay exactly.
///
/// # Examples
///
/// ```
/// use std::sync::Arc;
/// use std::sync::atomic::{AtomicU64, Ordering};
///
/// struct Fixed(AtomicU64);
/// impl roster::Clock for Fixed {
///     fn now_millis(&self) -> u64 {
///         self.0.load(Ordering::Relaxed)
///     }
/// }
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let node = roster::Node::builder().clock(Arc::new(Fixed(AtomicU64::new(1_000)))).start().unwrap();
/// let p = node.process();
/// assert_eq!(p.register("k", &()).unwrap().registered_at >> 16, 1_000);
/// # }
/// ```
pub trait Clock: Send + Sync + 'static {
    /// Milliseconds since the Unix epoch (or any fixed origin shared by the cluster).
    fn now_millis(&self) -> u64;
}

/// The system wall clock.
struct WallClock;

impl Clock for WallClock {
    fn now_millis(&self) -> u64 {
        wall_millis()
    }
}

/// A hybrid logical clock shared by every writer of a node.
pub(crate) struct Hlc {
    last: AtomicU64,
    source: Arc<dyn Clock>,
}

impl Default for Hlc {
    fn default() -> Self {
        Hlc::new(Arc::new(WallClock))
    }
}

impl Hlc {
    pub(crate) fn new(source: Arc<dyn Clock>) -> Self {
        Hlc {
            last: AtomicU64::new(0),
            source,
        }
    }

    /// A new reading, strictly greater than every reading before it on this clock.
    pub(crate) fn tick(&self) -> u64 {
        let physical = self.source.now_millis() << LOGICAL_BITS;
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
