//! Fuzz target: `roster::fuzzing::frame` must never panic on any input.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| roster::fuzzing::frame(data));
