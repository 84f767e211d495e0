//! The tokio shell around the replication core: links, membership, timers.
//!
//! One [`Cluster`] per node. It owns the replication [`Core`] behind a mutex and:
//!
//! - accepts and dials TCP links (the node with the smaller incarnation dials, so a pair
//!   has one link), runs the handshake, and starts a reader and a writer task per link;
//!   the link table (`link_table.rs`) decides every step of a link's life, and a link is
//!   inserted, told to the core and given its tasks in one step under its lock;
//! - feeds the core: frames from readers, ops of local writes (called right after the
//!   write, no task hop), timer ticks, membership changes, scope changes;
//! - after every core call, wakes the writers of peers with queued frames. A writer takes
//!   everything queued for its peer and sends it in one write: batching without a timer.
//!   The core bounds each peer's live queue; an overloaded link is dropped and catches up
//!   when it returns;
//! - closes links that stay silent, refuses connections while severed or beyond the
//!   bound of pending handshakes, and tears down a link whose task panicked;
//! - a broken link to a member that SWIM still sees alive is redialed and resynced, not
//!   purged; a member SWIM declares down is purged on this node with reason `NodeDown`.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tokio::io::{AsyncRead, BufReader};
#[cfg(feature = "tls")]
use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::{Notify, mpsc};
use tokio::task::AbortHandle;

use super::handshake::{
    ClusterKey, Greeting, HANDSHAKE_TIMEOUT, HandshakeError, MAX_FRAME_BYTES, handshake, read_frame,
};
use super::link_table::{Admission, LinkTable, RedialPolicy, Refusal};
use super::membership::{
    MemberId, MembershipConfig, MembershipEvent, MembershipHandle, spawn_membership,
};
use super::outlet::{BURST_WINDOW, Outlet, Pumped, encode_frames};
use crate::key::{Limits, ScopeName};
use crate::node::NodeShared;
use crate::replication::PROTOCOL_VERSION;
use crate::replication::core::{Core, CoreConfig, CoreEvent, Unsent};
use crate::replication::wire::Frame;

/// A link's byte stream: plain TCP, or TLS over TCP.
enum LinkStream {
    Plain(TcpStream),
    #[cfg(feature = "tls")]
    TlsClient(Box<tokio_rustls::client::TlsStream<TcpStream>>),
    #[cfg(feature = "tls")]
    TlsServer(Box<tokio_rustls::server::TlsStream<TcpStream>>),
}

/// A live link to a peer.
struct Link {
    session: u64,
    /// The write side for plain TCP links (pumped by callers); `None` for TLS links,
    /// whose writer task does all writes.
    outlet: Option<Arc<Outlet>>,
    name: String,
    addr: SocketAddr,
    /// The limits the peer announced.
    limits: Limits,
    established_at: SystemTime,
    established: Instant,
    /// Milliseconds after the cluster started when the last frame arrived.
    last_heard: Arc<AtomicU64>,
    wake: Arc<Notify>,
    tasks: Vec<AbortHandle>,
}

/// What it takes to send on a link, cloned out of the link table.
struct LinkWriter {
    session: u64,
    outlet: Option<Arc<Outlet>>,
    wake: Arc<Notify>,
}

