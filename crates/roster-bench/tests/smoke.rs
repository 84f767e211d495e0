//! Smoke test: `local --quick --json` emits every contract metric of the local scenarios
//! (and the extra ones this program adds) with a finite positive value. No timing
//! thresholds: this checks the program, not the machine.

mod common;

/// The contract metrics of the local scenarios (those `src/peers.rs` lists), with their units.
const CONTRACT: &[(&str, &str, &str)] = &[
    ("L1", "lookup_1t", "ops/s"),
    ("L1", "lookup_2t", "ops/s"),
    ("L1", "lookup_p50", "ns"),
    ("L1", "lookup_p99", "ns"),
    ("L1", "baseline_map_get_1t", "ops/s"),
    ("L2", "members_1t", "ops/s"),
    ("L2", "members_2t", "ops/s"),
    ("L3", "register_concurrent", "ops/s"),
    ("L4", "cycle_p50", "ns"),
    ("L4", "cycle_p99", "ns"),
    ("L5", "join_concurrent", "ops/s"),
    ("L6", "events_5k", "ms"),
    ("M1", "bytes_per_registration", "bytes"),
    ("M2", "bytes_per_membership", "bytes"),
];

/// Metrics this program adds to the contract.
const EXTRA: &[(&str, &str, &str)] = &[
    ("L1", "timer_overhead_ns", "ns"),
    ("L1", "whereis_1t", "ops/s"),
    ("L2", "members_p50", "ns"),
    ("L2", "members_iter_1t", "ops/s"),
    ("L3", "register_1thread", "ops/s"),
    ("L3", "register_2threads", "ops/s"),
    ("L3", "tasks_noop_concurrent", "ops/s"),
    ("L5", "join_1thread", "ops/s"),
    ("L5", "join_2threads", "ops/s"),
    ("M1", "bytes_per_registration_100k", "bytes"),
    ("M1", "bytes_per_process", "bytes"),
    ("M2", "bytes_per_membership_100k", "bytes"),
];

#[test]
fn quick_local_run_emits_every_metric_with_a_positive_value() {
    let (meta, figures, stderr) = common::run_json(&["local", "--quick", "--json"]);
    assert_eq!(meta["quick"], true);
    let expected: Vec<_> = CONTRACT.iter().chain(EXTRA).copied().collect();
    common::check_emitted(&figures, &expected, &stderr);
}
