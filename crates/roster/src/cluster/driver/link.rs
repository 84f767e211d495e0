//! The IO of a live link: its socket's reader and writer tasks (a task that panics tears
//! its link down). Whether the link exists is the core's record; this is what the shell
//! needs to move its bytes.

use std::io::Read as _;
use std::mem::MaybeUninit;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::task::{Context, Poll};
use std::time::{Duration, Instant, SystemTime};

use socket2::SockRef;
use tokio::io::{AsyncRead, BufReader, ReadBuf};
#[cfg(feature = "tls")]
use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::net::tcp::OwnedReadHalf;
use tokio::sync::Notify;
use tokio::task::AbortHandle;

use super::Cluster;
use super::connect::LinkStream;
use crate::cluster::handshake::{HandshakeError, MAX_FRAME_BYTES, read_frame};
use crate::cluster::link_table::SessionId;
#[cfg(feature = "tls")]
use crate::cluster::outlet::{Moved, encode_frames};
use crate::cluster::outlet::{Outlet, Pumped, is_resync};
use crate::key::Limits;
use crate::pid::Incarnation;
use crate::replication::wire::Frame;

/// The IO of a live link to a peer, for the session the core gave it.
pub(super) struct Link {
    pub(super) session: SessionId,
    /// The write side for plain TCP links (pumped by callers); `None` for TLS links,
    /// whose writer task does all writes.
    pub(super) outlet: Option<Arc<Outlet>>,
    pub(super) name: String,
    pub(super) addr: SocketAddr,
    /// Wall-clock time of the handshake, for operators.
    pub(super) established_at: SystemTime,
    /// What crossed the link, and when it last heard from the peer.
    pub(super) meter: Arc<LinkMeter>,
    pub(super) wake: Arc<Notify>,
    pub(super) tasks: Vec<AbortHandle>,
}

/// What crossed a link, each way.
#[derive(Default)]
pub(super) struct LinkMeter {
    pub(super) bytes_in: AtomicU64,
    pub(super) bytes_out: AtomicU64,
    pub(super) frames_in: AtomicU64,
    pub(super) frames_out: AtomicU64,
}

impl LinkMeter {
    fn received(&self, bytes: u64) {
        self.bytes_in.fetch_add(bytes, Ordering::Relaxed);
        self.frames_in.fetch_add(1, Ordering::Relaxed);
    }

    /// `frames` frames of `bytes` bytes in all went out.
    pub(super) fn sent(&self, frames: usize, bytes: u64) {
        self.bytes_out.fetch_add(bytes, Ordering::Relaxed);
        self.frames_out.fetch_add(frames as u64, Ordering::Relaxed);
    }
}

/// What it takes to send on a link, cloned out of the IO table.
pub(super) struct LinkWriter {
    pub(super) session: SessionId,
    pub(super) outlet: Option<Arc<Outlet>>,
    pub(super) wake: Arc<Notify>,
    pub(super) meter: Arc<LinkMeter>,
}

impl Link {
    pub(super) fn writer(&self) -> LinkWriter {
        LinkWriter {
            session: self.session,
            outlet: self.outlet.clone(),
            wake: self.wake.clone(),
            meter: self.meter.clone(),
        }
    }
}

