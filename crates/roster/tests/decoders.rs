//! Byte-fuzzing of the network decoders with proptest, through the entry points the fuzz
//! targets in `fuzz/` use (`roster::fuzzing`): the handshake greeting, the membership
//! datagram (MAC check, then foca's decoder) and the link stream (frame headers and bodies).
//! Replication frames themselves (`Frame::decode`) are fuzzed in roster-proto's wire tests.
//!
//! Each decoder gets arbitrary bytes and mutations of valid encodings; none may panic, and
//! what decodes must be consistent: a greeting encodes and decodes to itself, only an
//! untouched sealed datagram passes the MAC check, a stream of frames reads back as those
//! frames. Case counts keep the file to a few seconds in a debug build.
#![cfg(feature = "fuzzing")]

use std::net::SocketAddr;

use proptest::collection::vec;
use proptest::prelude::*;
use roster::fuzzing;
use roster_proto::key::Limits;
use roster_proto::replication::PROTOCOL_VERSION;
use roster_proto::replication::wire::Frame;

/// A valid greeting, encoded field by field as the handshake encodes it (postcard writes a
/// struct as its fields in order): version, cluster, node name, incarnation, start time,
/// address, limits, nonce.
fn greeting_bytes(cluster: &str, name: &str, incarnation: u64, nonce: [u8; 32]) -> Vec<u8> {
    let addr: SocketAddr = "10.0.0.2:7400".parse().expect("literal address");
    postcard::to_stdvec(&(
        PROTOCOL_VERSION,
        cluster,
        name,
        incarnation,
        1_700_000_000_000u64,
        addr,
        Limits::DEFAULT,
        nonce,
    ))
    .expect("a greeting encodes")
}

/// Frames a link carries, of every shape that needs no store to build.
fn sample_frames() -> Vec<Frame> {
    vec![
        Frame::Hello {
            scopes: vec!["default".into(), "chat".into()],
            positions: vec![("default".into(), 42)],
            clock: 1 << 40,
        },
        Frame::Scopes {
            joined: vec!["chat".into()],
            left: vec![],
        },
        Frame::Digest {
            scope: "default".into(),
            seq: 7,
            digest: 0x0123_4567_89ab_cdef_0011_2233_4455_6677,
        },
        Frame::Resync {
            scope: "chat".into(),
        },
        Frame::Ping { id: 1 },
        Frame::Pong { id: u64::MAX },
    ]
}

/// `frames` as a link writes them: each body after its length, 4 bytes big-endian.
fn stream_of(frames: &[Frame]) -> Vec<u8> {
    let mut stream = Vec::new();
    for frame in frames {
        let mut body = Vec::new();
        frame.encode_into(&mut body);
        stream.extend_from_slice(&(body.len() as u32).to_be_bytes());
        stream.extend_from_slice(&body);
    }
    stream
}

/// `bytes` with each `(position, xor)` applied (positions wrap around; a zero xor is one).
fn mutate(mut bytes: Vec<u8>, flips: &[(usize, u8)]) -> Vec<u8> {
    if bytes.is_empty() {
        return bytes;
    }
    let len = bytes.len();
    for &(at, xor) in flips {
        bytes[at % len] ^= xor.max(1);
    }
    bytes
}

#[test]
fn a_valid_greeting_decodes_and_round_trips() {
    let bytes = greeting_bytes("prod", "api-1", 3, [9; 32]);
    assert!(fuzzing::greeting_round_trip(&bytes));
    fuzzing::greeting(&bytes);
    // Trailing bytes are refused, a truncated greeting too.
    let mut longer = bytes.clone();
    longer.push(0);
    assert!(!fuzzing::greeting_round_trip(&longer));
    assert!(!fuzzing::greeting_round_trip(&bytes[..bytes.len() - 1]));
}

#[test]
fn a_sealed_datagram_opens_and_one_flipped_bit_anywhere_does_not() {
    let sealed = fuzzing::membership_seal(b"a foca packet");
    assert!(fuzzing::membership_opens(&sealed));
    for at in 0..sealed.len() {
        for bit in 0..8 {
            let mut flipped = sealed.clone();
            flipped[at] ^= 1 << bit;
            assert!(!fuzzing::membership_opens(&flipped), "byte {at} bit {bit}");
        }
    }
}

