//! Membership and failure detection: SWIM (the `foca` crate) over UDP.
//!
//! One task per node owns the [`Foca`] instance and its UDP socket. Every input (a
//! datagram, a due timer, an announce round to the seeds, a leave request) arrives
//! through one `select!` loop, is handed to foca, and after each foca call the task
//! drains foca's output in a fixed order: datagrams to send, then timers to arm (one
//! min-heap scheduler), then notifications, which become [`MembershipEvent`]s. foca
//! reads no clock and does no IO; this module is the thin shell that does.
//!
//! # What the transport layer gets
//!
//! - [`spawn_membership`] starts the task and returns a [`MembershipHandle`]:
//!   [`MembershipHandle::members`] reads the members currently alive (no task hop),
//!   [`MembershipHandle::leave`] leaves gracefully, dropping the handle aborts.
//! - [`MembershipEvent::Up`] and [`MembershipEvent::Down`] on an unbounded channel. A
//!   `Down(m)` always carries exactly the `m` of the earlier `Up(m)`, so a consumer can key
//!   its state by the whole [`MemberId`] or by its incarnation.
//!
//! # Wire format and authentication
//!
//! Each datagram is a foca packet (postcard codec, at most
//! [`foca::Config::max_packet_size`] bytes) followed by a 16-byte MAC: the first 16 bytes
//! of the blake3 keyed hash of the packet, keyed by
//! `blake3::derive_key("roster membership v2", material)`, where `material` is the secret
//! and the cluster name, each preceded by its length (u64, little endian), then the
//! protocol version (u16, little endian). So nodes with another secret, cluster name or
//! protocol version never see each other. A datagram with a bad MAC is refused before
//! anything decodes it: counted ([`MembershipHandle::refused_datagrams`]) and logged, at
//! warn at most once per 10 s for the whole node (the rest at debug). The secret never
//! goes on the wire. The MAC gives authenticity, not freshness: a captured datagram can
//! be replayed, which SWIM tolerates (stale incarnations and probe numbers are ignored).
//!
//! # Identity and restarts
//!
//! A [`MemberId`] is the cluster address plus the node instance (its incarnation and
//! start time). When two identities share an address, the one with the greater
//! `(started_at_ms, incarnation, bump)` wins ([`foca::Identity::win_addr_conflict`]): a
//! restarted node replaces its previous instance, reported as `Down(old)` then `Up(new)`.
//! A node wrongly declared down renews itself (`bump + 1`, same incarnation) and rejoins.

use std::cmp::{Ordering, Reverse};
use std::collections::{BinaryHeap, HashMap};
use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::num::{NonZeroU32, NonZeroUsize};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering as AtomicOrdering};
use std::time::Duration;

use arc_swap::ArcSwap;
use foca::{AccumulatingRuntime, Foca, NoCustomBroadcast, OwnedNotification, PostcardCodec, Timer};
use rand::SeedableRng;
use rand::rngs::StdRng;
use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tokio::task::{JoinHandle, JoinSet};
use tokio::time::Instant;

use crate::replication::PROTOCOL_VERSION;

/// Length of the MAC appended to every datagram, in bytes.
const MAC_LEN: usize = 16;

/// blake3 key-derivation context of the datagram MAC key; change it to change the wire
/// format incompatibly. (v1 derived the key from the secret alone.)
const MAC_CONTEXT: &str = "roster membership v2";

/// Cluster size `MembershipConfig::default` tunes foca for (`Config::new_lan(32)`). foca
/// scales retransmissions and suspicion with the logarithm of this figure, so being off
/// by a factor of a few costs little.
const DEFAULT_CLUSTER_SIZE: NonZeroU32 = NonZeroU32::new(32).unwrap();

/// Default interval between announce rounds to the seeds.
const DEFAULT_ANNOUNCE_INTERVAL: Duration = Duration::from_secs(5);

/// Smallest announce interval used; a smaller configured value (zero included) is raised
/// to this, since a zero-period ticker is meaningless.
const MIN_ANNOUNCE_INTERVAL: Duration = Duration::from_millis(10);

/// How long one seed's DNS resolution may take before that seed is skipped for the round.
/// Chosen to match the resolver's usual 5 s per-query timeout; seeds resolve concurrently,
/// so a slow one never delays the others.
const SEED_RESOLVE_TIMEOUT: Duration = Duration::from_secs(5);

/// Most timers delivered per wake of the loop before it gives the other inputs a turn
/// (foca arms a handful of timers per probe period, so this is only ever reached after a
/// long stall).
const MAX_TIMERS_PER_WAKE: usize = 256;

