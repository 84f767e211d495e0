//! The cluster layer: how nodes find each other, decide who is alive and talk.
//!
//! - [`membership`] runs SWIM (the `foca` crate) over UDP to discover members and detect
//!   failures; it reports [`membership::MembershipEvent`]s to the transport layer.
//! - `handshake` frames links and authenticates peers with the shared cluster secret.
//! - `driver` owns the replication core, which decides every step of a link's life
//!   (dialing, admission, established, closed, the redial backoff:
//!   `roster_proto::replication::links`), and runs the links' sockets, the timers and
//!   membership events; `outlet` is the write side of a plain TCP link.
//!
//! A node joins a cluster with [`crate::NodeBuilder::cluster`] and a [`ClusterConfig`].

mod config;
mod driver;
mod handshake;
pub(crate) mod host;
use crate::link_table;
pub(crate) mod membership;
mod outlet;
#[cfg(test)]
mod tests;
mod throttle;
#[cfg(feature = "tls")]
mod tls;

pub use config::{ClusterConfig, FailureDetection};
pub(crate) use driver::Cluster;
pub use driver::{ClusterStats, LinkKind, LinkSession, PeerInfo};
pub use handshake::HandshakeError;
/// The link decoders, for the fuzz targets' entry points in [`crate::fuzzing`].
#[cfg(feature = "fuzzing")]
pub(crate) use handshake::{MAX_FRAME_BYTES, decode_greeting, read_frame};
#[cfg(feature = "tls")]
pub use tls::{TlsConfig, TlsError};
