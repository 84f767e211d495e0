//! L3 (concurrent register), L4 (register+unregister cycle) and L5 (concurrent join).
//!
//! Concurrent writes run as pre-spawned tasks on the bench's 2-worker runtime, released
//! together (see [`release_tasks`]); processes and keys are created before the clock
//! starts, and the processes exit after it stopped. For comparison, the same writes also
//! run from 1 and from 2 plain OS threads, and the task harness alone with no registry call.

use std::time::{Duration, Instant};

use compact_str::{CompactString, format_compact};
use roster::{Node, Process, RegistryError};

use super::{Sizes, group_of, processes};
use crate::Bench;
use crate::measure::{
    new_histogram, numbered_keys, on_threads, ops_per_sec, overall, record, release_tasks,
};
use crate::report::{Report, Unit};

/// A process and the key it writes.
type Job = (Process, CompactString);

/// What one concurrent write does.
type Write = fn(&Job) -> Result<(), RegistryError>;

/// One concurrent-writes scenario: how many writes, of which key, and the expected outcome.
struct Writes {
    /// Processes, one write each.
    n: usize,
    /// The key of the `i`-th (0-based) process.
    key_of: fn(usize, &Sizes) -> CompactString,
    /// The write.
    write: Write,
    /// Whether the node holds what `n` successful writes leave.
    expected: fn(&Node, &Sizes) -> bool,
}

/// Registers the job's key for its process.
fn register_job((proc, key): &Job) -> Result<(), RegistryError> {
    proc.register(key, &()).map(drop)
}

/// Joins the job's group with its process.
fn join_job((proc, key): &Job) -> Result<(), RegistryError> {
    proc.join(key, &())
}

/// Does nothing: measures the task harness alone.
fn noop_job(_: &Job) -> Result<(), RegistryError> {
    Ok(())
}

/// The L3 writes: process `i` registers `key-{i+1}`.
fn registers(sizes: &Sizes) -> Writes {
    Writes {
        n: sizes.registers,
        key_of: |i, _| format_compact!("key-{}", i + 1),
        write: register_job,
        expected: |node, sizes| node.default_scope().name_count() == sizes.registers,
    }
}

/// The L5 writes: process `i` joins `group-{i % groups + 1}`.
fn joins(sizes: &Sizes) -> Writes {
    Writes {
        n: sizes.joins,
        key_of: |i, sizes| group_of(i, sizes.join_groups),
        write: join_job,
        expected: |node, sizes| {
            node.default_scope().membership_count() == sizes.joins
                && node.default_scope().members("group-1").len() == sizes.joins / sizes.join_groups
        },
    }
}

/// A fresh node and its jobs (not timed).
fn setup(bench: &Bench<'_>, sizes: &Sizes, writes: &Writes) -> (Node, Vec<Job>) {
    let node = bench.node();
    let jobs = processes(&node, writes.n)
        .into_iter()
        .enumerate()
        .map(|(i, p)| (p, (writes.key_of)(i, sizes)))
        .collect();
    (node, jobs)
}

/// Checks a run's outcome; returns the throughput of `n` writes done in `elapsed`.
fn outcome(
    node: &Node,
    sizes: &Sizes,
    writes: &Writes,
    errors: usize,
    elapsed: Duration,
) -> Result<f64, String> {
    if errors > 0 {
        return Err(format!("{errors} of {} writes failed", writes.n));
    }
    if !(writes.expected)(node, sizes) {
        return Err("the node does not hold what was written".into());
    }
    Ok(ops_per_sec(writes.n, elapsed))
}

/// One run as tasks released together on the runtime.
fn tasks_run(bench: &Bench<'_>, sizes: &Sizes, writes: &Writes) -> Result<f64, String> {
    let (node, jobs) = setup(bench, sizes, writes);
    let released = bench.rt.block_on(release_tasks(jobs, writes.write));
    let elapsed = released.end - released.start;
    let result = outcome(&node, sizes, writes, released.errors, elapsed);
    // The processes exit here, after the clock stopped.
    drop(released.items);
    result
}

