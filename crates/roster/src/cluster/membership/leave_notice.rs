//! Leave notices: a member that leaves on purpose says so in a foca custom broadcast,
//! spread by gossip with its own `Down`, so that every member tells a departure from a
//! death even when the leaving node's replication links could not carry its leave record
//! in time. foca alone cannot tell them apart (a leave is the member declaring itself
//! down).
//!
//! A notice is 9 bytes: the tag `1`, then the leaving member's incarnation (u64, little
//! endian). Anything else is refused (the datagram already passed the cluster's MAC).

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};

use foca::{BroadcastHandler, Invalidates};

use super::identity::MemberId;

/// The first byte of a leave notice.
const TAG: u8 = 1;
/// A leave notice's length.
const LEN: usize = 9;
/// Incarnations remembered as having left (the oldest are forgotten first).
const REMEMBERED: usize = 1024;

/// A leave notice's bytes for the member of `incarnation`.
pub(super) fn encode(incarnation: u64) -> [u8; LEN] {
    let mut notice = [0; LEN];
    notice[0] = TAG;
    notice[1..].copy_from_slice(&incarnation.to_le_bytes());
    notice
}

/// The incarnations that announced they left, shared by the foca handler (which records
/// them) and the membership task (which reads them when a member goes down).
#[derive(Clone, Default)]
pub(super) struct Departures(Arc<Mutex<State>>);

#[derive(Default)]
struct State {
    /// Every incarnation that left, most recent last (at most [`REMEMBERED`]).
    left: VecDeque<u64>,
    /// Those recorded since the task last took them.
    fresh: Vec<u64>,
}

impl Departures {
    fn lock(&self) -> MutexGuard<'_, State> {
        // No critical section here leaves the state half-written before a panic.
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether the member of `incarnation` announced that it left.
    pub(super) fn has_left(&self, incarnation: u64) -> bool {
        self.lock().left.contains(&incarnation)
    }

    /// The incarnations recorded since the last call.
    pub(super) fn take_fresh(&self) -> Vec<u64> {
        std::mem::take(&mut self.lock().fresh)
    }

    /// Records that `incarnation` left; `false` if it was known already.
    fn record(&self, incarnation: u64) -> bool {
        let mut state = self.lock();
        if state.left.contains(&incarnation) {
            return false;
        }
        if state.left.len() == REMEMBERED {
            state.left.pop_front();
        }
        state.left.push_back(incarnation);
        state.fresh.push(incarnation);
        true
    }
}

/// foca's handler of custom broadcasts: leave notices only.
pub(crate) struct LeaveNotices {
    departures: Departures,
}

impl LeaveNotices {
    /// A handler recording into `departures`.
    pub(super) fn new(departures: Departures) -> Self {
        Self { departures }
    }
}

/// Which member a notice is about: a newer notice of the same member replaces an older
/// one in foca's backlog (they say the same).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Leaver(u64);

impl Invalidates for Leaver {
    fn invalidates(&self, other: &Self) -> bool {
        self == other
    }
}

/// A custom broadcast that is not a leave notice.
#[derive(Debug, thiserror::Error)]
#[error("membership: a custom broadcast of {0} bytes is not a leave notice")]
pub(crate) struct NotANotice(usize);

impl BroadcastHandler<MemberId> for LeaveNotices {
    type Key = Leaver;
    type Error = NotANotice;

    fn receive_item(
        &mut self,
        data: &[u8],
        _sender: Option<&MemberId>,
    ) -> Result<Option<Leaver>, NotANotice> {
        let notice: [u8; LEN] = data.try_into().map_err(|_| NotANotice(data.len()))?;
        if notice[0] != TAG {
            return Err(NotANotice(data.len()));
        }
        let mut incarnation = [0; 8];
        incarnation.copy_from_slice(&notice[1..]);
        let incarnation = u64::from_le_bytes(incarnation);
        // Spread a notice once: foca then gossips it its usual number of times.
        Ok(self
            .departures
            .record(incarnation)
            .then_some(Leaver(incarnation)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_notice_is_recorded_and_spread_once_and_anything_else_is_refused() {
        let departures = Departures::default();
        let mut handler = LeaveNotices::new(departures.clone());
        assert_eq!(
            handler.receive_item(&encode(7), None).unwrap(),
            Some(Leaver(7))
        );
        assert_eq!(handler.receive_item(&encode(7), None).unwrap(), None);
        assert!(departures.has_left(7) && !departures.has_left(8));
        assert_eq!(departures.take_fresh(), vec![7]);
        assert!(departures.take_fresh().is_empty());
        assert!(handler.receive_item(&[1, 2, 3], None).is_err());
        let mut other_tag = encode(9);
        other_tag[0] = 2;
        assert!(handler.receive_item(&other_tag, None).is_err());
        assert!(!departures.has_left(9));
    }

    #[test]
    fn memory_is_bounded() {
        let departures = Departures::default();
        let mut handler = LeaveNotices::new(departures.clone());
        for incarnation in 0..(REMEMBERED as u64 + 10) {
            handler.receive_item(&encode(incarnation), None).unwrap();
        }
        assert!(!departures.has_left(0));
        assert!(departures.has_left(REMEMBERED as u64 + 9));
        assert_eq!(departures.lock().left.len(), REMEMBERED);
    }
}