/// Pause after a failed `recv_from`, so a persistent socket error cannot spin the task.
const RECV_ERROR_BACKOFF: Duration = Duration::from_millis(10);

/// At most one warn line per this interval about refused datagrams, for the whole node
/// (the others go to debug). Long enough that a misconfigured node announcing every few
/// seconds cannot flood the log, short enough that the problem shows soon after start.
const REFUSED_WARN_INTERVAL: Duration = Duration::from_secs(10);

/// Identity of a member as SWIM sees it.
#[derive(Clone, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[allow(dead_code)] // used by the transport layer (in progress)
pub(crate) struct MemberId {
    /// Cluster address of the node: its TCP listener and its UDP membership socket share
    /// this address (same IP and port).
    pub(crate) addr: SocketAddr,
    /// The node's incarnation (random u64 per start; identifies the Roster node instance).
    pub(crate) incarnation: u64,
    /// Human node name. It travels in every membership update, so keep it short (a few
    /// dozen bytes).
    pub(crate) name: String,
    /// Milliseconds since the Unix epoch when this node instance started (decides address
    /// conflicts: the newer start wins).
    pub(crate) started_at_ms: u64,
    /// foca renewal counter: bumped by [`foca::Identity::renew`] when this node learns it
    /// was wrongly declared down, so it rejoins with the same incarnation.
    pub(crate) bump: u32,
}

impl MemberId {
    /// The key that decides address conflicts: greater wins.
    fn conflict_rank(&self) -> (u64, u64, u32) {
        (self.started_at_ms, self.incarnation, self.bump)
    }

    /// A stand-in identity for an address whose member is unknown (a seed). foca accepts
    /// an announce addressed to any identity with its address.
    fn placeholder(addr: SocketAddr) -> Self {
        Self {
            addr,
            incarnation: 0,
            name: String::new(),
            started_at_ms: 0,
            bump: 0,
        }
    }
}

impl foca::Identity for MemberId {
    type Addr = SocketAddr;

    /// The same node instance with `bump + 1`, which wins the address conflict against
    /// `self`; `None` once `bump` is `u32::MAX` (foca then goes defunct instead).
    fn renew(&self) -> Option<Self> {
        let bump = self.bump.checked_add(1)?;
        Some(Self {
            bump,
            ..self.clone()
        })
    }

    fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `self` wins if its `(started_at_ms, incarnation, bump)` is greater; equal ranks
    /// never win, so foca keeps the identity it already knows.
    fn win_addr_conflict(&self, adversary: &Self) -> bool {
        self.conflict_rank() > adversary.conflict_rank()
    }
}

/// A change in the set of live members, as reported to the transport layer.
#[derive(Clone, Debug, PartialEq, Eq)]
#[allow(dead_code)] // used by the transport layer (in progress)
pub(crate) enum MembershipEvent {
    /// A member (other than ourselves) is up. Emitted when a member is first seen alive,
    /// and again only after a `Down` for it (a member wrongly declared down that rejoins
    /// comes back with the same incarnation and a greater `bump`). A renewal while the
    /// member is alive emits nothing.
    Up(MemberId),
    /// A member was declared down by SWIM (failure or graceful leave), or replaced by a new
    /// incarnation at the same address (then `Down(old)` comes before `Up(new)`). Carries
    /// exactly the identity of the matching `Up`.
    Down(MemberId),
}

/// Settings of the membership task.
#[allow(dead_code)] // used by the transport layer (in progress)
pub(crate) struct MembershipConfig {
    /// Seeds: `"host:port"` strings. DNS names are resolved again at every announce round
    /// (`tokio::net::lookup_host`, concurrently, at most 5 s each). Unresolvable seeds are
    /// logged at debug and skipped for the round, never fatal. Our own address and members
    /// already alive are not announced to.
    ///
    /// Start value: empty (a lone node until someone announces to it).
    pub(crate) seeds: Vec<String>,
    /// How often to announce to the seeds; this is also what re-merges a healed partition.
    /// The first round runs at start.
    ///
    /// Trade-off: shorter re-merges faster and costs one small datagram per seed and round
    /// (plus a reply of up to `max_packet_size`). Values under 10 ms (zero included) are
    /// raised to 10 ms. Start value: 5 s.
    pub(crate) announce_interval: Duration,
    /// foca's own settings (probe period, suspicion, gossip, packet size).
    /// `max_packet_size` bounds the foca packet; each datagram adds the 16-byte MAC, so it
    /// must stay at most 65 491 (UDP's 65 507 minus the MAC), and under the path MTU minus
    /// 16 to avoid IP fragmentation.
    ///
    /// Start value: `foca::Config::new_lan(32)` (1 s probe period, 1400-byte packets).
    pub(crate) foca: foca::Config,
    /// Shared cluster secret material. Every datagram carries a 16-byte MAC keyed by a key
    /// derived from it; datagrams with a bad MAC are refused, counted and logged (warn,
    /// rate-limited), never decoded. The secret never goes on the wire. Nodes with
    /// different secrets never see each other. Any length works, an empty secret included
    /// (then it only separates clusters, it does not authenticate).
    ///
    /// Start value: empty.
    pub(crate) secret: Vec<u8>,
    /// Name of the cluster (`ClusterConfig::cluster_name`). The MAC key is derived from it
    /// too, with the secret and the protocol version: nodes of clusters with other names
    /// never see each other, even with the same secret, and count each other's datagrams
    /// as refused.
    ///
    /// Start value: empty.
    pub(crate) cluster: String,
}

