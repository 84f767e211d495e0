//! A scope's TTL lease: the scope stays connected while this node holds something in it,
//! and is released at the first expiry that finds it holding nothing. Time is passed in;
//! the node runs one timer for all leases.

use std::time::{Duration, Instant};

/// The lease of one scope.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lease {
    ttl: Duration,
    due: Instant,
}

impl Lease {
    /// A lease of `ttl` taken at `now`.
    pub fn new(ttl: Duration, now: Instant) -> Self {
        Lease {
            ttl,
            due: now + ttl,
        }
    }

    /// When it is next checked.
    pub fn due(&self) -> Instant {
        self.due
    }

    /// At `now`: `true` if it expired (due, and the scope holds nothing); a due lease of a
    /// scope in use is renewed for one more ttl.
    pub fn expired(&mut self, now: Instant, in_use: bool) -> bool {
        if now < self.due {
            return false;
        }
        if in_use {
            self.due = now + self.ttl;
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
        assert_eq!(lease.due(), at(20));
        assert!(!lease.expired(at(19), false));
        assert!(lease.expired(at(20), false));
    }
}
