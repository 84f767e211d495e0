//! Replication between nodes: the sans-IO core and its frames. The cluster layer drives
//! them over TCP; the simulation drives them over a simulated network.

mod barrier;
pub mod core;
pub mod host;
pub mod links;
mod node_records;
mod op_log;
mod peer;
pub mod wire;

#[cfg(test)]
mod apply_figures;
#[cfg(test)]
mod core_tests;
#[cfg(feature = "fuzzing")]
pub mod hostile_peer;
#[cfg(test)]
mod links_tests;
// The fuzz target `hostile_peer` drives a pair too; what only the tests use is dead there.
#[cfg(any(test, feature = "fuzzing"))]
#[cfg_attr(not(test), allow(dead_code))]
mod pair;
#[cfg(test)]
mod sim;

pub use barrier::Barrier;
pub use wire::PROTOCOL_VERSION;
