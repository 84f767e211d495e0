//! Fuzz target: `roster::fuzzing::membership_datagram` must never panic on any input.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| roster::fuzzing::membership_datagram(data));
