//! The membership task: the tokio loop that owns the UDP socket, foca and its timers, and
//! turns their output into datagrams and events; [`MembershipHandle`] is its handle.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering as AtomicOrdering};
use std::time::Duration;

use arc_swap::ArcSwap;
use foca::{AccumulatingRuntime, Foca, PostcardCodec};
use rand::SeedableRng;
use rand::rngs::StdRng;
use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::config::MembershipConfig;
use super::datagram::{DatagramKey, MAC_LEN};
use super::identity::MemberId;
use super::leave_notice::{self, Departures, LeaveNotices};
use super::refusal_log::RefusedWarnings;
use super::rng::FocaRng;
use super::seeds::AnnounceRounds;
use super::timers::TimerQueue;
use super::view::{MemberView, MembershipEvent};

/// Most timers delivered per wake of the loop before it gives the other inputs a turn
/// (foca arms a handful of timers per probe period, so this is only ever reached after a
/// long stall).
const MAX_TIMERS_PER_WAKE: usize = 256;

/// Pause after a failed `recv_from`, so a persistent socket error cannot spin the task.
const RECV_ERROR_BACKOFF: Duration = Duration::from_millis(10);

/// State shared between the task and its handle.
struct Shared {
    /// Live members, republished by the task after every change.
    members: ArcSwap<Vec<MemberId>>,
    /// Datagrams refused before decoding (bad MAC, bad length).
    refused_datagrams: AtomicU64,
    /// Fault injection: which datagrams are dropped, in and out.
    cuts: std::sync::Mutex<Cuts>,
}

/// Fault injection: until when every datagram is dropped, and until when those from or to
/// some addresses are.
#[derive(Default)]
struct Cuts {
    all: Option<Instant>,
    peers: Vec<(SocketAddr, Instant)>,
}

impl Shared {
    /// Whether a datagram from or to `addr` is dropped now.
    fn cut_off(&self, addr: SocketAddr) -> bool {
        let now = Instant::now();
        let cuts = self.cuts.lock().unwrap_or_else(|e| e.into_inner());
        cuts.all.is_some_and(|until| now < until)
            || cuts
                .peers
                .iter()
                .any(|(peer, until)| *peer == addr && now < *until)
    }
}

/// Requests from the handle to the task.
enum Command {
    /// Leave the cluster gracefully, flush, and stop.
    Leave,
}

/// Handle to the membership task started by [`spawn_membership`].
///
/// Dropping it aborts the task at once, without telling the cluster: the other members
/// then detect the failure by probing. Use [`MembershipHandle::leave`] to leave
/// gracefully.
#[allow(dead_code)] // used by the transport layer (in progress)
pub(crate) struct MembershipHandle {
    /// Commands to the task.
    commands: mpsc::UnboundedSender<Command>,
    /// What the task publishes.
    shared: Arc<Shared>,
    /// The task; `None` once `leave` took it.
    task: Option<JoinHandle<()>>,
}

impl MembershipHandle {
    /// Members currently considered alive (excluding ourselves), ordered by address.
    ///
    /// Reads a snapshot the task republishes after every change: never waits for the task
    /// and takes no lock. It matches the events sent so far (it is published before them).
    #[allow(dead_code)] // used by the transport layer (in progress)
    pub(crate) fn members(&self) -> Vec<MemberId> {
        self.shared.members.load().as_ref().clone()
    }

    /// Leaves the cluster gracefully (foca `leave_cluster`: a few live members are told
    /// that we are down, and spread it), hands the datagrams to the OS, then stops the
    /// task. No event is sent after this returns.
    ///
    /// # Cancel safety
    ///
    /// Not cancel safe: dropping the future drops the handle, which aborts the task,
    /// possibly before the leave datagrams went out (the cluster then detects the failure
    /// by probing instead).
    #[allow(dead_code)] // used by the transport layer (in progress)
    pub(crate) async fn leave(mut self) {
        let Some(task) = self.task.take() else { return };
        if self.commands.send(Command::Leave).is_err() {
            // The task already ended; nothing to leave.
            return;
        }
        if let Err(error) = task.await {
            tracing::debug!(%error, "membership: task ended abnormally while leaving");
        }
    }

    /// Datagrams this node refused before decoding them, since it started: a bad MAC (a
    /// node with another cluster secret, cluster name or protocol version) or a bad
    /// length. Never decreases.
    pub(crate) fn refused_datagrams(&self) -> u64 {
        self.shared.refused_datagrams.load(AtomicOrdering::Relaxed)
    }