impl Default for MembershipConfig {
    fn default() -> Self {
        Self {
            seeds: Vec::new(),
            announce_interval: DEFAULT_ANNOUNCE_INTERVAL,
            foca: foca::Config::new_lan(DEFAULT_CLUSTER_SIZE),
            secret: Vec::new(),
            cluster: String::new(),
        }
    }
}

impl MembershipConfig {
    /// Settings for tests and demos on loopback or a quiet LAN: a dead member is declared
    /// down within about 1.5 s (200 ms probe period, 80 ms probe RTT, 800 ms suspicion,
    /// gossip every 50 ms, seeds announced every 500 ms). More probe traffic and more
    /// false suspicions under load than [`MembershipConfig::default`].
    #[allow(dead_code)] // used by the transport layer (in progress)
    pub(crate) fn fast_for_tests() -> Self {
        let mut foca = foca::Config::new_lan(NonZeroU32::new(8).unwrap());
        foca.probe_period = Duration::from_millis(200);
        foca.probe_rtt = Duration::from_millis(80);
        foca.suspect_to_down_after = Duration::from_millis(800);
        foca.periodic_gossip = Some(foca::PeriodicParams {
            frequency: Duration::from_millis(50),
            num_members: NonZeroUsize::new(3).unwrap(),
        });
        foca.periodic_announce = Some(foca::PeriodicParams {
            frequency: Duration::from_secs(1),
            num_members: NonZeroUsize::new(1).unwrap(),
        });
        foca.periodic_announce_to_down_members = Some(foca::PeriodicParams {
            frequency: Duration::from_secs(2),
            num_members: NonZeroUsize::new(2).unwrap(),
        });
        Self {
            seeds: Vec::new(),
            announce_interval: Duration::from_millis(500),
            foca,
            secret: Vec::new(),
            cluster: String::new(),
        }
    }
}

/// Why a received datagram was dropped. Every case is detected before foca sees the
/// bytes, so no membership state changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub(crate) enum DatagramError {
    /// Shorter than the MAC itself.
    #[error("datagram of {len} bytes is shorter than its {MAC_LEN}-byte MAC")]
    TooShort {
        /// Length received.
        len: usize,
    },
    /// Longer than the largest foca packet plus the MAC (possibly truncated by the OS).
    #[error("datagram of at least {len} bytes exceeds the {max}-byte limit")]
    TooLong {
        /// Length received.
        len: usize,
        /// Largest datagram accepted.
        max: usize,
    },
    /// The MAC does not match: another cluster's secret, name or protocol version,
    /// corruption or forgery.
    #[error(
        "datagram MAC mismatch: the sender has another cluster secret, cluster name or \
         protocol version (check its configuration and seeds), or the datagram was \
         corrupted or forged"
    )]
    BadMac,
}

/// Seals outgoing and opens incoming datagrams with the cluster MAC.
pub(crate) struct DatagramKey {
    /// See [`DatagramKey::derive`].
    key: [u8; 32],
    /// Largest datagram accepted: foca's `max_packet_size` plus the MAC.
    max_datagram: usize,
}

impl DatagramKey {
    /// The key of this node's cluster: its secret and name, this protocol version.
    pub(crate) fn new(secret: &[u8], cluster: &str, max_packet_size: usize) -> Self {
        Self {
            key: Self::derive(secret, cluster, PROTOCOL_VERSION),
            max_datagram: max_packet_size.saturating_add(MAC_LEN),
        }
    }

