//! The distributed scenarios (D1, D2, D3, D5, D7, G1, T1, T2, R1): Roster nodes in separate OS
//! processes on 127.0.0.1, driven from outside the cluster.
//!
//! Each node is a node agent (`roster-bench node`, see [`agent`]) spawned by the driver
//! (this process, which runs no node). The driver sends it JSON requests on stdin and reads
//! JSON replies on stdout ([`protocol`]). Every run of a scenario spawns fresh agents and
//! kills them when it ends, whatever happens.
//!
//! # Method
//!
//! - Nodes run in cluster mode with the default failure detection (`Lan`), a fixed secret,
//!   on `127.0.0.1:0`, seeded with the first node; a 2-worker tokio runtime each.
//! - Times crossing processes are wall-clock timestamps (`SystemTime`, i.e.
//!   `CLOCK_REALTIME`, in ns since the Unix epoch) taken by the agents themselves: all
//!   run on one machine and read the same clock. Durations within one process use
//!   `Instant`.
//! - "B sees X" is measured by a watcher thread on B that polls the condition in a loop,
//!   armed before the action it waits for; the time is when it first holds. A watcher of
//!   one key (D1) yields the CPU between polls; a watcher of a count (the others) sleeps
//!   100 µs between polls (the peers' harness polls such conditions every millisecond). The same spinner reads the plain-TCP timestamps of `raw_one_way_p50`;
//!   `raw_woken_writer_parked_reader_*` is the same message written by a thread woken for
//!   it and read by a thread blocked in `read`.
//! - Concurrent writes on several nodes are pre-created processes released as tasks at
//!   the same wall-clock instant on every node (a start signal sent ahead of time).
//! - Every wait is bounded ([`WAIT_LIMIT`] in the agent, [`REPLY_LIMIT`] in the driver):
//!   a scenario that does not converge is reported as a failure, with what the node saw.

mod agent;
mod driver;
mod link;
mod protocol;

use std::time::Duration;

use hdrhistogram::Histogram;
use serde::Serialize;

use self::driver::{AgentProc, Tuning, cluster, cluster_with};
use self::protocol::{Cond, Request, field, now_ns};
use crate::Bench;
use crate::measure::new_histogram;
use crate::report::{Report, Unit};

pub(crate) use self::agent::main as agent_main;

/// The cluster secret every node of the benchmarks shares.
pub(crate) const SECRET: &str = "roster-bench-cluster-secret";

/// Longest an agent waits for anything (convergence, peers, a connection).
pub(crate) const WAIT_LIMIT: Duration = Duration::from_secs(60);

/// Longest the driver waits for a reply: longer than [`WAIT_LIMIT`], so that the agent's
/// own timeout, with its details, comes first.
pub(crate) const REPLY_LIMIT: Duration = Duration::from_secs(75);

/// How long after a sync B's memory is read: the buffers of the sync and the tables its
/// growth replaced are freed by then (right at the end of a 1M sync, about a third more
/// is still allocated).
const MEMORY_SETTLE: Duration = Duration::from_secs(1);

/// How long the driver lets the agents get ready for a start signal.
const SIGNAL_AHEAD: Duration = Duration::from_millis(100);

/// The sizes of the distributed scenarios.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Sizes {
    /// Runs per figure of the small sizes (the median is reported).
    pub reps: usize,
    /// Runs per figure at 100K (D2) and 50K (D5), as the peers did (3).
    pub big_reps: usize,
    /// D1: sequential registrations (and raw TCP messages) per run.
    pub iterations: usize,
    /// D2: entries synced to a new node (10K, 100K, 1M).
    pub sync: [usize; 3],
    /// D3: processes registering at once on each of the two nodes.
    pub writes_per_node: usize,
    /// D5: processes killed (1K, 5K, 50K).
    pub deaths: [usize; 3],
    /// D7: group members killed.
    pub group: usize,
    /// G1: members of the one large group (joined, read, then killed).
    pub big_group: usize,
    /// T1: registrations on each of the three nodes.
    pub throughput_per_node: usize,
    /// T2: cluster sizes (the metric names say 3, 5 and 8).
    pub scale_nodes: [usize; 3],
    /// T2: registrations on each node.
    pub scale_per_node: usize,
    /// R1: entries held by the node whose links drop.
    pub resync_entries: usize,
    /// R1: entries changed while the links are down (half unregistered, half new).
    pub resync_changes: usize,
    /// R1: how long the links stay down, ms.
    pub drop_ms: u64,
    /// How cross-process times are taken.
    pub clock: &'static str,
}

