//! The peers' figures and Roster's targets, per contract metric.
//!
//! The best figure of the peers (syn, OTP `pg` and `global`, Phoenix `Group`, measured in
//! the same scenarios on a 2-vCPU machine of the same kind) and Roster's target, per
//! metric. The metric names are fixed so that runs can be compared mechanically.
//!
//! These are the project's one set of absolute targets: roster-bench prints each beside
//! its figure, and `docs/performance.md` uses them. The targets relative to OTP `pg` in the
//! same run (for instance "D1 ahead of pg", "L3 at least 5x ahead") need `pg`'s figures
//! from the same session, so they live with the comparison script
//! (`bench/peers/compare.py`, the `ROWS` table).

/// What a figure must reach to meet Roster's target.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Target {
    /// No target; the figure is reported for comparison only.
    None,
    /// The value must be at least this.
    AtLeast(f64),
    /// The value must be at most this.
    AtMost(f64),
    /// The value must be below this.
    Below(f64),
    /// The value must be at least `ratio` times the value of `metric` in the same run.
    RatioOf {
        /// The reference metric, measured in the same run.
        metric: &'static str,
        /// The smallest acceptable `value / reference`.
        ratio: f64,
    },
    /// The value must be at most `ratio` times the value of `metric` in the same run.
    AtMostRatioOf {
        /// The reference metric, measured in the same run.
        metric: &'static str,
        /// The largest acceptable `value / reference`.
        ratio: f64,
    },
}

/// The best peer's figure and Roster's target for one contract metric.
#[derive(Debug, Clone, Copy)]
pub(crate) struct PeerFigure {
    /// The contract metric name.
    pub metric: &'static str,
    /// The best peer's figure, as printed in the peers' table (empty if none).
    pub best_peer: &'static str,
    /// The target as written in the contract.
    pub target_text: &'static str,
    /// The target in a form that can be checked.
    pub target: Target,
}

/// One row of the contract table.
const fn row(
    metric: &'static str,
    best_peer: &'static str,
    target_text: &'static str,
    target: Target,
) -> PeerFigure {
    PeerFigure {
        metric,
        best_peer,
        target_text,
        target,
    }
}

/// The contract metrics of the local scenarios (L1-L6, M1, M2) with the best peer figure
/// and Roster's target.
pub(crate) const LOCAL: &[PeerFigure] = &[
    row("lookup_1t", "pg 1.75M", ">= 17.5M", Target::AtLeast(17.5e6)),
    row("lookup_2t", "pg 3.9M", ">= 39M", Target::AtLeast(39e6)),
    row("lookup_p50", "pg 711", "", Target::None),
    row("lookup_p99", "pg 1473", "", Target::None),
    row("baseline_map_get_1t", "", "lookup_1t >= 0.5x", Target::None),
    row("baseline_map_get_2t", "", "", Target::None),
    row("members_1t", "pg 1.4M", ">= 7M", Target::AtLeast(7e6)),
    row("members_2t", "pg 2.3M", ">= 11.5M", Target::AtLeast(11.5e6)),
    row("members_p50", "pg 720", "", Target::None),
    row(
        "register_concurrent",
        "pg 151K",
        ">= 1.51M",
        Target::AtLeast(1.51e6),
    ),
    row("cycle_p50", "pg 4948", "<= 1000", Target::AtMost(1000.0)),
    row("cycle_p99", "pg 10096", "", Target::None),
    row(
        "join_concurrent",
        "pg 96.8K",
        ">= 968K",
        Target::AtLeast(968e3),
    ),
    row("events_5k", "pg 36", "<= 4", Target::AtMost(4.0)),
    row(
        "bytes_per_registration",
        "pg 465",
        "<= 120",
        Target::AtMost(120.0),
    ),
    row(
        "bytes_per_membership",
        "pg 297",
        "<= 150",
        Target::AtMost(150.0),
    ),
];

