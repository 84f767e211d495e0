//! Link framing and the versioned, authenticated handshake.
//!
//! Every message on a link is a frame: a 4-byte big-endian length, then that many bytes.
//! A new link first runs the handshake, the same on both sides:
//!
//! 1. each side sends a [`Greeting`]: protocol version, cluster name, node name,
//!    incarnation, start time, cluster address and a fresh random nonce;
//! 2. each side checks the peer's version and cluster name, and answers with a proof: a
//!    keyed BLAKE3 hash of the peer's nonce and both incarnations, keyed by a key derived
//!    from the shared cluster secret (the secret itself never crosses the wire);
//! 3. each side checks the peer's proof against its own nonce.
//!
//! A mismatch refuses the link with a [`HandshakeError`] that says why; nothing else
//! changes. Until the peer is proven, its frames are capped at
//! [`MAX_HANDSHAKE_FRAME_BYTES`], and a frame's buffer only ever grows with the bytes that
//! actually arrived, so an unauthenticated client cannot make a node allocate much.

use std::net::SocketAddr;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use thiserror::Error;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::key::Limits;
use crate::replication::PROTOCOL_VERSION;

/// Largest frame accepted from a proven peer. Snapshot chunks and op batches stay far
/// below it.
pub(crate) const MAX_FRAME_BYTES: usize = 64 * 1024 * 1024;

/// Largest frame accepted during the handshake. A proof is 32 bytes; a greeting is about
/// 70 bytes plus the cluster and node names (a node name is a key, at most 1 KiB by
/// default). The rest is headroom for names of a few KiB and fields added later.
pub(crate) const MAX_HANDSHAKE_FRAME_BYTES: usize = 8 * 1024;

/// Most a frame's buffer grows by before the bytes to fill it have arrived: a peer that
/// announces a large frame and sends nothing costs at most this much.
const READ_STEP_BYTES: usize = 64 * 1024;

/// How long a handshake may take before the link is dropped.
pub(crate) const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);

/// What a node says about itself when a link opens.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Greeting {
    pub(crate) version: u16,
    pub(crate) cluster: String,
    pub(crate) name: String,
    pub(crate) incarnation: u64,
    pub(crate) started_at_ms: u64,
    pub(crate) addr: SocketAddr,
    /// What the node accepts from peers; a write or message over a linked peer's limits
    /// fails at the caller instead of being lost.
    pub(crate) limits: Limits,
    pub(crate) nonce: [u8; 32],
}

/// Why a link was refused or lost.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum HandshakeError {
    /// The socket failed.
    #[error("link i/o: {0}")]
    Io(#[from] std::io::Error),
    /// The peer took too long.
    #[error("handshake timed out after {0:?}")]
    Timeout(Duration),
    /// The peer sent bytes that are not a handshake message.
    #[error("malformed handshake message: {0}")]
    Malformed(String),
    /// The peer announced a frame over the limit in force: 8 KiB
    /// during the handshake, 64 MiB after it.
    #[error(
        "peer announced a {len}-byte frame, over the {max}-byte limit at this stage of the link: \
         it is not a Roster node of this version, or it misbehaves"
    )]
    FrameTooLarge {
        /// The announced length.
        len: usize,
        /// The limit in force.
        max: usize,
    },
    /// The peer closed the link before sending its greeting.
    #[error(
        "the peer closed the link before sending its greeting: it may have refused this node \
         (check its logs), or lost a race with a concurrent link between the same nodes"
    )]
    ClosedBeforeGreeting,
    /// The peer closed the link after its greeting, before sending its proof.
    #[error(
        "peer {peer} closed the link before sending its proof: it may have refused this node \
         (check its logs), or lost a race with a concurrent link between the same nodes"
    )]
    ClosedBeforeProof {
        /// The peer's name, from its greeting.
        peer: String,
    },
    /// The peer speaks another protocol version.
    #[error(
        "peer {peer} speaks protocol version {theirs}, this node speaks {ours}: upgrade the older node"
    )]
    Version {
        /// The peer's name.
        peer: String,
        /// Its version.
        theirs: u16,
        /// Ours.
        ours: u16,
    },
    /// The peer belongs to another cluster.
    #[error("peer {peer} belongs to cluster {theirs:?}, this node to {ours:?}: check the seeds")]
    Cluster {
        /// The peer's name.
        peer: String,
        /// Its cluster.
        theirs: String,
        /// Ours.
        ours: String,
    },
    /// The peer's proof does not match: it does not know the cluster secret.
    #[error("peer {peer} failed authentication: its cluster secret differs from this node's")]
    BadProof {
        /// The peer's name.
        peer: String,
    },
    /// The peer is this node itself (a seed pointing back at us).
    #[error("connected to itself")]
    SelfConnection,
    /// The TLS handshake failed (certificate not signed by the cluster CA, wrong name,
    /// or a peer without TLS).
    #[error("TLS handshake failed: {0}")]
    Tls(String),
}