/// One run split over `threads` OS threads started together; throughput from the first
/// start to the last end.
fn threads_run(
    bench: &Bench<'_>,
    sizes: &Sizes,
    writes: &Writes,
    threads: usize,
) -> Result<f64, String> {
    let (node, mut jobs) = setup(bench, sizes, writes);
    let per_thread = writes.n.div_ceil(threads);
    let mut chunks = Vec::with_capacity(threads);
    while jobs.len() > per_thread {
        let rest = jobs.split_off(per_thread);
        chunks.push(jobs);
        jobs = rest;
    }
    chunks.push(jobs);
    let write = writes.write;
    let spans = on_threads(chunks, |jobs| {
        let errors = jobs.iter().filter(|j| write(j).is_err()).count();
        // The processes are handed back so that their exit is not timed.
        (errors, jobs)
    });
    let errors = spans.iter().map(|s| s.result.0).sum();
    let result = outcome(&node, sizes, writes, errors, overall(&spans));
    drop(spans);
    result
}

/// Adds the median of `reps` runs to the report, or the first failure.
fn add_median(
    report: &mut Report,
    (scenario, metric): (&'static str, &'static str),
    reps: usize,
    mut run: impl FnMut() -> Result<f64, String>,
) {
    match (0..reps)
        .map(|_| run())
        .collect::<Result<Vec<f64>, String>>()
    {
        Ok(runs) => report.add_runs(scenario, metric, &runs, Unit::OpsPerSec),
        Err(e) => report.fail(format!("{scenario} {metric}: {e}")),
    }
}

/// L3: 10K pre-created processes each register one unique key, concurrently; also from
/// 1 and 2 OS threads, and the task harness alone (`tasks_noop_concurrent`, the ceiling of the
/// task method on this machine).
pub(super) fn register(bench: &Bench<'_>, sizes: &Sizes, report: &mut Report) {
    let writes = registers(sizes);
    let reps = sizes.reps;
    add_median(report, ("L3", "register_concurrent"), reps, || {
        tasks_run(bench, sizes, &writes)
    });
    add_median(report, ("L3", "register_1thread"), reps, || {
        threads_run(bench, sizes, &writes, 1)
    });
    add_median(report, ("L3", "register_2threads"), reps, || {
        threads_run(bench, sizes, &writes, 2)
    });
    let noop = Writes {
        write: noop_job,
        expected: |_, _| true,
        ..registers(sizes)
    };
    add_median(report, ("L3", "tasks_noop_concurrent"), reps, || {
        tasks_run(bench, sizes, &noop)
    });
}

/// L4: one process registers and unregisters 10K unique keys; each cycle is timed.
pub(super) fn cycle(bench: &Bench<'_>, sizes: &Sizes, report: &mut Report) {
    let mut p50s = Vec::with_capacity(sizes.reps);
    let mut p99s = Vec::with_capacity(sizes.reps);
    for _ in 0..sizes.reps {
        let node = bench.node();
        let proc = node.new_process();
        let keys = numbered_keys("cycle-", sizes.cycles);
        let mut hist = new_histogram();
        for key in &keys {
            let start = Instant::now();
            let registered = proc.register(key, &());
            let unregistered = proc.unregister(key);
            let end = Instant::now();
            if let Err(e) = registered.map(drop).and(unregistered) {
                report.fail(format!("L4: cycle of {key} failed: {e}"));
                return;
            }
            record(&mut hist, end - start);
        }
        p50s.push(hist.value_at_quantile(0.5) as f64);
        p99s.push(hist.value_at_quantile(0.99) as f64);
    }
    report.add_runs("L4", "cycle_p50", &p50s, Unit::Ns);
    report.add_runs("L4", "cycle_p99", &p99s, Unit::Ns);
}

/// L5: 10K pre-created processes each join one of 100 groups, concurrently; also from
/// 1 and 2 OS threads.
pub(super) fn join(bench: &Bench<'_>, sizes: &Sizes, report: &mut Report) {
    let writes = joins(sizes);
    let reps = sizes.reps;
    add_median(report, ("L5", "join_concurrent"), reps, || {
        tasks_run(bench, sizes, &writes)
    });
    add_median(report, ("L5", "join_1thread"), reps, || {
        threads_run(bench, sizes, &writes, 1)
    });
    add_median(report, ("L5", "join_2threads"), reps, || {
        threads_run(bench, sizes, &writes, 2)
    });
}
