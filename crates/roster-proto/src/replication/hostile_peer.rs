//! A fuzz entry point (feature `fuzzing`): a linked peer that sends whatever the fuzzer
//! makes, applied by a real core to real stores. Where the frame decoder's target stops at
//! "decodes or is refused", this one goes on to what a node does with a frame that decodes:
//! snapshot and delta chunks out of order, for scopes it never offered, with sequence
//! numbers and sizes that lie, acknowledgements of what was never sent.

use std::time::Duration;

use super::core::CoreConfig;
use super::tests::pair::Pair;
use crate::vocab::event::ExitReason;
use crate::vocab::key::Limits;
use crate::vocab::meta::Meta;

/// Feeds the frames in `bytes` to node b of a linked pair as if node a had sent them, then
/// lets both run (timers included) until the link is quiet. Nothing may panic, and the pair
/// must go quiet: a frame that sets the two cores talking forever is a finding.
///
/// `bytes` is a sequence of frames, each a 2-byte big-endian length and that many bytes of
/// encoded frame; frames that do not decode are dropped, as a link reader would drop the
/// link.
///
/// ```
/// roster_proto::replication::hostile_peer::hostile_peer(&[0, 3, 0xff, 0x00, 0x12]);
/// ```
pub fn hostile_peer(bytes: &[u8]) {
    let mut pair = Pair::new(CoreConfig::default());
    // Something to sync and to conflict with.
    let on_a = pair.a.process();
    pair.a.register(on_a, "user/1");
    let on_b = pair.b.process();
    pair.b.register(on_b, "user/2");
    pair.b.join(on_b, "room/1", Meta::from_bytes(b"\x80"));
    pair.link();
    let mut rest = bytes;
    while let [high, low, tail @ ..] = rest {
        let len = usize::from(u16::from_be_bytes([*high, *low])).min(tail.len());
        let (frame, after) = tail.split_at(len);
        rest = after;
        if let Ok(frame) = super::wire::Frame::decode(frame, &Limits::CEILING) {
            pair.deliver_decoded_to_b(frame);
        }
        pair.drive();
    }
    pair.advance(Duration::from_secs(5));
    // A process's holdings point at their scope's store, which points back at the process
    // table: ending the processes (as dropping a `Process` handle does) frees the stores.
    pair.a.exit(on_a, ExitReason::Normal);
    pair.b.exit(on_b, ExitReason::Normal);
}