    /// Fault injection: drops every datagram in and out until `until`, so that the
    /// other members declare this node dead, and it them.
    #[cfg(feature = "fault-injection")]
    pub(crate) fn isolate(&self, until: Instant) {
        self.shared
            .cuts
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .all = Some(until);
    }

    /// Fault injection: drops every datagram from and to `peers` until `until`.
    #[cfg(feature = "fault-injection")]
    pub(crate) fn isolate_from(&self, peers: &[SocketAddr], until: Instant) {
        let mut cuts = self.shared.cuts.lock().unwrap_or_else(|e| e.into_inner());
        cuts.peers.retain(|(peer, _)| !peers.contains(peer));
        cuts.peers.extend(peers.iter().map(|peer| (*peer, until)));
    }
}

impl Drop for MembershipHandle {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

/// Starts the membership task on the current tokio runtime, owning `socket` (already
/// bound; `me.addr` must be its local address, the address other members reach us at).
///
/// Events go to `events`; if its receiver is dropped they are discarded and the task keeps
/// running.
///
/// # Panics
///
/// Panics if called outside a tokio runtime.
#[allow(dead_code)] // used by the transport layer (in progress)
pub(crate) fn spawn_membership(
    me: MemberId,
    socket: UdpSocket,
    config: MembershipConfig,
    events: mpsc::UnboundedSender<MembershipEvent>,
) -> MembershipHandle {
    match socket.local_addr() {
        Ok(local) if local == me.addr => {}
        Ok(local) => tracing::warn!(
            %local,
            advertised = %me.addr,
            "membership: socket address differs from the advertised address"
        ),
        Err(error) => tracing::warn!(%error, "membership: socket has no local address"),
    }
    let shared = Arc::new(Shared {
        members: ArcSwap::from_pointee(Vec::new()),
        refused_datagrams: AtomicU64::new(0),
        cuts: std::sync::Mutex::default(),
    });
    let (commands_tx, commands_rx) = mpsc::unbounded_channel();
    let max_packet_size = config.foca.max_packet_size.get();
    let rng = FocaRng(StdRng::seed_from_u64(me.incarnation));
    let departures = Departures::default();
    let driver = Driver {
        foca: Foca::with_custom_broadcast(
            me,
            config.foca,
            rng,
            PostcardCodec,
            LeaveNotices::new(departures.clone()),
        ),
        departures,
        runtime: AccumulatingRuntime::new(),
        socket,
        key: DatagramKey::new(&config.secret, &config.cluster, max_packet_size),
        timers: TimerQueue::default(),
        view: MemberView::default(),
        events,
        shared: shared.clone(),
        send_buf: Vec::with_capacity(max_packet_size + MAC_LEN),
        pending_events: Vec::new(),
        refused_warnings: RefusedWarnings::default(),
    };
    let task = tokio::spawn(driver.run(commands_rx, config.seeds, config.announce_interval));
    MembershipHandle {
        commands: commands_tx,
        shared,
        task: Some(task),
    }
}

/// The membership task's state: foca and everything around it.
struct Driver {
    /// The SWIM state machine.
    foca: Foca<MemberId, PostcardCodec, FocaRng, LeaveNotices>,
    /// The members that announced they leave on purpose (foca's handler records them).
    departures: Departures,
    /// Where foca's outputs accumulate during a call; empty between calls.
    runtime: AccumulatingRuntime<MemberId>,
    /// The membership socket.
    socket: UdpSocket,
    /// Datagram MAC.
    key: DatagramKey,
    /// Armed foca timers.
    timers: TimerQueue,
    /// Members reported alive.
    view: MemberView,
    /// Where events go.
    events: mpsc::UnboundedSender<MembershipEvent>,
    /// What the handle reads.
    shared: Arc<Shared>,
    /// Reused buffer for sealed datagrams.
    send_buf: Vec<u8>,
    /// Reused buffer for the events of one foca call.
    pending_events: Vec<MembershipEvent>,
    /// Rate limit of the warn line about refused datagrams.
    refused_warnings: RefusedWarnings,
}

impl Driver {
    /// The select loop. Returns after a leave or once the handle is gone.
    async fn run(
        mut self,
        mut commands: mpsc::UnboundedReceiver<Command>,
        seeds: Vec<String>,
        announce_interval: Duration,
    ) {
        // One spare byte tells a datagram that was too long (and truncated) from one that
        // fits exactly.
        let mut recv_buf = vec![0u8; self.key.max_datagram + 1];
        let mut announce = AnnounceRounds::new(seeds, announce_interval);
        loop {
            let next_timer = self.timers.next_deadline();
            tokio::select! {
                command = commands.recv() => match command {
                    Some(Command::Leave) => {
                        self.leave().await;
                        return;
                    }
                    None => return,
                },
                received = self.socket.recv_from(&mut recv_buf) => match received {
                    Ok((len, from)) => self.handle_datagram(&recv_buf[..len], from).await,
                    Err(error) => {
                        tracing::debug!(%error, "membership: receive failed");
                        tokio::time::sleep(RECV_ERROR_BACKOFF).await;
                    }
                },
                () = tokio::time::sleep_until(next_timer.unwrap_or_else(Instant::now)),
                    if next_timer.is_some() =>
                {
                    self.fire_due_timers().await;
                }
                addrs = announce.next() => self.announce_to(addrs).await,
            }
        }
    }

