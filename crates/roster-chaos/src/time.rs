//! Wall-clock milliseconds (the agents' audit log uses the same clock) and polling with a
//! deadline.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::error::ChaosError;

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// Polls `check` every `every` until it returns `Some`, or fails naming `what` after
/// `deadline`.
pub fn poll<T>(
    what: &str,
    deadline: Duration,
    every: Duration,
    mut check: impl FnMut() -> Option<T>,
) -> Result<T, ChaosError> {
    let end = Instant::now() + deadline;
    loop {
        if let Some(value) = check() {
            return Ok(value);
        }
        if Instant::now() >= end {
            return Err(ChaosError::Deadline {
                what: what.to_owned(),
                seconds: deadline.as_secs_f64(),
            });
        }
        std::thread::sleep(every);
    }
}
