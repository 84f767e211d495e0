//! Heartbeats: what a node measures of itself and its links, published on an interval.

use crate::vocab::pid::Incarnation;
use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::record::MAX_TEXT;

/// Most peers a heartbeat describes.
pub const MAX_PEER_SAMPLES: usize = 1024;
/// Most application metrics a heartbeat carries.
pub const MAX_APP_METRICS: usize = 64;

/// One link as its node measured it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PeerSample {
    /// The peer's name.
    pub name: String,
    /// The peer's incarnation.
    pub incarnation: Incarnation,
    /// The link's session id on the measuring node.
    pub session: u64,
    /// Round-trip time of the last ping on the link, in microseconds (none answered yet).
    pub rtt_us: Option<u64>,
    /// Live ops and messages queued for the peer.
    pub queued: u64,
}

/// What a node measured of itself at one time.
///
/// ```
/// use roster_proto::nodes::Heartbeat;
///
/// let mut beat = Heartbeat::at(1_700_000_000_000);
/// beat.app.insert("queue_depth".into(), 12.0);
/// assert_eq!(beat.app["queue_depth"], 12.0);
/// ```
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Heartbeat {
    /// When it was sampled, in milliseconds since the Unix epoch (the sender's clock).
    pub at_ms: u64,
    /// The host's load average over one minute divided by its CPU count (1.0: all CPUs
    /// busy).
    pub cpu_load: f64,
    /// Memory used on the host, in bytes.
    pub mem_used_bytes: u64,
    /// Memory of the host, in bytes.
    pub mem_total_bytes: u64,
    /// Live local processes.
    pub processes: u64,
    /// Names registered in the node's view (every scope, every origin).
    pub names: u64,
    /// Group memberships in the node's view (every scope, every origin).
    pub memberships: u64,
    /// Members membership (SWIM) sees alive, this node included.
    pub members: u64,
    /// Ops the node has numbered in its own streams (all scopes).
    pub op_log_position: u64,
    /// Each linked peer, as measured on the link.
    pub peers: Vec<PeerSample>,
    /// Numbers the application added.
    pub app: BTreeMap<String, f64>,
}

impl Heartbeat {
    /// An empty heartbeat sampled at `at_ms`.
    pub fn at(at_ms: u64) -> Self {
        Self {
            at_ms,
            ..Self::default()
        }
    }

    /// The largest round-trip time to a peer, in microseconds.
    pub fn max_rtt_us(&self) -> Option<u64> {
        self.peers.iter().filter_map(|p| p.rtt_us).max()
    }

    /// The longest queue to a peer.
    pub fn max_queued(&self) -> u64 {
        self.peers.iter().map(|p| p.queued).max().unwrap_or(0)
    }

    /// Checks the bounds a heartbeat from the network must respect.
    pub fn validate(&self) -> Result<(), String> {
        if self.peers.len() > MAX_PEER_SAMPLES {
            return Err(format!(
                "{} peer samples exceed {MAX_PEER_SAMPLES}",
                self.peers.len()
            ));
        }
        if self.app.len() > MAX_APP_METRICS {
            return Err(format!(
                "{} application metrics exceed {MAX_APP_METRICS}",
                self.app.len()
            ));
        }
        let long = self
            .peers
            .iter()
            .map(|p| &p.name)
            .chain(self.app.keys())
            .find(|s| s.len() > MAX_TEXT);
        match long {
            Some(s) => Err(format!("a name of {} bytes exceeds {MAX_TEXT}", s.len())),
            None => Ok(()),
        }
    }
}
