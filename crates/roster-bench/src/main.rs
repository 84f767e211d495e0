//! Roster's benchmark program: the peers' scenarios, run the same way so that the figures
//! compare with those of syn, `pg`, `global` and Phoenix `Group`.
//!
//! The scenarios, the metric names of the output (fixed, so that runs compare mechanically)
//! and Roster's targets are this program's own; [`peers`] holds the table, with the best
//! figure syn, OTP `pg` and `global` or Phoenix `Group` reached in the same scenarios.
//! `local` runs L1-L6 and M1/M2 on one node; `dist` runs D1-D7, G1, T1, T2 and R1 on nodes in
//! separate OS processes (see [`dist`]); `all` runs both.
//!
//! ```text
//! cargo run --release -p roster-bench -- local            # human table
//! cargo run --release -p roster-bench -- local --json     # one JSON line per figure
//! cargo run --release -p roster-bench -- local --quick    # small sizes, for smoke runs
//! cargo run --release -p roster-bench -- dist --only D1   # one distributed scenario
//! ```
//!
//! # Method
//!
//! - Every scenario starts from a fresh node on a multi-thread tokio runtime with 2 workers.
//! - Most figures are the median of 5 runs (`--reps`); the `runs` column (JSON field) says
//!   how many runs each figure is the median of (M1/M2, D2 at 1M and R1 run once); `--verbose`
//!   prints every run.
//! - Read throughputs come from passes timed as a whole; latencies from separate passes
//!   timing each call (the timer's own cost is reported as `timer_overhead_ns`).
//! - Concurrent writes are pre-spawned tasks released together; the same writes from 1 and
//!   2 OS threads and the task harness alone (`tasks_noop_concurrent`) are reported too.
//! - Memory is counted by a counting global allocator ([`cap`]), process cost excluded.
//! - The distributed scenarios spawn node agents (this binary, `roster-bench node`) and
//!   time events across them with wall-clock timestamps; see [`dist`] for the method.
//! - The header records the machine, the build and the load average: figures taken on a
//!   busy machine are unreliable.
#![forbid(unsafe_code)]

mod dist;
mod local;
mod machine;
mod measure;
mod memory;
mod peers;
mod report;

use std::io::Write;
use std::process::ExitCode;
use std::time::Instant;

use clap::{Parser, Subcommand};
use serde::Serialize;
use tokio::runtime::Runtime;

use crate::machine::Machine;
use crate::report::Report;

/// Worker threads of the runtime the scenarios run on (the peers' machine has 2 vCPUs).
pub const WORKERS: usize = 2;

/// A 1-minute load average above which the header warns that other work skews the figures.
const BUSY_LOAD: f64 = 0.5;

/// Every scenario id with a one-line description, in run order.
const SCENARIOS: &[(&str, &str)] = &[
    ("L1", "lookup: 1 and 2 readers, 10K names"),
    ("L2", "members: 1 and 2 readers, 100 groups of 100"),
    ("L3", "register: 10K pre-created processes at once"),
    ("L4", "register+unregister cycle: one process, 10K keys"),
    ("L5", "join: 10K pre-created processes, 100 groups, at once"),
    ("L6", "events: one subscriber, 5K registrations at once"),
    ("M1", "memory: bytes per registration (100K, 1M)"),
    ("M2", "memory: bytes per membership (100K, 1M)"),
    (
        "D1",
        "replication latency: A registers, a spinner on B looks up; plain TCP too",
    ),
    (
        "D2",
        "bulk sync: B starts while A holds 10K, 100K, 1M names",
    ),
    (
        "D3",
        "concurrent cross-node writes: 5K on A + 5K on B at once",
    ),
    ("D5", "death cleanup: 1K, 5K, 50K processes on A killed"),
    ("D7", "group cleanup: 1K members on A killed"),
    (
        "G1",
        "one large group: 200K processes on A join it, it is read, they all die",
    ),
    (
        "T1",
        "replicated registrations per second, 3 nodes writing at once",
    ),
    (
        "T2",
        "replicated writes with 3, 5 and 8 nodes writing at once: ops/s, bytes per op per peer",
    ),
    ("R1", "resync bytes after a 1 s link drop, 1M names"),
];

