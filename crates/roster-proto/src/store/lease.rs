//! A scope's TTL lease: the scope stays connected while this node holds something in it,
//! and is released at the first expiry that finds it holding nothing. Time is passed in;
//! the node runs one timer for all leases.

use std::time::{Duration, Instant};

/// The lease of one scope.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Lease {
    ttl: Duration,
    /// `None`: the ttl is too long for the clock, the lease never expires.
    due: Option<Instant>,
}

impl Lease {
    /// A lease of `ttl` taken at `now`.
    pub(super) fn new(ttl: Duration, now: Instant) -> Self {
        Self {
            ttl,
            due: now.checked_add(ttl),
        }
    }

    /// When it is next checked; `None` if never.
    pub(super) fn due(&self) -> Option<Instant> {
        self.due
    }

    /// At `now`: `true` if it expired (due, and the scope holds nothing); a due lease of a
    /// scope in use is renewed for one more ttl.
    pub(super) fn expired(&mut self, now: Instant, in_use: bool) -> bool {
        if self.due.is_none_or(|due| now < due) {
            return false;
        }
        if in_use {
            self.due = now.checked_add(self.ttl);
            return false;
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lease_in_use_is_renewed_at_each_expiry_and_ends_when_unused() {
        let start = Instant::now();
        let at = |s: u64| start + Duration::from_secs(s);
        let mut lease = Lease::new(Duration::from_secs(10), start);
        assert!(!lease.expired(at(9), false), "not due yet");
        assert!(!lease.expired(at(10), true));
        assert_eq!(lease.due(), Some(at(20)));
        assert!(!lease.expired(at(19), false));
        assert!(lease.expired(at(20), false));
    }

    #[test]
    fn a_lease_too_long_for_the_clock_never_expires() {
        let now = Instant::now();
        let mut lease = Lease::new(Duration::MAX, now);
        assert_eq!(lease.due(), None);
        assert!(!lease.expired(now + Duration::from_secs(1 << 30), false));
    }
}
