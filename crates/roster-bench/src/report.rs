//! Collects figures and prints them: JSON lines as they come, or a table at the end.

use std::io::Write;

use serde::Serialize;

use crate::measure::median;
use crate::peers::{self, Target};

/// The unit of a figure, as written in the output contract.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub(crate) enum Unit {
    /// Operations per second.
    #[serde(rename = "ops/s")]
    OpsPerSec,
    /// Nanoseconds.
    #[serde(rename = "ns")]
    Ns,
    /// Microseconds.
    #[serde(rename = "us")]
    Us,
    /// Milliseconds.
    #[serde(rename = "ms")]
    Ms,
    /// Bytes.
    #[serde(rename = "bytes")]
    Bytes,
}

impl Unit {
    /// The unit as printed.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::OpsPerSec => "ops/s",
            Self::Ns => "ns",
            Self::Us => "us",
            Self::Ms => "ms",
            Self::Bytes => "bytes",
        }
    }
}

/// One measured figure: one JSON line of the output contract.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct Figure {
    /// Scenario id, e.g. `"L1"`.
    pub scenario: &'static str,
    /// Metric name, e.g. `"lookup_1t"`.
    pub metric: &'static str,
    /// The value, in `unit`.
    pub value: f64,
    /// The unit.
    pub unit: Unit,
    /// How many runs the value is the median of (1: a single run). In the human table
    /// only: the JSON lines keep the contract's four fields.
    #[serde(skip)]
    pub runs: usize,
}

/// Where figures go: printed at once as JSON lines, or kept for a table at the end.
#[derive(Debug)]
pub(crate) struct Report {
    json: bool,
    verbose: bool,
    figures: Vec<Figure>,
    failures: Vec<String>,
}

impl Report {
    /// A report printing JSON lines (`json`) or a human table; `verbose` also prints every
    /// run of a median to stderr.
    pub(crate) fn new(json: bool, verbose: bool) -> Self {
        Self {
            json,
            verbose,
            figures: Vec::new(),
            failures: Vec::new(),
        }
    }

    /// Whether figures are printed as JSON lines.
    pub(crate) fn is_json(&self) -> bool {
        self.json
    }

    /// Records a figure measured by one run (and prints it at once in JSON mode).
    pub(crate) fn add(
        &mut self,
        scenario: &'static str,
        metric: &'static str,
        value: f64,
        unit: Unit,
    ) {
        self.push(scenario, metric, value, unit, 1);
    }

    /// Records a figure that is the median of `runs` runs.
    fn push(
        &mut self,
        scenario: &'static str,
        metric: &'static str,
        value: f64,
        unit: Unit,
        runs: usize,
    ) {
        let figure = Figure {
            scenario,
            metric,
            value,
            unit,
            runs,
        };
        if self.json {
            let line = serde_json::to_string(&figure).expect("a figure always serializes");
            let mut out = std::io::stdout().lock();
            // A closed stdout (e.g. piped into `head`) is not worth a panic.
            let _ = writeln!(out, "{line}");
            let _ = out.flush();
        }
        self.figures.push(figure);
    }

    /// Records the median of some runs as the figure (printing every run to stderr when
    /// verbose).
    pub(crate) fn add_runs(
        &mut self,
        scenario: &'static str,
        metric: &'static str,
        runs: &[f64],
        unit: Unit,
    ) {
        if self.verbose {
            let all: Vec<String> = runs.iter().map(|v| format_value(*v, unit)).collect();
            eprintln!(
                "  {scenario} {metric} runs: {} {}",
                all.join(" "),
                unit.as_str()
            );
        }
        self.push(scenario, metric, median(runs), unit, runs.len());
    }

    /// Records a failed check (a scenario that did not behave); printed to stderr at once.
    pub(crate) fn fail(&mut self, message: String) {
        eprintln!("FAILURE: {message}");
        self.failures.push(message);
    }

    /// The failures recorded so far.
    pub(crate) fn failures(&self) -> &[String] {
        &self.failures
    }

    /// The value of a metric recorded in this run.
    pub(crate) fn value_of(&self, metric: &str) -> Option<f64> {
        self.figures
            .iter()
            .find(|f| f.metric == metric)
            .map(|f| f.value)
    }

    /// Whether `figure` meets every target that applies to it: `None` without a target.
    pub(crate) fn meets_targets(&self, figure: &Figure) -> Option<bool> {
        let mut verdict = None;
        for check in peers::checks(figure.metric) {
            let ok = match check.target {
                Target::None => continue,
                Target::AtLeast(min) => figure.value >= min,
                Target::AtMost(max) => figure.value <= max,
                Target::Below(max) => figure.value < max,
                Target::RatioOf { metric, ratio } => match self.value_of(metric) {
                    Some(reference) => figure.value >= ratio * reference,
                    None => continue,
                },
                Target::AtMostRatioOf { metric, ratio } => match self.value_of(metric) {
                    Some(reference) => figure.value <= ratio * reference,
                    None => continue,
                },
            };
            verdict = Some(verdict.unwrap_or(true) && ok);
        }
        verdict
    }

