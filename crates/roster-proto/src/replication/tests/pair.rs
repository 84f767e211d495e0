//! A test harness that drives replication cores and their stores directly, without a
//! node, sockets or a runtime (quinn-proto's `tests/util.rs` is the model): each
//! [`TestNode`] is a core plus the stores it hosts; a [`Pair`] links two of them through
//! a queue of frames per direction that crosses the real encoder and decoder, on a
//! virtual clock.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::link_table::SessionId;
use crate::replication::core::{Core, CoreConfig, CoreEvent};
use crate::replication::host::ReplicaHost;
use crate::replication::links::PeerHello;
use crate::replication::wire::Frame;
use crate::store::test_support::{Discard, replicating_stores};
use crate::store::{LocalProcess, NodeStores, ScopeStore};
use crate::subscription::Subscription;
use crate::vocab::clock::Clock;
use crate::vocab::entry::Registration;
use crate::vocab::event::ExitReason;
use crate::vocab::key::{Key, Limits, Pattern};
use crate::vocab::meta::Meta;
use crate::vocab::pid::{Incarnation, Pid};

/// A clock the test sets (milliseconds).
#[derive(Default)]
pub(in crate::replication) struct ManualClock(pub(in crate::replication) AtomicU64);

impl Clock for ManualClock {
    fn now_millis(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// The most deadlines [`Pair::advance`] hands the cores in one call.
const MAX_TIMEOUTS: usize = 10_000;

/// One node: a replication core and the stores it hosts.
pub(in crate::replication) struct TestNode {
    pub(in crate::replication) name: String,
    pub(in crate::replication) incarnation: Incarnation,
    pub(in crate::replication) core: Core,
    clock: Arc<ManualClock>,
    stores: NodeStores,
    /// Every process made here, so that one ended can still say why.
    processes: Vec<Arc<LocalProcess>>,
    /// Every event the core handed back, in order.
    pub(in crate::replication) events: Vec<CoreEvent>,
}

/// The processes end with their node: a live process and the stores hold each other.
impl Drop for TestNode {
    fn drop(&mut self) {
        for process in &self.processes {
            self.stores.exit(process, ExitReason::NodeDown);
        }
    }
}

impl TestNode {
    /// A node connected to the default scope.
    pub(in crate::replication) fn new(
        name: &str,
        incarnation: u64,
        core_config: CoreConfig,
    ) -> Self {
        let clock = Arc::new(ManualClock(AtomicU64::new(1_000_000)));
        let stores = replicating_stores(incarnation, clock.clone());
        Self {
            name: name.into(),
            incarnation: Incarnation::new(incarnation),
            core: Core::new(Incarnation::new(incarnation), core_config),
            clock,
            stores,
            processes: Vec::new(),
            events: Vec::new(),
        }
    }

    fn scope(&self) -> &Arc<ScopeStore> {
        self.stores.default_scope()
    }

    /// Runs `f` on the core with this node's stores as its host.
    pub(in crate::replication) fn step<R>(
        &mut self,
        f: impl FnOnce(&mut Core, &dyn ReplicaHost) -> R,
    ) -> R {
        f(&mut self.core, &self.stores)
    }

    /// A new live local process.
    pub(in crate::replication) fn process(&mut self) -> Pid {
        let process = self.stores.new_process(Box::new(Discard));
        self.processes.push(process.clone());
        process.pid
    }

    /// Why a process made here ended; `None` while it lives.
    pub(in crate::replication) fn exit_reason(&self, pid: Pid) -> Option<ExitReason> {
        self.processes
            .iter()
            .find(|p| p.pid == pid)
            .and_then(|p| p.exit_reason().cloned())
    }

    /// Registers `key` for local process `pid` in the default scope.
    pub(in crate::replication) fn register(&mut self, pid: Pid, key: &str) -> Registration {
        self.clock.0.fetch_add(1, Ordering::Relaxed);
        let cell = self.stores.process(pid).expect("a live process");
        self.scope()
            .register(&cell, Key::from(key), Meta::EMPTY)
            .expect("free name")
    }

    /// Adds local process `pid` to group `key` of the default scope with `meta`.
    pub(in crate::replication) fn join(&mut self, pid: Pid, key: &str, meta: Meta) {
        let cell = self.stores.process(pid).expect("a live process");
        self.scope()
            .join(&cell, Key::from(key), meta)
            .expect("a live process joins");
    }

    /// The members of group `key` here, in order, with their meta.
    pub(in crate::replication) fn members(&self, key: &str) -> Vec<(Pid, Meta)> {
        self.scope()
            .members(key, None)
            .iter()
            .map(|m| (m.pid(), m.meta().clone()))
            .collect()
    }

    /// Ends local process `pid` as the node does: dead first, then its entries removed.
    pub(in crate::replication) fn exit(&mut self, pid: Pid, reason: ExitReason) {
        if let Some(process) = self.stores.process(pid) {
            self.stores.exit(&process, reason);
        }
    }

    /// A subscription to every change in the default scope here.
    pub(in crate::replication) fn subscribe(&self) -> Subscription {
        self.scope()
            .subscribe(vec![Pattern::All], usize::MAX)
            .expect("the default scope is connected")
    }

    /// The owner of `key` here.
    /// The record this node's registry holds of the node `name`.
    pub(in crate::replication) fn node_record(
        &self,
        name: &str,
    ) -> Option<crate::nodes::NodeRecord> {
        self.stores.nodes.get(name).map(|e| e.record)
    }

    pub(in crate::replication) fn whereis(&self, key: &str) -> Option<Pid> {
        self.scope().whereis(key)
    }

    /// The registration of `key` here.
    pub(in crate::replication) fn lookup(&self, key: &str) -> Option<Registration> {
        self.scope().lookup(key)
    }

    /// Applies `ops` of a remote origin that is not linked here, as their frame would.
    pub(in crate::replication) fn apply_foreign(&self, ops: Vec<crate::vocab::op::Op>) {
        self.scope().apply_remote(ops);
    }

    /// Removes every entry of `origin`, as the node does when it learns that it died.
    pub(in crate::replication) fn purge(&self, origin: u64) {
        self.scope().purge_origin(
            origin,
            &crate::vocab::event::Reason::Exit(ExitReason::NodeDown),
        );
    }

    /// Names held here (live ones, of every origin).
    pub(in crate::replication) fn names(&self) -> usize {
        self.scope().registry_count(false)
    }

    /// This node's digest of `origin`'s entries.
    pub(in crate::replication) fn digest_of(&self, origin: u64) -> u128 {
        self.scope().digest(origin)
    }

    /// Keeps what the core handed back.
    fn act(&mut self) {
        while let Some(event) = self.core.poll_event() {
            self.events.push(event);
        }
    }

    /// Removes one of `origin`'s entries from this node's view behind the core's back (a
    /// divergence only anti-entropy can find).
    pub(in crate::replication) fn corrupt_drop(&self, key: &str) {
        let scope = self.scope();
        let owner = scope.whereis(key).expect("an entry to corrupt");
        let op = crate::vocab::op::Op::Unregister {
            key: key.into(),
            pid: owner,
            reason: crate::vocab::event::Reason::Requested,
        };
        let _ = scope.apply_remote(vec![op]);
    }
}

/// One direction of a link: frames in flight, oldest first.
#[derive(Default)]
struct Wire {
    frames: VecDeque<Frame>,
}

/// Two nodes and the link between them.
pub(in crate::replication) struct Pair {
    pub(in crate::replication) a: TestNode,
    pub(in crate::replication) b: TestNode,
    a_to_b: Wire,
    b_to_a: Wire,
    /// The link's session on a and on b, while it is up.
    sessions: Option<(SessionId, SessionId)>,
    /// Every frame sent, with its direction (`true`: a to b).
    pub(in crate::replication) log: Vec<(bool, Frame)>,
    /// Changes each frame a sends b before it is encoded (a peer that lies).
    pub(in crate::replication) tamper: Option<fn(&mut Frame)>,
    /// A name whose registration on b is recorded after each frame b handles, in
    /// `seen_on_b` (what b's readers could have seen, frame by frame).
    pub(in crate::replication) watch_on_b: Option<&'static str>,
    /// The registrations of `watch_on_b` on b, one after each frame b handled.
    pub(in crate::replication) seen_on_b: Vec<Option<Registration>>,
    start: Instant,
    elapsed: Duration,
}

impl Pair {
    pub(in crate::replication) fn new(config: CoreConfig) -> Self {
        Self {
            a: TestNode::new("a", 1, config.clone()),
            b: TestNode::new("b", 2, config),
            a_to_b: Wire::default(),
            b_to_a: Wire::default(),
            sessions: None,
            log: Vec::new(),
            tamper: None,
            watch_on_b: None,
            seen_on_b: Vec::new(),
            start: Instant::now(),
            elapsed: Duration::ZERO,
        }
    }

    fn now(&self) -> Instant {
        self.start + self.elapsed
    }

    /// Brings the link up on both sides (one connection, each side's handshake admitted as
    /// an accepted one: the dials' decisions are tested in `links_tests`) and runs until
    /// nothing moves.
    pub(in crate::replication) fn link(&mut self) {
        let now = self.now();
        let a_hello = (self.a.incarnation, self.a.name.clone());
        let b_hello = (self.b.incarnation, self.b.name.clone());
        let on_a = self.a.step(|core, host| {
            let admission = core.admit_handshake(now).expect("not severed");
            core.establish(host, admission, hello(&b_hello), now)
        });
        let on_b = self.b.step(|core, host| {
            let admission = core.admit_handshake(now).expect("not severed");
            core.establish(host, admission, hello(&a_hello), now)
        });
        let (on_a, on_b) = (on_a.expect("admitted"), on_b.expect("admitted"));
        self.sessions = Some((on_a.session.id, on_b.session.id));
        self.drive();
    }

    /// Takes the link down on both sides (nodes stay members); frames in flight are lost.
    pub(in crate::replication) fn unlink(&mut self) {
        let now = self.now();
        let (a_inc, b_inc) = (self.a.incarnation, self.b.incarnation);
        if let Some((on_a, on_b)) = self.sessions.take() {
            self.a.step(|core, _| core.link_lost(b_inc, on_a, now));
            self.b.step(|core, _| core.link_lost(a_inc, on_b, now));
        }
        self.a_to_b.frames.clear();
        self.b_to_a.frames.clear();
    }

    /// Replaces b with a restarted node of the same name and a new incarnation.
    pub(in crate::replication) fn restart_b(&mut self, incarnation: u64, config: CoreConfig) {
        self.unlink();
        self.b = TestNode::new("b", incarnation, config);
    }

    /// Lets `by` of virtual time pass, as the shell's timer would: time jumps to the
    /// earliest deadline either core gives ([`Core::poll_timeout`]), the cores due are
    /// handed it and the pair runs until nothing moves, until no deadline is left within
    /// `by` (at most [`MAX_TIMEOUTS`] of them: a deadline that never moves on fails the
    /// test). A timer a core does not report never fires.
    pub(in crate::replication) fn advance(&mut self, by: Duration) {
        let end = self.now() + by;
        for _ in 0..MAX_TIMEOUTS {
            let next = [&self.a, &self.b]
                .into_iter()
                .filter_map(|node| node.core.poll_timeout())
                .min()
                .filter(|at| *at <= end);
            let Some(at) = next else {
                self.set_time(end);
                self.drive();
                return;
            };
            self.set_time(at);
            for node in [&mut self.a, &mut self.b] {
                if node.core.poll_timeout().is_some_and(|due| due <= at) {
                    node.step(|core, host| core.handle_timeout(host, at));
                }
            }
            self.drive();
        }
        panic!("more than {MAX_TIMEOUTS} deadlines within {by:?}: a timer that never moves on");
    }

    /// Moves virtual time (and both nodes' wall clocks) forward to `at`.
    fn set_time(&mut self, at: Instant) {
        let before = self.elapsed.as_millis();
        self.elapsed += at.saturating_duration_since(self.now());
        let ms = (self.elapsed.as_millis() - before) as u64;
        for node in [&self.a, &self.b] {
            node.clock.0.fetch_add(ms, Ordering::Relaxed);
        }
    }

    /// Moves frames both ways (through the encoder and decoder) and acts on events until
    /// the link is quiet.
    pub(in crate::replication) fn drive(&mut self) {
        let now = self.now();
        for _ in 0..10_000 {
            let (a_inc, b_inc) = (self.a.incarnation, self.b.incarnation);
            self.a.step(|core, host| core.handle_local_ops(host));
            self.b.step(|core, host| core.handle_local_ops(host));
            self.a.act();
            self.b.act();
            let mut moved = false;
            for (from_a, peer) in [(true, b_inc), (false, a_inc)] {
                let (node, wire) = if from_a {
                    (&mut self.a, &mut self.a_to_b)
                } else {
                    (&mut self.b, &mut self.b_to_a)
                };
                loop {
                    let frames = node.core.poll_transmit(peer);
                    if frames.is_empty() {
                        break;
                    }
                    if self.sessions.is_some() {
                        wire.frames.extend(frames);
                    }
                }
            }
            // Unlinked: no session (they start at 1), so a frame counts for nothing.
            let none = SessionId::new(0);
            let (on_a, on_b) = self.sessions.unwrap_or((none, none));
            for from_a in [true, false] {
                let (wire, node, from, session) = if from_a {
                    (&mut self.a_to_b, &mut self.b, a_inc, on_b)
                } else {
                    (&mut self.b_to_a, &mut self.a, b_inc, on_a)
                };
                while let Some(mut frame) = wire.frames.pop_front() {
                    moved = true;
                    if let Some(tamper) = self.tamper.filter(|_| from_a) {
                        tamper(&mut frame);
                    }
                    let decoded =
                        Frame::decode(&frame.encode(), &Limits::CEILING).expect("a valid frame");
                    self.log.push((from_a, frame));
                    node.step(|core, host| core.handle_frame(host, from, session, decoded, now));
                    if let Some(key) = self.watch_on_b.filter(|_| from_a) {
                        self.seen_on_b.push(node.lookup(key));
                    }
                }
            }
            if !moved {
                self.a.act();
                self.b.act();
                return;
            }
        }
        panic!("the pair never went quiet");
    }

    /// Hands b the frame encoded in `bytes` as if a had sent it on the current link
    /// (decoded as a link reader does), then acts on what it handed back.
    pub(in crate::replication) fn deliver_to_b(&mut self, bytes: &[u8]) {
        let frame = Frame::decode(bytes, &Limits::CEILING).expect("a valid frame");
        self.deliver_decoded_to_b(frame);
    }

    /// Hands b `frame` as if a had sent it on the current link, then acts on what it
    /// handed back.
    pub(in crate::replication) fn deliver_decoded_to_b(&mut self, frame: Frame) {
        let now = self.now();
        let (a_inc, (_, on_b)) = (self.a.incarnation, self.sessions.expect("linked"));
        self.b
            .step(|core, host| core.handle_frame(host, a_inc, on_b, frame, now));
        self.b.act();
    }

    /// Frames sent a to b (`true`) or b to a since `from` in the log.
    pub(in crate::replication) fn sent(&self, a_to_b: bool, from: usize) -> Vec<&Frame> {
        self.log[from..]
            .iter()
            .filter(|(dir, _)| *dir == a_to_b)
            .map(|(_, f)| f)
            .collect()
    }
}

/// The greeting of a node, as [`Core::establish`] takes it.
fn hello((incarnation, name): &(Incarnation, String)) -> PeerHello<'_> {
    PeerHello {
        incarnation: *incarnation,
        name,
        limits: Limits::DEFAULT,
    }
}