    /// `blake3::derive_key(MAC_CONTEXT, material)`, `material` being the secret and the
    /// cluster name, each after its length, then the version: no two different inputs
    /// give the same material.
    fn derive(secret: &[u8], cluster: &str, version: u16) -> [u8; 32] {
        let mut hasher = blake3::Hasher::new_derive_key(MAC_CONTEXT);
        for part in [secret, cluster.as_bytes()] {
            hasher.update(&(part.len() as u64).to_le_bytes());
            hasher.update(part);
        }
        hasher.update(&version.to_le_bytes());
        *hasher.finalize().as_bytes()
    }

    /// The truncated MAC of `payload`.
    fn mac(&self, payload: &[u8]) -> [u8; MAC_LEN] {
        let hash = blake3::keyed_hash(&self.key, payload);
        let mut mac = [0; MAC_LEN];
        mac.copy_from_slice(&hash.as_bytes()[..MAC_LEN]);
        mac
    }

    /// Replaces `out` with `payload` followed by its MAC.
    pub(crate) fn seal(&self, payload: &[u8], out: &mut Vec<u8>) {
        out.clear();
        out.extend_from_slice(payload);
        out.extend_from_slice(&self.mac(payload));
    }

    /// Checks a received datagram and returns its foca payload.
    pub(crate) fn open<'a>(&self, datagram: &'a [u8]) -> Result<&'a [u8], DatagramError> {
        let len = datagram.len();
        if len < MAC_LEN {
            return Err(DatagramError::TooShort { len });
        }
        if len > self.max_datagram {
            return Err(DatagramError::TooLong {
                len,
                max: self.max_datagram,
            });
        }
        let (payload, mac) = datagram.split_at(len - MAC_LEN);
        let expected = self.mac(payload);
        // Constant time: the position of the first wrong byte must not leak.
        let diff = expected
            .iter()
            .zip(mac)
            .fold(0u8, |acc, (a, b)| acc | (a ^ b));
        if diff == 0 {
            Ok(payload)
        } else {
            Err(DatagramError::BadMac)
        }
    }
}

/// rand 0.9's `StdRng` behind the rand 0.10 core traits foca 2 is generic over.
struct FocaRng(StdRng);

impl rand_core::TryRng for FocaRng {
    type Error = Infallible;

    fn try_next_u32(&mut self) -> Result<u32, Infallible> {
        Ok(rand::RngCore::next_u32(&mut self.0))
    }

    fn try_next_u64(&mut self) -> Result<u64, Infallible> {
        Ok(rand::RngCore::next_u64(&mut self.0))
    }

    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Infallible> {
        rand::RngCore::fill_bytes(&mut self.0, dst);
        Ok(())
    }
}

/// A foca timer waiting for its deadline.
struct Scheduled {
    /// When to hand the timer back to foca.
    at: Instant,
    /// The timer itself.
    timer: Timer<MemberId>,
    /// Submission order, the last tie-break.
    seq: u64,
}

impl Scheduled {
    /// Deadline first; at equal deadlines foca's own timer order (indirect probes before
    /// the next probe), then submission order.
    fn key_cmp(&self, other: &Self) -> Ordering {
        self.at
            .cmp(&other.at)
            .then_with(|| self.timer.cmp(&other.timer))
            .then_with(|| self.seq.cmp(&other.seq))
    }
}

impl PartialEq for Scheduled {
    fn eq(&self, other: &Self) -> bool {
        self.key_cmp(other) == Ordering::Equal
    }
}

impl Eq for Scheduled {}

impl PartialOrd for Scheduled {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Scheduled {
    fn cmp(&self, other: &Self) -> Ordering {
        self.key_cmp(other)
    }
}

/// Min-heap of foca timers: every timer foca asks for is delivered, in deadline order.
#[derive(Default)]
struct TimerQueue {
    /// Pending timers, earliest on top.
    heap: BinaryHeap<Reverse<Scheduled>>,
    /// Next submission number.
    next_seq: u64,
}

impl TimerQueue {
    /// Arms `timer` for `at`.
    fn push(&mut self, at: Instant, timer: Timer<MemberId>) {
        let seq = self.next_seq;
        self.next_seq += 1;
        self.heap.push(Reverse(Scheduled { at, timer, seq }));
    }

    /// The earliest deadline, if any timer is pending.
    fn next_deadline(&self) -> Option<Instant> {
        self.heap.peek().map(|Reverse(scheduled)| scheduled.at)
    }

