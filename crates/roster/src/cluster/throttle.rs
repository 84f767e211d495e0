//! A limiter for log lines about a repeated condition: at most one line per interval,
//! carrying how many were suppressed since the previous one.

use std::time::{Duration, Instant};

/// At most one log line per `interval`; see the [module docs](self).
#[derive(Debug)]
pub(crate) struct Throttle {
    interval: Duration,
    /// When the last line went out.
    last: Option<Instant>,
    /// Occurrences since then that got no line.
    suppressed: u64,
}

impl Throttle {
    /// A limiter of one line per `interval`.
    pub(crate) fn new(interval: Duration) -> Self {
        Self {
            interval,
            last: None,
            suppressed: 0,
        }
    }

    /// Records an occurrence at `now`: `Some(suppressed since the last line)` if it gets a
    /// line, `None` if it is suppressed.
    pub(crate) fn allow(&mut self, now: Instant) -> Option<u64> {
        if self
            .last
            .is_some_and(|at| now.saturating_duration_since(at) < self.interval)
        {
            self.suppressed += 1;
            return None;
        }
        self.last = Some(now);
        Some(std::mem::take(&mut self.suppressed))
    }
}