impl Link {
    fn writer(&self) -> LinkWriter {
        LinkWriter {
            session: self.session,
            outlet: self.outlet.clone(),
            wake: self.wake.clone(),
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

/// Counters of the cluster layer (also exported as metrics by the binary).
#[derive(Debug, Default)]
pub(crate) struct ClusterCounters {
    pub(crate) handshake_failures: AtomicU64,
    pub(crate) links_established: AtomicU64,
    pub(crate) links_overloaded: AtomicU64,
    pub(crate) links_silent: AtomicU64,
    pub(crate) link_task_panics: AtomicU64,
    pub(crate) connections_refused: AtomicU64,
    pub(crate) accept_failures: AtomicU64,
    pub(crate) digest_repairs: AtomicU64,
    pub(crate) stream_gaps: AtomicU64,
    pub(crate) bad_frames: AtomicU64,
    pub(crate) items_skipped: AtomicU64,
    pub(crate) bytes_sent: AtomicU64,
    pub(crate) bytes_received: AtomicU64,
}

/// Counters of a node's cluster layer, as [`crate::Node::cluster_stats`] reports them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ClusterStats {
    /// Bytes written to peer links (frames and their length prefixes).
    pub bytes_sent: u64,
    /// Bytes read from peer links.
    pub bytes_received: u64,
    /// Links that completed the handshake.
    pub links_established: u64,
    /// Links refused: failed dials, bad handshakes, wrong secrets or versions.
    pub handshake_failures: u64,
    /// Links dropped because a peer could not keep up.
    pub links_overloaded: u64,
    /// Links closed because the peer sent nothing for several anti-entropy intervals
    /// (a peer always sends at least a ping per interval); each is redialed.
    pub links_silent: u64,
    /// Link reader or writer tasks that panicked (each tore its link down; a bug: please
    /// report it).
    pub link_task_panics: u64,
    /// Connections closed before their handshake: links severed, or too many handshakes
    /// in progress (see the README's security section).
    pub connections_refused: u64,
    /// Failed `accept` calls on the cluster port (for example out of file descriptors).
    pub accept_failures: u64,
    /// Membership datagrams refused before decoding: a bad MAC (another cluster secret or
    /// cluster name, corruption, forgery) or a bad length. Logged at warn, at most one line
    /// per 10 s.
    pub refused_datagrams: u64,
    /// Divergences found by anti-entropy and repaired by a snapshot.
    pub digest_repairs: u64,
    /// Gaps found in peers' op streams (each repaired by a snapshot).
    pub stream_gaps: u64,
    /// Frames from peers that did not decode (each dropped its link).
    pub bad_frames: u64,
    /// Entries and messages from peers skipped because they are over this node's limits
    /// (the peer has larger limits; its link stays up).
    pub items_skipped: u64,
    /// Calls of a custom conflict resolver that panicked; keep-oldest decided instead
    /// (counted for the whole OS process, not per node).
    pub resolver_panics: u64,
}

/// A peer as [`crate::Node::nodes`] reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerInfo {
    /// The peer's name.
    pub name: String,
    /// Its incarnation.
    pub incarnation: u64,
    /// Its cluster address.
    pub addr: SocketAddr,
    /// When the current link was established.
    pub linked_since: SystemTime,
    /// Identifies the current link (changes on every reconnect).
    pub session: u64,
}

/// Most inbound handshakes in progress at once; further connections are closed at once
/// and counted in [`ClusterStats::connections_refused`]. Each costs at most a few KiB
/// until its handshake ends or times out.
const MAX_PENDING_HANDSHAKES: usize = 64;

/// A link whose peer sent nothing for this many anti-entropy intervals is closed.
const SILENT_INTERVALS: u32 = 5;

/// ... but never sooner than this, so a loaded machine with a short interval does not
/// close healthy links.
const MIN_SILENCE: Duration = Duration::from_secs(2);

/// The cluster layer of one node; see the [module docs](self).
pub(crate) struct Cluster {
    node: Arc<NodeShared>,
    me: Greeting,
    key: ClusterKey,
    core: Mutex<Core>,
    /// Lock order: `links`, then `core`, then `unlinked`; never `links` while holding
    /// `core`.
    links: Mutex<LinkTable<Link>>,
    membership: Mutex<Option<MembershipHandle>>,
    /// Peers whose link is down, since when. A peer that stays unlinked past the grace
    /// period while membership does not list it alive is declared dead (its node may have
    /// gone before SWIM ever reported it up here, so no `Down` would come).
    unlinked: Mutex<HashMap<u64, Instant>>,
    grace: Duration,
    /// How long a link may stay silent before it is closed.
    silence: Duration,
    #[cfg(feature = "tls")]
    tls: Option<super::tls::TlsConfig>,
    /// Wakes the flusher task, which hands queued local ops to the core during bursts.
    flusher: Arc<Notify>,
    /// Nanoseconds after `started` of the last flush done by a writing thread.
    last_flush: AtomicU64,
    started: Instant,
    tasks: Mutex<Vec<AbortHandle>>,
    next_session: AtomicU64,
    /// The smallest limits of the linked peers, read by every replicated write.
    peer_limits: PeerLimits,
    skip_log: Mutex<Throttle>,
    pub(crate) counters: ClusterCounters,
}

/// Settings the cluster layer needs (built from the public `ClusterConfig`).
pub(crate) struct ClusterSettings {
    pub(crate) listen: SocketAddr,
    pub(crate) cluster: String,
    pub(crate) secret: Vec<u8>,
    pub(crate) membership: MembershipConfig,
    pub(crate) core: CoreConfig,
    /// How long a peer may stay unlinked, unknown to membership, before it is purged.
    pub(crate) unlinked_grace: Duration,
    /// When to redial a peer after a failure.
    pub(crate) redial: RedialPolicy,
    /// TLS for links, if configured.
    #[cfg(feature = "tls")]
    pub(crate) tls: Option<super::tls::TlsConfig>,
}

/// What a core call left for the driver to act on, taken while the core lock was held.
struct CoreOutputs {
    wake: Vec<u64>,
    events: Vec<CoreEvent>,
}

/// Why a dial did not give a link.
#[derive(Debug, thiserror::Error)]
enum DialError {
    #[error("{0}")]
    Refused(Refusal),
    #[error(transparent)]
    Handshake(#[from] HandshakeError),
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

impl Cluster {
    /// Binds the cluster address (TCP and UDP on the same port) and starts the tasks.
    pub(crate) fn start(
        node: Arc<NodeShared>,
        name: String,
        settings: ClusterSettings,
    ) -> std::io::Result<Arc<Cluster>> {
        let std_listener = std::net::TcpListener::bind(settings.listen)?;
        std_listener.set_nonblocking(true)?;
        let addr = std_listener.local_addr()?;
        let std_udp = std::net::UdpSocket::bind(addr)?;
        std_udp.set_nonblocking(true)?;
        let listener = TcpListener::from_std(std_listener)?;
        let udp = UdpSocket::from_std(std_udp)?;
        let incarnation = node.incarnation;
        let started_at_ms = now_ms();
        let silence = (settings.core.anti_entropy_interval * SILENT_INTERVALS).max(MIN_SILENCE);
        let mut core_config = settings.core;
        core_config.limits = node.limits;
        let cluster = Arc::new(Cluster {
            me: Greeting {
                version: PROTOCOL_VERSION,
                cluster: settings.cluster,
                name: name.clone(),
                incarnation,
                started_at_ms,
                addr,
                limits: node.limits,
                nonce: [0; 32],
            },
            key: ClusterKey::derive(&settings.secret),
            core: Mutex::new(Core::new(incarnation, core_config)),
            links: Mutex::new(LinkTable::new(settings.redial, MAX_PENDING_HANDSHAKES)),
            membership: Mutex::new(None),
            unlinked: Mutex::new(HashMap::new()),
            grace: settings.unlinked_grace,
            silence,
            #[cfg(feature = "tls")]
            tls: settings.tls,
            flusher: Arc::new(Notify::new()),
            last_flush: AtomicU64::new(0),
            started: Instant::now(),
            tasks: Mutex::new(Vec::new()),
            next_session: AtomicU64::new(1),
            peer_limits: PeerLimits::default(),
            skip_log: Mutex::new(Throttle::default()),
            counters: ClusterCounters::default(),
            node,
        });
        let (events_tx, events_rx) = mpsc::unbounded_channel();
        let me = MemberId {
            addr,
            incarnation,
            name,
            started_at_ms,
            bump: 0,
        };
        *lock(&cluster.membership) =
            Some(spawn_membership(me, udp, settings.membership, events_tx));
        let weak = Arc::downgrade(&cluster);
        let accept = tokio::spawn(accept_loop(weak.clone(), listener));
        let members = tokio::spawn(membership_loop(weak.clone(), events_rx));
        let timer = tokio::spawn(timer_loop(weak.clone()));
        let reaper = tokio::spawn(reaper_loop(weak.clone()));
        let flusher = tokio::spawn(flusher_loop(weak, cluster.flusher.clone()));
        lock(&cluster.tasks).extend([
            accept.abort_handle(),
            members.abort_handle(),
            timer.abort_handle(),
            reaper.abort_handle(),
            flusher.abort_handle(),
        ]);
        Ok(cluster)
    }

    /// The address peers reach this node at.
    pub(crate) fn addr(&self) -> SocketAddr {
        self.me.addr
    }

    /// Runs `f` on the core, then wakes the writers of peers with queued frames and acts on
    /// the core's events.
    pub(crate) fn with_core<R>(self: &Arc<Self>, f: impl FnOnce(&mut Core, &NodeShared) -> R) -> R {
        let (result, outputs) = self.core_step(f);
        self.act(outputs);
        result
    }

    /// Runs `f` on the core and takes what it left to act on, without acting on it (the
    /// caller may hold the link table).
    fn core_step<R>(&self, f: impl FnOnce(&mut Core, &NodeShared) -> R) -> (R, CoreOutputs) {
        let mut core = lock(&self.core);
        // Local writes first: whatever `f` reacts to must see our stream up to date.
        core.handle_local_ops(&*self.node, self.node.take_local_ops());
        let result = f(&mut core, &self.node);
        let wake = core.peers_with_transmits();
        let mut events = Vec::new();
        while let Some(event) = core.poll_event() {
            events.push(event);
        }
        (result, CoreOutputs { wake, events })
    }

    /// Wakes the writers of peers with frames to send and acts on the core's events.
    /// Never called with the link table locked.
    fn act(self: &Arc<Self>, outputs: CoreOutputs) {
        // Taken out of the table first: pumping may drop a link.
        let targets: Vec<(u64, LinkWriter)> = {
            let links = lock(&self.links);
            outputs
                .wake
                .into_iter()
                .filter_map(|peer| links.get(peer).map(|l| (peer, l.writer())))
                .collect()
        };
        for (peer, target) in targets {
            match target.outlet {
                Some(outlet) => self.pump(peer, target.session, &outlet, &target.wake),
                None => target.wake.notify_one(),
            }
        }
        let mut local_ops = false;
        for event in outputs.events {
            match event {
                CoreEvent::Deliver { to, from, payload } => {
                    self.node.deliver_remote(to, from, payload);
                }
                CoreEvent::Dispatch {
                    scope,
                    key,
                    payload,
                } => self.node.dispatch_remote(&scope, &key, payload),
                CoreEvent::NamesLost(applied) => {
                    self.node.conflicts_lost(applied);
                    local_ops = true;
                }
                CoreEvent::Overloaded { peer } => {
                    self.counters
                        .links_overloaded
                        .fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(
                        peer,
                        "peer link overloaded: dropping it, it will catch up when it returns"
                    );
                    let session = lock(&self.links).get(peer).map(|l| l.session);
                    if let Some(session) = session {
                        self.link_lost(peer, session, "overloaded");
                    }
                }
                CoreEvent::Repaired { peer, scope } => {
                    self.counters.digest_repairs.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(peer, %scope, "anti-entropy found divergence: sent a snapshot");
                }
                CoreEvent::Skipped { peer, items } => {
                    self.counters
                        .items_skipped
                        .fetch_add(items as u64, Ordering::Relaxed);
                    if let Some(suppressed) = lock(&self.skip_log).allow(Instant::now()) {
                        tracing::warn!(
                            peer,
                            items,
                            suppressed,
                            "skipped items from a peer that are over this node's limits \
                             (max_key_bytes, max_meta_bytes, max_message_bytes)"
                        );
                    }
                }
                CoreEvent::GapDetected { peer, scope } => {
                    self.counters.stream_gaps.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(peer, %scope, "gap in a peer's stream: asked for a snapshot");
                }
            }
        }
        // Processes that lost names removed them: ship the removals now.
        if local_ops {
            self.with_core(|_, _| ());
        }
    }

    /// Sends what is queued for `peer` from this thread; hands over to the writer task if
    /// the socket is full.
    fn pump(self: &Arc<Self>, peer: u64, session: u64, outlet: &Outlet, wake: &Notify) {
        match outlet.pump(true, || lock(&self.core).poll_transmit(peer)) {
            Ok((pumped, sent)) => {
                self.counters.bytes_sent.fetch_add(sent, Ordering::Relaxed);
                if pumped != Pumped::Done {
                    wake.notify_one();
                }
            }
            Err(e) => {
                tracing::debug!(peer, error = %e, "link write failed");
                self.link_lost(peer, session, "write failed");
            }
        }
    }

    /// Ops of local writes are waiting in the outbox.
    ///
    /// An isolated write is handed to the core and sent from the writing thread at once. A
    /// write within [`BURST_WINDOW`] of the previous flush only wakes the flusher task,
    /// which then moves everything that piled up in one go: a burst of writes pays for one
    /// core lock and one send, not one per write.
    pub(crate) fn on_local_ops(self: &Arc<Self>) {
        let now = self.started.elapsed().as_nanos() as u64;
        let last = self.last_flush.load(Ordering::Relaxed);
        if last != 0 && now.saturating_sub(last) < BURST_WINDOW.as_nanos() as u64 {
            self.flusher.notify_one();
            return;
        }
        self.last_flush.store(now.max(1), Ordering::Relaxed);
        self.with_core(|_, _| ());
    }

    pub(crate) fn on_scope_connected(self: &Arc<Self>, scope: &ScopeName) {
        self.with_core(|core, node| core.handle_scope_connected(node, scope));
    }

    pub(crate) fn on_scope_disconnected(self: &Arc<Self>, scope: &ScopeName) {
        self.with_core(|core, _| core.handle_scope_disconnected(scope));
    }

    /// Queues a message or dispatch for the node of incarnation `peer`.
    pub(crate) fn send(self: &Arc<Self>, peer: u64, frame: Frame) -> Result<(), Unsent> {
        self.with_core(|core, _| core.send(peer, frame))
    }

    /// The smallest limits among linked peers; `None` without any link.
    pub(crate) fn peer_limits(&self) -> Option<Limits> {
        self.peer_limits.get()
    }

    /// Recomputes the peer limits after the links changed (called with the table held).
    fn refresh_peer_limits(&self, table: &LinkTable<Link>) {
        let min = table.links().map(|(_, l)| l.limits).reduce(Limits::min);
        self.peer_limits.set(min);
    }

    /// Peers with a completed handshake.
    pub(crate) fn peers(&self) -> Vec<PeerInfo> {
        let links = lock(&self.links);
        let mut peers: Vec<PeerInfo> = links
            .links()
            .map(|(incarnation, link)| PeerInfo {
                name: link.name.clone(),
                incarnation,
                addr: link.addr,
                linked_since: link.established_at,
                session: link.session,
            })
            .collect();
        peers.sort_by(|a, b| a.name.cmp(&b.name));
        peers
    }

    /// Peers connected to `scope`.
    pub(crate) fn peers_in(&self, scope: &str) -> Vec<u64> {
        lock(&self.core).peers_in(scope)
    }

    /// A snapshot of the counters.
    pub(crate) fn stats(&self) -> ClusterStats {
        let c = &self.counters;
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        ClusterStats {
            bytes_sent: get(&c.bytes_sent),
            bytes_received: get(&c.bytes_received),
            links_established: get(&c.links_established),
            handshake_failures: get(&c.handshake_failures),
            links_overloaded: get(&c.links_overloaded),
            links_silent: get(&c.links_silent),
            link_task_panics: get(&c.link_task_panics),
            connections_refused: get(&c.connections_refused),
            accept_failures: get(&c.accept_failures),
            refused_datagrams: lock(&self.membership)
                .as_ref()
                .map_or(0, MembershipHandle::refused_datagrams),
            digest_repairs: get(&c.digest_repairs),
            stream_gaps: get(&c.stream_gaps),
            bad_frames: get(&c.bad_frames),
            items_skipped: get(&c.items_skipped),
            resolver_panics: crate::conflict::resolver_panics(),
        }
    }

    /// Closes every link and refuses new ones for `duration`, handshakes in flight
    /// included; membership is untouched, so peers keep each other's entries and catch up
    /// by delta when the links come back.
    pub(crate) fn sever_links(self: &Arc<Self>, duration: Duration) {
        let now = Instant::now();
        let (closed, outputs) = {
            let mut table = lock(&self.links);
            let closed = table.sever(now + duration);
            self.refresh_peer_limits(&table);
            let ((), outputs) = self.core_step(|core, node| {
                for (peer, _) in &closed {
                    core.handle_peer_down(node, *peer, false);
                }
            });
            let mut unlinked = lock(&self.unlinked);
            for (peer, _) in &closed {
                unlinked.insert(*peer, now);
            }
            (closed, outputs)
        };
        tracing::info!(links = closed.len(), ?duration, "links severed");
        let peers: Vec<u64> = closed.iter().map(|(peer, _)| *peer).collect();
        drop(closed);
        self.act(outputs);
        for peer in peers {
            if let Some(member) = self.member(peer) {
                self.maybe_dial(member);
            }
        }
    }

    /// Leaves the cluster: SWIM leave, links closed, tasks stopped.
    pub(crate) async fn shutdown(&self) {
        let membership = lock(&self.membership).take();
        if let Some(membership) = membership {
            membership.leave().await;
        }
        for task in lock(&self.tasks).drain(..) {
            task.abort();
        }
        let links = lock(&self.links).clear();
        self.peer_limits.set(None);
        drop(links);
    }

    /// Milliseconds since this cluster layer started (the clock of `Link::last_heard`).
    fn clock_ms(&self) -> u64 {
        self.started.elapsed().as_millis() as u64
    }

    /// Turns a completed handshake into a link: checks it may still be admitted, then
    /// tells the core, starts the link's tasks and inserts it, as one step under the link
    /// table's lock. A link that ends at once therefore always finds itself in the table.
    fn establish(self: &Arc<Self>, stream: LinkStream, peer: Greeting, admission: Admission) {
        let incarnation = peer.incarnation;
        let (session, replaced, outputs) = {
            let mut table = lock(&self.links);
            if let Err(refusal) = table.may_establish(admission, Instant::now()) {
                drop(table);
                self.counters
                    .connections_refused
                    .fetch_add(1, Ordering::Relaxed);
                tracing::info!(peer = %peer.name, %refusal, "link refused after its handshake");
                return;
            }
            let session = self.next_session.fetch_add(1, Ordering::Relaxed);
            let ((), outputs) = self.core_step(|core, node| {
                core.handle_peer_down(node, incarnation, false);
                core.handle_peer_up(node, incarnation, &peer.name, peer.limits, Instant::now());
            });
            lock(&self.unlinked).remove(&incarnation);
            let wake = Arc::new(Notify::new());
            let last_heard = Arc::new(AtomicU64::new(self.clock_ms()));
            let (tasks, outlet) =
                self.spawn_link_tasks(stream, incarnation, session, &wake, &last_heard);
            let replaced = table.insert(
                incarnation,
                Link {
                    session,
                    name: peer.name.clone(),
                    addr: peer.addr,
                    limits: peer.limits,
                    established_at: SystemTime::now(),
                    established: Instant::now(),
                    last_heard,
                    outlet,
                    wake,
                    tasks,
                },
            );
            self.refresh_peer_limits(&table);
            (session, replaced, outputs)
        };
        drop(replaced);
        self.counters
            .links_established
            .fetch_add(1, Ordering::Relaxed);
        tracing::info!(peer = %peer.name, incarnation, session, "link established");
        self.act(outputs);
    }

    /// Starts the reader and writer tasks of a link. A task that panics tears its link
    /// down (and is counted): a link is never left without a reader.
    fn spawn_link_tasks(
        self: &Arc<Self>,
        stream: LinkStream,
        peer: u64,
        session: u64,
        wake: &Arc<Notify>,
        last_heard: &Arc<AtomicU64>,
    ) -> (Vec<AbortHandle>, Option<Arc<Outlet>>) {
        let weak = Arc::downgrade(self);
        match stream {
            LinkStream::Plain(tcp) => {
                let (read, write) = tcp.into_split();
                let outlet = Arc::new(Outlet::new(write));
                let reader = self.spawn_reader(peer, session, read, last_heard);
                let writer = self.supervise(
                    peer,
                    session,
                    outlet_loop(weak, peer, session, outlet.clone(), wake.clone()),
                );
                (vec![reader, writer], Some(outlet))
            }
            #[cfg(feature = "tls")]
            LinkStream::TlsClient(tls) => {
                let (read, write) = tokio::io::split(tls);
                (
                    self.spawn_tls_tasks(peer, session, read, write, wake, last_heard),
                    None,
                )
            }
            #[cfg(feature = "tls")]
            LinkStream::TlsServer(tls) => {
                let (read, write) = tokio::io::split(tls);
                (
                    self.spawn_tls_tasks(peer, session, read, write, wake, last_heard),
                    None,
                )
            }
        }
    }

    /// Starts the reader and writer tasks of a TLS link.
    #[cfg(feature = "tls")]
    fn spawn_tls_tasks<R, W>(
        self: &Arc<Self>,
        peer: u64,
        session: u64,
        read: R,
        write: W,
        wake: &Arc<Notify>,
        last_heard: &Arc<AtomicU64>,
    ) -> Vec<AbortHandle>
    where
        R: AsyncRead + Unpin + Send + 'static,
        W: AsyncWrite + Unpin + Send + 'static,
    {
        let reader = self.spawn_reader(peer, session, read, last_heard);
        let writer = self.supervise(
            peer,
            session,
            writer_loop(Arc::downgrade(self), peer, session, write, wake.clone()),
        );
        vec![reader, writer]
    }

    /// Starts the reader task of a link.
    fn spawn_reader<R: AsyncRead + Unpin + Send + 'static>(
        self: &Arc<Self>,
        peer: u64,
        session: u64,
        read: R,
        last_heard: &Arc<AtomicU64>,
    ) -> AbortHandle {
        let reader = reader_loop(
            Arc::downgrade(self),
            peer,
            session,
            read,
            last_heard.clone(),
        );
        self.supervise(peer, session, reader)
    }

    /// Spawns a task of the link `(peer, session)`; if it panics, the link is torn down.
    fn supervise(
        self: &Arc<Self>,
        peer: u64,
        session: u64,
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
                tracing::error!(peer, session, "a link task panicked: closing the link");
                cluster.link_lost(peer, session, "task panicked");
            }
        });
        handle
    }

    /// A link ended (error, end of stream, overload, silence). Its peer's entries stay:
    /// membership decides whether the node is down; if it is still a member, the dialer
    /// redials (with backoff if the link died young). A stale session does nothing.
    fn link_lost(self: &Arc<Self>, peer: u64, session: u64, why: &'static str) {
        let (link, outputs) = {
            let mut table = lock(&self.links);
            let Some(link) =
                table.remove_if(peer, |l| l.session == session, |l| l.established.elapsed())
            else {
                return;
            };
            self.refresh_peer_limits(&table);
            let ((), outputs) =
                self.core_step(|core, node| core.handle_peer_down(node, peer, false));
            lock(&self.unlinked).insert(peer, Instant::now());
            (link, outputs)
        };
        tracing::info!(peer = %link.name, session, reason = why, "link lost");
        drop(link);
        self.act(outputs);
        if let Some(member) = self.member(peer) {
            self.maybe_dial(member);
        }
    }

    /// The node `peer` is gone for good: its link is closed and its entries purged with
    /// reason `NodeDown`.
    fn peer_dead(self: &Arc<Self>, peer: u64) {
        let (link, outputs) = {
            let mut table = lock(&self.links);
            let link = table.forget(peer);
            self.refresh_peer_limits(&table);
            let ((), outputs) =
                self.core_step(|core, node| core.handle_peer_down(node, peer, true));
            lock(&self.unlinked).remove(&peer);
            (link, outputs)
        };
        drop(link);
        self.act(outputs);
    }

    /// Closes links whose peer has been silent too long (each is redialed).
    fn close_silent_links(self: &Arc<Self>) {
        let now = self.clock_ms();
        let limit = self.silence.as_millis() as u64;
        let silent: Vec<(u64, u64, String)> = lock(&self.links)
            .links()
            .filter(|(_, l)| now.saturating_sub(l.last_heard.load(Ordering::Relaxed)) > limit)
            .map(|(peer, l)| (peer, l.session, l.name.clone()))
            .collect();
        for (peer, session, name) in silent {
            self.counters.links_silent.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(peer = %name, session, silence = ?self.silence, "peer sent nothing: closing the link");
            self.link_lost(peer, session, "peer silent");
        }
    }

    /// The members SWIM currently sees alive (none after shutdown).
    fn members(&self) -> Vec<MemberId> {
        lock(&self.membership)
            .as_ref()
            .map(MembershipHandle::members)
            .unwrap_or_default()
    }

    /// The live member of incarnation `peer`, if SWIM sees it alive.
    fn member(&self, peer: u64) -> Option<MemberId> {
        self.members().into_iter().find(|m| m.incarnation == peer)
    }

    /// Starts the dial task of a member if this node is the dialer of the pair (the smaller
    /// incarnation) and none runs. The task dials until a link is up or the member is
    /// gone, waiting between attempts as the link table's backoff says.
    fn maybe_dial(self: &Arc<Self>, member: MemberId) {
        let peer = member.incarnation;
        if self.me.incarnation > peer || !lock(&self.links).claim_dial(peer) {
            return;
        }
        let weak = Arc::downgrade(self);
        let task = tokio::spawn(async move {
            let _claim = DialClaim {
                cluster: weak.clone(),
                peer,
            };
            loop {
                let wait_until = {
                    let Some(cluster) = weak.upgrade() else {
                        return;
                    };
                    let table = lock(&cluster.links);
                    let now = Instant::now();
                    let jitter = rand::random_range(0.5..=1.0);
                    let backoff = now + table.dial_delay(peer, jitter);
                    table.severed_until(now).map_or(backoff, |s| s.max(backoff))
                };
                tokio::time::sleep_until(wait_until.into()).await;
                let Some(cluster) = weak.upgrade() else {
                    return;
                };
                if cluster.member(peer).is_none() {
                    return;
                }
                if lock(&cluster.links).is_linked(peer) {
                    return;
                }
                match cluster.dial(member.addr).await {
                    // A link that already died is redialed by this same task.
                    Ok(()) => {}
                    Err(e) => {
                        lock(&cluster.links).dial_failed(peer);
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

    async fn dial(self: &Arc<Self>, addr: SocketAddr) -> Result<(), DialError> {
        let admission = lock(&self.links)
            .admit_dial(Instant::now())
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
        let (stream, peer) = tokio::time::timeout(HANDSHAKE_TIMEOUT, connect)
            .await
            .map_err(|_| HandshakeError::Timeout(HANDSHAKE_TIMEOUT))??;
        self.establish(stream, peer, admission);
        Ok(())
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

/// The smallest limits among linked peers, readable without a lock (`usize::MAX` each
/// while no peer is linked).
struct PeerLimits([AtomicUsize; 3]);

impl Default for PeerLimits {
    fn default() -> Self {
        PeerLimits(std::array::from_fn(|_| AtomicUsize::new(usize::MAX)))
    }
}

impl PeerLimits {
    fn get(&self) -> Option<Limits> {
        let [key, meta, message] = self.0.each_ref().map(|a| a.load(Ordering::Relaxed));
        (key != usize::MAX).then_some(Limits {
            max_key_bytes: key,
            max_meta_bytes: meta,
            max_message_bytes: message,
        })
    }

    fn set(&self, limits: Option<Limits>) {
        let values = limits.map_or([usize::MAX; 3], |l| {
            [l.max_key_bytes, l.max_meta_bytes, l.max_message_bytes]
        });
        for (atomic, value) in self.0.iter().zip(values) {
            atomic.store(value, Ordering::Relaxed);
        }
    }
}

/// The claim of a dial task on its peer, released however the task ends.
struct DialClaim {
    cluster: Weak<Cluster>,
    peer: u64,
}

impl Drop for DialClaim {
    fn drop(&mut self) {
        if let Some(cluster) = self.cluster.upgrade() {
            lock(&cluster.links).release_dial(self.peer);
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // Critical sections here do not leave state half-written before a panic could occur.
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

/// Logs a repeated condition at most once per second, with how many were not logged.
#[derive(Default)]
struct Throttle {
    last: Option<Instant>,
    suppressed: u64,
}

impl Throttle {
    /// `Some(suppressed since the last line)` if a line may be logged now.
    fn allow(&mut self, now: Instant) -> Option<u64> {
        if self
            .last
            .is_some_and(|at| now.duration_since(at) < Duration::from_secs(1))
        {
            self.suppressed += 1;
            return None;
        }
        self.last = Some(now);
        Some(std::mem::take(&mut self.suppressed))
    }
}

async fn accept_loop(cluster: Weak<Cluster>, listener: TcpListener) {
    let mut refusals = Throttle::default();
    let mut failures = Throttle::default();
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
        let admission = lock(&strong.links).begin_handshake(Instant::now());
        let admission = match admission {
            Ok(admission) => admission,
            Err(refusal) => {
                strong
                    .counters
                    .connections_refused
                    .fetch_add(1, Ordering::Relaxed);
                if let Some(suppressed) = refusals.allow(Instant::now()) {
                    tracing::info!(%remote, %refusal, suppressed, "connection refused before its handshake");
                }
                drop(stream);
                continue;
            }
        };
        tokio::spawn(async move {
            let result = strong.accept(stream).await;
            lock(&strong.links).handshake_done();
            match result {
                Ok((stream, peer)) => strong.establish(stream, peer, admission),
                Err(e) => {
                    strong
                        .counters
                        .handshake_failures
                        .fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(%remote, error = %e, "inbound link refused");
                }
            }
        });
    }
}

async fn membership_loop(
    cluster: Weak<Cluster>,
    mut events: mpsc::UnboundedReceiver<MembershipEvent>,
) {
    while let Some(event) = events.recv().await {
        let Some(cluster) = cluster.upgrade() else {
            return;
        };
        match event {
            MembershipEvent::Up(member) => {
                tracing::info!(peer = %member.name, incarnation = member.incarnation, "member up");
                cluster.maybe_dial(member);
            }
            MembershipEvent::Down(member) => {
                tracing::info!(peer = %member.name, incarnation = member.incarnation, "member down");
                cluster.peer_dead(member.incarnation);
            }
        }
    }
}

async fn timer_loop(cluster: Weak<Cluster>) {
    loop {
        let deadline = {
            let Some(cluster) = cluster.upgrade() else {
                return;
            };
            let next = lock(&cluster.core).poll_timeout();
            next.map(tokio::time::Instant::from_std)
        };
        match deadline {
            Some(at) => tokio::time::sleep_until(at).await,
            None => tokio::time::sleep(Duration::from_millis(200)).await,
        }
        let Some(cluster) = cluster.upgrade() else {
            return;
        };
        let now = tokio::time::Instant::now().into_std();
        cluster.with_core(|core, node| core.handle_timeout(node, now));
    }
}

/// Hands local ops that piled up during a burst to the core (see `on_local_ops`).
async fn flusher_loop(cluster: Weak<Cluster>, wake: Arc<Notify>) {
    loop {
        // A notification sent while nobody waits is kept, so none is lost.
        wake.notified().await;
        let Some(cluster) = cluster.upgrade() else {
            return;
        };
        cluster.with_core(|_, _| ());
    }
}

/// Closes silent links, and purges peers that stayed unlinked past the grace period while
/// membership does not list them alive.
async fn reaper_loop(cluster: Weak<Cluster>) {
    loop {
        tokio::time::sleep(Duration::from_millis(250)).await;
        let Some(cluster) = cluster.upgrade() else {
            return;
        };
        cluster.close_silent_links();
        let alive: Vec<u64> = cluster
            .members()
            .into_iter()
            .map(|m| m.incarnation)
            .collect();
        let doomed: Vec<u64> = {
            let mut unlinked = lock(&cluster.unlinked);
            let doomed: Vec<u64> = unlinked
                .iter()
                .filter(|(peer, since)| !alive.contains(peer) && since.elapsed() >= cluster.grace)
                .map(|(peer, _)| *peer)
                .collect();
            for peer in &doomed {
                unlinked.remove(peer);
            }
            doomed
        };
        for peer in doomed {
            tracing::info!(peer, "unlinked peer unknown to membership: purging it");
            cluster.peer_dead(peer);
        }
    }
}

async fn reader_loop<R: AsyncRead + Unpin>(
    cluster: Weak<Cluster>,
    peer: u64,
    session: u64,
    read: R,
    last_heard: Arc<AtomicU64>,
) {
    let mut read = BufReader::with_capacity(256 * 1024, read);
    let mut buf = Vec::new();
    loop {
        let result = read_frame(&mut read, &mut buf, MAX_FRAME_BYTES).await;
        let Some(cluster) = cluster.upgrade() else {
            return;
        };
        match result {
            Ok(true) => {
                #[cfg(test)]
                super::tests::maybe_inject_reader_panic(cluster.me.incarnation);
                last_heard.store(cluster.clock_ms(), Ordering::Relaxed);
                cluster
                    .counters
                    .bytes_received
                    .fetch_add(buf.len() as u64 + 4, Ordering::Relaxed);
                match Frame::decode(&buf, &Limits::CEILING) {
                    Ok(frame) => {
                        cluster.with_core(|core, node| core.handle_frame(node, peer, frame));
                        // One large frame must not keep its buffer for the link's life.
                        if buf.capacity() > 4 * 1024 * 1024 {
                            buf = Vec::new();
                        }
                    }
                    Err(e) => {
                        cluster.counters.bad_frames.fetch_add(1, Ordering::Relaxed);
                        tracing::warn!(peer, error = %e, "bad frame from peer: dropping the link");
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
                tracing::warn!(peer, error = %e, "oversized frame from peer: dropping the link");
                cluster.link_lost(peer, session, "oversized frame");
                return;
            }
            Err(e) => {
                tracing::debug!(peer, error = %e, "link read failed");
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
    peer: u64,
    session: u64,
    outlet: Arc<Outlet>,
    wake: Arc<Notify>,
) {
    loop {
        wake.notified().await;
        loop {
            let Some(strong) = cluster.upgrade() else {
                return;
            };
            match outlet.pump(false, || lock(&strong.core).poll_transmit(peer)) {
                Ok((pumped, sent)) => {
                    strong
                        .counters
                        .bytes_sent
                        .fetch_add(sent, Ordering::Relaxed);
                    if pumped != Pumped::Blocked {
                        break;
                    }
                }
                Err(e) => {
                    tracing::debug!(peer, error = %e, "link write failed");
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
    peer: u64,
    session: u64,
    mut write: W,
    wake: Arc<Notify>,
) {
    let mut buf: Vec<u8> = Vec::with_capacity(64 * 1024);
    loop {
        wake.notified().await;
        loop {
            let Some(strong) = cluster.upgrade() else {
                return;
            };
            let frames = lock(&strong.core).poll_transmit(peer);
            if frames.is_empty() {
                break;
            }
            buf.clear();
            encode_frames(&frames, &mut buf);
            strong
                .counters
                .bytes_sent
                .fetch_add(buf.len() as u64, Ordering::Relaxed);
            drop(strong);
            if let Err(e) = write.write_all(&buf).await {
                tracing::debug!(peer, error = %e, "link write failed");
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