    /// Removes and returns the earliest timer if it is due at `now`.
    fn pop_due(&mut self, now: Instant) -> Option<Timer<MemberId>> {
        if self.next_deadline()? > now {
            return None;
        }
        self.heap.pop().map(|Reverse(scheduled)| scheduled.timer)
    }
}

/// The members this node reports alive, and the rules that turn foca notifications into
/// [`MembershipEvent`]s. Keyed by address: foca keeps one identity per address.
#[derive(Debug, Default)]
struct MemberView {
    /// Members reported `Up` and not yet `Down`, as they were reported.
    alive: HashMap<SocketAddr, MemberId>,
}

impl MemberView {
    /// Applies the notifications of one foca call, in order, appending the resulting
    /// events to `events`.
    ///
    /// foca follows `Rename(old, new)` with `MemberUp(new)` or `MemberDown(new)` when the
    /// liveness at that address changed; a lone `Rename` means it did not. So a `Rename`
    /// followed by such a notification is left to it, and a lone `Rename` of a live member
    /// to a new incarnation is a replacement (`Down(old)`, `Up(new)`); a lone `Rename` to
    /// the same incarnation (a renewal) changes nothing.
    fn apply(
        &mut self,
        notifications: Vec<OwnedNotification<MemberId>>,
        events: &mut Vec<MembershipEvent>,
    ) {
        let mut notifications = notifications.into_iter().peekable();
        while let Some(notification) = notifications.next() {
            match notification {
                OwnedNotification::MemberUp(member) => self.set_alive(member, events),
                OwnedNotification::MemberDown(member) => self.set_down(member.addr, events),
                OwnedNotification::Rename(old, new) => {
                    let liveness_follows = matches!(
                        notifications.peek(),
                        Some(OwnedNotification::MemberUp(next) | OwnedNotification::MemberDown(next))
                            if *next == new
                    );
                    tracing::debug!(?old, ?new, "membership: member renamed");
                    if !liveness_follows && self.alive.contains_key(&new.addr) {
                        self.set_alive(new, events);
                    }
                }
                OwnedNotification::Active => {
                    tracing::debug!("membership: known by the cluster");
                }
                OwnedNotification::Idle => {
                    tracing::debug!("membership: no live member left");
                }
                OwnedNotification::Rejoin(id) => {
                    tracing::info!(
                        bump = id.bump,
                        "membership: declared down by the cluster; rejoined"
                    );
                }
                OwnedNotification::Defunct => {
                    tracing::warn!(
                        "membership: declared down and cannot renew; this node is out of the cluster"
                    );
                }
            }
        }
    }

    /// `member` is alive: reports it unless its incarnation is already reported at its
    /// address, replacing (and reporting down) another incarnation there.
    fn set_alive(&mut self, member: MemberId, events: &mut Vec<MembershipEvent>) {
        match self.alive.get(&member.addr) {
            Some(known) if known.incarnation == member.incarnation => {}
            Some(_) => {
                self.set_down(member.addr, events);
                self.alive.insert(member.addr, member.clone());
                events.push(MembershipEvent::Up(member));
            }
            None => {
                self.alive.insert(member.addr, member.clone());
                events.push(MembershipEvent::Up(member));
            }
        }
    }

    /// The member at `addr` is down: reports the identity reported up there, if any.
    fn set_down(&mut self, addr: SocketAddr, events: &mut Vec<MembershipEvent>) {
        if let Some(known) = self.alive.remove(&addr) {
            events.push(MembershipEvent::Down(known));
        }
    }

    /// The live members, ordered by address.
    fn members(&self) -> Vec<MemberId> {
        let mut members: Vec<MemberId> = self.alive.values().cloned().collect();
        members.sort_unstable_by_key(|member| member.addr);
        members
    }
}

/// Rate limit of the warn line about refused datagrams: one line per
/// [`REFUSED_WARN_INTERVAL`] for the whole node, whatever the source, carrying how many
/// refusals it suppressed since the previous line. Not per source: sources are spoofable,
/// so a per-source limit would need memory without bound.
#[derive(Debug, Default)]
struct RefusedWarnings {
    /// When the last warn line went out.
    last: Option<Instant>,
    /// Refusals since then that got no warn line.
    suppressed: u64,
}

impl RefusedWarnings {
    /// Records a refusal at `now`. `Some(suppressed)` if it gets a warn line, with the
    /// number of refusals suppressed since the previous one; `None` if it is suppressed.
    fn admit(&mut self, now: Instant) -> Option<u64> {
        match self.last {
            Some(last) if now.saturating_duration_since(last) < REFUSED_WARN_INTERVAL => {
                self.suppressed += 1;
                None
            }
            _ => {
                self.last = Some(now);
                Some(std::mem::take(&mut self.suppressed))
            }
        }
    }
}

/// State shared between the task and its handle.
struct Shared {
    /// Live members, republished by the task after every change.
    members: ArcSwap<Vec<MemberId>>,
    /// Datagrams refused before decoding (bad MAC, bad length).
    refused_datagrams: AtomicU64,
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
    });
    let (commands_tx, commands_rx) = mpsc::unbounded_channel();
    let max_packet_size = config.foca.max_packet_size.get();
    let rng = FocaRng(StdRng::seed_from_u64(me.incarnation));
    let driver = Driver {
        foca: Foca::new(me, config.foca, rng, PostcardCodec),
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
    let seeds: Arc<[String]> = config.seeds.into();
    let interval = config.announce_interval.max(MIN_ANNOUNCE_INTERVAL);
    let task = tokio::spawn(driver.run(commands_rx, seeds, interval));
    MembershipHandle {
        commands: commands_tx,
        shared,
        task: Some(task),
    }
}

