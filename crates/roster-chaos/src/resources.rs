//! Memory and open files of agent processes, from `/proc`, and the trend check over
//! samples taken during a run.

/// One sample of one process.
#[derive(Debug, Clone, Copy)]
pub struct Sample {
    /// When, in seconds since the run started.
    pub at_s: f64,
    /// Resident set size in KiB (`VmRSS`).
    pub rss_kib: u64,
    /// Open file descriptors.
    pub fds: u64,
}

/// Reads `pid`'s RSS and open fds; `None` if the process is gone.
pub fn sample(pid: u32, at_s: f64) -> Option<Sample> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let rss_kib = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())?;
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd")).ok()?.count() as u64;
    Some(Sample { at_s, rss_kib, fds })
}

/// The least-squares slope of `values` over `times` (units per second).
fn slope(points: &[(f64, f64)]) -> f64 {
    let n = points.len() as f64;
    if points.len() < 2 {
        return 0.0;
    }
    let mean_t = points.iter().map(|p| p.0).sum::<f64>() / n;
    let mean_v = points.iter().map(|p| p.1).sum::<f64>() / n;
    let cov: f64 = points.iter().map(|p| (p.0 - mean_t) * (p.1 - mean_v)).sum();
    let var: f64 = points.iter().map(|p| (p.0 - mean_t).powi(2)).sum();
    if var == 0.0 { 0.0 } else { cov / var }
}

/// The verdict on one process's samples (those of one incarnation: a restart starts a
/// new series).
#[derive(Debug, Clone)]
pub struct Trend {
    /// First and last RSS, MiB (means of the first and last quarter of the samples).
    pub rss_mib: (f64, f64),
    /// First and last open fds (same quarters).
    pub fds: (f64, f64),
    /// RSS growth the slope predicts over the series, MiB.
    pub rss_growth_mib: f64,
    /// Fd growth the slope predicts over the series.
    pub fd_growth: f64,
    /// Why the trend is rising, if it is.
    pub rising: Option<String>,
}

/// Judges a series. Rising means: the fitted line grows RSS by more than 32 MiB and 50%
/// of the start over the series and the last quarter is above the first, or grows fds by
/// more than 32 and 50%. Shorter than 2 minutes or 8 samples: never rising (too little
/// to tell warm-up from a leak).
pub fn trend(samples: &[Sample]) -> Trend {
    let quarter = (samples.len() / 4).max(1);
    let mean = |s: &[Sample], f: fn(&Sample) -> f64| {
        if s.is_empty() {
            0.0
        } else {
            s.iter().map(f).sum::<f64>() / s.len() as f64
        }
    };
    let rss = |s: &Sample| s.rss_kib as f64 / 1024.0;
    let fds = |s: &Sample| s.fds as f64;
    let head = &samples[..quarter.min(samples.len())];
    let tail = &samples[samples.len().saturating_sub(quarter)..];
    let span = match (samples.first(), samples.last()) {
        (Some(a), Some(b)) => b.at_s - a.at_s,
        _ => 0.0,
    };
    let rss_points: Vec<(f64, f64)> = samples.iter().map(|s| (s.at_s, rss(s))).collect();
    let fd_points: Vec<(f64, f64)> = samples.iter().map(|s| (s.at_s, fds(s))).collect();
    let rss_growth = slope(&rss_points) * span;
    let fd_growth = slope(&fd_points) * span;
    let (rss_head, rss_tail) = (mean(head, rss), mean(tail, rss));
    let (fd_head, fd_tail) = (mean(head, fds), mean(tail, fds));
    let mut rising = None;
    if span >= 120.0 && samples.len() >= 8 {
        if rss_growth > 32.0 && rss_growth > 0.5 * rss_head && rss_tail > rss_head {
            rising = Some(format!(
                "RSS {rss_head:.1} -> {rss_tail:.1} MiB (+{rss_growth:.1} MiB fitted)"
            ));
        } else if fd_growth > 32.0 && fd_growth > 0.5 * fd_head && fd_tail > fd_head {
            rising = Some(format!(
                "fds {fd_head:.0} -> {fd_tail:.0} (+{fd_growth:.0} fitted)"
            ));
        }
    }
    Trend {
        rss_mib: (rss_head, rss_tail),
        fds: (fd_head, fd_tail),
        rss_growth_mib: rss_growth,
        fd_growth,
        rising,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn series(f: impl Fn(f64) -> (u64, u64)) -> Vec<Sample> {
        (0..60)
            .map(|i| {
                let at_s = f64::from(i) * 5.0;
                let (rss_kib, fds) = f(at_s);
                Sample { at_s, rss_kib, fds }
            })
            .collect()
    }

    #[test]
    fn a_flat_series_is_not_rising() {
        let t = trend(&series(|t| (40_000 + (t as u64 % 3) * 100, 30)));
        assert!(t.rising.is_none(), "{t:?}");
    }

    #[test]
    fn a_leak_is_rising() {
        let t = trend(&series(|t| (40_000 + (t as u64) * 400, 30)));
        assert!(t.rising.is_some(), "{t:?}");
        let t = trend(&series(|t| (40_000, 30 + t as u64)));
        assert!(t.rising.is_some(), "{t:?}");
    }

    #[test]
    fn a_short_series_is_never_rising() {
        let samples: Vec<Sample> = series(|t| (40_000 + (t as u64) * 4000, 30))
            .into_iter()
            .take(10)
            .collect();
        assert!(trend(&samples).rising.is_none());
    }
}