    /// The human table: scenario, metric, value, unit, best peer, target, verdict.
    pub(crate) fn table(&self) -> String {
        let header = [
            "scenario",
            "metric",
            "value",
            "unit",
            "runs",
            "best peer",
            "target",
            "",
        ];
        let mut rows: Vec<[String; 8]> = Vec::with_capacity(self.figures.len());
        for figure in &self.figures {
            let peer = peers::find(figure.metric);
            let mut target: Vec<&str> = peers::checks(figure.metric)
                .map(|c| c.target_text)
                .collect();
            if target.is_empty()
                && let Some(p) = peer
            {
                target.push(p.target_text);
            }
            let verdict = match self.meets_targets(figure) {
                Some(true) => "ok",
                Some(false) => "MISS",
                None => "",
            };
            rows.push([
                figure.scenario.to_string(),
                figure.metric.to_string(),
                format_value(figure.value, figure.unit),
                figure.unit.as_str().to_string(),
                figure.runs.to_string(),
                peer.map_or("", |p| p.best_peer).to_string(),
                target.join("; "),
                verdict.to_string(),
            ]);
        }
        let mut widths = header.map(str::len);
        for row in &rows {
            for (w, cell) in widths.iter_mut().zip(row) {
                *w = (*w).max(cell.chars().count());
            }
        }
        let mut out = String::new();
        let line = |cells: &[&str], out: &mut String| {
            for (i, (cell, w)) in cells.iter().zip(widths).enumerate() {
                // Values and run counts are right-aligned, text left-aligned.
                if i == 2 || i == 4 {
                    out.push_str(&format!("{cell:>w$}  "));
                } else {
                    out.push_str(&format!("{cell:<w$}  "));
                }
            }
            out.truncate(out.trim_end().len());
            out.push('\n');
        };
        line(&header, &mut out);
        let rule: Vec<String> = widths.iter().map(|w| "-".repeat(*w)).collect();
        line(
            &rule.iter().map(String::as_str).collect::<Vec<_>>(),
            &mut out,
        );
        for row in &rows {
            line(&row.each_ref().map(String::as_str), &mut out);
        }
        out
    }
}

/// A value for humans: throughputs with K/M/G, durations and sizes with sensible precision.
pub(crate) fn format_value(value: f64, unit: Unit) -> String {
    match unit {
        Unit::OpsPerSec => {
            let (scaled, suffix) = if value >= 1e9 {
                (value / 1e9, "G")
            } else if value >= 1e6 {
                (value / 1e6, "M")
            } else if value >= 1e3 {
                (value / 1e3, "K")
            } else {
                (value, "")
            };
            format!("{scaled:.2}{suffix}")
        }
        Unit::Ns => format!("{value:.0}"),
        Unit::Us => format!("{value:.1}"),
        Unit::Ms => format!("{value:.2}"),
        Unit::Bytes => format!("{value:.1}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_line_has_the_contract_shape() {
        let figure = Figure {
            scenario: "L1",
            metric: "lookup_1t",
            value: 12345.0,
            unit: Unit::OpsPerSec,
            runs: 5,
        };
        assert_eq!(
            serde_json::to_string(&figure).unwrap(),
            r#"{"scenario":"L1","metric":"lookup_1t","value":12345.0,"unit":"ops/s"}"#
        );
    }

    #[test]
    fn targets_are_checked_including_relative_ones() {
        let mut report = Report::new(false, false);
        report.add("L1", "baseline_map_get_1t", 40e6, Unit::OpsPerSec);
        report.add("L1", "lookup_1t", 18e6, Unit::OpsPerSec);
        report.add("L4", "cycle_p50", 900.0, Unit::Ns);
        report.add("L4", "cycle_p99", 5000.0, Unit::Ns);
        let verdicts: Vec<_> = report
            .figures
            .iter()
            .map(|f| report.meets_targets(f))
            .collect();
        // 18M >= 17.5M but < 0.5 x 40M.
        assert_eq!(verdicts, [None, Some(false), Some(true), None]);
        assert!(report.table().contains("MISS"));
    }

    #[test]
    fn values_are_formatted_per_unit() {
        assert_eq!(format_value(17_500_000.0, Unit::OpsPerSec), "17.50M");
        assert_eq!(format_value(968_000.0, Unit::OpsPerSec), "968.00K");
        assert_eq!(format_value(711.4, Unit::Ns), "711");
        assert_eq!(format_value(3.456, Unit::Ms), "3.46");
    }
}