/// Roster's benchmarks: the scenarios of the peers' figures, same definitions.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Cli {
    /// Which scenarios to run.
    #[command(subcommand)]
    command: Command,
    /// Print one JSON line per figure (after a `"scenario":"meta"` line) instead of a table.
    #[arg(long, global = true)]
    json: bool,
    /// Much smaller sizes and a single run per figure, for smoke tests (not comparable).
    #[arg(long, global = true)]
    quick: bool,
    /// Runs per figure (the median is reported); default 5, or 1 with --quick.
    #[arg(long, global = true, value_name = "N")]
    reps: Option<usize>,
    /// Print every run of each median to stderr.
    #[arg(long, global = true)]
    verbose: bool,
    /// Run only these scenarios, e.g. `--only L1,M2`.
    #[arg(long, global = true, value_delimiter = ',', value_name = "IDS")]
    only: Vec<String>,
}

/// A family of scenarios.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Subcommand, Serialize)]
#[serde(rename_all = "lowercase")]
enum Command {
    /// One node, one OS process: L1-L6 and M1/M2.
    Local,
    /// Nodes in separate OS processes on 127.0.0.1: D1-D7, G1, T1, T2, R1.
    Dist,
    /// Every family: `local`, then `dist`.
    All,
    /// A node agent driven by `dist` over stdin/stdout (internal).
    #[command(hide = true)]
    Node,
}

impl Command {
    /// The subcommand as typed.
    fn name(self) -> &'static str {
        match self {
            Self::Local => "local",
            Self::Dist => "dist",
            Self::All => "all",
            Self::Node => "node",
        }
    }
}

/// What every scenario needs: the runtime, the sizes and the selection.
#[derive(Debug)]
pub struct Bench<'a> {
    /// The multi-thread runtime (2 workers) nodes and tasks run on.
    pub rt: &'a Runtime,
    /// Sizes of the local scenarios.
    pub local: local::Sizes,
    /// Sizes of the memory scenarios.
    pub memory: memory::Sizes,
    /// Sizes of the distributed scenarios.
    pub dist: dist::Sizes,
    /// Scenario ids to run; empty for all.
    only: Vec<String>,
}

impl Bench<'_> {
    /// Whether scenario `id` is to be run.
    pub fn selected(&self, id: &str) -> bool {
        self.only.is_empty() || self.only.iter().any(|o| o.eq_ignore_ascii_case(id))
    }

    /// A fresh node on the bench's runtime.
    pub fn node(&self) -> roster::Node {
        let _entered = self.rt.enter();
        roster::Node::builder()
            .name("bench")
            .start()
            .expect("a node starts inside the runtime")
    }

    /// Tells (on stderr) that scenario `id` starts.
    pub fn progress(&self, id: &str) {
        let what = SCENARIOS
            .iter()
            .find(|(s, _)| *s == id)
            .map_or("", |(_, what)| what);
        eprintln!("[{id}] {what}");
    }
}

/// The first line of JSON output: what was run, how, and where.
#[derive(Debug, Serialize)]
struct MetaLine<'a> {
    scenario: &'static str,
    command: Command,
    quick: bool,
    runtime_workers: usize,
    local: &'a local::Sizes,
    memory: &'a memory::Sizes,
    dist: &'a dist::Sizes,
    machine: &'a Machine,
}