impl Drop for Link {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

impl Cluster {
    /// Starts the reader and writer tasks of a link. A task that panics tears its link
    /// down (and is counted): a link is never left without a reader.
    pub(super) fn spawn_link_tasks(
        self: &Arc<Self>,
        stream: LinkStream,
        peer: Incarnation,
        session: SessionId,
        wake: &Arc<Notify>,
        meter: &Arc<LinkMeter>,
    ) -> (Vec<AbortHandle>, Option<Arc<Outlet>>) {
        let weak = Arc::downgrade(self);
        match stream {
            LinkStream::Plain(tcp) => {
                let (read, write) = tcp.into_split();
                let outlet = Arc::new(Outlet::new(write));
                let read = PolledRead {
                    inner: read,
                    raw: false,
                };
                let reader = self.spawn_reader(peer, session, read, meter);
                let writer = self.supervise(
                    peer,
                    session,
                    outlet_loop(
                        weak,
                        peer,
                        session,
                        outlet.clone(),
                        wake.clone(),
                        meter.clone(),
                    ),
                );
                (vec![reader, writer], Some(outlet))
            }
            #[cfg(feature = "tls")]
            LinkStream::TlsClient(tls) => {
                let (read, write) = tokio::io::split(tls);
                (
                    self.spawn_tls_tasks(peer, session, read, write, wake, meter),
                    None,
                )
            }
            #[cfg(feature = "tls")]
            LinkStream::TlsServer(tls) => {
                let (read, write) = tokio::io::split(tls);
                (
                    self.spawn_tls_tasks(peer, session, read, write, wake, meter),
                    None,
                )
            }
        }
    }

    /// Starts the reader and writer tasks of a TLS link.
    #[cfg(feature = "tls")]
    fn spawn_tls_tasks<R, W>(
        self: &Arc<Self>,
        peer: Incarnation,
        session: SessionId,
        read: R,
        write: W,
        wake: &Arc<Notify>,
        meter: &Arc<LinkMeter>,
    ) -> Vec<AbortHandle>
    where
        R: AsyncRead + Unpin + Send + 'static,
        W: AsyncWrite + Unpin + Send + 'static,
    {
        let reader = self.spawn_reader(peer, session, NotPolled(read), meter);
        let writer = self.supervise(
            peer,
            session,
            writer_loop(
                Arc::downgrade(self),
                peer,
                session,
                write,
                wake.clone(),
                meter.clone(),
            ),
        );
        vec![reader, writer]
    }

    /// Starts the reader task of a link.
    fn spawn_reader<R: LinkRead>(
        self: &Arc<Self>,
        peer: Incarnation,
        session: SessionId,
        read: R,
        meter: &Arc<LinkMeter>,
    ) -> AbortHandle {
        let reader = reader_loop(Arc::downgrade(self), peer, session, read, meter.clone());
        self.supervise(peer, session, reader)
    }

    /// Spawns a task of the link `(peer, session)`; if it panics, the link is torn down.
    fn supervise(
        self: &Arc<Self>,
        peer: Incarnation,
        session: SessionId,
        task: impl Future<Output = ()> + Send + 'static,
    ) -> AbortHandle {
        let weak = Arc::downgrade(self);
        let task = tokio::spawn(task);
        let handle = task.abort_handle();
        // The watcher ends with the task; aborting the task (link closed) is not a panic.
        tokio::spawn(async move {
            if let Err(e) = task.await
                && e.is_panic()
                && let Some(cluster) = weak.upgrade()
            {
                cluster
                    .counters
                    .link_task_panics
                    .fetch_add(1, Ordering::Relaxed);
                tracing::error!(%peer, %session, "a link task panicked: closing the link");
                cluster.link_lost(peer, session, "task panicked");
            }
        });
        handle
    }
}

/// The read side of a link as its reader task sees it: a stream that can be polled for
/// bytes without parking.
trait LinkRead: AsyncRead + Unpin + Send + 'static {
    /// Polls the socket for bytes, yielding the CPU between polls but never parking, until
    /// some are there (`true`: the next read takes them from the socket at once) or until
    /// `deadline` (`false`: the next read waits for the runtime's IO driver as usual).
    fn poll_until(&mut self, deadline: Instant) -> bool;
}

/// The read half of a plain TCP link, which its reader can poll after traffic.
///
/// The runtime learns that a socket is readable from its IO driver, in a worker thread
/// parked in `epoll_wait` and woken for it: a frame that comes while the reader is parked
/// pays that wake-up. While the reader polls ([`LinkRead::poll_until`]), it asks the
/// socket itself (a non-blocking `recv` that peeks), and once bytes are there it reads
/// them with a non-blocking `read` of its own, not waiting for the driver's readiness.
struct PolledRead {
    inner: OwnedReadHalf,
    /// The socket had bytes when last asked: read it directly.
    raw: bool,
}

