//! The long form: random faults one after another for a while, with the agents' memory and
//! open files sampled all along, and a table at the end.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::error::ChaosError;
use crate::faults::Fault;
use crate::resources::{self, Sample, Trend};
use crate::scenario::{Report, Run};
use crate::workload::WorkloadConfig;

/// Settings of a soak.
#[derive(Debug, Clone)]
pub struct SoakConfig {
    /// How long to inject faults.
    pub duration: Duration,
    /// Agents.
    pub nodes: usize,
    /// Seed of the fault choices and the workload.
    pub seed: u64,
    /// How often to sample the agents' RSS and fds.
    pub sample_every: Duration,
}

/// The soak's result.
#[derive(Debug, Clone)]
pub struct SoakReport {
    /// The run's report.
    pub report: Report,
    /// Per node: its samples, one series per incarnation (process).
    pub samples: BTreeMap<usize, Vec<Vec<Sample>>>,
    /// How long it ran.
    pub elapsed: Duration,
}

impl SoakReport {
    /// The trend of each node's longest series.
    pub fn trends(&self) -> Vec<(usize, Trend, usize)> {
        self.samples
            .iter()
            .filter_map(|(node, series)| {
                let longest = series.iter().max_by_key(|s| s.len())?;
                Some((*node, resources::trend(longest), series.len()))
            })
            .collect()
    }

    /// Whether anything failed: a violation, a fault that did not converge, a rising trend.
    pub fn failed(&self) -> bool {
        !self.report.violations.is_empty()
            || self.report.faults.iter().any(|f| f.convergence.is_none())
            || self.trends().iter().any(|(_, t, _)| t.rising.is_some())
    }

    /// The table (Markdown).
    pub fn table(&self) -> String {
        let r = &self.report;
        let mut out = String::new();
        let mut kinds: BTreeMap<&str, usize> = BTreeMap::new();
        for f in &r.faults {
            *kinds.entry(f.kind).or_default() += 1;
        }
        let mut conv: Vec<f64> = r
            .faults
            .iter()
            .filter_map(|f| f.convergence.map(|d| d.as_secs_f64()))
            .collect();
        conv.sort_by(f64::total_cmp);
        let pct = |p: f64| -> String {
            if conv.is_empty() {
                return "-".into();
            }
            let i = ((conv.len() as f64 - 1.0) * p).round() as usize;
            format!("{:.2} s", conv[i.min(conv.len() - 1)])
        };
        let kinds_text: Vec<String> = kinds.iter().map(|(k, n)| format!("{k} {n}")).collect();
        let _ = writeln!(out, "| figure | value |");
        let _ = writeln!(out, "|---|---|");
        let _ = writeln!(
            out,
            "| duration | {:.1} min |",
            self.elapsed.as_secs_f64() / 60.0
        );
        let _ = writeln!(
            out,
            "| faults injected | {} ({}) |",
            r.faults.len(),
            kinds_text.join(", ")
        );
        let _ = writeln!(out, "| operations | {} |", r.operations);
        let _ = writeln!(
            out,
            "| convergence after each heal | p50 {}, p99 {}, max {} ({} of {} converged) |",
            pct(0.5),
            pct(0.99),
            pct(1.0),
            conv.len(),
            r.faults.len()
        );
        let _ = writeln!(out, "| entries lost | {} |", r.lost);
        let _ = writeln!(out, "| stale entries | {} |", r.stale);
        let mut by_check: BTreeMap<String, usize> = BTreeMap::new();
        for v in &r.violations {
            *by_check.entry(v.check.to_string()).or_default() += 1;
        }
        let checks: Vec<String> = by_check.iter().map(|(k, n)| format!("{k} {n}")).collect();
        let _ = writeln!(
            out,
            "| checker violations | {}{} |",
            r.violations.len(),
            if checks.is_empty() {
                String::new()
            } else {
                format!(" ({})", checks.join(", "))
            }
        );
        let _ = writeln!(out);
        let _ = writeln!(
            out,
            "| agent | processes | RSS first -> last quarter | fitted RSS growth | fds first -> last quarter | trend |"
        );
        let _ = writeln!(out, "|---|---|---|---|---|---|");
        for (node, t, series) in self.trends() {
            let _ = writeln!(
                out,
                "| n{node} | {series} | {:.1} -> {:.1} MiB | {:+.1} MiB | {:.0} -> {:.0} | {} |",
                t.rss_mib.0,
                t.rss_mib.1,
                t.rss_growth_mib,
                t.fds.0,
                t.fds.1,
                t.rising.as_deref().unwrap_or("flat")
            );
        }
        out
    }
}

