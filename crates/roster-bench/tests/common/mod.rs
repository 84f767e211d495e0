//! What the smoke tests share: running the program and reading its JSON lines.

use std::collections::HashMap;
use std::process::Command;

use serde_json::Value;

/// `(scenario, unit, value)` of each metric emitted by a run.
pub(crate) type Figures = HashMap<String, (String, String, f64)>;

/// Runs the benchmark program with `args` (which must include `--json`); checks that it
/// succeeded and that every line after the meta line is one figure of the contract's shape.
/// Returns the meta line, the figures and the program's stderr.
pub(crate) fn run_json(args: &[&str]) -> (Value, Figures, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_roster-bench"))
        .args(args)
        .output()
        .expect("the benchmark program runs");
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(output.status.success(), "exit {}: {stderr}", output.status);

    let stdout = String::from_utf8(output.stdout).expect("UTF-8 output");
    let mut lines = stdout.lines();
    let meta: Value = serde_json::from_str(lines.next().expect("a meta line")).unwrap();
    assert_eq!(meta["scenario"], "meta");

    let mut figures = Figures::new();
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
    (meta, figures, stderr)
}

/// Checks that every `(scenario, metric, unit)` was emitted, with a finite positive value.
pub(crate) fn check_emitted(figures: &Figures, expected: &[(&str, &str, &str)], stderr: &str) {
    for (scenario, metric, unit) in expected {
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
