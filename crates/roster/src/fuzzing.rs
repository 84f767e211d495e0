//! Entry points for the fuzz targets in `fuzz/` (feature `fuzzing`).
//!
//! Each function feeds untrusted bytes to a decoder exactly as the network layer does. None
//! may panic, hang or allocate without bound, whatever the input. All the fuzz glue lives
//! here; the decoders stay in their modules, which expose them to the crate.

use crate::cluster::membership::{self, DatagramKey, MemberId, MembershipConfig};
use crate::cluster::{MAX_FRAME_BYTES, decode_greeting, read_frame};
use crate::key::Limits;
use crate::replication::wire::Frame;

/// A replication frame, as a link reader decodes it.
///
/// ```
/// roster::fuzzing::frame(&[0xff, 0x00, 0x12]);
/// ```
pub fn frame(bytes: &[u8]) {
    let _ = Frame::decode(bytes, &Limits::CEILING);
}

/// A handshake greeting, as a new link decodes it.
///
/// ```
/// roster::fuzzing::greeting(b"not a greeting");
/// ```
pub fn greeting(bytes: &[u8]) {
    let _ = decode_greeting(bytes);
}

/// A membership datagram, through the MAC check and foca's decoder.
///
/// The bytes go through the MAC check as they are; then, sealed with a known key so that
/// the fuzzer reaches it, through foca's decoder on a fresh member.
///
/// ```
/// roster::fuzzing::membership_datagram(&[1, 2, 3]);
/// ```
pub fn membership_datagram(bytes: &[u8]) {
    let max_packet_size = MembershipConfig::default().foca.max_packet_size.get();
    let key = DatagramKey::new(b"fuzz", "fuzz", max_packet_size);
    let _ = key.open(bytes);
    let mut sealed = Vec::new();
    key.seal(bytes, &mut sealed);
    let Ok(payload) = key.open(&sealed) else {
        return;
    };
    let me = MemberId {
        addr: "127.0.0.1:1".parse().expect("literal address"),
        incarnation: 1,
        name: "fuzz".into(),
        started_at_ms: 0,
        bump: 0,
    };
    membership::decode_packet(me, payload);
}

/// A link frame header and body, as `read_frame` reads them from a stream.
///
/// ```
/// roster::fuzzing::link_stream(&[0, 0, 0, 3, 1, 2, 3]);
/// ```
pub fn link_stream(bytes: &[u8]) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("a current-thread runtime");
    runtime.block_on(async {
        let mut reader = bytes;
        let mut buf = Vec::new();
        while let Ok(true) = read_frame(&mut reader, &mut buf, MAX_FRAME_BYTES).await {
            frame(&buf);
        }
    });
}
