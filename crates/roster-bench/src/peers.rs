//! The peers' figures and Roster's targets, per contract metric.
//!
//! Copied from the "Output contract" table of `/work/shared/peer-figures.md` (syn, OTP `pg`
//! and `global`, Phoenix `Group`, measured on a 2-vCPU machine of the same kind). Keep this
//! table in step with that file: the metric names are fixed by it so that runs can be
//! compared mechanically.

/// What a figure must reach to meet Roster's target.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Target {
    /// No target; the figure is reported for comparison only.
    None,
    /// The value must be at least this.
    AtLeast(f64),
    /// The value must be at most this.
    AtMost(f64),
    /// The value must be at least `ratio` times the value of `metric` in the same run.
    RatioOf {
        /// The reference metric, measured in the same run.
        metric: &'static str,
        /// The smallest acceptable `value / reference`.
        ratio: f64,
    },
}

/// The best peer's figure and Roster's target for one contract metric.
#[derive(Debug, Clone, Copy)]
pub struct PeerFigure {
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
/// and Roster's target, from `/work/shared/peer-figures.md`.
pub const LOCAL: &[PeerFigure] = &[
    row("lookup_1t", "pg 1.75M", ">= 17.5M", Target::AtLeast(17.5e6)),
    row("lookup_2t", "pg 3.9M", ">= 39M", Target::AtLeast(39e6)),
    row("lookup_p50", "pg 711", "", Target::None),
    row("lookup_p99", "pg 1473", "", Target::None),
    row("baseline_map_get_1t", "", "lookup_1t >= 0.5x", Target::None),
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
        "<= 150",
        Target::AtMost(150.0),
    ),
    row(
        "bytes_per_membership",
        "pg 297",
        "<= 150",
        Target::AtMost(150.0),
    ),
];

/// Extra targets that relate two metrics of the same run (shown next to the first one).
pub const RELATIVE: &[PeerFigure] = &[row(
    "lookup_1t",
    "",
    ">= 0.5x baseline_map_get_1t",
    Target::RatioOf {
        metric: "baseline_map_get_1t",
        ratio: 0.5,
    },
)];

/// The contract row of `metric`, if it has one.
pub fn find(metric: &str) -> Option<&'static PeerFigure> {
    LOCAL.iter().find(|p| p.metric == metric)
}

/// Every check (absolute and relative) that applies to `metric`.
pub fn checks(metric: &str) -> impl Iterator<Item = &'static PeerFigure> + '_ {
    LOCAL
        .iter()
        .chain(RELATIVE)
        .filter(move |p| p.metric == metric && p.target != Target::None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_metric_appears_once_in_the_contract_table() {
        for (i, a) in LOCAL.iter().enumerate() {
            assert!(
                LOCAL[i + 1..].iter().all(|b| b.metric != a.metric),
                "{} twice",
                a.metric
            );
        }
    }

    #[test]
    fn relative_targets_name_a_contract_metric() {
        for r in RELATIVE {
            let Target::RatioOf { metric, .. } = r.target else {
                panic!("{} is not relative", r.metric);
            };
            assert!(find(metric).is_some() && find(r.metric).is_some());
        }
    }
}
