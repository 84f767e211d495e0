//! Fuzz target: `roster::fuzzing::link_stream` must never panic on any input.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| roster::fuzzing::link_stream(data));