/// The authentication key derived from the cluster secret.
#[derive(Clone)]
pub(crate) struct ClusterKey([u8; 32]);

impl ClusterKey {
    pub(crate) fn derive(secret: &[u8]) -> Self {
        Self(blake3::derive_key("roster cluster link v1", secret))
    }

    fn proof(&self, nonce: &[u8; 32], prover: u64, verifier: u64) -> blake3::Hash {
        let mut hasher = blake3::Hasher::new_keyed(&self.0);
        hasher.update(nonce);
        hasher.update(&prover.to_le_bytes());
        hasher.update(&verifier.to_le_bytes());
        hasher.finalize()
    }
}

/// Writes one frame.
pub(crate) async fn write_frame<W: AsyncWrite + Unpin>(
    w: &mut W,
    bytes: &[u8],
) -> std::io::Result<()> {
    w.write_all(&(bytes.len() as u32).to_be_bytes()).await?;
    w.write_all(bytes).await
}

/// Reads one frame of at most `max` bytes into `buf`; `Ok(false)` at a clean end of stream.
///
/// `buf` grows with the bytes received, by at most [`READ_STEP_BYTES`] ahead of them,
/// never straight to the announced length.
pub(crate) async fn read_frame<R: AsyncRead + Unpin>(
    r: &mut R,
    buf: &mut Vec<u8>,
    max: usize,
) -> Result<bool, HandshakeError> {
    let mut len = [0u8; 4];
    match r.read_exact(&mut len).await {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(false),
        Err(e) => return Err(e.into()),
    }
    let len = u32::from_be_bytes(len) as usize;
    if len > max {
        return Err(HandshakeError::FrameTooLarge { len, max });
    }
    buf.clear();
    while buf.len() < len {
        let filled = buf.len();
        buf.resize(len.min(filled + READ_STEP_BYTES), 0);
        r.read_exact(&mut buf[filled..]).await?;
    }
    Ok(true)
}

/// Runs the handshake on a fresh link; returns the peer's greeting once it is proven.
pub(crate) async fn handshake<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut S,
    ours: &Greeting,
    key: &ClusterKey,
) -> Result<Greeting, HandshakeError> {
    match tokio::time::timeout(HANDSHAKE_TIMEOUT, exchange(stream, ours, key)).await {
        Ok(result) => result,
        Err(_) => Err(HandshakeError::Timeout(HANDSHAKE_TIMEOUT)),
    }
}

