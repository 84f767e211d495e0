//! Replication between nodes: the sans-IO core, its frames, and (in the cluster layer)
//! the drivers around them.

mod core;
mod wire;

#[cfg(test)]
mod sim;

pub use wire::WireError;
