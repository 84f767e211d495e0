//! The faults: what each one does to the cluster, and how it is healed.
//!
//! Partitions are nftables drops on input in the receiving namespaces (the sender sees
//! silence, as on a real network); the harness's HTTP address is never dropped, so both
//! sides of a partition keep answering clients. Delay and reordering need `tc netem`
//! (`CONFIG_NET_SCH_NETEM`); on a kernel without it [`Fault::Degrade`] applies the loss only
//! and says so in its label. A full disk fills the node's own data filesystem (see
//! [`crate::disk`]); clock skew shifts its wall clock through libfaketime (see
//! [`crate::clock`]), and says so when libfaketime is not installed.

use std::fmt;
use std::time::Duration;

use crate::cluster::Cluster;
use crate::error::ChaosError;

/// One fault (or several at once).
#[derive(Debug, Clone)]
pub enum Fault {
    /// Node `0` is cut off from every other node (both directions).
    Isolate(usize),
    /// The nodes of the first list are cut off from those of the second (e.g. 2-2).
    Split(Vec<usize>, Vec<usize>),
    /// `a` and `b` cannot reach each other; both still reach every other node.
    Asymmetric(usize, usize),
    /// Node `to` drops every packet from node `from`, not the other way round.
    OneWay {
        /// The node whose packets are dropped.
        from: usize,
        /// The node that drops them.
        to: usize,
    },
    /// Every node drops `loss_percent` of its peers' packets, and (with netem) delays its
    /// own by `delay_ms` with as much jitter and 25% reordering.
    Degrade {
        /// Share of packets dropped on input.
        loss_percent: u8,
        /// netem delay, when the kernel has netem.
        delay_ms: u32,
    },
    /// SIGKILL; healed by a restart (a new incarnation, same data directory).
    Kill(usize),
    /// SIGSTOP (held past failure detection); healed by SIGCONT.
    Pause(usize),
    /// SIGTERM and restart of every node in turn, each waiting for the cluster to form
    /// again; nothing to heal.
    RollingRestart,
    /// The node's data filesystem (its SQLite history's disk) is filled up; healed by
    /// making room, after which its history must report `ok` again, having dropped no
    /// record meanwhile.
    DiskFull(usize),
    /// The node's wall clock runs `seconds` off the others' (ahead if positive), through
    /// libfaketime; healed by setting it back.
    ClockSkew {
        /// The node.
        node: usize,
        /// The offset.
        seconds: i64,
    },
    /// Several faults at once.
    Combined(Vec<Self>),
}

/// How long a node's history may take to report `ok` after its disk has room again: past
/// the history writer's longest retry backoff.
const HISTORY_RECOVERY: Duration = Duration::from_secs(60);

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Isolate(i) => write!(f, "isolate n{i}"),
            Self::Split(a, b) => write!(f, "split {a:?} | {b:?}"),
            Self::Asymmetric(a, b) => write!(f, "cut n{a} - n{b} (both reach the rest)"),
            Self::OneWay { from, to } => write!(f, "n{to} drops n{from}'s packets (one way)"),
            Self::Degrade {
                loss_percent,
                delay_ms,
            } => write!(f, "loss {loss_percent}% delay {delay_ms} ms"),
            Self::Kill(i) => write!(f, "kill -9 n{i} and restart"),
            Self::Pause(i) => write!(f, "SIGSTOP n{i}, then SIGCONT"),
            Self::RollingRestart => f.write_str("rolling restart"),
            Self::DiskFull(i) => write!(f, "n{i}'s disk full"),
            Self::ClockSkew { node, seconds } => write!(f, "n{node}'s clock {seconds:+} s"),
            Self::Combined(list) => {
                let parts: Vec<String> = list.iter().map(ToString::to_string).collect();
                write!(f, "{}", parts.join(" + "))
            }
        }
    }
}

