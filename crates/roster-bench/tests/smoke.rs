//! Smoke test: `local --quick --json` emits every contract metric of the local scenarios
//! (and the extra ones this program adds) with a finite positive value. No timing
//! thresholds: this checks the program, not the machine.

use std::collections::HashMap;
use std::process::Command;

use serde_json::Value;

/// Contract metrics of `/work/shared/peer-figures.md` (local scenarios), with their units.
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
    let output = Command::new(env!("CARGO_BIN_EXE_roster-bench"))
        .args(["local", "--quick", "--json"])
        .output()
        .expect("the benchmark program runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "exit {}: {stderr}", output.status);

    let stdout = String::from_utf8(output.stdout).expect("UTF-8 output");
    let mut lines = stdout.lines();
    let meta: Value = serde_json::from_str(lines.next().expect("a meta line")).unwrap();
    assert_eq!(meta["scenario"], "meta");
    assert_eq!(meta["quick"], true);

    let mut figures: HashMap<String, (String, String, f64)> = HashMap::new();
    for line in lines {
        let figure: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
        let object = figure.as_object().expect("a JSON object");
        let mut keys: Vec<&str> = object.keys().map(String::as_str).collect();
        keys.sort_unstable();
        assert_eq!(keys, ["metric", "scenario", "unit", "value"], "{line}");
        let metric = figure["metric"].as_str().unwrap().to_string();
        let entry = (
            figure["scenario"].as_str().unwrap().to_string(),
            figure["unit"].as_str().unwrap().to_string(),
            figure["value"].as_f64().unwrap(),
        );
        assert!(
            figures.insert(metric.clone(), entry).is_none(),
            "{metric} emitted twice"
        );
    }

    for (scenario, metric, unit) in CONTRACT.iter().chain(EXTRA) {
        let Some((s, u, value)) = figures.get(*metric) else {
            panic!("{metric} was not emitted; stderr: {stderr}");
        };
        assert_eq!((s.as_str(), u.as_str()), (*scenario, *unit), "{metric}");
        assert!(
            value.is_finite() && *value > 0.0,
            "{metric} = {value} is not a finite positive value"
        );
    }
}
