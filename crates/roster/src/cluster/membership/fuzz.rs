//! foca's decoder on a packet, for the fuzz entry points in [`crate::fuzzing`] (feature
//! `fuzzing` only).

use foca::{AccumulatingRuntime, Foca, PostcardCodec};
use rand::SeedableRng;
use rand::rngs::StdRng;

use super::config::MembershipConfig;
use super::identity::MemberId;
use super::leave_notice::{Departures, LeaveNotices};
use super::rng::FocaRng;

/// foca's decoder (leave notices included), run by a fresh member `me` (default configuration) on a packet: what
/// the membership task does with the payload of a datagram that passed the MAC check.
/// Never panics.
pub(crate) fn decode_packet(me: MemberId, payload: &[u8]) {
    let mut foca = Foca::with_custom_broadcast(
        me,
        MembershipConfig::default().foca,
        FocaRng(StdRng::seed_from_u64(1)),
        PostcardCodec,
        LeaveNotices::new(Departures::default()),
    );
    let mut runtime = AccumulatingRuntime::new();
    let _ = foca.handle_data(payload, &mut runtime);
}
