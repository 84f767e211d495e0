//! Fuzz target: `roster::fuzzing::hostile_peer`: frames from a lying peer, applied by a real
//! core to real stores, must never panic, and the link must go quiet.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| roster::fuzzing::hostile_peer(data));
