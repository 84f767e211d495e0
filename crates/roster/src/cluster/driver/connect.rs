//! Making links: the dial task of each peer (with backoff), dialing, accepting, and the
//! handshake on either side.

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use tokio::net::{TcpListener, TcpStream};

use super::{Cluster, lock};
use crate::cluster::handshake::{Greeting, HANDSHAKE_TIMEOUT, HandshakeError, handshake};
use crate::cluster::link_table::Refusal;
use crate::cluster::membership::MemberId;
use crate::cluster::throttle::Throttle;

/// A link's byte stream: plain TCP, or TLS over TCP.
pub(super) enum LinkStream {
    Plain(TcpStream),
    #[cfg(feature = "tls")]
    TlsClient(Box<tokio_rustls::client::TlsStream<TcpStream>>),
    #[cfg(feature = "tls")]
    TlsServer(Box<tokio_rustls::server::TlsStream<TcpStream>>),
}

/// Why a dial did not give a link.
#[derive(Debug, thiserror::Error)]
enum DialError {
    #[error("{0}")]
    Refused(Refusal),
    #[error(transparent)]
    Handshake(#[from] HandshakeError),
}

impl Cluster {
    /// Starts the dial task of a member if this node is the dialer of the pair (the smaller
    /// incarnation) and none runs. The task dials until a link is up or the member is
    /// gone, waiting between attempts as the core's backoff says.
    pub(super) fn maybe_dial(self: &Arc<Self>, member: MemberId) {
        let peer = member.incarnation;
        if self.me.incarnation > peer || !lock(&self.core).claim_dial(peer) {
            return;
        }
        let weak = Arc::downgrade(self);
        let task = tokio::spawn(async move {
            let mut claim = DialClaim {
                cluster: weak.clone(),
                peer,
                held: true,
            };
            let mut first = true;
            loop {
                let wait_until = {
                    let Some(cluster) = weak.upgrade() else {
                        return;
                    };
                    let jitter = rand::random_range(0.5..=1.0);
                    lock(&cluster.core).dial_wait_until(peer, Instant::now(), jitter)
                };
                // The first attempt does not sleep on a deadline already due: tokio's timer
                // rounds it up to its next millisecond tick, which made every first dial
                // wait about 1 ms (a trace of D2 10K: 1.1 ms between the member coming up
                // and the dial). Later rounds always sleep, so that no path through this
                // loop runs without yielding to the runtime.
                if !(first && wait_until <= Instant::now()) {
                    tokio::time::sleep_until(wait_until.into()).await;
                }
                first = false;
                let Some(cluster) = weak.upgrade() else {
                    return;
                };
                let member_alive = cluster.member(peer).is_some();
                if lock(&cluster.core).dial_done(peer, member_alive) {
                    claim.held = false;
                    return;
                }
                if !member_alive {
                    continue;
                }
                match cluster.dial(peer, member.addr).await {
                    // A link that already died is redialed by this same task.
                    Ok(()) => {}
                    // Severed meanwhile: the next round waits the sever out.
                    Err(DialError::Refused(refusal)) => {
                        lock(&cluster.core).dial_failed(peer);
                        tracing::debug!(peer = %member.name, %refusal, "dial refused");
                    }
                    Err(e) => {
                        lock(&cluster.core).dial_failed(peer);
                        cluster
                            .counters
                            .handshake_failures
                            .fetch_add(1, Ordering::Relaxed);
                        tracing::warn!(peer = %member.name, addr = %member.addr, error = %e, "dial failed");
                    }
                }
            }
        });
        lock(&self.tasks).push(task.abort_handle());
    }

    async fn dial(self: &Arc<Self>, peer: u64, addr: SocketAddr) -> Result<(), DialError> {
        let admission = lock(&self.core)
            .admit_dial(peer, Instant::now())
            .map_err(DialError::Refused)?;
        let connect = async {
            let tcp = TcpStream::connect(addr).await?;
            let _ = tcp.set_nodelay(true);
            #[cfg(feature = "tls")]
            let mut stream = match &self.tls {
                Some(tls) => LinkStream::TlsClient(Box::new(tls.connect(tcp).await?)),
                None => LinkStream::Plain(tcp),
            };
            #[cfg(not(feature = "tls"))]
            let mut stream = LinkStream::Plain(tcp);
            let peer = self.run_handshake(&mut stream).await?;
            Ok::<_, HandshakeError>((stream, peer))
        };
        let connected = tokio::time::timeout(HANDSHAKE_TIMEOUT, connect)
            .await
            .map_err(|_| HandshakeError::Timeout(HANDSHAKE_TIMEOUT))
            .and_then(|connected| connected);
        match connected {
            Ok((stream, peer)) => {
                self.establish(stream, peer, admission);
                Ok(())
            }
            Err(e) => {
                lock(&self.core).handshake_failed(admission);
                Err(e.into())
            }
        }
    }

