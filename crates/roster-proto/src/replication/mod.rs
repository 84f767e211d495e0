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

#[cfg(feature = "fuzzing")]
pub mod hostile_peer;
#[cfg(test)]
mod sim;
#[cfg(any(test, feature = "fuzzing"))]
mod tests;

pub use barrier::Barrier;
pub use wire::PROTOCOL_VERSION;