/// The faults a soak picks from, for `nodes` nodes (4 or more).
pub fn fault_menu(nodes: usize, rng: &mut StdRng) -> Fault {
    let a = rng.random_range(0..nodes);
    let mut b = rng.random_range(0..nodes - 1);
    if b >= a {
        b += 1;
    }
    let half = nodes / 2;
    match rng.random_range(0..13) {
        0 => Fault::Isolate(a),
        1 => Fault::Split((0..half).collect(), (half..nodes).collect()),
        2 => Fault::Asymmetric(a, b),
        3 => Fault::OneWay { from: a, to: b },
        4 => Fault::Degrade {
            loss_percent: rng.random_range(5..30),
            delay_ms: 20,
        },
        5 => Fault::Kill(a),
        6 => Fault::Pause(a),
        7 => Fault::RollingRestart,
        8 => Fault::Combined(vec![
            Fault::Isolate(a),
            Fault::Degrade {
                loss_percent: 15,
                delay_ms: 0,
            },
        ]),
        9 => Fault::DiskFull(a),
        10 => Fault::ClockSkew {
            node: a,
            seconds: if rng.random_bool(0.5) { 30 } else { -30 },
        },
        11 => Fault::Combined(vec![
            Fault::ClockSkew {
                node: a,
                seconds: 45,
            },
            Fault::Isolate(b),
        ]),
        _ => Fault::Combined(vec![Fault::Asymmetric(a, b), Fault::Kill(b)]),
    }
}

/// Runs a soak; prints each fault as it goes.
pub fn soak(binary: PathBuf, config: &SoakConfig) -> Result<SoakReport, ChaosError> {
    let started = Instant::now();
    let workload = WorkloadConfig {
        seed: config.seed,
        ..WorkloadConfig::default()
    };
    let mut run = Run::start(binary, config.nodes, workload)?;
    let pids = Arc::new(Mutex::new(run.cluster.pids()));
    let samples: Arc<Mutex<BTreeMap<usize, Vec<Vec<Sample>>>>> = Arc::default();
    let done = Arc::new(AtomicBool::new(false));
    let sampler = {
        let (pids, samples, done) = (pids.clone(), samples.clone(), done.clone());
        let every = config.sample_every;
        std::thread::spawn(move || {
            let mut last: BTreeMap<usize, u32> = BTreeMap::new();
            let t0 = Instant::now();
            while !done.load(Ordering::SeqCst) {
                let now = pids.lock().map(|p| p.clone()).unwrap_or_default();
                for (node, pid) in now.iter().enumerate() {
                    let Some(pid) = pid else { continue };
                    let Some(s) = resources::sample(*pid, t0.elapsed().as_secs_f64()) else {
                        continue;
                    };
                    let mut all = samples
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner);
                    let series = all.entry(node).or_default();
                    if last.get(&node) != Some(pid) || series.is_empty() {
                        series.push(Vec::new());
                        last.insert(node, *pid);
                    }
                    if let Some(current) = series.last_mut() {
                        current.push(s);
                    }
                }
                std::thread::sleep(every);
            }
        })
    };
    let mut rng = StdRng::seed_from_u64(config.seed);
    if let Some(c) = run.checkpoint() {
        println!("baseline checkpoint: converged in {:.2} s", c.as_secs_f64());
    }
    while started.elapsed() < config.duration {
        let fault = fault_menu(config.nodes, &mut rng);
        let hold = Duration::from_millis(rng.random_range(3_000..15_000));
        let result = run.fault(&fault, hold)?.clone();
        if let Ok(mut p) = pids.lock() {
            *p = run.cluster.pids();
        }
        println!(
            "[{:>6.1} s] {} held {:.1} s: converged {} ; ops {} ; violations so far {}{}",
            started.elapsed().as_secs_f64(),
            result.label,
            hold.as_secs_f64(),
            result
                .convergence
                .map_or("NOT".to_owned(), |d| format!("in {:.2} s", d.as_secs_f64())),
            run.operations(),
            run_violations(&run),
            if result.notes.is_empty() {
                String::new()
            } else {
                format!(" ({})", result.notes.join("; "))
            }
        );
        run.hold(Duration::from_millis(rng.random_range(2_000..6_000)));
    }
    done.store(true, Ordering::SeqCst);
    let _ = sampler.join();
    let report = run.finish();
    let samples = samples.lock().map(|s| s.clone()).unwrap_or_default();
    Ok(SoakReport {
        report,
        samples,
        elapsed: started.elapsed(),
    })
}

fn run_violations(run: &Run) -> usize {
    run.violations_so_far()
}
