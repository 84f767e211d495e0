//! The fuzzing entry point of membership (`roster::fuzzing::membership_datagram`): untrusted
//! bytes through the MAC check and foca's decoder. Built with the `fuzzing` feature only.

use foca::{AccumulatingRuntime, Foca, PostcardCodec};
use rand::SeedableRng;
use rand::rngs::StdRng;

use super::config::MembershipConfig;
use super::datagram::DatagramKey;
use super::identity::MemberId;
use super::rng::FocaRng;

/// Feeds untrusted bytes through the datagram path: the MAC check on the raw bytes, then
/// (sealed with a known key, so that the fuzzer reaches it) foca's decoder on a fresh
/// member. Must never panic.
pub(crate) fn fuzz_datagram(bytes: &[u8]) {
    let config = MembershipConfig::default();
    let max_packet_size = config.foca.max_packet_size.get();
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
    let mut foca = Foca::new(
        me,
        config.foca,
        FocaRng(StdRng::seed_from_u64(1)),
        PostcardCodec,
    );
    let mut runtime = AccumulatingRuntime::new();
    let _ = foca.handle_data(payload, &mut runtime);
}