impl Sizes {
    /// The peers' sizes, or much smaller ones for smoke runs (`quick`).
    pub fn new(quick: bool, reps: Option<usize>) -> Self {
        let reps = reps.unwrap_or(if quick { 1 } else { 5 }).max(1);
        let clock = "SystemTime (CLOCK_REALTIME) ns since the Unix epoch, taken in each agent; same machine";
        if quick {
            Self {
                reps,
                big_reps: reps.min(3),
                iterations: 100,
                sync: [1_000, 5_000, 20_000],
                writes_per_node: 500,
                deaths: [100, 500, 2_000],
                group: 100,
                big_group: 5_000,
                throughput_per_node: 1_000,
                scale_nodes: [3, 5, 8],
                scale_per_node: 500,
                resync_entries: 20_000,
                resync_changes: 200,
                drop_ms: 1_000,
                clock,
            }
        } else {
            Self {
                reps,
                big_reps: reps.min(3),
                iterations: 1_000,
                sync: [10_000, 100_000, 1_000_000],
                writes_per_node: 5_000,
                deaths: [1_000, 5_000, 50_000],
                group: 1_000,
                big_group: 200_000,
                throughput_per_node: 10_000,
                scale_nodes: [3, 5, 8],
                scale_per_node: 5_000,
                resync_entries: 1_000_000,
                resync_changes: 1_000,
                drop_ms: 1_000,
                clock,
            }
        }
    }
}

/// Runs the selected distributed scenarios in order, adding their figures to `report`.
pub(crate) fn run(bench: &Bench<'_>, report: &mut Report) {
    type Scenario = fn(&Sizes, &mut Report);
    let scenarios: [(&str, Scenario); 9] = [
        ("D1", latency),
        ("D2", bulk_sync),
        ("D3", concurrent_writes),
        ("D5", deaths),
        ("D7", group_deaths),
        ("G1", big_group),
        ("T1", throughput),
        ("T2", scale),
        ("R1", resync),
    ];
    for (id, scenario) in scenarios {
        if bench.selected(id) {
            bench.progress(id);
            scenario(&bench.dist, report);
        }
    }
}

/// Runs `run` `reps` times; returns the runs of each of its `N` results, or records the
/// first failure and returns `None`.
fn runs<const N: usize>(
    report: &mut Report,
    what: &str,
    reps: usize,
    mut run: impl FnMut() -> Result<[f64; N], String>,
) -> Option<[Vec<f64>; N]> {
    let mut all = Vec::with_capacity(reps);
    for _ in 0..reps.max(1) {
        match run() {
            Ok(r) => all.push(r),
            Err(e) => {
                report.fail(format!("{what}: {e}"));
                return None;
            }
        }
    }
    Some(std::array::from_fn(|i| all.iter().map(|r| r[i]).collect()))
}

/// Milliseconds from `start_ns` to `end_ns` (wall clock).
fn ms_between(start_ns: u64, end_ns: u64) -> f64 {
    end_ns.saturating_sub(start_ns) as f64 / 1e6
}

/// A quantile of a histogram of nanoseconds, in microseconds.
fn us_at(hist: &Histogram<u64>, quantile: f64) -> f64 {
    hist.value_at_quantile(quantile) as f64 / 1e3
}

/// Two agents as mutable references.
fn pair(agents: &mut [AgentProc]) -> Result<(&mut AgentProc, &mut AgentProc), String> {
    match agents {
        [a, b, ..] => Ok((a, b)),
        _ => Err("two agents expected".into()),
    }
}

/// The other configurations D1 measures besides Roster's default (`ClusterConfig::busy_poll`
/// 1 ms, `read_poll` off): busy polling off (a window of zero µs), and the link readers
/// polling 1 ms after traffic (`read_poll`); the names of their metrics those of the
/// default's with a suffix.
const D1_OTHER_MODES: [(Tuning, [&str; 10]); 2] = [
    (
        Tuning {
            busy_poll_us: Some(0),
            read_poll_us: None,
        },
        [
            "repl_p50_no_poll",
            "repl_p99_no_poll",
            "repl_max_no_poll",
            "register_call_p50_no_poll",
            "register_call_local_scope_p50_no_poll",
            "node_cpu_per_write_no_poll",
            "repl_p50_traffic_no_poll",
            "repl_p99_traffic_no_poll",
            "register_call_p50_traffic_no_poll",
            "node_cpu_idle_second_no_poll",
        ],
    ),
    (
        Tuning {
            busy_poll_us: None,
            read_poll_us: Some(1000),
        },
        [
            "repl_p50_read_poll",
            "repl_p99_read_poll",
            "repl_max_read_poll",
            "register_call_p50_read_poll",
            "register_call_local_scope_p50_read_poll",
            "node_cpu_per_write_read_poll",
            "repl_p50_traffic_read_poll",
            "repl_p99_traffic_read_poll",
            "register_call_p50_traffic_read_poll",
            "node_cpu_idle_second_read_poll",
        ],
    ),
];