/// The contract metrics of the distributed scenarios (D1-D7, G1, R1) with the best peer figure
/// and Roster's target. `T1` (replicated registrations
/// per second with 3 nodes) has no peer figure.
pub(crate) const DIST: &[PeerFigure] = &[
    row("repl_p50", "pg 40", "< 40", Target::Below(40.0)),
    row("repl_p99", "pg 117", "< 117", Target::Below(117.0)),
    row("repl_max", "", "", Target::None),
    row("register_call_p50", "pg 20", "<= 3", Target::AtMost(3.0)),
    row("raw_one_way_p50", "", "repl_p50 <= 1.5x", Target::None),
    row("sync_10k", "pg 39", "<= 8", Target::AtMost(8.0)),
    row("sync_100k", "syn 678", "<= 135", Target::AtMost(135.0)),
    row("sync_1m", "-", "<= 1500", Target::AtMost(1500.0)),
    row(
        "replica_bytes_per_entry",
        "pg 327",
        "<= 150",
        Target::AtMost(150.0),
    ),
    row("converge_10k", "pg 103", "<= 10", Target::AtMost(10.0)),
    row("cleanup_1k", "pg 9.7", "<= 1", Target::AtMost(1.0)),
    row("cleanup_5k", "pg 48", "<= 5", Target::AtMost(5.0)),
    row("cleanup_50k", "pg 614", "<= 60", Target::AtMost(60.0)),
    row("group_cleanup_1k", "syn 9.6", "<= 1", Target::AtMost(1.0)),
    // G1 is Roster's own scenario: no peer ran it.
    row("join_200k", "", "<= 500", Target::AtMost(500.0)),
    row("group_cleanup_200k", "", "<= 1000", Target::AtMost(1000.0)),
    row("repl_throughput_3n", "", "", Target::None),
    row(
        "resync_bytes_after_1s_drop_1m",
        "full snapshot",
        "<< snapshot",
        Target::None,
    ),
    row("snapshot_bytes_1m", "", "", Target::None),
];

/// Extra targets that relate two metrics of the same run (shown next to the first one).
pub(crate) const RELATIVE: &[PeerFigure] = &[
    row(
        "lookup_1t",
        "",
        ">= 0.5x baseline_map_get_1t",
        Target::RatioOf {
            metric: "baseline_map_get_1t",
            ratio: 0.5,
        },
    ),
    row(
        "repl_p50",
        "",
        "<= 1.5x raw_one_way_p50",
        Target::AtMostRatioOf {
            metric: "raw_one_way_p50",
            ratio: 1.5,
        },
    ),
    // A 10K sync within 2x of what 10K entries take at the 1M sync's rate (1% of it).
    row(
        "sync_10k",
        "",
        "<= 2x the 10K share of sync_1m",
        Target::AtMostRatioOf {
            metric: "sync_1m",
            ratio: 0.02,
        },
    ),
    // "<<": checked as at most 1% of the full snapshot (1000 changes out of 1M entries).
    row(
        "resync_bytes_after_1s_drop_1m",
        "",
        "<= 1% of snapshot_bytes_1m",
        Target::AtMostRatioOf {
            metric: "snapshot_bytes_1m",
            ratio: 0.01,
        },
    ),
];

/// Every contract row, local and distributed.
fn contract() -> impl Iterator<Item = &'static PeerFigure> {
    LOCAL.iter().chain(DIST)
}

/// The contract row of `metric`, if it has one.
pub(crate) fn find(metric: &str) -> Option<&'static PeerFigure> {
    contract().find(|p| p.metric == metric)
}

/// Every check (absolute and relative) that applies to `metric`.
pub(crate) fn checks(metric: &str) -> impl Iterator<Item = &'static PeerFigure> + '_ {
    contract()
        .chain(RELATIVE)
        .filter(move |p| p.metric == metric && p.target != Target::None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_metric_appears_once_in_the_contract_table() {
        let all: Vec<_> = contract().collect();
        for (i, a) in all.iter().enumerate() {
            assert!(
                all[i + 1..].iter().all(|b| b.metric != a.metric),
                "{} twice",
                a.metric
            );
        }
    }

    #[test]
    fn relative_targets_name_a_contract_metric() {
        for r in RELATIVE {
            let (Target::RatioOf { metric, .. } | Target::AtMostRatioOf { metric, .. }) = r.target
            else {
                panic!("{} is not relative", r.metric);
            };
            assert!(find(metric).is_some() && find(r.metric).is_some());
        }
    }
}
