//! Fuzz target: `roster::fuzzing::greeting` must never panic on any input.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| roster::fuzzing::greeting(data));