/// Microseconds between two writes of D1's background traffic (`*_traffic` metrics).
const D1_TRAFFIC_EVERY_US: u64 = 200;

/// How long D1 waits after its writes before it measures the nodes' CPU at rest: past any
/// busy-poll window.
const D1_SETTLE: Duration = Duration::from_millis(50);

/// D1's sequential registrations on A, each seen by a spinner on B, and each followed by
/// one in a local-only scope (the same call with no peer to tell); keys `{prefix}{i}`.
/// Returns the replication p50, p99 and max, the register call's p50 and the local-only
/// call's p50 (µs), and the CPU the two nodes used per replicated write (µs).
fn d1_pass(
    a: &mut AgentProc,
    b: &mut AgentProc,
    iterations: usize,
    prefix: &str,
) -> Result<[f64; 6], String> {
    let (mut repl, mut call, mut local_call) = (new_histogram(), new_histogram(), new_histogram());
    let cpu_before =
        field(&a.call(&Request::Cpu)?, "cpu_ns")? + field(&b.call(&Request::Cpu)?, "cpu_ns")?;
    for i in 1..=iterations {
        let key = format!("{prefix}{i}");
        b.call(&Request::Watch {
            cond: Cond::Whereis { key: key.clone() },
        })?;
        let registered = a.call(&Request::RegisterOne { key, local: false })?;
        let seen = b.watch_result()?;
        let start = field(&registered, "start_ns")?;
        repl.saturating_record(seen.saturating_sub(start).max(1));
        call.saturating_record(field(&registered, "call_ns")?.max(1));
        let local = a.call(&Request::RegisterOne {
            key: format!("{prefix}local-{i}"),
            local: true,
        })?;
        local_call.saturating_record(field(&local, "call_ns")?.max(1));
    }
    let cpu_after =
        field(&a.call(&Request::Cpu)?, "cpu_ns")? + field(&b.call(&Request::Cpu)?, "cpu_ns")?;
    Ok([
        us_at(&repl, 0.5),
        us_at(&repl, 0.99),
        repl.max() as f64 / 1e3,
        us_at(&call, 0.5),
        us_at(&local_call, 0.5),
        cpu_after.saturating_sub(cpu_before) as f64 / 1e3 / iterations.max(1) as f64,
    ])
}

/// The CPU the two nodes use in one idle second (µs), measured [`D1_SETTLE`] after their
/// last write.
fn idle_cpu(a: &mut AgentProc, b: &mut AgentProc) -> Result<f64, String> {
    std::thread::sleep(D1_SETTLE);
    let before =
        field(&a.call(&Request::Cpu)?, "cpu_ns")? + field(&b.call(&Request::Cpu)?, "cpu_ns")?;
    std::thread::sleep(Duration::from_secs(1));
    let after =
        field(&a.call(&Request::Cpu)?, "cpu_ns")? + field(&b.call(&Request::Cpu)?, "cpu_ns")?;
    Ok(after.saturating_sub(before) as f64 / 1e3)
}

/// D1 in one configuration (`tuning`) on fresh nodes:
/// first after idle (nothing else on the nodes: what the peers measure), then with
/// background traffic (a write on A every [`D1_TRAFFIC_EVERY_US`], replicated to B).
/// Returns the idle pass's six figures (see [`d1_pass`]), the traffic pass's replication
/// p50 and p99 and register call p50, and the nodes' CPU in an idle second.
fn d1_mode(sizes: &Sizes, tuning: Tuning) -> Result<[f64; 10], String> {
    let mut agents = cluster_with(&["a", "b"], tuning)?;
    let (a, b) = pair(&mut agents)?;
    let idle = d1_pass(a, b, sizes.iterations, "d1-")?;
    let at_rest = idle_cpu(a, b)?;
    a.call(&Request::Traffic {
        every_us: D1_TRAFFIC_EVERY_US,
    })?;
    let busy = d1_pass(a, b, sizes.iterations, "d1t-");
    a.call(&Request::Traffic { every_us: 0 })?;
    let busy = busy?;
    Ok([
        idle[0], idle[1], idle[2], idle[3], idle[4], idle[5], busy[0], busy[1], busy[3], at_rest,
    ])
}

