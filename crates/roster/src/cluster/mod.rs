//! The cluster layer: how nodes find each other, decide who is alive and talk.
//!
//! - [`membership`] runs SWIM (the `foca` crate) over UDP to discover members and detect
//!   failures; it reports [`membership::MembershipEvent`]s to the transport layer.
//! - `handshake` frames links and authenticates peers with the shared cluster secret.
//! - `driver` owns the replication core and runs the links, timers and membership events.
//!
//! A node joins a cluster with [`crate::NodeBuilder::cluster`] and a [`ClusterConfig`].
//! (Transport files: config.rs, driver.rs, handshake.rs — keep the `mod` lines below.)

mod config;
mod driver;
mod handshake;
pub(crate) mod membership;

pub use config::{ClusterConfig, FailureDetection};
pub(crate) use driver::Cluster;
pub use driver::PeerInfo;
pub use handshake::HandshakeError;
