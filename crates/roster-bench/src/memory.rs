//! M1/M2: bytes per registration and per group membership on the owner node.
//!
//! A counting global allocator ([`cap::Cap`] over the system allocator) tracks the bytes
//! currently allocated by the whole program. Each run creates its processes first (their
//! cost is excluded), reads the counter, registers or joins, and reads it again: the
//! difference divided by the number of entries is the figure. Papaya frees replaced
//! tables and values later (epoch reclamation), so garbage not yet reclaimed when the
//! writes end is counted, as the scenario definition accepts.

use std::alloc::System;

use cap::Cap;
use compact_str::CompactString;
use roster::{Node, Process};
use serde::Serialize;

use crate::Bench;
use crate::measure::numbered_keys;
use crate::report::{Report, Unit};

/// The program's allocator: the system allocator, counting the bytes it has handed out.
#[global_allocator]
static ALLOCATOR: Cap<System> = Cap::new(System, usize::MAX);

/// Bytes currently allocated by the whole program.
pub(crate) fn allocated() -> usize {
    ALLOCATOR.allocated()
}

/// The sizes of the memory scenarios.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Sizes {
    /// The smaller run (the peers' size): entries.
    pub small: usize,
    /// The contract's run: entries.
    pub large: usize,
    /// Members per group in M2.
    pub group_size: usize,
}

impl Sizes {
    /// 100K and 1M entries, or 10K and 20K for smoke runs (`quick`).
    pub fn new(quick: bool) -> Self {
        if quick {
            Self {
                small: 10_000,
                large: 20_000,
                group_size: 100,
            }
        } else {
            Self {
                small: 100_000,
                large: 1_000_000,
                group_size: 100,
            }
        }
    }
}

/// The allocation cost of some writes, process cost excluded.
#[derive(Debug, Clone, Copy)]
struct Cost {
    /// Bytes per process created (not part of the entry figure).
    per_process: f64,
    /// Bytes per entry written.
    per_entry: f64,
}

/// Signed difference of two readings of [`allocated`], in bytes.
fn delta(before: usize, after: usize) -> f64 {
    after as f64 - before as f64
}

/// Creates `n` processes on a fresh node, then gives the `i`-th one entry with
/// `write(process, i)`; measures the bytes allocated by the processes and by the entries.
fn measure(
    bench: &Bench<'_>,
    n: usize,
    write: impl Fn(&Process, usize),
    check: impl Fn(&Node) -> bool,
) -> Result<Cost, String> {
    let node = bench.node();
    let mut procs: Vec<Process> = Vec::with_capacity(n);
    let start = allocated();
    procs.extend((0..n).map(|_| node.new_process()));
    let before = allocated();
    for (i, proc) in procs.iter().enumerate() {
        write(proc, i);
    }
    let after = allocated();
    if !check(&node) {
        return Err(format!("the node does not hold the {n} entries written"));
    }
    let cost = Cost {
        per_process: delta(start, before) / n as f64,
        per_entry: delta(before, after) / n as f64,
    };
    drop(procs);
    Ok(cost)
}

/// Bytes per registration of `n` unique names `key-1..key-{n}` with empty meta.
fn registrations(bench: &Bench<'_>, n: usize) -> Result<Cost, String> {
    // The keys are built before measuring; names this short are stored inline.
    let keys: Vec<CompactString> = numbered_keys("key-", n);
    measure(
        bench,
        n,
        |proc, i| {
            proc.register(&keys[i], &()).expect("M1: register");
        },
        |node| node.default_scope().name_count() == n,
    )
}

/// Bytes per membership of `n` processes in `n / group_size` groups of `group_size`.
fn memberships(bench: &Bench<'_>, n: usize, group_size: usize) -> Result<Cost, String> {
    let groups = n.div_ceil(group_size);
    let keys: Vec<CompactString> = numbered_keys("group-", groups);
    measure(
        bench,
        n,
        |proc, i| {
            proc.join(&keys[i % groups], &()).expect("M2: join");
        },
        |node| node.default_scope().membership_count() == n,
    )
}

/// Runs M1 and M2 at both sizes, adding their figures to `report`.
pub(crate) fn run(bench: &Bench<'_>, report: &mut Report) {
    let sizes = bench.memory;
    if bench.selected("M1") {
        bench.progress("M1");
        match registrations(bench, sizes.small) {
            Ok(c) => report.add(
                "M1",
                "bytes_per_registration_100k",
                c.per_entry,
                Unit::Bytes,
            ),
            Err(e) => report.fail(format!("M1 at {}: {e}", sizes.small)),
        }
        match registrations(bench, sizes.large) {
            Ok(c) => {
                report.add("M1", "bytes_per_registration", c.per_entry, Unit::Bytes);
                report.add("M1", "bytes_per_process", c.per_process, Unit::Bytes);
            }
            Err(e) => report.fail(format!("M1 at {}: {e}", sizes.large)),
        }
    }
    if bench.selected("M2") {
        bench.progress("M2");
        match memberships(bench, sizes.small, sizes.group_size) {
            Ok(c) => report.add("M2", "bytes_per_membership_100k", c.per_entry, Unit::Bytes),
            Err(e) => report.fail(format!("M2 at {}: {e}", sizes.small)),
        }
        match memberships(bench, sizes.large, sizes.group_size) {
            Ok(c) => report.add("M2", "bytes_per_membership", c.per_entry, Unit::Bytes),
            Err(e) => report.fail(format!("M2 at {}: {e}", sizes.large)),
        }
    }
}