    /// Opens a datagram and hands its payload to foca.
    async fn handle_datagram(&mut self, datagram: &[u8], from: SocketAddr) {
        if self.shared.cut_off(from) {
            return;
        }
        match self.key.open(datagram) {
            Ok(payload) => {
                let result = self.foca.handle_data(payload, &mut self.runtime);
                self.after_call("handle_data", result).await;
            }
            Err(error) => {
                let refused = self
                    .shared
                    .refused_datagrams
                    .fetch_add(1, AtomicOrdering::Relaxed)
                    + 1;
                self.refused_warnings.log(from, error, refused);
            }
        }
    }

    /// Delivers the timers that are due (at most [`MAX_TIMERS_PER_WAKE`]).
    async fn fire_due_timers(&mut self) {
        let now = Instant::now();
        for _ in 0..MAX_TIMERS_PER_WAKE {
            let Some(timer) = self.timers.pop_due(now) else {
                break;
            };
            let result = self.foca.handle_timer(timer, &mut self.runtime);
            self.after_call("handle_timer", result).await;
        }
    }

    /// Announces to the resolved seeds, except ourselves and members already alive.
    async fn announce_to(&mut self, addrs: Vec<SocketAddr>) {
        for addr in addrs {
            if addr == self.foca.identity().addr || self.view.is_alive(&addr) {
                continue;
            }
            let result = self
                .foca
                .announce(MemberId::placeholder(addr), &mut self.runtime);
            self.after_call("announce", result).await;
        }
    }

    /// Leaves the cluster and flushes the resulting datagrams: a leave notice first, so
    /// that it travels with the `Down` that `leave_cluster` gossips.
    async fn leave(&mut self) {
        let notice = leave_notice::encode(self.foca.identity().incarnation);
        if let Err(error) = self.foca.add_broadcast(&notice) {
            log_foca_error("add_broadcast", &error);
        }
        let result = self.foca.leave_cluster(&mut self.runtime);
        self.after_call("leave_cluster", result).await;
        tracing::debug!("membership: left the cluster");
    }

    /// Logs a failed foca call, then drains its output.
    async fn after_call(&mut self, call: &'static str, result: Result<(), foca::Error>) {
        if let Err(error) = result {
            log_foca_error(call, &error);
        }
        self.drain().await;
    }

