//! The ids of recently ended sessions, kept for a bounded time and count so that a call on
//! one is told `session_expired` rather than `unknown_session`.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

/// How many ended ids are remembered at most.
pub const ENDED_MEMORY: usize = 100_000;

/// How long an ended id is remembered.
pub const ENDED_FOR: Duration = Duration::from_secs(3600);

/// How a session ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndReason {
    /// Its TTL lapsed without a keepalive.
    Expired,
    /// It was deleted.
    Deleted,
}

impl EndReason {
    /// The reason in words, as the API shows it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Expired => "expired",
            Self::Deleted => "deleted",
        }
    }
}

/// Recently ended session ids, oldest first.
#[derive(Debug, Default)]
pub struct EndedSessions {
    by_id: HashMap<String, EndReason>,
    order: VecDeque<(Instant, String)>,
}

impl EndedSessions {
    /// Remembers that `id` ended at `now` for `reason`, forgetting the oldest beyond the
    /// bounds.
    pub fn remember(&mut self, id: String, reason: EndReason, now: Instant) {
        self.forget_old(now);
        if self.order.len() >= ENDED_MEMORY
            && let Some((_, oldest)) = self.order.pop_front()
        {
            self.by_id.remove(&oldest);
        }
        self.by_id.insert(id.clone(), reason);
        self.order.push_back((now, id));
    }

    /// How `id` ended, if it is remembered.
    pub fn reason(&self, id: &str) -> Option<EndReason> {
        self.by_id.get(id).copied()
    }

    fn forget_old(&mut self, now: Instant) {
        while let Some((at, _)) = self.order.front() {
            if now.duration_since(*at) < ENDED_FOR {
                break;
            }
            if let Some((_, id)) = self.order.pop_front() {
                self.by_id.remove(&id);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn old_ids_are_forgotten() {
        let mut ended = EndedSessions::default();
        let start = Instant::now();
        ended.remember("a".into(), EndReason::Expired, start);
        assert_eq!(ended.reason("a"), Some(EndReason::Expired));
        ended.remember("b".into(), EndReason::Deleted, start + ENDED_FOR);
        assert_eq!(ended.reason("a"), None);
        assert_eq!(ended.reason("b"), Some(EndReason::Deleted));
    }
}