/// A seed resolution round in flight.
type Resolving = Pin<Box<dyn Future<Output = Vec<SocketAddr>> + Send>>;

/// The membership task's state: foca and everything around it.
struct Driver {
    /// The SWIM state machine.
    foca: Foca<MemberId, PostcardCodec, FocaRng, NoCustomBroadcast>,
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
        seeds: Arc<[String]>,
        announce_interval: Duration,
    ) {
        // One spare byte tells a datagram that was too long (and truncated) from one that
        // fits exactly.
        let mut recv_buf = vec![0u8; self.key.max_datagram + 1];
        let mut announce = tokio::time::interval(announce_interval);
        announce.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut resolving: Option<Resolving> = None;
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
                _ = announce.tick(), if resolving.is_none() => {
                    resolving = Some(Box::pin(resolve_seeds(seeds.clone())));
                }
                addrs = async {
                    match resolving.as_mut() {
                        Some(round) => round.await,
                        None => std::future::pending().await,
                    }
                }, if resolving.is_some() => {
                    resolving = None;
                    self.announce_to(addrs).await;
                }
            }
        }
    }

    /// Opens a datagram and hands its payload to foca.
    async fn handle_datagram(&mut self, datagram: &[u8], from: SocketAddr) {
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
                match self.refused_warnings.admit(Instant::now()) {
                    Some(suppressed) => tracing::warn!(
                        %from,
                        %error,
                        refused,
                        suppressed,
                        "membership: datagram refused (this line is rate-limited: `suppressed` \
                         counts the refusals since the previous one)"
                    ),
                    None => tracing::debug!(%from, %error, refused, "membership: datagram refused"),
                }
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
            if addr == self.foca.identity().addr || self.view.alive.contains_key(&addr) {
                continue;
            }
            let result = self
                .foca
                .announce(MemberId::placeholder(addr), &mut self.runtime);
            self.after_call("announce", result).await;
        }
    }

    /// Leaves the cluster and flushes the resulting datagrams.
    async fn leave(&mut self) {
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
        if notifications.is_empty() {
            return;
        }
        self.view.apply(notifications, &mut self.pending_events);
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

/// Resolves every seed concurrently (at most [`SEED_RESOLVE_TIMEOUT`] each); seeds that do
/// not resolve are logged and skipped. Returns the addresses sorted, without duplicates.
async fn resolve_seeds(seeds: Arc<[String]>) -> Vec<SocketAddr> {
    let mut lookups = JoinSet::new();
    for seed in seeds.iter().cloned() {
        lookups.spawn(async move {
            let found =
                tokio::time::timeout(SEED_RESOLVE_TIMEOUT, tokio::net::lookup_host(seed.clone()))
                    .await;
            (seed, found)
        });
    }
    let mut addrs = Vec::new();
    while let Some(joined) = lookups.join_next().await {
        match joined {
            Ok((_, Ok(Ok(found)))) => addrs.extend(found),
            Ok((seed, Ok(Err(error)))) => {
                tracing::debug!(%seed, %error, "membership: seed did not resolve; skipped this round");
            }
            Ok((seed, Err(_))) => {
                tracing::debug!(%seed, "membership: seed resolution timed out; skipped this round");
            }
            Err(error) => tracing::debug!(%error, "membership: seed resolution failed"),
        }
    }
    addrs.sort_unstable();
    addrs.dedup();
    addrs
}

/// foca's decoder, run by a fresh member `me` (default configuration) on a packet: what
/// the membership task does with the payload of a datagram that passed the MAC check (for
/// [`crate::fuzzing`]). Never panics.
#[cfg(feature = "fuzzing")]
pub(crate) fn decode_packet(me: MemberId, payload: &[u8]) {
    let mut foca = Foca::new(
        me,
        MembershipConfig::default().foca,
        FocaRng(StdRng::seed_from_u64(1)),
        PostcardCodec,
    );
    let mut runtime = AccumulatingRuntime::new();
    let _ = foca.handle_data(payload, &mut runtime);
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;
    use std::time::{SystemTime, UNIX_EPOCH};

    use foca::Identity;
    use tokio::sync::mpsc::UnboundedReceiver;
    use tokio::time::timeout;

    use super::*;

    /// Upper bound of every wait in these tests.
    const WAIT: Duration = Duration::from_secs(15);

    const SECRET: &[u8] = b"cluster secret";

    const CLUSTER: &str = "test";

    fn member(port: u16, incarnation: u64, started_at_ms: u64, bump: u32) -> MemberId {
        MemberId {
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            incarnation,
            name: format!("node-{port}"),
            started_at_ms,
            bump,
        }
    }

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

    #[test]
    fn newer_start_wins_address_conflict_then_incarnation_then_bump() {
        let old = member(1, 9, 100, 7);
        let restarted = member(1, 1, 101, 0);
        assert!(restarted.win_addr_conflict(&old));
        assert!(!old.win_addr_conflict(&restarted));

        let same_ms = member(1, 10, 100, 0);
        assert!(same_ms.win_addr_conflict(&old));
        assert!(!old.win_addr_conflict(&same_ms));

        let renewed = old.renew().unwrap();
        assert!(renewed.win_addr_conflict(&old));
        assert!(!old.win_addr_conflict(&renewed));
        assert!(!old.win_addr_conflict(&old.clone()), "a tie never wins");
    }

    #[test]
    fn renew_bumps_and_keeps_the_instance() {
        let id = member(1, 42, 100, 3);
        let renewed = id.renew().unwrap();
        assert_eq!(renewed.bump, 4);
        assert_eq!(
            MemberId {
                bump: 3,
                ..renewed.clone()
            },
            id
        );
        assert_eq!(renewed.addr(), id.addr);
        assert_eq!(member(1, 42, 100, u32::MAX).renew(), None);
    }

    #[test]
    fn datagram_mac_rejects_other_secrets_and_tampering() {
        let key = DatagramKey::new(SECRET, CLUSTER, 1400);
        let mut sealed = Vec::new();
        key.seal(b"payload", &mut sealed);
        assert_eq!(sealed.len(), 7 + MAC_LEN);
        assert_eq!(key.open(&sealed), Ok(&b"payload"[..]));

        let other = DatagramKey::new(b"another secret", CLUSTER, 1400);
        assert_eq!(other.open(&sealed), Err(DatagramError::BadMac));
        let other = DatagramKey::new(SECRET, "another cluster", 1400);
        assert_eq!(other.open(&sealed), Err(DatagramError::BadMac));

        let mut tampered = sealed.clone();
        tampered[0] ^= 1;
        assert_eq!(key.open(&tampered), Err(DatagramError::BadMac));

        assert_eq!(
            key.open(&sealed[..5]),
            Err(DatagramError::TooShort { len: 5 })
        );
        let long = vec![0; 1400 + MAC_LEN + 1];
        assert_eq!(
            key.open(&long),
            Err(DatagramError::TooLong {
                len: long.len(),
                max: 1400 + MAC_LEN
            })
        );
        // The secret itself never appears in a datagram.
        assert!(!sealed.windows(SECRET.len()).any(|w| w == SECRET));
    }

    #[test]
    fn refused_datagrams_get_one_warn_line_per_interval_with_the_suppressed_count() {
        let start = Instant::now();
        let at = |ms: u64| start + Duration::from_millis(ms);
        let interval = REFUSED_WARN_INTERVAL.as_millis() as u64;
        let mut warnings = RefusedWarnings::default();
        assert_eq!(warnings.admit(at(0)), Some(0), "the first refusal warns");
        assert_eq!(warnings.admit(at(1)), None);
        assert_eq!(warnings.admit(at(interval - 1)), None);
        assert_eq!(
            warnings.admit(at(interval)),
            Some(2),
            "one interval later: warns, with the two suppressed"
        );
        assert_eq!(warnings.admit(at(interval + 1)), None);
        assert_eq!(
            warnings.admit(at(10 * interval)),
            Some(1),
            "after a quiet spell"
        );
        assert_eq!(warnings.admit(at(10 * interval + 2)), None);
    }

    #[test]
    fn the_mac_key_binds_secret_cluster_name_and_version_unambiguously() {
        let key = DatagramKey::derive(SECRET, CLUSTER, PROTOCOL_VERSION);
        assert_eq!(
            key,
            DatagramKey::new(SECRET, CLUSTER, 1400).key,
            "this version's key"
        );
        assert_ne!(key, DatagramKey::derive(SECRET, "other", PROTOCOL_VERSION));
        assert_ne!(
            key,
            DatagramKey::derive(SECRET, CLUSTER, PROTOCOL_VERSION + 1)
        );
        assert_ne!(
            key,
            DatagramKey::derive(b"other", CLUSTER, PROTOCOL_VERSION)
        );
        // The boundary between secret and name is part of the material.
        assert_ne!(
            DatagramKey::derive(b"ab", "c", 1),
            DatagramKey::derive(b"a", "bc", 1)
        );
    }

    #[test]
    fn timers_come_out_by_deadline_then_foca_order() {
        let now = Instant::now();
        let mut queue = TimerQueue::default();
        let later = now + Duration::from_millis(10);
        queue.push(later, Timer::PeriodicGossip(0));
        queue.push(now, Timer::ProbeRandomMember(0));
        queue.push(
            now,
            Timer::SendIndirectProbe {
                probed_id: member(1, 1, 1, 0),
                token: 0,
            },
        );
        assert_eq!(queue.next_deadline(), Some(now));
        assert!(matches!(
            queue.pop_due(now),
            Some(Timer::SendIndirectProbe { .. })
        ));
        assert_eq!(queue.pop_due(now), Some(Timer::ProbeRandomMember(0)));
        assert_eq!(queue.pop_due(now), None, "not due yet");
        assert_eq!(queue.pop_due(later), Some(Timer::PeriodicGossip(0)));
        assert_eq!(queue.next_deadline(), None);
    }

    fn apply(
        view: &mut MemberView,
        notifications: Vec<OwnedNotification<MemberId>>,
    ) -> Vec<MembershipEvent> {
        let mut events = Vec::new();
        view.apply(notifications, &mut events);
        events
    }

    #[test]
    fn notifications_map_to_up_and_down_events() {
        use MembershipEvent::{Down, Up};
        use OwnedNotification::{MemberDown, MemberUp, Rename};

        let mut view = MemberView::default();
        let a = member(1, 10, 100, 0);
        assert_eq!(
            apply(&mut view, vec![MemberUp(a.clone())]),
            vec![Up(a.clone())]
        );
        assert_eq!(
            apply(&mut view, vec![MemberUp(a.clone())]),
            vec![],
            "no duplicate Up"
        );

        // A renewal of a live member: nothing; the later Down carries the reported identity.
        let a1 = a.renew().unwrap();
        assert_eq!(
            apply(&mut view, vec![Rename(a.clone(), a1.clone())]),
            vec![]
        );
        assert_eq!(view.members(), vec![a.clone()]);
        let a2 = a1.renew().unwrap();
        assert_eq!(
            apply(
                &mut view,
                vec![Rename(a1.clone(), a2.clone()), MemberDown(a2.clone())]
            ),
            vec![Down(a.clone())]
        );
        assert!(view.members().is_empty());

        // Back after a false Down, same incarnation: Up again.
        let a3 = a2.renew().unwrap();
        assert_eq!(
            apply(
                &mut view,
                vec![Rename(a2.clone(), a3.clone()), MemberUp(a3.clone())]
            ),
            vec![Up(a3.clone())]
        );

        // A restart at the same address while alive: Down(old) then Up(new).
        let restarted = member(1, 11, 200, 0);
        assert_eq!(
            apply(&mut view, vec![Rename(a3.clone(), restarted.clone())]),
            vec![Down(a3.clone()), Up(restarted.clone())]
        );

        // A rename between two down identities: nothing.
        assert_eq!(
            apply(&mut view, vec![MemberDown(restarted.clone())]),
            vec![Down(restarted.clone())]
        );
        let again = member(1, 12, 300, 0);
        assert_eq!(
            apply(&mut view, vec![Rename(restarted, again.clone())]),
            vec![]
        );
        assert_eq!(
            apply(&mut view, vec![MemberDown(again), OwnedNotification::Idle]),
            vec![]
        );
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
            wait_for(&mut node.events, "Down(c) after leave", |event| {
                matches!(event, MembershipEvent::Down(down) if down.incarnation == leaving.incarnation)
            })
            .await;
        }
    }
}