    /// Drains foca's output after a call: sends, then timers, then notifications.
    async fn drain(&mut self) {
        while let Some((to, payload)) = self.runtime.to_send() {
            if self.shared.cut_off(to.addr) {
                continue;
            }
            self.key.seal(&payload, &mut self.send_buf);
            if let Err(error) = self.socket.send_to(&self.send_buf, to.addr).await {
                tracing::debug!(to = %to.addr, %error, "membership: send failed");
            }
        }

        let now = Instant::now();
        while let Some((after, timer)) = self.runtime.to_schedule() {
            self.timers.push(now + after, timer);
        }

        let mut notifications = Vec::new();
        while let Some(notification) = self.runtime.to_notify() {
            notifications.push(notification);
        }
        debug_assert_eq!(self.runtime.backlog(), 0, "foca output left undrained");
        if !notifications.is_empty() {
            self.view.apply(notifications, &mut self.pending_events);
        }
        self.tell_departures();
        if self.pending_events.is_empty() {
            return;
        }
        // Publish first, so a consumer reacting to an event sees it in `members()`.
        self.shared.members.store(Arc::new(self.view.members()));
        for event in self.pending_events.drain(..) {
            tracing::debug!(?event, "membership: event");
            // A dropped receiver only means nobody listens any more.
            let _ = self.events.send(event);
        }
    }
}

impl Driver {
    /// Turns the `Down` of a member that announced it leaves into `Left`, and reports a
    /// notice that came after its member's down as `LeftEarlier`.
    fn tell_departures(&mut self) {
        let fresh = self.departures.take_fresh();
        for event in &mut self.pending_events {
            if let MembershipEvent::Down(member) = event
                && self.departures.has_left(member.incarnation)
            {
                *event = MembershipEvent::Left(member.clone());
            }
        }
        let me = self.foca.identity().incarnation;
        for incarnation in fresh {
            let reported = self
                .pending_events
                .iter()
                .any(|e| matches!(e, MembershipEvent::Left(m) if m.incarnation == incarnation));
            let alive = self
                .view
                .members()
                .iter()
                .any(|m| m.incarnation == incarnation);
            if !reported && !alive && incarnation != me {
                self.pending_events
                    .push(MembershipEvent::LeftEarlier(incarnation));
            }
        }
    }
}

/// Logs a foca error. Errors caused by what peers send are expected on an open port and
/// logged at debug; the ones foca flags as integration bugs at warn. None stops the task.
fn log_foca_error(call: &'static str, error: &foca::Error) {
    match error {
        foca::Error::NotConnected
        | foca::Error::IncompleteProbeCycle
        | foca::Error::Encode(_)
        | foca::Error::InvalidConfig => {
            tracing::warn!(call, %error, "membership: foca error ignored");
        }
        _ => tracing::debug!(call, %error, "membership: foca error ignored"),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;
    use std::time::{SystemTime, UNIX_EPOCH};

    use tokio::sync::mpsc::UnboundedReceiver;
    use tokio::time::timeout;

    use super::*;

    /// Upper bound of every wait in these tests.
    const WAIT: Duration = Duration::from_secs(15);

    const SECRET: &[u8] = b"cluster secret";

    const CLUSTER: &str = "test";

    fn now_ms() -> u64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_millis() as u64
    }

    /// A running member for the tests.
    struct TestNode {
        id: MemberId,
        handle: MembershipHandle,
        events: UnboundedReceiver<MembershipEvent>,
    }

    fn config(seeds: &[SocketAddr], secret: &[u8]) -> MembershipConfig {
        MembershipConfig {
            seeds: seeds.iter().map(ToString::to_string).collect(),
            secret: secret.to_vec(),
            cluster: CLUSTER.to_owned(),
            ..MembershipConfig::fast_for_tests()
        }
    }

    async fn start_on(
        socket: UdpSocket,
        name: &str,
        started_at_ms: u64,
        config: MembershipConfig,
    ) -> TestNode {
        let id = MemberId {
            addr: socket.local_addr().unwrap(),
            incarnation: rand::random(),
            name: name.to_owned(),
            started_at_ms,
            bump: 0,
        };
        let (tx, events) = mpsc::unbounded_channel();
        let handle = spawn_membership(id.clone(), socket, config, tx);
        TestNode { id, handle, events }
    }

    async fn start(name: &str, config: MembershipConfig) -> TestNode {
        let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        start_on(socket, name, now_ms(), config).await
    }

    /// Waits (at most [`WAIT`]) for an event matching `wanted` and returns it with every
    /// event received before it.
    async fn wait_for(
        events: &mut UnboundedReceiver<MembershipEvent>,
        what: &str,
        wanted: impl Fn(&MembershipEvent) -> bool,
    ) -> Vec<MembershipEvent> {
        let mut seen = Vec::new();
        let found = timeout(WAIT, async {
            while let Some(event) = events.recv().await {
                let done = wanted(&event);
                seen.push(event);
                if done {
                    return true;
                }
            }
            false
        })
        .await;
        assert_eq!(
            found,
            Ok(true),
            "no event `{what}` within {WAIT:?}; saw {seen:?}"
        );
        seen
    }

    /// Waits until `node` has reported every one of `others` up.
    async fn wait_all_up(node: &mut TestNode, others: &[&MemberId]) {
        let mut missing: HashSet<u64> = others.iter().map(|id| id.incarnation).collect();
        let what = format!("{} sees all others up", node.id.name);
        let found = timeout(WAIT, async {
            while !missing.is_empty() {
                match node.events.recv().await {
                    Some(MembershipEvent::Up(up)) => {
                        missing.remove(&up.incarnation);
                    }
                    Some(MembershipEvent::Down(down)) => {
                        // A false suspicion under load: it will rejoin.
                        if others.iter().any(|id| id.incarnation == down.incarnation) {
                            missing.insert(down.incarnation);
                        }
                    }
                    Some(MembershipEvent::Left(_) | MembershipEvent::LeftEarlier(_)) => {}
                    None => return false,
                }
            }
            true
        })
        .await;
        assert_eq!(found, Ok(true), "{what}: still missing {missing:?}");
    }

    async fn wait_until(what: &str, mut condition: impl FnMut() -> bool) {
        let reached = timeout(WAIT, async {
            while !condition() {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .await;
        assert!(reached.is_ok(), "not reached within {WAIT:?}: {what}");
    }

    /// Three members: `a` alone, `b` and `c` seeded with `a`.
    async fn three(config_for: impl Fn(&[SocketAddr]) -> MembershipConfig) -> [TestNode; 3] {
        let mut a = start("a", config_for(&[])).await;
        let mut b = start("b", config_for(&[a.id.addr])).await;
        let mut c = start("c", config_for(&[a.id.addr])).await;
        let (ida, idb, idc) = (a.id.clone(), b.id.clone(), c.id.clone());
        wait_all_up(&mut a, &[&idb, &idc]).await;
        wait_all_up(&mut b, &[&ida, &idc]).await;
        wait_all_up(&mut c, &[&ida, &idb]).await;
        [a, b, c]
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn three_members_with_seeds_find_each_other() {
        // `three` waits until each one has reported the two others up.
        let [a, b, c] = three(|seeds| {
            let mut config = config(seeds, SECRET);
            // DNS names are resolved, and a seed that never resolves is skipped.
            config.seeds.extend(
                seeds
                    .iter()
                    .map(|addr| format!("localhost:{}", addr.port())),
            );
            config.seeds.push("no-such-host.invalid:7400".to_owned());
            config
        })
        .await;
        for (node, others) in [(&a, [&b, &c]), (&b, [&a, &c]), (&c, [&a, &b])] {
            let mut expected: Vec<MemberId> = others.iter().map(|other| other.id.clone()).collect();
            expected.sort_unstable_by_key(|id| id.addr);
            wait_until(&format!("{} lists the others", node.id.name), || {
                let members: Vec<_> = node
                    .handle
                    .members()
                    .into_iter()
                    .map(|m| m.incarnation)
                    .collect();
                members == expected.iter().map(|m| m.incarnation).collect::<Vec<_>>()
            })
            .await;
        }
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn aborted_member_is_reported_down_by_the_others() {
        let [mut a, mut b, c] = three(|seeds| config(seeds, SECRET)).await;
        let dead = c.id.clone();
        drop(c);
        for node in [&mut a, &mut b] {
            wait_for(&mut node.events, "Down(c)", |event| {
                matches!(event, MembershipEvent::Down(down) if down.incarnation == dead.incarnation)
            })
            .await;
            assert!(
                node.handle
                    .members()
                    .iter()
                    .all(|m| m.incarnation != dead.incarnation)
            );
        }
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn member_restarted_on_the_same_address_replaces_the_old_one() {
        let mut a = start("a", config(&[], SECRET)).await;
        let mut b = start("b", config(&[a.id.addr], SECRET)).await;
        let (ida, old) = (a.id.clone(), b.id.clone());
        wait_all_up(&mut a, &[&old]).await;
        wait_all_up(&mut b, &[&ida]).await;

        drop(b);
        // The aborted task releases the port shortly after.
        let socket = timeout(WAIT, async {
            loop {
                match UdpSocket::bind(old.addr).await {
                    Ok(socket) => return socket,
                    Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
                }
            }
        })
        .await
        .expect("the old member's port is released");
        let mut b2 = start_on(
            socket,
            "b",
            old.started_at_ms + 1,
            config(&[ida.addr], SECRET),
        )
        .await;
        let new = b2.id.clone();
        assert_ne!(new.incarnation, old.incarnation);

        let seen = wait_for(
            &mut a.events,
            "Up(new b)",
            |event| matches!(event, MembershipEvent::Up(up) if up.incarnation == new.incarnation),
        )
        .await;
        let down_old = seen
            .iter()
            .position(|event| matches!(event, MembershipEvent::Down(down) if down.incarnation == old.incarnation));
        assert!(
            down_old.is_some(),
            "Down(old) comes before Up(new): {seen:?}"
        );
        assert_eq!(
            a.handle
                .members()
                .into_iter()
                .map(|m| m.incarnation)
                .collect::<Vec<_>>(),
            vec![new.incarnation]
        );
        wait_all_up(&mut b2, &[&ida]).await;
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn member_with_the_wrong_secret_is_never_seen_up() {
        let mut a = start("a", config(&[], SECRET)).await;
        let mut b = start("b", config(&[a.id.addr], SECRET)).await;
        let (ida, idb) = (a.id.clone(), b.id.clone());
        wait_all_up(&mut a, &[&idb]).await;
        wait_all_up(&mut b, &[&ida]).await;

        let mut intruder = start("intruder", config(&[ida.addr, idb.addr], b"wrong secret")).await;
        // The intruder's announces reach both and are refused, round after round.
        wait_until("a and b refuse several of the intruder's datagrams", || {
            a.handle.refused_datagrams() >= 4 && b.handle.refused_datagrams() >= 4
        })
        .await;

        let intruder_id = intruder.id.incarnation;
        for node in [&mut a, &mut b] {
            while let Ok(event) = node.events.try_recv() {
                assert!(
                    !matches!(&event, MembershipEvent::Up(up) if up.incarnation == intruder_id),
                    "{} saw the intruder up",
                    node.id.name
                );
            }
            assert!(
                node.handle
                    .members()
                    .iter()
                    .all(|m| m.incarnation != intruder_id)
            );
        }
        assert!(
            intruder.events.try_recv().is_err(),
            "the intruder saw nobody"
        );
        assert!(intruder.handle.members().is_empty());
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn clusters_with_the_same_secret_and_other_names_never_see_each_other() {
        /// Two members seeded with each other, in clusters `x` and `y`.
        async fn pair(x: &str, y: &str) -> (TestNode, TestNode) {
            let (sa, sb) = (
                UdpSocket::bind("127.0.0.1:0").await.unwrap(),
                UdpSocket::bind("127.0.0.1:0").await.unwrap(),
            );
            let (aa, ab) = (sa.local_addr().unwrap(), sb.local_addr().unwrap());
            let in_cluster = |seed, cluster: &str| MembershipConfig {
                cluster: cluster.to_owned(),
                ..config(&[seed], SECRET)
            };
            (
                start_on(sa, "a", now_ms(), in_cluster(ab, x)).await,
                start_on(sb, "b", now_ms(), in_cluster(aa, y)).await,
            )
        }

        let (mut a, mut b) = pair("prod", "staging").await;
        wait_until("a and b refuse several of each other's datagrams", || {
            a.handle.refused_datagrams() >= 4 && b.handle.refused_datagrams() >= 4
        })
        .await;
        for node in [&mut a, &mut b] {
            assert!(
                node.events.try_recv().is_err(),
                "{} saw another cluster's member",
                node.id.name
            );
            assert!(node.handle.members().is_empty());
        }

        let (mut a, mut b) = pair("prod", "prod").await;
        let (ida, idb) = (a.id.clone(), b.id.clone());
        wait_all_up(&mut a, &[&idb]).await;
        wait_all_up(&mut b, &[&ida]).await;
        assert_eq!(a.handle.refused_datagrams(), 0);
        assert_eq!(b.handle.refused_datagrams(), 0);
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn leave_makes_the_others_see_down_promptly() {
        // Failure detection slower than the test's wait: a Down within it comes from the
        // leave, not from probing.
        let slow_detection = |seeds: &[SocketAddr]| {
            let mut config = config(seeds, SECRET);
            config.foca.suspect_to_down_after = Duration::from_secs(60);
            config
        };
        let [mut a, mut b, c] = three(slow_detection).await;
        let leaving = c.id.clone();
        timeout(WAIT, c.handle.leave())
            .await
            .expect("leave completes");
        for node in [&mut a, &mut b] {
            wait_for(&mut node.events, "Left(c) after leave", |event| {
                matches!(event, MembershipEvent::Left(left) if left.incarnation == leaving.incarnation)
            })
            .await;
        }
    }
}
