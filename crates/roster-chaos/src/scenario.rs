//! A run: a cluster, its workload and the checker, driven one fault at a time. Each fault
//! is injected, held, healed; then the workload's writes pause, the checker waits for
//! convergence and checks, and the writes resume. [`Run::finish`] adds the checks over
//! the whole history.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::checker::{self, Check, Conflict, View, Violation};
use crate::cluster::{Cluster, TOKEN};
use crate::error::ChaosError;
use crate::faults::Fault;
use crate::history::Recorder;
use crate::time::now_ms;
use crate::workload::{Workload, WorkloadConfig};

/// How long the checker waits for the nodes to agree after a heal.
pub const CONVERGENCE_DEADLINE: Duration = Duration::from_secs(60);

/// One fault's figures.
#[derive(Debug, Clone)]
pub struct FaultResult {
    /// The fault, in words.
    pub label: String,
    /// Its kind.
    pub kind: &'static str,
    /// From the heal to the nodes agreeing (none if they did not within the deadline).
    pub convergence: Option<Duration>,
    /// Notes (what this machine could not do).
    pub notes: Vec<String>,
}

/// The run's result.
#[derive(Debug, Clone, Default)]
pub struct Report {
    /// Every fault in order.
    pub faults: Vec<FaultResult>,
    /// Operations recorded.
    pub operations: usize,
    /// Acknowledged entries found missing (sum over checkpoints).
    pub lost: usize,
    /// Entries of ended sessions still shown at a deadline (sum over checkpoints).
    pub stale: usize,
    /// Every violation.
    pub violations: Vec<Violation>,
}

impl Report {
    /// Violations of `check`.
    pub fn count(&self, check: Check) -> usize {
        self.violations.iter().filter(|v| v.check == check).count()
    }
}

/// A cluster under a workload, with the checker's state.
pub struct Run {
    /// The cluster (its agents and network).
    pub cluster: Cluster,
    workload: Option<Workload>,
    /// The history.
    pub recorder: Recorder,
    ttl_ms: u64,
    known_dead: BTreeSet<String>,
    snapshots: Vec<(usize, u64, View)>,
    conflicts: Vec<Conflict>,
    report: Report,
}

impl Run {
    /// Starts `nodes` agents and the workload.
    pub fn start(
        binary: PathBuf,
        nodes: usize,
        config: WorkloadConfig,
    ) -> Result<Self, ChaosError> {
        let recorder = Recorder::default();
        let cluster = Cluster::start(binary, nodes, recorder.clone())?;
        let bases = (0..nodes).map(|i| cluster.url(i, "")).collect();
        let ttl_ms = config.ttl_s * 1000;
        let workload = Workload::start(bases, TOKEN, config, recorder.clone());
        Ok(Self {
            cluster,
            workload: Some(workload),
            recorder,
            ttl_ms,
            known_dead: BTreeSet::new(),
            snapshots: Vec::new(),
            conflicts: Vec::new(),
            report: Report::default(),
        })
    }

    /// Operations recorded so far.
    pub fn operations(&self) -> u64 {
        self.workload.as_ref().map_or(0, Workload::operations)
    }

    /// Violations found by the checkpoints so far.
    pub fn violations_so_far(&self) -> usize {
        self.report.violations.len()
    }

    /// Lets the workload run for `time` (faults held or not).
    pub fn hold(&self, time: Duration) {
        std::thread::sleep(time);
    }

    /// Pauses the writes, waits for convergence, checks, resumes. Returns the time the
    /// nodes took to agree.
    pub fn checkpoint(&mut self) -> Option<Duration> {
        let started = Instant::now();
        if let Some(w) = &self.workload {
            w.pause();
        }
        let formed = self.cluster.wait_formed(CONVERGENCE_DEADLINE);
        if let Err(error) = &formed {
            self.report.violations.push(Violation {
                check: Check::Converged,
                detail: format!("the cluster did not form again: {error}"),
                ops: Vec::new(),
            });
        }
        let left = CONVERGENCE_DEADLINE.saturating_sub(started.elapsed());
        let cp = checker::checkpoint(
            &self.cluster,
            &self.recorder,
            self.ttl_ms,
            left.max(Duration::from_secs(5)),
            &mut self.known_dead,
            &mut self.snapshots,
        );
        self.report.lost += cp.lost;
        self.report.stale += cp.stale;
        self.report.violations.extend(cp.violations);
        self.conflicts.extend(cp.conflicts);
        if let Some(w) = &self.workload {
            w.resume();
        }
        (formed.is_ok() && cp.converged_after.is_some()).then(|| started.elapsed())
    }

    /// Injects `fault`, holds it for `hold`, heals it and checks.
    pub fn fault(&mut self, fault: &Fault, hold: Duration) -> Result<&FaultResult, ChaosError> {
        let label = fault.to_string();
        let window = self.recorder.fault_started(&label);
        let notes = fault.inject(&mut self.cluster)?;
        self.hold(hold);
        fault.heal(&mut self.cluster)?;
        self.recorder.fault_healed(window);
        let convergence = self.checkpoint();
        if convergence.is_some() {
            self.recorder.fault_converged(window, now_ms());
        }
        self.report.faults.push(FaultResult {
            label,
            kind: fault.kind(),
            convergence,
            notes,
        });
        Ok(self.report.faults.last().expect("just pushed"))
    }

    /// Stops the workload, checks the whole history, and returns the report.
    pub fn finish(mut self) -> Report {
        if let Some(w) = self.workload.take() {
            w.stop();
        }
        let mut conflicts = std::mem::take(&mut self.conflicts);
        conflicts.sort();
        conflicts.dedup();
        let history = self.recorder.lock();
        let violations = checker::check_history(&history, &conflicts, &self.snapshots, self.ttl_ms);
        self.report.operations = history.ops.len();
        drop(history);
        self.report.violations.extend(violations);
        self.report.clone()
    }
}