impl LinkRead for PolledRead {
    fn poll_until(&mut self, deadline: Instant) -> bool {
        let socket = SockRef::from(self.inner.as_ref());
        let mut byte = [MaybeUninit::<u8>::uninit(); 1];
        loop {
            match socket.peek(&mut byte) {
                // Bytes, the end of the stream or an error: the read reports each.
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                _ => {
                    self.raw = true;
                    return true;
                }
            }
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::yield_now();
        }
    }
}

impl AsyncRead for PolledRead {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        if this.raw && buf.remaining() > 0 {
            let socket = SockRef::from(this.inner.as_ref());
            let wanted = buf.remaining();
            match (&*socket).read(buf.initialize_unfilled()) {
                Ok(n) => {
                    buf.advance(n);
                    // A short read drained the socket: the next read waits for the driver.
                    this.raw = n == wanted;
                    return Poll::Ready(Ok(()));
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => this.raw = false,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => this.raw = false,
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
        // The driver's readiness may be stale after direct reads: tokio then finds the
        // socket empty, clears it and waits for the next edge, which comes with the next
        // bytes, so none is missed.
        Pin::new(&mut this.inner).poll_read(cx, buf)
    }
}

/// A link's read side that is never polled (TLS: its bytes go through the TLS stream).
#[cfg(feature = "tls")]
struct NotPolled<R>(R);

#[cfg(feature = "tls")]
impl<R: AsyncRead + Unpin + Send + 'static> LinkRead for NotPolled<R> {
    fn poll_until(&mut self, _deadline: Instant) -> bool {
        false
    }
}

#[cfg(feature = "tls")]
impl<R: AsyncRead + Unpin> AsyncRead for NotPolled<R> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().0).poll_read(cx, buf)
    }
}

/// Whether a frame is traffic (writes, messages), after which the reader polls for the
/// next frame (`ClusterConfig::read_poll`); the periodic frames (pings, heartbeats,
/// digests) are not, so an idle link never polls.
fn is_traffic(frame: &Frame) -> bool {
    matches!(
        frame,
        Frame::Ops { .. } | Frame::Message(_) | Frame::Dispatch(_)
    )
}

async fn reader_loop<R: LinkRead>(
    cluster: Weak<Cluster>,
    peer: Incarnation,
    session: SessionId,
    read: R,
    meter: Arc<LinkMeter>,
) {
    let mut read = BufReader::with_capacity(256 * 1024, read);
    let mut buf = Vec::new();
    // Until when to poll the socket for the next frame before waiting for the driver.
    let mut poll_until: Option<Instant> = None;
    loop {
        if let Some(deadline) = poll_until.take()
            && read.buffer().is_empty()
        {
            // The tasks the last frames woke run first: a task woken from this one waits
            // in this worker's own slot, which no other worker takes.
            tokio::task::yield_now().await;
            read.get_mut().poll_until(deadline);
        }
        let result = read_frame(&mut read, &mut buf, MAX_FRAME_BYTES).await;
        let Some(cluster) = cluster.upgrade() else {
            return;
        };
        match result {
            Ok(true) => {
                #[cfg(test)]
                crate::cluster::tests::maybe_inject_reader_panic(cluster.me.incarnation);
                meter.received(buf.len() as u64 + 4);
                cluster
                    .counters
                    .bytes_received
                    .fetch_add(buf.len() as u64 + 4, Ordering::Relaxed);
                match Frame::decode(&buf, &Limits::CEILING) {
                    Ok(frame) => {
                        if is_resync(&frame) {
                            cluster
                                .counters
                                .resync_bytes_received
                                .fetch_add(buf.len() as u64 + 4, Ordering::Relaxed);
                        }
                        let window = if is_traffic(&frame) {
                            cluster.read_poll
                        } else {
                            Duration::ZERO
                        };
                        cluster.with_core(|core, node| {
                            core.handle_frame(node, peer, session, frame, Instant::now());
                        });
                        if !window.is_zero() {
                            poll_until = Some(Instant::now() + window);
                        }
                        // One large frame must not keep its buffer for the link's life.
                        if buf.capacity() > 4 * 1024 * 1024 {
                            buf = Vec::new();
                        }
                    }
                    Err(e) => {
                        cluster.counters.bad_frames.fetch_add(1, Ordering::Relaxed);
                        tracing::warn!(%peer, error = %e, "bad frame from peer: dropping the link");
                        cluster.link_lost(peer, session, "bad frame");
                        return;
                    }
                }
            }
            Ok(false) => {
                cluster.link_lost(peer, session, "closed by peer");
                return;
            }
            Err(e @ HandshakeError::FrameTooLarge { .. }) => {
                cluster.counters.bad_frames.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(%peer, error = %e, "oversized frame from peer: dropping the link");
                cluster.link_lost(peer, session, "oversized frame");
                return;
            }
            Err(e) => {
                tracing::debug!(%peer, error = %e, "link read failed");
                cluster.link_lost(peer, session, "read failed");
                return;
            }
        }
    }
}

