//! Hybrid logical clock.
//!
//! Every registration carries two HLC readings: `registered_at` (decides keep-oldest and
//! keep-newest) and a fencing token (only grows for a key). A reading packs milliseconds
//! since the Unix epoch in the upper 48 bits and a logical counter in the lower 16, so it
//! is a plain `u64` that is totally ordered, close to wall time, and strictly increasing on
//! each node even if the wall clock steps backwards.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

const LOGICAL_BITS: u32 = 16;

/// About a century: as far ahead as [`deadline_after`] looks when asked for more than the
/// clock can represent.
const FAR_FUTURE: Duration = Duration::from_secs(100 * 365 * 24 * 60 * 60);

/// `duration` in whole milliseconds, `u64::MAX` for one longer than that counts.
///
/// ```
/// use std::time::Duration;
/// use roster_proto::clock::saturating_millis;
///
/// assert_eq!(saturating_millis(Duration::from_secs(2)), 2_000);
/// assert_eq!(saturating_millis(Duration::MAX), u64::MAX);
/// ```
pub fn saturating_millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

/// `now + duration`, or about a century from `now` when that is past what the clock can
/// represent (a caller's `Duration::MAX` means "for as long as the process runs", not a
/// panic).
///
/// ```
/// use std::time::{Duration, Instant};
/// use roster_proto::clock::deadline_after;
///
/// let now = Instant::now();
/// assert_eq!(deadline_after(now, Duration::from_secs(1)), now + Duration::from_secs(1));
/// assert!(deadline_after(now, Duration::MAX) > now + Duration::from_secs(1 << 30));
/// ```
pub fn deadline_after(now: Instant, duration: Duration) -> Instant {
    now.checked_add(duration)
        .or_else(|| now.checked_add(FAR_FUTURE))
        .unwrap_or(now)
}

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
/// let p = node.new_process();
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

/// The system wall clock, the default [`Clock`].
pub fn wall_clock() -> Arc<dyn Clock> {
    Arc::new(WallClock)
}

/// A hybrid logical clock. Each write shard of a scope has its own (guarded by the shard
/// lock), which keeps writers of different shards off a shared atomic: readings only need
/// to grow per key, and a key always maps to the same shard.
#[derive(Debug, Default, Clone, Copy)]
pub struct Hlc {
    last: u64,
}

impl Hlc {
    /// A new reading, strictly greater than every reading before it on this clock.
    pub fn tick(&mut self, source: &dyn Clock) -> u64 {
        let physical = source.now_millis() << LOGICAL_BITS;
        self.last = physical.max(self.last + 1);
        self.last
    }

    /// Moves the clock past a reading received from another node, so that every later
    /// reading here is greater (fencing tokens only grow across the cluster). A reading
    /// above [`Hlc::MAX_OBSERVED`] (no clock makes one: it is a peer's bad bytes) counts
    /// as that bound, so the clock can always tick past it.
    pub fn observe(&mut self, remote: u64) {
        self.last = self.last.max(remote.min(Self::MAX_OBSERVED));
    }

    /// The last reading made or taken in (0 before any).
    pub fn reading(&self) -> u64 {
        self.last
    }

    /// The largest reading [`Hlc::observe`] takes in: half of the range, a wall clock
    /// reading about 4,400 years past the Unix epoch.
    pub const MAX_OBSERVED: u64 = u64::MAX >> 1;
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
    fn a_reading_from_a_lying_peer_cannot_stop_the_clock() {
        let mut clock = Hlc::default();
        clock.observe(u64::MAX);
        let first = clock.tick(&WallClock);
        assert!(clock.tick(&WallClock) > first);
    }

    #[test]
    fn readings_strictly_increase() {
        let mut clock = Hlc::default();
        let mut prev = clock.tick(&WallClock);
        for _ in 0..100_000 {
            let next = clock.tick(&WallClock);
            assert!(next > prev);
            prev = next;
        }
    }

    #[test]
    fn readings_stay_ahead_of_a_clock_that_was_ahead() {
        let mut clock = Hlc::default();
        let future = (wall_millis() + 60_000) << LOGICAL_BITS;
        clock.observe(future);
        assert_eq!(clock.tick(&WallClock), future + 1);
    }
}
