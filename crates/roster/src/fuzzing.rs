//! Entry points for the fuzz targets in `fuzz/` (feature `fuzzing`).
//!
//! Each function feeds untrusted bytes to a decoder exactly as the network layer does. None
//! may panic, hang or allocate without bound, whatever the input.

use crate::key::Limits;

/// A replication frame, as a link reader decodes it.
///
/// ```
/// roster::fuzzing::frame(&[0xff, 0x00, 0x12]);
/// ```
pub fn frame(bytes: &[u8]) {
    let _ = crate::replication::wire::Frame::decode(bytes, &Limits::CEILING);
}

/// A handshake greeting, as a new link decodes it.
///
/// ```
/// roster::fuzzing::greeting(b"not a greeting");
/// ```
pub fn greeting(bytes: &[u8]) {
    let _ = crate::cluster::fuzz_greeting(bytes);
}

/// A membership datagram, through the MAC check and foca's decoder.
///
/// ```
/// roster::fuzzing::membership_datagram(&[1, 2, 3]);
/// ```
pub fn membership_datagram(bytes: &[u8]) {
    crate::cluster::membership::fuzz_datagram(bytes);
}

/// A link frame header and body, as `read_frame` reads them from a stream.
///
/// ```
/// roster::fuzzing::link_stream(&[0, 0, 0, 3, 1, 2, 3]);
/// ```
pub fn link_stream(bytes: &[u8]) {
    crate::cluster::fuzz_link_stream(bytes);
}