/// D1: on A a fresh process registers a new key (start time before the call) while a
/// spinner on B polls `whereis` for it; `iterations` sequential registrations (see
/// [`d1_mode`]), after idle and with background traffic, with Roster's default settings
/// and with each of [`D1_OTHER_MODES`]. Then a plain TCP message between the same two processes,
/// read by a spinning thread, and again written by a thread woken for it and read by a
/// thread blocked in the read (the two wake-ups a write can take on its way through
/// Roster: the flusher and B's reader); and what waking a parked thread costs the waker.
fn latency(sizes: &Sizes, report: &mut Report) {
    let mut rep = 0;
    let Some(runs) = runs::<35>(report, "D1", sizes.reps, || {
        // The configurations take turns going first.
        let modes = [Tuning::default(), D1_OTHER_MODES[0].0, D1_OTHER_MODES[1].0];
        let mut figures = [[0.0; 10]; 3];
        for i in 0..modes.len() {
            let m = (i + rep) % modes.len();
            figures[m] = d1_mode(sizes, modes[m])?;
        }
        rep += 1;
        let raw = raw_latency(sizes)?;
        let mut all = [0.0; 35];
        for (m, f) in figures.iter().enumerate() {
            all[m * 10..(m + 1) * 10].copy_from_slice(f);
        }
        all[30..].copy_from_slice(&raw);
        Ok(all)
    }) else {
        return;
    };
    let names = [
        "repl_p50",
        "repl_p99",
        "repl_max",
        "register_call_p50",
        "register_call_local_scope_p50",
        "node_cpu_per_write",
        "repl_p50_traffic",
        "repl_p99_traffic",
        "register_call_p50_traffic",
        "node_cpu_idle_second",
    ];
    for (i, name) in names.iter().enumerate() {
        report.add_runs("D1", name, &runs[i], Unit::Us);
    }
    for (m, (_, other_names)) in D1_OTHER_MODES.iter().enumerate() {
        for (i, name) in other_names.iter().enumerate() {
            report.add_runs("D1", name, &runs[10 * (m + 1) + i], Unit::Us);
        }
    }
    let raw = [
        "raw_one_way_p50",
        "raw_one_way_p99",
        "raw_woken_writer_parked_reader_p50",
        "raw_woken_writer_parked_reader_p99",
        "unpark_call_p50",
    ];
    for (i, name) in raw.iter().enumerate() {
        report.add_runs("D1", name, &runs[30 + i], Unit::Us);
    }
}

/// D1's yardsticks on two fresh agents: a plain TCP message read by a spinning thread
/// (p50, p99), the same written by a woken thread and read by a blocked one (p50, p99),
/// and what an unpark costs the waker (p50), in µs.
fn raw_latency(sizes: &Sizes) -> Result<[f64; 5], String> {
    let mut agents = cluster(&["a", "b"])?;
    let (a, b) = pair(&mut agents)?;
    let listening = b.call(&Request::RawListen)?;
    a.call(&Request::RawConnect {
        addr: protocol::text_field(&listening, "addr")?,
    })?;
    let (mut raw, mut woken) = (new_histogram(), new_histogram());
    for _ in 0..sizes.iterations {
        for (parked, into) in [(false, &mut raw), (true, &mut woken)] {
            b.call(&Request::RawArm { parked })?;
            a.call(&Request::RawSend { handoff: parked })?;
            let read = b.call(&Request::RawResult)?;
            let (sent, seen) = (field(&read, "sent_ns")?, field(&read, "seen_ns")?);
            into.saturating_record(seen.saturating_sub(sent).max(1));
        }
    }
    let wake = a.call(&Request::WakeCost {
        iterations: sizes.iterations.min(1000),
    })?;
    Ok([
        us_at(&raw, 0.5),
        us_at(&raw, 0.99),
        us_at(&woken, 0.5),
        us_at(&woken, 0.99),
        field(&wake, "unpark_ns_p50")? as f64 / 1e3,
    ])
}

/// Registrations timed one by one on A before the 1M sync and while it is under way
/// (D2 `register_p99_idle`, `register_p99_during_snapshot`): enough for a p99, few enough
/// to finish well within the snapshot.
const SNAPSHOT_PROBE: usize = 2_000;

