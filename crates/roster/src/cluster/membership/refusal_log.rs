//! The refusal log: refused datagrams are logged at warn at most once per interval for the
//! whole node (the line counts the ones suppressed since the previous), the rest at debug.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use super::datagram::DatagramError;
use crate::cluster::throttle::Throttle;

/// At most one warn line per this interval about refused datagrams, for the whole node
/// (the others go to debug). Long enough that a misconfigured node announcing every few
/// seconds cannot flood the log, short enough that the problem shows soon after start.
const REFUSED_WARN_INTERVAL: Duration = Duration::from_secs(10);

/// Rate limit of the warn line about refused datagrams: one line per
/// [`REFUSED_WARN_INTERVAL`] for the whole node, whatever the source, carrying how many
/// refusals it suppressed since the previous line. Not per source: sources are spoofable,
/// so a per-source limit would need memory without bound.
#[derive(Debug)]
pub(super) struct RefusedWarnings(Throttle);

impl Default for RefusedWarnings {
    fn default() -> Self {
        Self(Throttle::new(REFUSED_WARN_INTERVAL))
    }
}

impl RefusedWarnings {
    /// Records a refusal at `now`. `Some(suppressed)` if it gets a warn line, with the
    /// number of refusals suppressed since the previous one; `None` if it is suppressed.
    fn admit(&mut self, now: Instant) -> Option<u64> {
        self.0.allow(now)
    }

    /// Logs the refusal of a datagram from `from`, the `refused`th since start: at warn if
    /// [`RefusedWarnings::admit`] gives it a line, else at debug.
    pub(super) fn log(&mut self, from: SocketAddr, error: DatagramError, refused: u64) {
        match self.admit(Instant::now()) {
            Some(suppressed) => tracing::warn!(
                %from,
                %error,
                refused,
                suppressed,
                "membership: datagram refused (this line is rate-limited: `suppressed` \
                 counts the refusals since the previous one)"
            ),
            None => tracing::debug!(%from, %error, refused, "membership: datagram refused"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refused_datagrams_get_one_warn_line_per_interval_with_the_suppressed_count() {
        let start = Instant::now();
        let at = |ms: u64| start + Duration::from_millis(ms);
        let interval = REFUSED_WARN_INTERVAL.as_millis() as u64;
        let mut warnings = RefusedWarnings::default();
        assert_eq!(warnings.admit(at(0)), Some(0), "the first refusal warns");
        assert_eq!(warnings.admit(at(1)), None);
        assert_eq!(warnings.admit(at(interval - 1)), None);
        assert_eq!(
            warnings.admit(at(interval)),
            Some(2),
            "one interval later: warns, with the two suppressed"
        );
        assert_eq!(warnings.admit(at(interval + 1)), None);
        assert_eq!(
            warnings.admit(at(10 * interval)),
            Some(1),
            "after a quiet spell"
        );
        assert_eq!(warnings.admit(at(10 * interval + 2)), None);
    }
}