async fn exchange<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut S,
    ours: &Greeting,
    key: &ClusterKey,
) -> Result<Greeting, HandshakeError> {
    let mut buf = Vec::new();
    let greeting = postcard::to_stdvec(ours).expect("greetings encode");
    if !send_then_receive(stream, &greeting, &mut buf).await? {
        return Err(HandshakeError::ClosedBeforeGreeting);
    }
    let theirs = decode_greeting(&buf)?;
    check_greeting(ours, &theirs)?;
    let proof = key.proof(&theirs.nonce, ours.incarnation, theirs.incarnation);
    if !send_then_receive(stream, proof.as_bytes(), &mut buf).await? {
        return Err(HandshakeError::ClosedBeforeProof { peer: theirs.name });
    }
    let expected = key.proof(&ours.nonce, theirs.incarnation, ours.incarnation);
    let received: [u8; 32] = buf
        .as_slice()
        .try_into()
        .map_err(|_| HandshakeError::BadProof {
            peer: theirs.name.clone(),
        })?;
    // `blake3::Hash` compares in constant time.
    if expected != blake3::Hash::from(received) {
        return Err(HandshakeError::BadProof { peer: theirs.name });
    }
    Ok(theirs)
}

/// Sends one handshake frame, then reads the peer's into `buf`. `Ok(false)` if the peer
/// closed or reset the link before its frame arrived whole.
async fn send_then_receive<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut S,
    frame: &[u8],
    buf: &mut Vec<u8>,
) -> Result<bool, HandshakeError> {
    let result = async {
        write_frame(stream, frame).await?;
        read_frame(stream, buf, MAX_HANDSHAKE_FRAME_BYTES).await
    }
    .await;
    match result {
        Err(HandshakeError::Io(e)) if peer_closed(&e) => Ok(false),
        other => other,
    }
}

/// Whether an i/o error means the peer closed or reset the link.
fn peer_closed(e: &std::io::Error) -> bool {
    use std::io::ErrorKind::{BrokenPipe, ConnectionAborted, ConnectionReset, UnexpectedEof};
    matches!(
        e.kind(),
        BrokenPipe | ConnectionAborted | ConnectionReset | UnexpectedEof
    )
}

#[cfg(test)]
impl Greeting {
    /// The greeting of node `n<incarnation>` of `cluster`, with default limits and a fresh
    /// nonce (for tests that speak the handshake by hand).
    pub(crate) fn for_test(cluster: &str, incarnation: u64) -> Self {
        Self {
            version: PROTOCOL_VERSION,
            cluster: cluster.into(),
            name: format!("n{incarnation}"),
            incarnation,
            started_at_ms: 1,
            addr: "127.0.0.1:1".parse().expect("an address"),
            limits: Limits::DEFAULT,
            nonce: rand::random(),
        }
    }
}

/// Decodes a peer's greeting (fuzzed: never panics).
pub(crate) fn decode_greeting(bytes: &[u8]) -> Result<Greeting, HandshakeError> {
    let (greeting, rest): (Greeting, &[u8]) =
        postcard::take_from_bytes(bytes).map_err(|e| HandshakeError::Malformed(e.to_string()))?;
    if !rest.is_empty() {
        return Err(HandshakeError::Malformed(format!(
            "{} trailing bytes",
            rest.len()
        )));
    }
    Ok(greeting)
}