/// What one D2 run measured.
struct SyncRun {
    /// From B's node start until B sees every entry (ms).
    sync_ms: f64,
    /// B's allocated bytes per replicated entry (NaN if not measured).
    bytes_per_entry: f64,
    /// Spawning B's process until ready (ms).
    spawn_ms: f64,
    /// From B's start until it is linked to A (ms).
    linked_ms: f64,
    /// Entries B received per second from the link coming up until it saw them all.
    apply_rate: f64,
    /// p99 of A's register calls before B started, and during the snapshot (us; NaN
    /// without a probe).
    idle_p99_us: f64,
    busy_p99_us: f64,
}

/// One D2 run: `n` keys on A, then B starts seeded with A; measures B's sync (see
/// [`SyncRun`]); B's memory per entry if `memory` (node start cost excluded; read
/// [`MEMORY_SETTLE`] after the sync). With a `probe`, A also times `probe` registrations
/// before B starts and `probe` more as soon as it is linked to B (during the snapshot):
/// B then waits for `n + 2 * probe` entries.
fn sync_run(n: usize, memory: bool, probe: usize) -> Result<SyncRun, String> {
    let mut a = AgentProc::spawn("a")?;
    a.start(&[], None)?;
    a.call(&Request::Register {
        prefix: "sync-".into(),
        count: n,
    })?;
    let p99_us = |reply: &serde_json::Value| -> Result<f64, String> {
        Ok(field(reply, "call_p99_ns")? as f64 / 1e3)
    };
    let (mut idle_p99_us, mut busy_p99_us) = (f64::NAN, f64::NAN);
    if probe > 0 {
        idle_p99_us = p99_us(&a.call(&Request::Register {
            prefix: "idle-".into(),
            count: probe,
        })?)?;
    }
    let total = n + 2 * probe;
    let mut b = AgentProc::spawn("b")?;
    let started = b.start(&[&a], Some(Cond::registry(total)))?;
    if probe > 0 {
        a.call(&Request::WaitPeers { peers: 1 })?;
        busy_p99_us = p99_us(&a.call(&Request::Register {
            prefix: "busy-".into(),
            count: probe,
        })?)?;
    }
    let watched = b.call(&Request::WatchResult)?;
    let (seen, linked) = (field(&watched, "seen_ns")?, field(&watched, "linked_ns")?);
    let start = field(&started, "start_ns")?;
    let bytes_per_entry = if memory {
        std::thread::sleep(MEMORY_SETTLE);
        let allocated = field(&b.call(&Request::Memory)?, "allocated")?;
        (allocated as f64 - field(&started, "alloc_after")? as f64) / total as f64
    } else {
        f64::NAN
    };
    Ok(SyncRun {
        sync_ms: ms_between(start, seen),
        bytes_per_entry,
        spawn_ms: b.spawned_in.as_secs_f64() * 1e3,
        linked_ms: ms_between(start, linked),
        apply_rate: total as f64 / (ms_between(linked, seen) / 1e3),
        idle_p99_us,
        busy_p99_us,
    })
}

/// D2: `n` keys registered on A while B is not running; then B starts (seeded with A):
/// time from B's node start until B sees all `n`; also B's bytes per replicated entry,
/// and at 1M the rate B took entries in and whether the snapshot slowed A's writers.
fn bulk_sync(sizes: &Sizes, report: &mut Report) {
    let [small, medium, large] = sizes.sync;
    let fields = |run: Result<SyncRun, String>| {
        run.map(|r| {
            [
                r.sync_ms,
                r.bytes_per_entry,
                r.spawn_ms,
                r.linked_ms,
                r.apply_rate,
                r.idle_p99_us,
                r.busy_p99_us,
            ]
        })
    };
    if let Some([sync, _, spawn, linked, ..]) = runs(report, "D2 10K", sizes.reps, || {
        fields(sync_run(small, false, 0))
    }) {
        report.add_runs("D2", "sync_10k", &sync, Unit::Ms);
        report.add_runs("D2", "link_up", &linked, Unit::Ms);
        report.add_runs("D2", "agent_spawn", &spawn, Unit::Ms);
    }
    if let Some([sync, bytes, ..]) = runs(report, "D2 100K", sizes.big_reps, || {
        fields(sync_run(medium, true, 0))
    }) {
        report.add_runs("D2", "sync_100k", &sync, Unit::Ms);
        report.add_runs("D2", "replica_bytes_per_entry_100k", &bytes, Unit::Bytes);
    }
    let probe = SNAPSHOT_PROBE.min(large / 10);
    if let Some([sync, bytes, _, _, rate, idle, busy]) =
        runs(report, "D2 1M", 1, || fields(sync_run(large, true, probe)))
    {
        report.add_runs("D2", "sync_1m", &sync, Unit::Ms);
        report.add_runs("D2", "replica_bytes_per_entry", &bytes, Unit::Bytes);
        report.add_runs("D2", "sync_1m_entries_per_s", &rate, Unit::OpsPerSec);
        report.add_runs("D2", "register_p99_idle", &idle, Unit::Us);
        report.add_runs("D2", "register_p99_during_snapshot", &busy, Unit::Us);
    }
}