    /// Wraps an accepted connection (in TLS if configured) and runs the handshake.
    async fn accept(&self, tcp: TcpStream) -> Result<(LinkStream, Greeting), HandshakeError> {
        let _ = tcp.set_nodelay(true);
        let handshake = async {
            #[cfg(feature = "tls")]
            let mut stream = match &self.tls {
                Some(tls) => LinkStream::TlsServer(Box::new(tls.accept(tcp).await?)),
                None => LinkStream::Plain(tcp),
            };
            #[cfg(not(feature = "tls"))]
            let mut stream = LinkStream::Plain(tcp);
            let peer = self.run_handshake(&mut stream).await?;
            Ok((stream, peer))
        };
        tokio::time::timeout(HANDSHAKE_TIMEOUT, handshake)
            .await
            .map_err(|_| HandshakeError::Timeout(HANDSHAKE_TIMEOUT))?
    }

    async fn run_handshake(&self, stream: &mut LinkStream) -> Result<Greeting, HandshakeError> {
        let mut greeting = self.me.clone();
        greeting.nonce = rand::random();
        match stream {
            LinkStream::Plain(tcp) => handshake(tcp, &greeting, &self.key).await,
            #[cfg(feature = "tls")]
            LinkStream::TlsClient(tls) => handshake(tls.as_mut(), &greeting, &self.key).await,
            #[cfg(feature = "tls")]
            LinkStream::TlsServer(tls) => handshake(tls.as_mut(), &greeting, &self.key).await,
        }
    }
}

/// The claim of a dial task on its peer, released however the task ends.
struct DialClaim {
    cluster: Weak<Cluster>,
    peer: u64,
    /// Still held: the task did not end through `LinkTable::dial_done`.
    held: bool,
}

impl Drop for DialClaim {
    fn drop(&mut self) {
        if self.held
            && let Some(cluster) = self.cluster.upgrade()
        {
            lock(&cluster.core).release_dial(self.peer);
        }
    }
}

/// At most one warn line per this interval about inbound handshakes that failed, for the
/// whole node (the others go to debug): a client sending garbage on every connection must
/// not write a line per connection. As the refused membership datagrams.
const HANDSHAKE_FAILURE_WARN_INTERVAL: Duration = Duration::from_secs(10);

pub(super) async fn accept_loop(cluster: Weak<Cluster>, listener: TcpListener) {
    let mut refusals = Throttle::new(Duration::from_secs(1));
    let mut failures = Throttle::new(Duration::from_secs(1));
    let handshake_failures = Arc::new(std::sync::Mutex::new(Throttle::new(
        HANDSHAKE_FAILURE_WARN_INTERVAL,
    )));
    loop {
        let accepted = listener.accept().await;
        let Some(strong) = cluster.upgrade() else {
            return;
        };
        let (stream, remote) = match accepted {
            Ok(accepted) => accepted,
            Err(e) => {
                strong
                    .counters
                    .accept_failures
                    .fetch_add(1, Ordering::Relaxed);
                if let Some(suppressed) = failures.allow(Instant::now()) {
                    tracing::warn!(error = %e, suppressed, "accept failed on the cluster port");
                }
                drop(strong);
                // Out of file descriptors keeps failing at once: do not spin on it.
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let admission = lock(&strong.core).admit_handshake(Instant::now());
        let admission = match admission {
            Ok(admission) => admission,
            Err(refusal) => {
                strong
                    .counters
                    .connections_refused
                    .fetch_add(1, Ordering::Relaxed);
                if let Some(suppressed) = refusals.allow(Instant::now()) {
                    node_info!(strong, %remote, %refusal, suppressed, "connection refused before its handshake");
                }
                drop(stream);
                continue;
            }
        };
        let handshake_failures = handshake_failures.clone();
        tokio::spawn(async move {
            match strong.accept(stream).await {
                Ok((stream, peer)) => strong.establish(stream, peer, admission),
                Err(e) => {
                    lock(&strong.core).handshake_failed(admission);
                    let failed = strong
                        .counters
                        .handshake_failures
                        .fetch_add(1, Ordering::Relaxed)
                        + 1;
                    match lock(&handshake_failures).allow(Instant::now()) {
                        Some(suppressed) => tracing::warn!(
                            %remote,
                            error = %e,
                            failed,
                            suppressed,
                            "inbound link refused (this line is rate-limited: `suppressed` \
                             counts the refusals since the previous one)"
                        ),
                        None => {
                            tracing::debug!(%remote, error = %e, failed, "inbound link refused")
                        }
                    }
                }
            }
        });
    }
}
