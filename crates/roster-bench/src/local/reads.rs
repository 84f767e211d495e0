//! L1 (lookup) and L2 (members): lock-free reads from plain OS threads.
//!
//! Throughputs come from passes that time only the whole pass (no per-call clock);
//! latencies from separate passes that time each call. Every pass walks a pre-generated
//! list of uniformly random keys, and each result goes through [`black_box`].

use std::hint::black_box;

use compact_str::CompactString;
use hdrhistogram::Histogram;

use super::{Sizes, group_of, processes};
use crate::Bench;
use crate::measure::{
    numbered_keys, random_keys, runs_of, threaded_pass, timed_pass, timer_overhead_ns,
};
use crate::report::{Report, Unit};

/// Seed of the first reader's key list; the others use the following seeds.
const SEED: u64 = 0x5eed;

/// The bare map the L1 baseline reads: the same kind of map, key type and hasher as
/// Roster's name table, with a plain `u64` value.
type BaselineMap = papaya::HashMap<CompactString, u64, foldhash::fast::RandomState>;

/// One key list per reader thread: `threads` lists of `len` keys drawn uniformly from
/// `{prefix}1..={prefix}{space}`.
fn reader_lists(prefix: &str, space: usize, len: usize, threads: usize) -> Vec<Vec<CompactString>> {
    (0..threads as u64)
        .map(|t| random_keys(prefix, space, len, SEED + t))
        .collect()
}

/// p50 and p99 of a histogram, in nanoseconds.
fn p50_p99(hist: &Histogram<u64>) -> [f64; 2] {
    [0.5, 0.99].map(|q| hist.value_at_quantile(q) as f64)
}

/// L1: 10K names; `lookup` by 1 and 2 reader threads, per-call latency, `whereis`, and a
/// bare map read by 1 and 2 threads with the same keys, key list and loop shape as the
/// baseline.
pub(super) fn lookup(bench: &Bench<'_>, sizes: &Sizes, report: &mut Report) {
    let node = bench.node();
    let procs = processes(&node, sizes.names);
    let keys = numbered_keys("key-", sizes.names);
    for (proc, key) in procs.iter().zip(&keys) {
        proc.register(key, &()).expect("L1 setup: register");
    }
    let baseline = BaselineMap::default();
    for (i, key) in keys.iter().enumerate() {
        baseline.pin().insert(key.clone(), i as u64);
    }

    let one = reader_lists("key-", sizes.names, sizes.reads, 1);
    let two = reader_lists("key-", sizes.names, sizes.reads, 2);
    let misses = one[0]
        .iter()
        .filter(|k| node.default_scope().lookup(k).is_none())
        .count();
    if misses > 0 {
        report.fail(format!(
            "L1: {misses} lookups of registered keys found nothing"
        ));
        return;
    }

    let lookup = |key: &str| {
        black_box(node.default_scope().lookup(key));
    };
    let whereis = |key: &str| {
        black_box(node.default_scope().whereis(key));
    };
    let map_get = |key: &str| {
        black_box(baseline.pin().get(key).copied());
    };
    // Warm-up: caches, branch predictors, lazily initialized thread state.
    threaded_pass(&one, &lookup);
    threaded_pass(&one, &whereis);
    threaded_pass(&one, &map_get);
    // Interleaved so that drift during the run affects Roster and the baseline alike.
    let [lookup_1t, whereis_1t, baseline_1t] = runs_of(sizes.reps, || {
        [
            threaded_pass(&one, &lookup),
            threaded_pass(&one, &whereis),
            threaded_pass(&one, &map_get),
        ]
    });
    // The bare map read by two threads too: how far two readers scale on this machine
    // whatever the registry does.
    let [lookup_2t, baseline_2t] = runs_of(sizes.reps, || {
        [threaded_pass(&two, &lookup), threaded_pass(&two, &map_get)]
    });
    let [p50, p99] = runs_of(sizes.reps, || p50_p99(&timed_pass(&one[0], lookup)));
    let timer = timer_overhead_ns(sizes.reads);

    report.add_runs("L1", "lookup_1t", &lookup_1t, Unit::OpsPerSec);
    report.add_runs("L1", "lookup_2t", &lookup_2t, Unit::OpsPerSec);
    report.add_runs("L1", "lookup_p50", &p50, Unit::Ns);
    report.add_runs("L1", "lookup_p99", &p99, Unit::Ns);
    report.add("L1", "timer_overhead_ns", timer, Unit::Ns);
    report.add_runs("L1", "whereis_1t", &whereis_1t, Unit::OpsPerSec);
    report.add_runs("L1", "baseline_map_get_1t", &baseline_1t, Unit::OpsPerSec);
    report.add_runs("L1", "baseline_map_get_2t", &baseline_2t, Unit::OpsPerSec);
    drop(procs);
}

/// L2: 10K processes in 100 groups of 100; `members` by 1 and 2 reader threads, per-call
/// latency, and a variant that also walks every member of the snapshot.
pub(super) fn members(bench: &Bench<'_>, sizes: &Sizes, report: &mut Report) {
    let node = bench.node();
    let n = sizes.groups * sizes.members_per_group;
    let procs = processes(&node, n);
    for (i, proc) in procs.iter().enumerate() {
        proc.join(&group_of(i, sizes.groups), &())
            .expect("L2 setup: join");
    }
    let sizes_ok = (1..=sizes.groups).all(|g| {
        node.default_scope().members(&format!("group-{g}")).len() == sizes.members_per_group
    });
    if node.default_scope().membership_count() != n || !sizes_ok {
        report.fail(format!(
            "L2: expected {} groups of {} members",
            sizes.groups, sizes.members_per_group
        ));
        return;
    }

    let one = reader_lists("group-", sizes.groups, sizes.reads, 1);
    let two = reader_lists("group-", sizes.groups, sizes.reads, 2);
    // The call's result is a usable snapshot of (pid, meta): it is kept, then released.
    let members = |key: &str| {
        black_box(node.default_scope().members(key));
    };
    let members_iter = |key: &str| {
        let snapshot = node.default_scope().members(key);
        let sum: u64 = snapshot.iter().map(|m| m.pid().serial()).sum();
        black_box(sum);
    };
    threaded_pass(&one, &members);
    threaded_pass(&one, &members_iter);
    let [members_1t, members_iter_1t] = runs_of(sizes.reps, || {
        [
            threaded_pass(&one, &members),
            threaded_pass(&one, &members_iter),
        ]
    });
    let [members_2t] = runs_of(sizes.reps, || [threaded_pass(&two, &members)]);
    let [p50, p99] = runs_of(sizes.reps, || p50_p99(&timed_pass(&one[0], members)));

    report.add_runs("L2", "members_1t", &members_1t, Unit::OpsPerSec);
    report.add_runs("L2", "members_2t", &members_2t, Unit::OpsPerSec);
    report.add_runs("L2", "members_p50", &p50, Unit::Ns);
    report.add_runs("L2", "members_p99", &p99, Unit::Ns);
    report.add_runs("L2", "members_iter_1t", &members_iter_1t, Unit::OpsPerSec);
    drop(procs);
}
