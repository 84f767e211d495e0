//! The tokio shell around the replication core: links, membership, timers.
//!
//! One [`Cluster`] per node. It owns the replication [`Core`] behind a mutex and:
//!
//! - accepts and dials TCP links (the node with the smaller incarnation dials, so a pair
//!   has one link), runs the handshake, and starts a reader and a writer task per link;
//!   the core decides and records every step of a link's life (admission, established,
//!   lost, severed, silent, redial backoff: `roster_proto::replication::links`), and the
//!   shell files the link's IO under the session the core gave it in the same step;
//! - feeds the core: frames from readers, ops of local writes (handed over by the flusher
//!   task, which a write wakes only if it is not already due to run: a write pays no
//!   core lock and no system call of its own), the time at each deadline the core gives
//!   (and at no other), membership changes, scope changes;
//! - after every core call, wakes the writers of peers with queued frames. A writer takes
//!   everything queued for its peer and sends it in one write: batching without a timer.
//!   The core bounds each peer's live queue; an overloaded link is dropped and catches up
//!   when it returns;
//! - closes the connections of links the core closed (overloaded, silent), refuses
//!   connections beyond the bound of pending handshakes (the core refuses them while
//!   severed), and tears down a link whose task panicked;
//! - a broken link to a member that SWIM still sees alive is redialed and resynced, not
//!   purged; a member SWIM declares down is purged on this node with reason `NodeDown`.

/// An info-level line of this node, unless its log level is `Off` (see
/// `runtime::log_level`): `node_info!(cluster, fields.., "message")`.
macro_rules! node_info {
    ($cluster:expr, $($arg:tt)*) => {
        if $cluster.logs_info() {
            tracing::info!($($arg)*);
        }
    };
}

mod connect;
#[cfg(feature = "fault-injection")]
mod faults;
mod lifecycle;
mod link;
mod loops;
mod sessions;
mod stats;

use std::collections::{BTreeSet, HashMap};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tokio::net::{TcpListener, UdpSocket};
use tokio::sync::mpsc;
use tokio::task::AbortHandle;

use self::connect::accept_loop;
use self::lifecycle::PeerLimits;
use self::link::{Link, LinkWriter};
use self::loops::{flusher_loop, membership_loop, timer_loop};
use self::sessions::ClosedSessions;
pub use self::sessions::{LinkKind, LinkSession};
pub(crate) use self::stats::ClusterCounters;
pub use self::stats::{ClusterStats, PeerInfo};
use super::handshake::{ClusterKey, Greeting};
use super::host::ClusterHost;
use super::membership::{MemberId, MembershipConfig, MembershipHandle, spawn_membership};
use super::outlet::{Outlet, Pumped};
use super::throttle::Throttle;
use crate::key::{Limits, ScopeName};
use crate::pid::Incarnation;
use crate::replication::PROTOCOL_VERSION;
use crate::replication::core::{Core, CoreConfig, CoreEvent, Unsent};
use crate::replication::links::Dial;
use crate::replication::wire::{Dispatch, Frame, Message};
use crate::store::NodeStores;

