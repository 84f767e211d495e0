//! A heartbeat as JSON: what the API answers, what the history stores and the event stream
//! sends.

use std::collections::BTreeMap;

use roster::nodes::Heartbeat;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// A linked peer as a heartbeat measured it.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct PeerSampleView {
    /// The peer's name.
    pub name: String,
    /// The link's round-trip time in microseconds, once measured.
    pub rtt_us: Option<u64>,
    /// Ops queued to the peer.
    pub queued: u64,
}

/// What a node measured of itself at one time.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct HeartbeatView {
    /// When it was sampled, in milliseconds since the Unix epoch (the sender's clock).
    pub at_ms: u64,
    /// Load average over a minute per CPU (1.0: all busy).
    pub cpu_load: f64,
    /// Memory used on the host, in bytes.
    pub mem_used_bytes: u64,
    /// Memory of the host, in bytes.
    pub mem_total_bytes: u64,
    /// Live local processes.
    pub processes: u64,
    /// Names in the node's view.
    pub names: u64,
    /// Group memberships in the node's view.
    pub memberships: u64,
    /// Members that membership sees alive.
    pub members: u64,
    /// Ops the node has numbered in its own streams.
    pub op_log_position: u64,
    /// Its linked peers.
    pub peers: Vec<PeerSampleView>,
    /// Application metrics.
    pub app: BTreeMap<String, f64>,
}

impl From<Heartbeat> for HeartbeatView {
    fn from(beat: Heartbeat) -> Self {
        Self {
            at_ms: beat.at_ms,
            cpu_load: beat.cpu_load,
            mem_used_bytes: beat.mem_used_bytes,
            mem_total_bytes: beat.mem_total_bytes,
            processes: beat.processes,
            names: beat.names,
            memberships: beat.memberships,
            members: beat.members,
            op_log_position: beat.op_log_position,
            peers: beat
                .peers
                .into_iter()
                .map(|p| PeerSampleView {
                    name: p.name,
                    rtt_us: p.rtt_us,
                    queued: p.queued,
                })
                .collect(),
            app: beat.app,
        }
    }
}
