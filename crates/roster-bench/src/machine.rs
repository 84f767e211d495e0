//! Facts about the machine and the build, printed before the figures.

use std::process::Command;

use serde::Serialize;

/// The machine and build a run's figures were taken on.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Machine {
    /// Logical CPUs available to this process.
    pub nproc: usize,
    /// CPU model name from `/proc/cpuinfo`.
    pub cpu: String,
    /// Total memory in GiB, from `/proc/meminfo`.
    pub memory_gib: f64,
    /// `rustc --version`, if rustc is on the path.
    pub rustc: String,
    /// Git commit of the workspace (`-dirty` with uncommitted changes), if known.
    pub commit: String,
    /// Whether this binary was built with optimizations.
    pub release: bool,
    /// 1-minute load average when the run started (`/proc/loadavg`): other work on the
    /// machine makes the figures unreliable.
    pub load_1m: f64,
}

impl Machine {
    /// Gathers the facts; unknown ones are `"unknown"` (or 0).
    pub(crate) fn detect() -> Self {
        Self {
            nproc: std::thread::available_parallelism().map_or(0, |n| n.get()),
            cpu: cpu_model().unwrap_or_else(unknown),
            memory_gib: total_memory_gib().unwrap_or(0.0),
            rustc: command_output("rustc", &["--version"]).unwrap_or_else(unknown),
            commit: git_commit().unwrap_or_else(unknown),
            release: !cfg!(debug_assertions),
            load_1m: load_average().unwrap_or(0.0),
        }
    }
}

/// The placeholder for a fact that could not be found.
fn unknown() -> String {
    "unknown".into()
}

/// The first `model name` of `/proc/cpuinfo`.
fn cpu_model() -> Option<String> {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").ok()?;
    cpuinfo
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split_once(':'))
        .map(|(_, model)| model.trim().to_string())
}

/// `MemTotal` of `/proc/meminfo`, in GiB.
fn total_memory_gib() -> Option<f64> {
    let meminfo = std::fs::read_to_string("/proc/meminfo").ok()?;
    let kib: f64 = meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kib / (1024.0 * 1024.0))
}

/// The 1-minute load average.
fn load_average() -> Option<f64> {
    let loadavg = std::fs::read_to_string("/proc/loadavg").ok()?;
    loadavg.split_whitespace().next()?.parse().ok()
}

/// The trimmed standard output of a command that succeeded.
fn command_output(program: &str, args: &[&str]) -> Option<String> {
    let output = Command::new(program).args(args).output().ok()?;
    output
        .status
        .success()
        .then(|| String::from_utf8_lossy(&output.stdout).trim().to_string())
        .filter(|s| !s.is_empty())
}

/// The short commit this binary was built from, `-dirty` if the tree was modified (recorded
/// by `build.rs`).
fn git_commit() -> Option<String> {
    Some(env!("ROSTER_BENCH_COMMIT").to_owned()).filter(|c| c != "unknown")
}