/// Pre-creates `per_node` registrations on every agent (keys unique per node), arms a
/// watcher for all of them on every agent, and releases the writes on every node at the
/// same instant. Returns (from the first release) when every node completed its own
/// writes and when every node saw every key (ms).
fn write_everywhere(agents: &mut [AgentProc], per_node: usize) -> Result<[f64; 2], String> {
    let total = per_node * agents.len();
    for agent in agents.iter_mut() {
        agent.call(&Request::Prepare {
            prefix: format!("{}-", agent.name),
            count: per_node,
        })?;
        agent.call(&Request::Watch {
            cond: Cond::registry(total),
        })?;
    }
    let at_ns = now_ns() + u64::try_from(SIGNAL_AHEAD.as_nanos()).unwrap_or(u64::MAX);
    for agent in agents.iter_mut() {
        agent.send(&Request::Fire { at_ns })?;
    }
    let (mut released, mut done) = (u64::MAX, 0);
    for agent in agents.iter_mut() {
        let fired = agent.recv()?;
        released = released.min(field(&fired, "released_ns")?);
        done = done.max(field(&fired, "done_ns")?);
    }
    let mut seen = 0;
    for agent in agents.iter_mut() {
        seen = seen.max(agent.watch_result()?);
    }
    Ok([ms_between(released, done), ms_between(released, seen)])
}

/// D3: 5K pre-created processes on each of A and B register unique keys at once; time
/// until both nodes see all 10K.
fn concurrent_writes(sizes: &Sizes, report: &mut Report) {
    let Some([local, converged]) = runs(report, "D3", sizes.reps, || {
        write_everywhere(&mut cluster(&["a", "b"])?, sizes.writes_per_node)
    }) else {
        return;
    };
    report.add_runs("D3", "converge_10k", &converged, Unit::Ms);
    report.add_runs("D3", "local_writes_10k", &local, Unit::Ms);
}

/// T1: each of three nodes registers `throughput_per_node` keys at once; replicated
/// registrations per second until all three nodes see all of them.
fn throughput(sizes: &Sizes, report: &mut Report) {
    let n = sizes.throughput_per_node;
    let Some([ops]) = runs(report, "T1", sizes.reps, || {
        let [_, converged] = write_everywhere(&mut cluster(&["a", "b", "c"])?, n)?;
        Ok([(3 * n) as f64 / (converged / 1e3)])
    }) else {
        return;
    };
    report.add_runs("T1", "repl_throughput_3n", &ops, Unit::OpsPerSec);
}

/// T2: every node of a cluster of 3, 5 and 8 node processes registers `scale_per_node`
/// keys at once; replicated writes per second until every node sees all of them, and the
/// link bytes all nodes sent per write per peer it reached (frames, pings and digests of
/// the run included). Every node sends each of its writes to every other (full mesh).
fn scale(sizes: &Sizes, report: &mut Report) {
    const METRICS: [(&str, &str); 3] = [
        ("writes_per_s_3n", "bytes_per_write_per_peer_3n"),
        ("writes_per_s_5n", "bytes_per_write_per_peer_5n"),
        ("writes_per_s_8n", "bytes_per_write_per_peer_8n"),
    ];
    for (nodes, (throughput, per_peer)) in sizes.scale_nodes.into_iter().zip(METRICS) {
        let Some([ops, bytes]) = runs(report, &format!("T2 {nodes} nodes"), sizes.reps, || {
            let names: Vec<String> = (0..nodes).map(|i| format!("n{i}")).collect();
            let names: Vec<&str> = names.iter().map(String::as_str).collect();
            let mut agents = cluster(&names)?;
            let sent = |agents: &mut [AgentProc]| -> Result<u64, String> {
                agents.iter_mut().map(AgentProc::bytes_sent).sum()
            };
            let before = sent(&mut agents)?;
            let [_, converged] = write_everywhere(&mut agents, sizes.scale_per_node)?;
            let after = sent(&mut agents)?;
            let writes = (nodes * sizes.scale_per_node) as f64;
            Ok([
                writes / (converged / 1e3),
                (after - before) as f64 / (writes * (nodes - 1) as f64),
            ])
        }) else {
            continue;
        };
        report.add_runs("T2", throughput, &ops, Unit::OpsPerSec);
        report.add_runs("T2", per_peer, &bytes, Unit::Bytes);
    }
}

