//! The cluster layer: how nodes find each other, decide who is alive and talk.
//!
//! - [`membership`] runs SWIM (the `foca` crate) over UDP to discover members and detect
//!   failures; it reports [`membership::MembershipEvent`]s to the transport layer.
//! - `handshake` frames links and authenticates peers with the shared cluster secret.
//! - `link_table` owns every link's lifecycle (dialing, admission, established, closed)
//!   and the redial backoff; `driver` owns the replication core and runs the links,
//!   timers and membership events; `outlet` is the write side of a plain TCP link.
//!
//! A node joins a cluster with [`crate::NodeBuilder::cluster`] and a [`ClusterConfig`].
//! (Transport files: config.rs, driver.rs, handshake.rs — keep the `mod` lines below.)

mod config;
mod driver;
mod handshake;
mod link_table;
pub(crate) mod membership;
mod outlet;
#[cfg(test)]
mod tests;
#[cfg(feature = "tls")]
mod tls;

pub use config::{ClusterConfig, FailureDetection};
pub(crate) use driver::Cluster;
pub use driver::{ClusterStats, PeerInfo};
pub use handshake::HandshakeError;
#[cfg(feature = "tls")]
pub use tls::{TlsConfig, TlsError};

#[cfg(feature = "fuzzing")]
pub(crate) fn fuzz_greeting(bytes: &[u8]) -> Result<(), HandshakeError> {
    handshake::decode_greeting(bytes).map(drop)
}

#[cfg(feature = "fuzzing")]
pub(crate) fn fuzz_link_stream(bytes: &[u8]) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("a current-thread runtime");
    runtime.block_on(async {
        let mut reader = bytes;
        let mut buf = Vec::new();
        while let Ok(true) =
            handshake::read_frame(&mut reader, &mut buf, handshake::MAX_FRAME_BYTES).await
        {
            crate::fuzzing::frame(&buf);
        }
    });
}
