//! The faults: what each one does to the cluster, and how it is healed.
//!
//! Partitions are nftables drops on input in the receiving namespaces (the sender sees
//! silence, as on a real network); the harness's HTTP address is never dropped, so both
//! sides of a partition keep answering clients. Delay and reordering need `tc netem`
//! (`CONFIG_NET_SCH_NETEM`); on a kernel without it [`Fault::Degrade`] applies the loss only
//! and says so in its label.

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
    /// Several faults at once.
    Combined(Vec<Self>),
}

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