/// Prints the human header: parameters and machine facts.
fn print_header(meta: &MetaLine<'_>) {
    let (l, m, d, machine) = (meta.local, meta.memory, meta.dist, meta.machine);
    println!(
        "Roster benchmarks: {}{} - up to {} run(s) per figure (column `runs`: the figure is \
         their median); targets: crates/roster-bench/src/peers.rs",
        meta.command.name(),
        if meta.quick {
            " (QUICK sizes: not comparable)"
        } else {
            ""
        },
        l.reps
    );
    println!(
        "machine: {} CPUs, {}, {:.1} GiB, load {:.2}; {}; commit {}; {} build; tokio {} workers",
        machine.nproc,
        machine.cpu,
        machine.memory_gib,
        machine.load_1m,
        machine.rustc,
        machine.commit,
        if machine.release { "release" } else { "DEBUG" },
        meta.runtime_workers,
    );
    if machine.load_1m > BUSY_LOAD {
        println!(
            "WARNING: the machine is busy (load {:.2}): figures are unreliable",
            machine.load_1m
        );
    }
    println!(
        "L1 {} names, {} lookups/thread | L2 {} groups x {}, {} calls/thread | L3 {} | L4 {} | L5 {} into {} groups | L6 {} | M1/M2 {} and {} (groups of {})",
        l.names,
        l.reads,
        l.groups,
        l.members_per_group,
        l.reads,
        l.registers,
        l.cycles,
        l.joins,
        l.join_groups,
        l.events,
        m.small,
        m.large,
        m.group_size,
    );
    if meta.command != Command::Local {
        println!(
            "D1 {} iterations | D2 {:?} | D3 {} per node | D5 {:?} | D7 {} | G1 {} | T1 {} per node | T2 {:?} nodes, {} per node | R1 {} names, {} changes, {} ms drop | {} runs ({} at 100K/50K, 1 at 1M) | clock: {}",
            d.iterations,
            d.sync,
            d.writes_per_node,
            d.deaths,
            d.group,
            d.big_group,
            d.throughput_per_node,
            d.scale_nodes,
            d.scale_per_node,
            d.resync_entries,
            d.resync_changes,
            d.drop_ms,
            d.reps,
            d.big_reps,
            d.clock,
        );
    }
    println!();
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if cli.command == Command::Node {
        return dist::agent_main();
    }
    if let Some(unknown) = cli
        .only
        .iter()
        .find(|o| !SCENARIOS.iter().any(|(id, _)| id.eq_ignore_ascii_case(o)))
    {
        let known: Vec<&str> = SCENARIOS.iter().map(|(id, _)| *id).collect();
        eprintln!("unknown scenario {unknown:?}; known: {}", known.join(", "));
        return ExitCode::FAILURE;
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(WORKERS)
        .enable_time()
        .build()
        .expect("the tokio runtime starts");
    let _entered = rt.enter();
    let bench = Bench {
        rt: &rt,
        local: local::Sizes::new(cli.quick, cli.reps),
        memory: memory::Sizes::new(cli.quick),
        dist: dist::Sizes::new(cli.quick, cli.reps),
        only: cli.only,
    };
    let machine = Machine::detect();
    let meta = MetaLine {
        scenario: "meta",
        command: cli.command,
        quick: cli.quick,
        runtime_workers: WORKERS,
        local: &bench.local,
        memory: &bench.memory,
        dist: &bench.dist,
        machine: &machine,
    };
    if cli.json {
        println!("{}", serde_json::to_string(&meta).expect("meta serializes"));
    } else {
        print_header(&meta);
    }
    let _ = std::io::stdout().flush();

    let started = Instant::now();
    let mut report = Report::new(cli.json, cli.verbose);
    match cli.command {
        Command::Local => local_family(&bench, &mut report),
        Command::Dist => dist::run(&bench, &mut report),
        Command::All => {
            local_family(&bench, &mut report);
            dist::run(&bench, &mut report);
        }
        Command::Node => unreachable!("the agent returned above"),
    }
    eprintln!("done in {:.1} s", started.elapsed().as_secs_f64());

    if !report.is_json() {
        print!("{}", report.table());
        if !report.failures().is_empty() {
            println!("\nFAILURES:");
            for failure in report.failures() {
                println!("- {failure}");
            }
        }
    }
    if report.failures().is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// The local family: L1-L6, then the memory scenarios.
fn local_family(bench: &Bench<'_>, report: &mut Report) {
    local::run(bench, report);
    memory::run(bench, report);
}