/// The cluster layer of one node; see the [module docs](self).
pub(crate) struct Cluster {
    node: Arc<dyn ClusterHost>,
    me: Greeting,
    key: ClusterKey,
    /// The replication core, which also owns the record of links (which peers are
    /// linked, dialing, admission).
    core: Mutex<Core>,
    /// The IO of each link the core lists, by peer. Lock order: `io`, then `core`; never
    /// `io` while holding `core`.
    io: Mutex<HashMap<Incarnation, Link>>,
    /// The latest closed link sessions.
    closed: Mutex<ClosedSessions>,
    membership: Mutex<Option<MembershipHandle>>,
    #[cfg(feature = "tls")]
    tls: Option<super::tls::TlsConfig>,
    /// The flusher thread, which hands the ops of local writes to the core and sends them.
    /// A plain thread woken by `unpark` rather than a task: waking it is one futex call,
    /// with no trip through the runtime's scheduler before it runs.
    flusher: std::sync::OnceLock<std::thread::Thread>,
    /// Set when the cluster layer stops: the flusher thread ends.
    stopped: AtomicBool,
    /// Set by the write that wakes the flusher, cleared by the flusher before it takes
    /// the outbox: the writes in between need not wake it again.
    flush_pending: AtomicBool,
    /// How long the flusher keeps polling for the next write after a flush before it
    /// parks (`ClusterConfig::busy_poll`); zero: a few yields only.
    busy_poll: Duration,
    /// How long a link's reader polls its socket for the next frame after traffic before
    /// it waits for the IO driver (`ClusterConfig::read_poll`); zero: it never polls.
    read_poll: Duration,
    tasks: Mutex<Vec<AbortHandle>>,
    /// The smallest limits of the linked peers, read by every replicated write.
    peer_limits: PeerLimits,
    /// Wakes the timer task when a core call brought the core's deadline forward, or
    /// when the cluster layer goes (see `loops::timer_loop`).
    timer_rearm: Arc<tokio::sync::Notify>,
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
    /// TLS for links, if configured.
    #[cfg(feature = "tls")]
    pub(crate) tls: Option<super::tls::TlsConfig>,
    /// How long the flusher polls for the next write after a flush before it parks.
    pub(crate) busy_poll: Duration,
    /// How long a link's reader polls its socket after traffic before it waits.
    pub(crate) read_poll: Duration,
}

/// What a core call left for the driver to act on, taken while the core lock was held.
struct CoreOutputs {
    wake: Vec<Incarnation>,
    events: Vec<CoreEvent>,
    /// The connections the core wants made.
    dials: Vec<Dial>,
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

impl Cluster {
    /// Whether the node logs its info-level lines (see `node_info!`).
    fn logs_info(&self) -> bool {
        self.node.logs_info()
    }