/// The writer task of a plain link: pumps when woken, and waits for the socket when the
/// pump found it full.
async fn outlet_loop(
    cluster: Weak<Cluster>,
    peer: Incarnation,
    session: SessionId,
    outlet: Arc<Outlet>,
    wake: Arc<Notify>,
    meter: Arc<LinkMeter>,
) {
    loop {
        wake.notified().await;
        loop {
            let Some(strong) = cluster.upgrade() else {
                return;
            };
            let mut frames = 0;
            match outlet.pump(|| strong.transmit(peer, &mut frames)) {
                Ok((pumped, moved)) => {
                    meter.sent(frames, moved.sent);
                    strong.counters.count_sent(moved);
                    if pumped != Pumped::Blocked {
                        break;
                    }
                }
                Err(e) => {
                    tracing::debug!(%peer, error = %e, "link write failed");
                    strong.link_lost(peer, session, "write failed");
                    return;
                }
            }
            drop(strong);
            if outlet.writable().await.is_err() {
                if let Some(strong) = cluster.upgrade() {
                    strong.link_lost(peer, session, "write failed");
                }
                return;
            }
        }
    }
}

/// The writer task of a TLS link: when woken, writes everything there is to send (catch-up
/// included, a frame's worth at a time, paced by the stream).
#[cfg(feature = "tls")]
async fn writer_loop<W: AsyncWrite + Unpin>(
    cluster: Weak<Cluster>,
    peer: Incarnation,
    session: SessionId,
    mut write: W,
    wake: Arc<Notify>,
    meter: Arc<LinkMeter>,
) {
    let mut buf: Vec<u8> = Vec::with_capacity(64 * 1024);
    loop {
        wake.notified().await;
        loop {
            let Some(strong) = cluster.upgrade() else {
                return;
            };
            let frames = strong.transmit(peer, &mut 0);
            if frames.is_empty() {
                break;
            }
            buf.clear();
            let resync = encode_frames(&frames, &mut buf);
            meter.sent(frames.len(), buf.len() as u64);
            strong.counters.count_sent(Moved {
                sent: buf.len() as u64,
                resync,
            });
            drop(strong);
            if let Err(e) = write.write_all(&buf).await {
                tracing::debug!(%peer, error = %e, "link write failed");
                if let Some(strong) = cluster.upgrade() {
                    strong.link_lost(peer, session, "write failed");
                }
                return;
            }
            if buf.capacity() > 4 * 1024 * 1024 {
                buf = Vec::with_capacity(64 * 1024);
            }
        }
    }
}
