//! Where the CPU went during a phase, from Linux's counters: the agent's runtime threads
//! and the load generator's (by thread name, from `/proc/self/task/*/stat`), each split
//! into user and kernel time, and the whole machine's busy and idle time (`/proc/stat`),
//! so that a figure comes with what limited it as measured rather than as guessed. On a
//! system without `/proc` there is no split to show.

use std::collections::BTreeMap;
use std::fs;

/// The thread name of the agent's runtime workers in the benchmark.
pub const AGENT_THREADS: &str = "bench-agent";
/// The thread name of the load generator's runtime workers.
pub const LOAD_THREADS: &str = "bench-load";

/// User and kernel clock ticks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Ticks {
    user: u64,
    kernel: u64,
}

/// CPU counters at one moment.
#[derive(Debug, Clone, Default)]
pub struct Sample {
    /// By thread group: the agent's workers, the generator's, the rest of this process.
    threads: BTreeMap<&'static str, Ticks>,
    /// The machine: busy (everything but idle and iowait), in softirq (where loopback
    /// TCP delivery is counted, not in any thread's time) and all ticks, all CPUs.
    busy: u64,
    softirq: u64,
    total: u64,
}

/// The group a thread name belongs to.
fn group(name: &str) -> &'static str {
    if name.starts_with(AGENT_THREADS) {
        "agent"
    } else if name.starts_with(LOAD_THREADS) {
        "generator"
    } else {
        "process"
    }
}

/// User and kernel ticks from a `stat` line (fields 14 and 15, after the name in
/// parentheses, which may hold spaces).
fn stat_ticks(stat: &str) -> Option<(String, Ticks)> {
    let open = stat.find('(')?;
    let close = stat.rfind(')')?;
    let name = stat.get(open + 1..close)?.to_owned();
    let mut fields = stat.get(close + 2..)?.split_whitespace();
    // After the name: state is field 3, utime field 14, stime field 15.
    let user = fields.nth(11)?.parse().ok()?;
    let kernel = fields.next()?.parse().ok()?;
    Some((name, Ticks { user, kernel }))
}

/// The counters now; `None` without `/proc`.
pub fn sample() -> Option<Sample> {
    let mut sample = Sample::default();
    for task in fs::read_dir("/proc/self/task").ok()?.flatten() {
        let Ok(stat) = fs::read_to_string(task.path().join("stat")) else {
            continue;
        };
        if let Some((name, ticks)) = stat_ticks(&stat) {
            let sum = sample.threads.entry(group(&name)).or_default();
            sum.user += ticks.user;
            sum.kernel += ticks.kernel;
        }
    }
    let machine = fs::read_to_string("/proc/stat").ok()?;
    let cpu: Vec<u64> = machine
        .lines()
        .next()?
        .strip_prefix("cpu ")?
        .split_whitespace()
        .filter_map(|v| v.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal (guest time is inside user).
    let all: u64 = cpu.iter().take(8).sum();
    let idle = cpu.get(3).copied().unwrap_or(0) + cpu.get(4).copied().unwrap_or(0);
    sample.total = all;
    sample.busy = all.saturating_sub(idle);
    sample.softirq = cpu.get(6).copied().unwrap_or(0);
    Some(sample)
}

/// Where the CPU went between `before` and `after`, in words: each group's cores (of the
/// machine's) and its kernel share, softirq, the rest of the machine (other processes,
/// other interrupts) and idle.
pub fn split(before: Option<&Sample>, after: Option<&Sample>, cpus: usize) -> String {
    let (Some(before), Some(after)) = (before, after) else {
        return "CPU split not available (no /proc)".to_owned();
    };
    let total = after.total.saturating_sub(before.total);
    if total == 0 || cpus == 0 {
        return "CPU split not available (no ticks)".to_owned();
    }
    #[allow(clippy::cast_precision_loss)] // tick counts
    let cores = |ticks: u64| ticks as f64 * cpus as f64 / total as f64;
    let mut ours = 0;
    let mut parts = Vec::new();
    for name in ["agent", "generator", "process"] {
        let (b, a) = (
            before.threads.get(name).copied().unwrap_or_default(),
            after.threads.get(name).copied().unwrap_or_default(),
        );
        let user = a.user.saturating_sub(b.user);
        let kernel = a.kernel.saturating_sub(b.kernel);
        let all = user + kernel;
        ours += all;
        let label = match name {
            "agent" => "agent workers",
            "generator" => "load generator",
            _ => "other threads of this process",
        };
        if name == "process" && cores(all) < 0.005 {
            continue;
        }
        #[allow(clippy::cast_precision_loss)] // tick counts
        let kernel_share = if all == 0 {
            0.0
        } else {
            100.0 * kernel as f64 / all as f64
        };
        parts.push(format!(
            "{label} {:.2} cores ({kernel_share:.0}% in the kernel)",
            cores(all)
        ));
    }
    let busy = after.busy.saturating_sub(before.busy);
    let softirq = after.softirq.saturating_sub(before.softirq);
    parts.push(format!("softirq (network delivery) {:.2}", cores(softirq)));
    parts.push(format!(
        "rest of the machine {:.2}",
        cores(busy.saturating_sub(ours + softirq))
    ));
    parts.push(format!(
        "idle {:.2} of {cpus}",
        cores(total.saturating_sub(busy))
    ));
    parts.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stat_line_gives_the_name_and_the_ticks() {
        let line = "4242 (bench load 1) S 1 2 3 4 5 6 7 8 9 10 120 35 0 0 20 0 1 0";
        assert_eq!(
            stat_ticks(line),
            Some((
                "bench load 1".to_owned(),
                Ticks {
                    user: 120,
                    kernel: 35
                }
            ))
        );
        assert_eq!(group("bench-agent-3"), "agent");
        assert_eq!(group("bench-load"), "generator");
        assert_eq!(group("history"), "process");
    }

    #[test]
    fn a_split_names_each_group_and_idle() {
        let mut before = Sample {
            total: 1000,
            busy: 500,
            softirq: 10,
            ..Sample::default()
        };
        before.threads.insert("agent", Ticks::default());
        let mut after = Sample {
            total: 1200,
            busy: 680,
            softirq: 30,
            ..Sample::default()
        };
        after.threads.insert(
            "agent",
            Ticks {
                user: 40,
                kernel: 60,
            },
        );
        after.threads.insert(
            "generator",
            Ticks {
                user: 20,
                kernel: 30,
            },
        );
        assert_eq!(
            split(Some(&before), Some(&after), 2),
            "agent workers 1.00 cores (60% in the kernel), load generator 0.50 cores (60% in the kernel), softirq (network delivery) 0.20, rest of the machine 0.10, idle 0.20 of 2"
        );
        assert!(split(None, Some(&after), 2).contains("not available"));
    }
}