fn check_greeting(ours: &Greeting, theirs: &Greeting) -> Result<(), HandshakeError> {
    if theirs.version != PROTOCOL_VERSION {
        return Err(HandshakeError::Version {
            peer: theirs.name.clone(),
            theirs: theirs.version,
            ours: PROTOCOL_VERSION,
        });
    }
    if theirs.cluster != ours.cluster {
        return Err(HandshakeError::Cluster {
            peer: theirs.name.clone(),
            theirs: theirs.cluster.clone(),
            ours: ours.cluster.clone(),
        });
    }
    if theirs.incarnation == ours.incarnation {
        return Err(HandshakeError::SelfConnection);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use tokio::io::DuplexStream;
    use tokio::time::timeout;

    use super::*;

    fn greeting(incarnation: u64) -> Greeting {
        Greeting::for_test("test", incarnation)
    }

    async fn run(
        a: Greeting,
        a_secret: &[u8],
        b: Greeting,
        b_secret: &[u8],
    ) -> (
        Result<Greeting, HandshakeError>,
        Result<Greeting, HandshakeError>,
    ) {
        let (mut x, mut y) = tokio::io::duplex(4096);
        let (ka, kb) = (ClusterKey::derive(a_secret), ClusterKey::derive(b_secret));
        tokio::join!(handshake(&mut x, &a, &ka), handshake(&mut y, &b, &kb))
    }

    #[tokio::test]
    async fn peers_with_the_same_secret_learn_each_other() {
        let (a, b) = (greeting(1), greeting(2));
        let (ra, rb) = run(a.clone(), b"s3cret", b.clone(), b"s3cret").await;
        assert_eq!(ra.unwrap(), b);
        assert_eq!(rb.unwrap(), a);
    }

    #[tokio::test]
    async fn a_wrong_secret_is_refused_on_both_sides() {
        let (ra, rb) = run(greeting(1), b"one", greeting(2), b"two").await;
        assert!(matches!(ra, Err(HandshakeError::BadProof { .. })));
        assert!(matches!(rb, Err(HandshakeError::BadProof { .. })));
    }

    #[tokio::test]
    async fn another_version_or_cluster_is_refused() {
        let mut old = greeting(2);
        old.version = PROTOCOL_VERSION + 1;
        let (ra, _) = run(greeting(1), b"s", old, b"s").await;
        assert!(matches!(ra, Err(HandshakeError::Version { .. })));
        let mut other = greeting(2);
        other.cluster = "prod".into();
        let (ra, _) = run(greeting(1), b"s", other, b"s").await;
        assert!(matches!(ra, Err(HandshakeError::Cluster { .. })));
    }

    #[tokio::test]
    async fn oversized_frames_are_refused_before_allocation() {
        let mut bytes: &[u8] = &[0xff, 0xff, 0xff, 0xff];
        let mut buf = Vec::new();
        assert!(matches!(
            read_frame(&mut bytes, &mut buf, MAX_FRAME_BYTES).await,
            Err(HandshakeError::FrameTooLarge {
                len: 0xffff_ffff,
                max: MAX_FRAME_BYTES
            })
        ));
        assert!(buf.capacity() < 1024);
    }

    #[tokio::test(start_paused = true)]
    async fn an_announced_frame_costs_only_the_bytes_that_arrived() {
        let (mut peer, mut ours) = tokio::io::duplex(256 * 1024);
        // 60 MiB announced, 100 KiB sent, then silence with the link open.
        peer.write_all(&(60u32 << 20).to_be_bytes()).await.unwrap();
        peer.write_all(&[7; 100 * 1024]).await.unwrap();
        let mut buf = Vec::new();
        let read = read_frame(&mut ours, &mut buf, MAX_FRAME_BYTES);
        // Paused time: the timeout fires as soon as the read is stuck waiting.
        assert!(timeout(HANDSHAKE_TIMEOUT, read).await.is_err());
        assert!(
            buf.capacity() <= 2 * (100 * 1024 + READ_STEP_BYTES),
            "buffer grew to {} bytes",
            buf.capacity()
        );
        drop(peer);
    }

    #[tokio::test]
    async fn frames_longer_than_a_read_step_arrive_whole() {
        let (mut peer, mut ours) = tokio::io::duplex(4096);
        let body: Vec<u8> = (0..3 * READ_STEP_BYTES + 5).map(|i| i as u8).collect();
        let sent = body.clone();
        let writer = tokio::spawn(async move {
            write_frame(&mut peer, &sent).await.unwrap();
            write_frame(&mut peer, b"next").await.unwrap();
            // Half a frame, then the end of the stream.
            peer.write_all(&10u32.to_be_bytes()).await.unwrap();
            peer.write_all(b"half").await.unwrap();
        });
        let mut buf = Vec::new();
        assert!(
            read_frame(&mut ours, &mut buf, MAX_FRAME_BYTES)
                .await
                .unwrap()
        );
        assert_eq!(buf, body);
        assert!(
            read_frame(&mut ours, &mut buf, MAX_FRAME_BYTES)
                .await
                .unwrap()
        );
        assert_eq!(buf, b"next");
        writer.await.unwrap();
        assert!(matches!(
            read_frame(&mut ours, &mut buf, MAX_FRAME_BYTES).await,
            Err(HandshakeError::Io(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof
        ));
        assert!(
            !read_frame(&mut ours, &mut buf, MAX_FRAME_BYTES)
                .await
                .unwrap()
        );
    }

    /// Runs our side of the handshake against a scripted peer on the other end.
    async fn against<F: Future<Output = ()>>(
        script: impl FnOnce(DuplexStream) -> F,
    ) -> Result<Greeting, HandshakeError> {
        let (peer, mut ours) = tokio::io::duplex(64 * 1024);
        let (ours_greeting, key) = (greeting(1), ClusterKey::derive(b"s"));
        let (result, ()) = tokio::join!(handshake(&mut ours, &ours_greeting, &key), script(peer));
        result
    }

    #[tokio::test(start_paused = true)]
    async fn a_greeting_over_the_handshake_cap_is_refused() {
        let (mut peer, mut ours) = tokio::io::duplex(64 * 1024);
        let len = MAX_HANDSHAKE_FRAME_BYTES as u32 + 1;
        peer.write_all(&len.to_be_bytes()).await.unwrap();
        // The link stays open: the refusal must not wait for the body.
        let error = handshake(&mut ours, &greeting(1), &ClusterKey::derive(b"s"))
            .await
            .unwrap_err();
        assert!(
            matches!(
                error,
                HandshakeError::FrameTooLarge {
                    len,
                    max: MAX_HANDSHAKE_FRAME_BYTES
                } if len == MAX_HANDSHAKE_FRAME_BYTES + 1
            ),
            "{error:?}"
        );
        assert!(
            error.to_string().contains("over the 8192-byte limit"),
            "{error}"
        );
        drop(peer);
    }

    #[tokio::test]
    async fn a_peer_closing_before_its_proof_is_not_a_bad_secret() {
        let theirs = postcard::to_stdvec(&greeting(2)).unwrap();
        // The peer reads our greeting and proof, then closes without sending its proof.
        let after_our_proof = against(|mut peer| async move {
            write_frame(&mut peer, &theirs).await.unwrap();
            let mut buf = Vec::new();
            for _ in 0..2 {
                assert!(
                    read_frame(&mut peer, &mut buf, MAX_FRAME_BYTES)
                        .await
                        .unwrap()
                );
            }
        })
        .await;
        // The peer closes right after reading our greeting.
        let theirs = postcard::to_stdvec(&greeting(2)).unwrap();
        let after_our_greeting = against(|mut peer| async move {
            write_frame(&mut peer, &theirs).await.unwrap();
            let mut buf = Vec::new();
            assert!(
                read_frame(&mut peer, &mut buf, MAX_FRAME_BYTES)
                    .await
                    .unwrap()
            );
        })
        .await;
        for result in [after_our_proof, after_our_greeting] {
            let error = result.unwrap_err();
            assert!(
                matches!(&error, HandshakeError::ClosedBeforeProof { peer } if peer == "n2"),
                "{error:?}"
            );
            assert!(
                error
                    .to_string()
                    .contains("closed the link before sending its proof"),
                "{error}"
            );
        }
    }

    #[tokio::test]
    async fn a_peer_closing_at_once_has_sent_no_greeting() {
        let result = against(|peer| async move { drop(peer) }).await;
        assert!(
            matches!(result, Err(HandshakeError::ClosedBeforeGreeting)),
            "{result:?}"
        );
    }

    #[test]
    fn garbage_greetings_are_errors() {
        assert!(decode_greeting(&[]).is_err());
        assert!(decode_greeting(&[0xff; 64]).is_err());
    }
}