/// Kills every process of A once B sees what they hold (`held`), with a watcher on B
/// waiting for `gone`; returns the time from the start of the kills until B, and until A,
/// sees `gone`, and the time A's loop dropping the processes took (ms): each drop ends its
/// process and removes what it held on the dropping thread.
fn kill_and_watch(
    a: &mut AgentProc,
    b: &mut AgentProc,
    held: Cond,
    gone: Cond,
) -> Result<[f64; 3], String> {
    b.wait_for(held)?;
    b.call(&Request::Watch { cond: gone.clone() })?;
    let killed = a.call(&Request::KillAll { then: gone })?;
    let seen_on_b = b.watch_result()?;
    let start = field(&killed, "start_ns")?;
    Ok([
        ms_between(start, seen_on_b),
        ms_between(start, field(&killed, "seen_ns")?),
        ms_between(start, field(&killed, "dropped_ns")?),
    ])
}

/// D5: N processes registered on A and visible on B are all killed; time until B sees 0
/// names (and until A does). Then, as the owner's yardstick, N new processes on A register
/// and unregister a name each: A's time per death (its loop of drops) and per unregister
/// (its loop of unregister calls), with B linked both times.
fn deaths(sizes: &Sizes, report: &mut Report) {
    let metrics = [
        (
            [
                "cleanup_1k",
                "cleanup_1k_owner",
                "owner_death_1k",
                "owner_unregister_1k",
            ],
            sizes.reps,
        ),
        (
            [
                "cleanup_5k",
                "cleanup_5k_owner",
                "owner_death_5k",
                "owner_unregister_5k",
            ],
            sizes.reps,
        ),
        (
            [
                "cleanup_50k",
                "cleanup_50k_owner",
                "owner_death_50k",
                "owner_unregister_50k",
            ],
            sizes.big_reps,
        ),
    ];
    for (n, (names, reps)) in sizes.deaths.into_iter().zip(metrics) {
        let [metric, owner, death_metric, unregister_metric] = names;
        let Some([on_b, on_a, death, unregister]) =
            runs(report, &format!("D5 {metric}"), reps, || {
                let mut agents = cluster(&["a", "b"])?;
                let (a, b) = pair(&mut agents)?;
                a.call(&Request::Register {
                    prefix: "d5-".into(),
                    count: n,
                })?;
                let [on_b, on_a, dropped] =
                    kill_and_watch(a, b, Cond::registry(n), Cond::registry(0))?;
                a.call(&Request::Register {
                    prefix: "d5u-".into(),
                    count: n,
                })?;
                let unregistered = a.call(&Request::Unregister {
                    prefix: "d5u-".into(),
                    count: n,
                })?;
                let per = |total_ns: f64| total_ns / n as f64;
                Ok([
                    on_b,
                    on_a,
                    per(dropped * 1e6),
                    per(field(&unregistered, "elapsed_ns")? as f64),
                ])
            })
        else {
            continue;
        };
        report.add_runs("D5", metric, &on_b, Unit::Ms);
        report.add_runs("D5", owner, &on_a, Unit::Ms);
        report.add_runs("D5", death_metric, &death, Unit::Ns);
        report.add_runs("D5", unregister_metric, &unregister, Unit::Ns);
    }
}

/// D7: 1K processes on A join one group; once B sees 1K members they all die; time until
/// B sees 0 members.
fn group_deaths(sizes: &Sizes, report: &mut Report) {
    let n = sizes.group;
    let Some([on_b, on_a]) = runs(report, "D7", sizes.reps, || {
        let mut agents = cluster(&["a", "b"])?;
        let (a, b) = pair(&mut agents)?;
        a.call(&Request::Join {
            group: "d7".into(),
            count: n,
        })?;
        let [on_b, on_a, _] = kill_and_watch(a, b, Cond::members("d7", n), Cond::members("d7", 0))?;
        Ok([on_b, on_a])
    }) else {
        return;
    };
    report.add_runs("D7", "group_cleanup_1k", &on_b, Unit::Ms);
    report.add_runs("D7", "group_cleanup_1k_owner", &on_a, Unit::Ms);
}

