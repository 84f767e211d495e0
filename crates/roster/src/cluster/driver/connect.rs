//! Making links: the dials the core decides, accepting, and the handshake on either
//! side.

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use tokio::net::{TcpListener, TcpStream};

use super::{Cluster, lock};
use crate::cluster::handshake::{Greeting, HANDSHAKE_TIMEOUT, HandshakeError, handshake};
use crate::cluster::link_table::Admission;
use crate::cluster::throttle::Throttle;
use crate::pid::Incarnation;
use crate::replication::links::Dial;

/// A link's byte stream: plain TCP, or TLS over TCP.
pub(super) enum LinkStream {
    Plain(TcpStream),
    #[cfg(feature = "tls")]
    TlsClient(Box<tokio_rustls::client::TlsStream<TcpStream>>),
    #[cfg(feature = "tls")]
    TlsServer(Box<tokio_rustls::server::TlsStream<TcpStream>>),
}

impl Cluster {
    /// Makes the connection the core decided: connects, runs the handshake, and ends the
    /// dial's admission with the link or with its failure (the core then backs off and
    /// dials again while the peer is a member).
    pub(super) fn start_dial(self: &Arc<Self>, dial: Dial) {
        let Dial {
            peer,
            addr,
            admission,
        } = dial;
        let pending = PendingDial {
            cluster: Arc::downgrade(self),
            admission: Some(admission),
        };
        let cluster = self.clone();
        // Not kept among the cluster's tasks: it ends by itself within the handshake
        // timeout, and its admission is ended however it ends.
        tokio::spawn(async move { cluster.dial(peer, addr, pending).await });
    }

    async fn dial(self: &Arc<Self>, peer: Incarnation, addr: SocketAddr, mut pending: PendingDial) {
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
        let admission = pending.admission.take().expect("ended only here");
        match connected {
            Ok((stream, greeting)) => self.establish(stream, greeting, admission),
            Err(e) => {
                self.counters
                    .handshake_failures
                    .fetch_add(1, Ordering::Relaxed);
                tracing::warn!(%peer, %addr, error = %e, "dial failed");
                self.dial_failed(admission);
            }
        }
    }

    /// The dial of `admission` failed: the core backs off before the next.
    fn dial_failed(self: &Arc<Self>, admission: Admission) {
        let (_, outputs) =
            self.core_step(|core, _| core.handshake_failed(admission, Instant::now()));
        self.act(outputs);
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

/// A dial's admission until the dial ends it; ended as a failed dial if the task stops
/// first (the runtime shutting down), so that the core never waits for it.
struct PendingDial {
    cluster: Weak<Cluster>,
    admission: Option<Admission>,
}

impl Drop for PendingDial {
    fn drop(&mut self) {
        if let Some(admission) = self.admission.take()
            && let Some(cluster) = self.cluster.upgrade()
        {
            lock(&cluster.core).handshake_failed(admission, Instant::now());
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
                    lock(&strong.core).handshake_failed(admission, Instant::now());
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
