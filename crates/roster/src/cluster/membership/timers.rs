//! The timer queue: a min-heap that hands foca back every timer it arms, in deadline
//! order (then foca's own timer order, then submission order).

use std::cmp::{Ordering, Reverse};
use std::collections::BinaryHeap;

use foca::Timer;
use tokio::time::Instant;

use super::identity::MemberId;

/// A foca timer waiting for its deadline.
struct Scheduled {
    /// When to hand the timer back to foca.
    at: Instant,
    /// The timer itself.
    timer: Timer<MemberId>,
    /// Submission order, the last tie-break.
    seq: u64,
}

impl Scheduled {
    /// Deadline first; at equal deadlines foca's own timer order (indirect probes before
    /// the next probe), then submission order.
    fn key_cmp(&self, other: &Self) -> Ordering {
        self.at
            .cmp(&other.at)
            .then_with(|| self.timer.cmp(&other.timer))
            .then_with(|| self.seq.cmp(&other.seq))
    }
}

impl PartialEq for Scheduled {
    fn eq(&self, other: &Self) -> bool {
        self.key_cmp(other) == Ordering::Equal
    }
}

impl Eq for Scheduled {}

impl PartialOrd for Scheduled {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Scheduled {
    fn cmp(&self, other: &Self) -> Ordering {
        self.key_cmp(other)
    }
}

/// Min-heap of foca timers: every timer foca asks for is delivered, in deadline order.
#[derive(Default)]
pub(super) struct TimerQueue {
    /// Pending timers, earliest on top.
    heap: BinaryHeap<Reverse<Scheduled>>,
    /// Next submission number.
    next_seq: u64,
}

impl TimerQueue {
    /// Arms `timer` for `at`.
    pub(super) fn push(&mut self, at: Instant, timer: Timer<MemberId>) {
        let seq = self.next_seq;
        self.next_seq += 1;
        self.heap.push(Reverse(Scheduled { at, timer, seq }));
    }

    /// The earliest deadline, if any timer is pending.
    pub(super) fn next_deadline(&self) -> Option<Instant> {
        self.heap.peek().map(|Reverse(scheduled)| scheduled.at)
    }

    /// Removes and returns the earliest timer if it is due at `now`.
    pub(super) fn pop_due(&mut self, now: Instant) -> Option<Timer<MemberId>> {
        if self.next_deadline()? > now {
            return None;
        }
        self.heap.pop().map(|Reverse(scheduled)| scheduled.timer)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::cluster::membership::identity::tests::member;

    #[test]
    fn timers_come_out_by_deadline_then_foca_order() {
        let now = Instant::now();
        let mut queue = TimerQueue::default();
        let later = now + Duration::from_millis(10);
        queue.push(later, Timer::PeriodicGossip(0));
        queue.push(now, Timer::ProbeRandomMember(0));
        queue.push(
            now,
            Timer::SendIndirectProbe {
                probed_id: member(1, 1, 1, 0),
                token: 0,
            },
        );
        assert_eq!(queue.next_deadline(), Some(now));
        assert!(matches!(
            queue.pop_due(now),
            Some(Timer::SendIndirectProbe { .. })
        ));
        assert_eq!(queue.pop_due(now), Some(Timer::ProbeRandomMember(0)));
        assert_eq!(queue.pop_due(now), None, "not due yet");
        assert_eq!(queue.pop_due(later), Some(Timer::PeriodicGossip(0)));
        assert_eq!(queue.next_deadline(), None);
    }
}