/// Times `members` is taken in G1 (its median is reported).
const G1_MEMBERS_CALLS: usize = 1_000;

/// G1: `big_group` processes on A join one group one after the other (A's time for all
/// the joins, and from the first join until B sees them all); then, on A, taking the
/// group's member list (median of [`G1_MEMBERS_CALLS`]), walking it once and one dispatch
/// to the group; then every member dies: time until B, and A, sees 0 members.
fn big_group(sizes: &Sizes, report: &mut Report) {
    let n = sizes.big_group;
    let Some([joins, joins_seen, members, iterate, dispatch, on_b, on_a]) =
        runs(report, "G1", sizes.big_reps, || {
            let mut agents = cluster(&["a", "b"])?;
            let (a, b) = pair(&mut agents)?;
            let held = Cond::members("g1", n);
            b.call(&Request::Watch { cond: held.clone() })?;
            let joined = a.call(&Request::Join {
                group: "g1".into(),
                count: n,
            })?;
            let seen = b.watch_result()?;
            let reads = a.call(&Request::GroupReads {
                group: "g1".into(),
                calls: G1_MEMBERS_CALLS,
            })?;
            if field(&reads, "members")? != n as u64 || field(&reads, "dispatched")? != n as u64 {
                return Err(format!("A reads {reads} of a group of {n}"));
            }
            let [on_b, on_a, _] = kill_and_watch(a, b, held, Cond::members("g1", 0))?;
            Ok([
                field(&joined, "elapsed_ns")? as f64 / 1e6,
                ms_between(field(&joined, "start_ns")?, seen),
                field(&reads, "members_p50_ns")? as f64,
                field(&reads, "iterate_ns")? as f64 / 1e6,
                field(&reads, "dispatch_ns")? as f64 / 1e6,
                on_b,
                on_a,
            ])
        })
    else {
        return;
    };
    report.add_runs("G1", "join_200k", &joins, Unit::Ms);
    report.add_runs("G1", "join_200k_seen", &joins_seen, Unit::Ms);
    report.add_runs("G1", "members_200k_p50", &members, Unit::Ns);
    report.add_runs("G1", "members_200k_iterate", &iterate, Unit::Ms);
    report.add_runs("G1", "dispatch_200k", &dispatch, Unit::Ms);
    report.add_runs("G1", "group_cleanup_200k", &on_b, Unit::Ms);
    report.add_runs("G1", "group_cleanup_200k_owner", &on_a, Unit::Ms);
}

/// R1: A holds 1M names and B is synced (A's bytes sent for that full sync:
/// `snapshot_bytes_1m`); A's links are severed for 1 s, during which A unregisters
/// `changes / 2` names and registers `changes / 2` new ones; bytes A sends from the drop
/// until B holds exactly A's names again: `resync_bytes_after_1s_drop_1m`.
fn resync(sizes: &Sizes, report: &mut Report) {
    let (n, half) = (sizes.resync_entries, sizes.resync_changes / 2);
    let Some([resync, snapshot, resync_ms]) = runs(report, "R1", 1, || {
        let mut a = AgentProc::spawn("a")?;
        a.start(&[], None)?;
        a.call(&Request::Register {
            prefix: "r1-".into(),
            count: n,
        })?;
        let before = a.bytes_sent()?;
        let mut b = AgentProc::spawn("b")?;
        b.start(&[&a], Some(Cond::registry(n)))?;
        b.watch_result()?;
        let snapshot = a.bytes_sent()? - before;

        let before = a.bytes_sent()?;
        let severed = field(&a.call(&Request::Sever { ms: sizes.drop_ms })?, "t_ns")?;
        a.call(&Request::Unregister {
            prefix: "r1-".into(),
            count: half,
        })?;
        a.call(&Request::Register {
            prefix: "r1new-".into(),
            count: half,
        })?;
        let seen = b.wait_for(Cond::Registry {
            count: n,
            present: (1..=half).map(|i| format!("r1new-{i}")).collect(),
            absent: (1..=half).map(|i| format!("r1-{i}")).collect(),
        })?;
        let resync = a.bytes_sent()? - before;
        Ok([resync as f64, snapshot as f64, ms_between(severed, seen)])
    }) else {
        return;
    };
    report.add_runs("R1", "resync_bytes_after_1s_drop_1m", &resync, Unit::Bytes);
    report.add_runs("R1", "snapshot_bytes_1m", &snapshot, Unit::Bytes);
    report.add_runs("R1", "resync_ms_after_1s_drop_1m", &resync_ms, Unit::Ms);
}
