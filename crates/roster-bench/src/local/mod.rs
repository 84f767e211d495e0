//! The local scenarios (L1-L6): one node, one OS process.
//!
//! Each scenario is run as the peers' figures were measured (see [`crate::peers`]) and
//! starts from a fresh [`Node`]. Throughputs and latencies are the median of
//! [`Sizes::reps`] runs, as the peers' cells are the median of 5.

mod events;
mod reads;
mod writes;

use compact_str::{CompactString, format_compact};
use roster::{Node, Process};
use serde::Serialize;

use crate::Bench;
use crate::report::Report;

/// The sizes of the local scenarios.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Sizes {
    /// Runs per figure; the median is reported.
    pub reps: usize,
    /// L1: processes registering `key-1..key-N`.
    pub names: usize,
    /// L1, L2: calls per reader thread and pass.
    pub reads: usize,
    /// L2: groups (each of `members_per_group` processes).
    pub groups: usize,
    /// L2: members per group.
    pub members_per_group: usize,
    /// L3: processes registering one unique key each, concurrently.
    pub registers: usize,
    /// L4: register+unregister cycles.
    pub cycles: usize,
    /// L5: processes joining one of `join_groups` groups, concurrently.
    pub joins: usize,
    /// L5: groups joined.
    pub join_groups: usize,
    /// L6: registrations whose events the subscriber must receive.
    pub events: usize,
}

impl Sizes {
    /// The sizes of the peers' scenarios, or much smaller ones for smoke runs (`quick`).
    pub fn new(quick: bool, reps: Option<usize>) -> Self {
        let full = Self {
            reps: 5,
            names: 10_000,
            reads: 100_000,
            groups: 100,
            members_per_group: 100,
            registers: 10_000,
            cycles: 10_000,
            joins: 10_000,
            join_groups: 100,
            events: 5_000,
        };
        let sizes = if quick {
            Self {
                reps: 1,
                names: 1_000,
                reads: 10_000,
                groups: 10,
                registers: 1_000,
                cycles: 1_000,
                joins: 1_000,
                join_groups: 10,
                events: 500,
                ..full
            }
        } else {
            full
        };
        Self {
            reps: reps.unwrap_or(sizes.reps).max(1),
            ..sizes
        }
    }
}

/// Runs the selected local scenarios in order, adding their figures to `report`.
pub(crate) fn run(bench: &Bench<'_>, report: &mut Report) {
    let sizes = &bench.local;
    type Scenario = fn(&Bench<'_>, &Sizes, &mut Report);
    let scenarios: [(&str, Scenario); 6] = [
        ("L1", reads::lookup),
        ("L2", reads::members),
        ("L3", writes::register),
        ("L4", writes::cycle),
        ("L5", writes::join),
        ("L6", events::delivery),
    ];
    for (id, scenario) in scenarios {
        if bench.selected(id) {
            bench.progress(id);
            scenario(bench, sizes, report);
        }
    }
}

/// `n` new processes of `node` (not timed by any scenario).
fn processes(node: &Node, n: usize) -> Vec<Process> {
    (0..n).map(|_| node.new_process()).collect()
}

/// The group of the `i`-th (0-based) process when processes are spread round-robin over
/// `groups` groups named `group-1..group-{groups}`.
fn group_of(i: usize, groups: usize) -> CompactString {
    format_compact!("group-{}", i % groups + 1)
}
