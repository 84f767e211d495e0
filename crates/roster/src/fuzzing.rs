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
    let key = fuzz_key();
    let _ = key.open(bytes);
    let sealed = membership_seal(bytes);
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
    link_stream_frames(bytes);
}

/// Frames from a linked peer that lies, applied by a real replication core to real stores
/// (snapshot and delta chunks included): see
/// [`roster_proto::replication::hostile_peer::hostile_peer`] for the input's shape.
///
/// ```
/// roster::fuzzing::hostile_peer(&[0, 3, 0xff, 0x00, 0x12]);
/// ```
pub fn hostile_peer(bytes: &[u8]) {
    roster_proto::replication::hostile_peer::hostile_peer(bytes);
}

// Checks for the property tests (`tests/decoders.rs`): the same decoders, with what they
// decoded or refused made visible.

/// Like [`greeting`]; returns whether `bytes` decoded. A greeting that decodes must encode
/// again and decode to the same greeting (panics otherwise).
///
/// ```
/// assert!(!roster::fuzzing::greeting_round_trip(b"not a greeting"));
/// ```
pub fn greeting_round_trip(bytes: &[u8]) -> bool {
    let Ok(decoded) = decode_greeting(bytes) else {
        return false;
    };
    let encoded = postcard::to_stdvec(&decoded).expect("a decoded greeting encodes");
    let again = decode_greeting(&encoded).expect("a re-encoded greeting decodes");
    assert_eq!(
        again, decoded,
        "a greeting changed through encode and decode"
    );
    true
}

/// `payload` sealed as a membership datagram with the key [`membership_datagram`] uses.
///
/// ```
/// let sealed = roster::fuzzing::membership_seal(b"payload");
/// assert!(roster::fuzzing::membership_opens(&sealed));
/// ```
pub fn membership_seal(payload: &[u8]) -> Vec<u8> {
    let mut sealed = Vec::new();
    fuzz_key().seal(payload, &mut sealed);
    sealed
}

/// Whether a datagram passes the MAC check under the key [`membership_datagram`] uses.
///
/// ```
/// assert!(!roster::fuzzing::membership_opens(&[0; 40]));
/// ```
pub fn membership_opens(datagram: &[u8]) -> bool {
    fuzz_key().open(datagram).is_ok()
}

/// Like [`link_stream`]; returns the bodies of the frames read before the stream ended or
/// a header was refused.
///
/// ```
/// let frames = roster::fuzzing::link_stream_frames(&[0, 0, 0, 2, 7, 8, 0, 0]);
/// assert_eq!(frames, [vec![7, 8]]);
/// ```
pub fn link_stream_frames(bytes: &[u8]) -> Vec<Vec<u8>> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("a current-thread runtime");
    runtime.block_on(async {
        let mut reader = bytes;
        let mut buf = Vec::new();
        let mut frames = Vec::new();
        while let Ok(true) = read_frame(&mut reader, &mut buf, MAX_FRAME_BYTES).await {
            frame(&buf);
            frames.push(buf.clone());
        }
        frames
    })
}

/// The membership key of the fuzz entry points.
fn fuzz_key() -> DatagramKey {
    let max_packet_size = MembershipConfig::default().foca.max_packet_size.get();
    DatagramKey::new(b"fuzz", "fuzz", max_packet_size)
}