impl Fault {
    /// A short name of its kind, for the soak's table.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Isolate(_) => "isolate",
            Self::Split(..) => "split",
            Self::Asymmetric(..) => "asymmetric",
            Self::OneWay { .. } => "one-way",
            Self::Degrade { .. } => "loss/delay",
            Self::Kill(_) => "kill -9",
            Self::Pause(_) => "sigstop",
            Self::RollingRestart => "rolling restart",
            Self::DiskFull(_) => "disk full",
            Self::ClockSkew { .. } => "clock skew",
            Self::Combined(_) => "combined",
        }
    }

    /// Injects it. Returns notes on what could not be done here (netem missing).
    pub fn inject(&self, cluster: &mut Cluster) -> Result<Vec<String>, ChaosError> {
        let mut notes = Vec::new();
        match self {
            Self::Isolate(i) => {
                let others: Vec<usize> = (0..cluster.len()).filter(|j| j != i).collect();
                cluster.net.split(&[*i], &others)?;
            }
            Self::Split(a, b) => cluster.net.split(a, b)?,
            Self::Asymmetric(a, b) => cluster.net.cut(*a, *b)?,
            Self::OneWay { from, to } => cluster.net.block(*from, *to)?,
            Self::Degrade {
                loss_percent,
                delay_ms,
            } => {
                for i in 0..cluster.len() {
                    cluster.net.loss(i, *loss_percent)?;
                    if *delay_ms > 0
                        && !cluster.net.netem(i, *delay_ms, *delay_ms)?
                        && notes.is_empty()
                    {
                        notes.push(
                            "tc netem is not in this kernel: delay and reordering not applied"
                                .to_owned(),
                        );
                    }
                }
            }
            Self::Kill(i) => cluster.kill(*i),
            Self::Pause(i) => cluster.stop(*i),
            Self::RollingRestart => {
                for i in 0..cluster.len() {
                    cluster.terminate(i)?;
                    cluster.restart(i)?;
                    cluster.wait_formed(Duration::from_secs(60))?;
                }
            }
            Self::DiskFull(i) => {
                cluster.fill_disk(*i)?;
            }
            Self::ClockSkew { node, seconds } => {
                if cluster.skew_clock(*node, *seconds)? {
                    // The node's heartbeats, as a peer shows them, carry the skewed clock.
                    let wanted = seconds * 1000;
                    crate::time::poll(
                        &format!("n{node}'s heartbeats {seconds:+} s off"),
                        Duration::from_secs(15),
                        Duration::from_millis(250),
                        || {
                            cluster
                                .clock_offset_ms(*node)
                                .filter(|off| (off - wanted).abs() < 5_000)
                        },
                    )
                    .map_err(|_| ChaosError::Agent {
                        name: format!("n{node}"),
                        message: format!(
                            "its clock was set {seconds:+} s off, but its heartbeats are {:?} ms off",
                            cluster.clock_offset_ms(*node)
                        ),
                    })?;
                } else {
                    notes.push("libfaketime is not installed: clock skew not applied".to_owned());
                }
            }
            Self::Combined(list) => {
                for fault in list {
                    notes.extend(fault.inject(cluster)?);
                }
            }
        }
        Ok(notes)
    }

    /// Undoes it: whole network, every node running.
    pub fn heal(&self, cluster: &mut Cluster) -> Result<(), ChaosError> {
        match self {
            Self::Kill(i) => cluster.restart(*i)?,
            Self::Pause(i) => cluster.resume(*i),
            Self::DiskFull(i) => {
                cluster.free_disk(*i)?;
                let ok_again = crate::time::poll(
                    &format!("n{i}'s history is ok again"),
                    HISTORY_RECOVERY,
                    Duration::from_millis(200),
                    || {
                        cluster
                            .history_probe(*i)
                            .filter(|(status, _)| status == "ok")
                            .map(|(_, dropped)| dropped)
                    },
                );
                let Ok(dropped) = ok_again else {
                    return Err(ChaosError::Agent {
                        name: format!("n{i}"),
                        message: format!(
                            "its history did not report ok within {HISTORY_RECOVERY:?} of the \
                             disk having room again"
                        ),
                    });
                };
                // What it could not write while the disk was full it held, within its
                // queue's bound, and wrote once there was room: nothing dropped. (A full
                // disk does not always fail a write: SQLite reuses its WAL's space.)
                if let Some(before) = cluster.dropped_before_full(*i)
                    && dropped > before
                {
                    return Err(ChaosError::Agent {
                        name: format!("n{i}"),
                        message: format!(
                            "its history dropped {} records while its disk was full",
                            dropped - before
                        ),
                    });
                }
            }
            Self::ClockSkew { node, .. } => {
                cluster.skew_clock(*node, 0)?;
            }
            Self::Combined(list) => {
                for fault in list {
                    fault.heal(cluster)?;
                }
            }
            _ => {}
        }
        cluster.net.heal()
    }
}