    /// Binds the cluster address (TCP and UDP on the same port) and starts the tasks.
    pub(crate) fn start(
        node: Arc<dyn ClusterHost>,
        name: String,
        settings: ClusterSettings,
    ) -> std::io::Result<Arc<Self>> {
        let std_listener = std::net::TcpListener::bind(settings.listen)?;
        std_listener.set_nonblocking(true)?;
        let addr = std_listener.local_addr()?;
        let std_udp = std::net::UdpSocket::bind(addr)?;
        std_udp.set_nonblocking(true)?;
        let listener = TcpListener::from_std(std_listener)?;
        let udp = UdpSocket::from_std(std_udp)?;
        let incarnation = node.incarnation();
        let started_at_ms = now_ms();
        let mut core_config = settings.core;
        core_config.limits = node.limits();
        let cluster = Arc::new(Self {
            me: Greeting {
                version: PROTOCOL_VERSION,
                cluster: settings.cluster,
                name: name.clone(),
                incarnation,
                started_at_ms,
                addr,
                limits: node.limits(),
                nonce: [0; 32],
            },
            key: ClusterKey::derive(&settings.secret),
            core: Mutex::new(Core::new(Incarnation::new(incarnation), core_config)),
            io: Mutex::new(HashMap::new()),
            closed: Mutex::new(ClosedSessions::new()),
            membership: Mutex::new(None),
            #[cfg(feature = "tls")]
            tls: settings.tls,
            flusher: std::sync::OnceLock::new(),
            stopped: AtomicBool::new(false),
            flush_pending: AtomicBool::new(false),
            busy_poll: settings.busy_poll,
            read_poll: settings.read_poll,
            tasks: Mutex::new(Vec::new()),
            peer_limits: PeerLimits::default(),
            timer_rearm: Arc::default(),
            skip_log: Mutex::new(Throttle::new(Duration::from_secs(1))),
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
        let runtime = tokio::runtime::Handle::current();
        let flusher = std::thread::Builder::new()
            .name("roster-flusher".into())
            .spawn(move || flusher_loop(&weak, &runtime))?;
        let _ = cluster.flusher.set(flusher.thread().clone());
        lock(&cluster.tasks).extend([
            accept.abort_handle(),
            members.abort_handle(),
            timer.abort_handle(),
        ]);
        Ok(cluster)
    }

    /// The address peers reach this node at.
    pub(crate) fn addr(&self) -> SocketAddr {
        self.me.addr
    }

    /// Runs `f` on the core, then wakes the writers of peers with queued frames and acts on
    /// the core's events.
    pub(crate) fn with_core<R>(self: &Arc<Self>, f: impl FnOnce(&mut Core, &NodeStores) -> R) -> R {
        let (result, outputs) = self.core_step(f);
        self.act(outputs);
        result
    }

    /// Reads the core, feeding it nothing: no local ops taken, nothing left to act on.
    pub(crate) fn read_core<R>(&self, f: impl FnOnce(&Core) -> R) -> R {
        f(&lock(&self.core))
    }

    /// Runs `f` on the core and takes what it left to act on, without acting on it (the
    /// caller may hold the IO table). The core takes the local writes itself first, in
    /// every call that is given the stores.
    fn core_step<R>(&self, f: impl FnOnce(&mut Core, &NodeStores) -> R) -> (R, CoreOutputs) {
        let mut core = lock(&self.core);
        let result = f(&mut core, self.node.stores());
        if core.take_deadline_forward() {
            // The timer task sleeps until the old deadline, or has none.
            self.timer_rearm.notify_one();
        }
        let wake = core.peers_with_transmits();
        let mut events = Vec::new();
        while let Some(event) = core.poll_event() {
            match event {
                // Set before the core is released: a write after this call is checked
                // against the limits of the links it made.
                CoreEvent::PeerLimits(limits) => self.peer_limits.set(limits),
                event => events.push(event),
            }
        }
        let dials = std::iter::from_fn(|| core.poll_dial()).collect();
        (
            result,
            CoreOutputs {
                wake,
                events,
                dials,
            },
        )
    }

    /// Wakes the writers of peers with frames to send and acts on the core's events.
    /// Never called with the IO table locked.
    fn act(self: &Arc<Self>, outputs: CoreOutputs) {
        // Taken out of the table first (pumping may drop a link); most frames received
        // leave nothing to send, and then the table is not touched.
        let targets: Vec<(Incarnation, LinkWriter)> = if outputs.wake.is_empty() {
            Vec::new()
        } else {
            let io = lock(&self.io);
            outputs
                .wake
                .into_iter()
                .filter_map(|peer| io.get(&peer).map(|l| (peer, l.writer())))
                .collect()
        };
        for (peer, target) in targets {
            match &target.outlet {
                Some(outlet) => self.pump(peer, outlet, &target),
                None => target.wake.notify_one(),
            }
        }
        for event in outputs.events {
            match event {
                CoreEvent::Deliver(m) => self.node.deliver_remote(m.to, m.from, m.payload),
                CoreEvent::Dispatch(d) => self.node.dispatch_remote(&d.scope, &d.key, d.payload),
                CoreEvent::Overloaded { peer, session } => {
                    self.counters
                        .links_overloaded
                        .fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(
                        %peer,
                        %session,
                        "peer link overloaded: dropped it, it will catch up when it returns"
                    );
                    self.link_closed_by_core(peer, session, "overloaded: the peer did not keep up");
                }
                CoreEvent::Silent { peer, session } => {
                    self.counters.links_silent.fetch_add(1, Ordering::Relaxed);
                    let name = lock(&self.io).get(&peer).map(|l| l.name.clone());
                    tracing::warn!(
                        peer = name.as_deref().unwrap_or("?"),
                        %session,
                        "peer sent nothing: closing the link"
                    );
                    self.link_closed_by_core(peer, session, "peer silent");
                }
                CoreEvent::Repaired { peer, scope } => {
                    self.counters.digest_repairs.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(%peer, %scope, "anti-entropy found divergence: sent a snapshot");
                }
                CoreEvent::Skipped { peer, items } => {
                    self.counters
                        .items_skipped
                        .fetch_add(items as u64, Ordering::Relaxed);
                    if let Some(suppressed) = lock(&self.skip_log).allow(Instant::now()) {
                        tracing::warn!(
                            %peer,
                            items,
                            suppressed,
                            "skipped items from a peer that are over this node's limits \
                             (max_key_bytes, max_meta_bytes, max_message_bytes)"
                        );
                    }
                }
                CoreEvent::GapDetected { peer, scope } => {
                    self.counters.stream_gaps.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(%peer, %scope, "gap in a peer's stream: asked for a snapshot");
                }
                CoreEvent::Vanished { peer } => {
                    node_info!(self, %peer, "unlinked peer unknown to membership: purged it");
                }
                // Taken out by `core_step`, under the core lock.
                CoreEvent::PeerLimits(_) => {}
            }
        }
        for dial in outputs.dials {
            self.start_dial(dial);
        }
    }

    /// The frames to send `peer` now (counted into `frames`).
    fn transmit(&self, peer: Incarnation, frames: &mut usize) -> Vec<Frame> {
        let taken = lock(&self.core).poll_transmit(peer);
        *frames += taken.len();
        taken
    }

    /// Sends what is queued for `peer` from this thread; hands over to the writer task if
    /// the socket is full.
    fn pump(self: &Arc<Self>, peer: Incarnation, outlet: &Outlet, link: &LinkWriter) {
        let mut frames = 0;
        match outlet.pump(|| self.transmit(peer, &mut frames)) {
            Ok((pumped, moved)) => {
                link.meter.sent(frames, moved.sent);
                self.counters.count_sent(moved);
                if pumped != Pumped::Done {
                    link.wake.notify_one();
                }
            }
            Err(e) => {
                tracing::debug!(%peer, error = %e, "link write failed");
                self.link_lost(peer, link.session, "write failed");
            }
        }
    }

    /// Ops of local writes are waiting in the outbox: wakes the flusher task unless it is
    /// already due to run.
    ///
    /// The writing thread takes no core lock and writes no socket: an isolated write wakes
    /// the flusher (one futex wake-up) unless it is still polling after its last flush
    /// (`ClusterConfig::busy_poll`), and the writes that come before the flusher runs only
    /// find it due. The flusher then moves everything that piled up in
    /// one core call and one send: batching without a timer.
    pub(crate) fn on_local_ops(&self) {
        if !self.flush_pending.swap(true, Ordering::AcqRel)
            && let Some(flusher) = self.flusher.get()
        {
            flusher.unpark();
        }
    }

    /// Ends the flusher thread.
    fn stop_flusher(&self) {
        self.stopped.store(true, Ordering::Release);
        if let Some(flusher) = self.flusher.get() {
            flusher.unpark();
        }
    }

    /// The flusher's turn: hands every op of local writes to the core and sends them;
    /// `false` if there were none.
    fn flush(self: &Arc<Self>) -> bool {
        // Cleared before the outbox is taken, so a write after the take wakes us again.
        self.flush_pending.store(false, Ordering::Release);
        if self.node.stores().outbox().is_none_or(|o| o.is_empty()) {
            return false;
        }
        self.with_core(|core, node| core.handle_local_ops(node));
        true
    }

    pub(crate) fn on_scope_connected(self: &Arc<Self>, scope: &ScopeName) {
        self.with_core(|core, node| core.handle_scope_connected(node, scope));
    }

    pub(crate) fn on_scope_disconnected(self: &Arc<Self>, scope: &ScopeName) {
        self.with_core(|core, _| core.handle_scope_disconnected(scope));
    }

    /// Queues a message for a process on the node of incarnation `peer`.
    pub(crate) fn send_message(
        self: &Arc<Self>,
        peer: Incarnation,
        message: Message,
    ) -> Result<(), Unsent> {
        self.with_core(|core, node| core.send_message(node, peer, message))
    }

    /// Queues a dispatch for the node of incarnation `peer`.
    pub(crate) fn send_dispatch(
        self: &Arc<Self>,
        peer: Incarnation,
        dispatch: Dispatch,
    ) -> Result<(), Unsent> {
        self.with_core(|core, node| core.send_dispatch(node, peer, dispatch))
    }

    /// The smallest limits among linked peers; `None` without any link.
    pub(crate) fn peer_limits(&self) -> Option<Limits> {
        self.peer_limits.get()
    }

    /// Peers with a completed handshake.
    pub(crate) fn peers(&self) -> Vec<PeerInfo> {
        let io = lock(&self.io);
        let core = lock(&self.core);
        let mut peers: Vec<PeerInfo> = core
            .linked_peers()
            .filter_map(|peer| {
                let link = io.get(&peer.incarnation)?;
                Some(PeerInfo {
                    name: peer.name.to_owned(),
                    incarnation: peer.incarnation,
                    addr: link.addr,
                    linked_since: link.established_at,
                    session: peer.session.id.get(),
                })
            })
            .collect();
        peers.sort_by(|a, b| a.name.cmp(&b.name));
        peers
    }

    /// Peers connected to `scope`.
    pub(crate) fn peers_in(&self, scope: &str) -> Vec<Incarnation> {
        lock(&self.core).peers_in(scope)
    }

    /// A snapshot of the counters.
    pub(crate) fn stats(&self) -> ClusterStats {
        let c = &self.counters;
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        ClusterStats {
            bytes_sent: get(&c.bytes_sent),
            bytes_received: get(&c.bytes_received),
            resync_bytes_sent: get(&c.resync_bytes_sent),
            resync_bytes_received: get(&c.resync_bytes_received),
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
            resolver_panics: self.node.stores().resolver_panics(),
        }
    }

    /// Leaves the cluster: no new link from now on, SWIM leave, links closed, tasks
    /// stopped. A peer that closes its link on the leave notice is not dialed again.
    pub(crate) async fn shutdown(&self) {
        lock(&self.core).leave(Instant::now());
        let membership = lock(&self.membership).take();
        if let Some(membership) = membership {
            membership.leave().await;
        }
        for task in lock(&self.tasks).drain(..) {
            task.abort();
        }
        self.stop_flusher();
        let links: Vec<Link> = {
            let mut io = lock(&self.io);
            lock(&self.core).close_all();
            io.drain().map(|(_, link)| link).collect()
        };
        self.peer_limits.set(None);
        drop(links);
    }

    /// The members SWIM currently sees alive (none after shutdown).
    fn members(&self) -> Vec<MemberId> {
        lock(&self.membership)
            .as_ref()
            .map(MembershipHandle::members)
            .unwrap_or_default()
    }

    /// The members SWIM sees alive (this node not included), and those of them a link is
    /// up to.
    pub(crate) fn member_links(&self) -> (Vec<(String, Incarnation)>, BTreeSet<Incarnation>) {
        let members = self.members();
        let core = lock(&self.core);
        let linked = members
            .iter()
            .filter(|m| core.link(Incarnation::new(m.incarnation)).is_some())
            .map(|m| Incarnation::new(m.incarnation))
            .collect();
        let members = members
            .into_iter()
            .map(|m| (m.name, Incarnation::new(m.incarnation)))
            .collect();
        (members, linked)
    }

    /// How many members SWIM sees alive (this node not included).
    pub(crate) fn member_count(&self) -> usize {
        self.members().len()
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.stop_flusher();
        // The timer task may wait for a deadline with none set: it ends once it wakes.
        self.timer_rearm.notify_one();
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // Critical sections here do not leave state half-written before a panic could occur.
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}