#[test]
fn a_stream_of_frames_reads_back_as_those_frames() {
    let frames = sample_frames();
    let bodies = fuzzing::link_stream_frames(&stream_of(&frames));
    assert_eq!(bodies.len(), frames.len());
    for (body, frame) in bodies.iter().zip(&frames) {
        assert_eq!(
            &Frame::decode(body, &Limits::CEILING).expect("decodes"),
            frame
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1024, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_as_a_greeting_never_panic(bytes in vec(any::<u8>(), 0..256)) {
        fuzzing::greeting(&bytes);
        fuzzing::greeting_round_trip(&bytes);
    }

    #[test]
    fn mutated_greetings_never_panic_and_round_trip_when_they_decode(
        cluster in "[a-z]{0,12}",
        name in "[a-z0-9-]{1,24}",
        incarnation in any::<u64>(),
        nonce in any::<[u8; 32]>(),
        flips in vec((any::<usize>(), any::<u8>()), 1..6),
        cut in any::<prop::sample::Index>(),
        truncate in any::<bool>(),
    ) {
        let valid = greeting_bytes(&cluster, &name, incarnation, nonce);
        prop_assert!(fuzzing::greeting_round_trip(&valid));
        let mut mutated = mutate(valid, &flips);
        if truncate {
            mutated.truncate(cut.index(mutated.len() + 1));
        }
        fuzzing::greeting(&mutated);
        // Panics inside if a greeting that decodes does not round-trip.
        fuzzing::greeting_round_trip(&mutated);
    }

    #[test]
    fn arbitrary_bytes_as_a_membership_datagram_never_panic(bytes in vec(any::<u8>(), 0..512)) {
        // The raw bytes go through the MAC check, then (sealed) through foca's decoder.
        fuzzing::membership_datagram(&bytes);
        // Random bytes do not pass the MAC check (16 bytes of it).
        prop_assert!(bytes.len() < 16 || !fuzzing::membership_opens(&bytes));
    }

    #[test]
    fn mutated_sealed_datagrams_never_open(
        payload in vec(any::<u8>(), 0..256),
        flips in vec((any::<usize>(), any::<u8>()), 1..4),
        cut in any::<prop::sample::Index>(),
    ) {
        let sealed = fuzzing::membership_seal(&payload);
        prop_assert!(fuzzing::membership_opens(&sealed));
        // Distinct positions, so that two flips cannot cancel out.
        let mut seen = std::collections::BTreeSet::new();
        let flips: Vec<(usize, u8)> = flips
            .into_iter()
            .filter(|(at, _)| seen.insert(at % sealed.len()))
            .collect();
        prop_assert!(!fuzzing::membership_opens(&mutate(sealed.clone(), &flips)));
        let shorter = cut.index(sealed.len());
        prop_assert!(!fuzzing::membership_opens(&sealed[..shorter]));
        fuzzing::membership_datagram(&mutate(sealed, &flips));
    }

    #[test]
    fn arbitrary_bytes_as_a_link_stream_never_panic(bytes in vec(any::<u8>(), 0..512)) {
        let bodies = fuzzing::link_stream_frames(&bytes);
        // Each body read took its 4-byte header and its announced length from the stream.
        prop_assert!(bodies.iter().map(|b| 4 + b.len()).sum::<usize>() <= bytes.len());
        fuzzing::link_stream(&bytes);
    }

    #[test]
    fn a_cut_stream_reads_back_a_prefix_of_its_frames(cut in any::<prop::sample::Index>()) {
        let frames = sample_frames();
        let stream = stream_of(&frames);
        let bodies = fuzzing::link_stream_frames(&stream[..cut.index(stream.len() + 1)]);
        prop_assert!(bodies.len() <= frames.len());
        for (body, frame) in bodies.iter().zip(&frames) {
            prop_assert_eq!(&Frame::decode(body, &Limits::CEILING).expect("decodes"), frame);
        }
    }

    #[test]
    fn mutated_link_streams_never_panic(flips in vec((any::<usize>(), any::<u8>()), 1..8)) {
        let stream = mutate(stream_of(&sample_frames()), &flips);
        let bodies = fuzzing::link_stream_frames(&stream);
        prop_assert!(bodies.iter().map(|b| 4 + b.len()).sum::<usize>() <= stream.len());
        fuzzing::link_stream(&stream);
    }
}
