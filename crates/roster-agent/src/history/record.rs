//! What the history keeps: one [`Record`] per fact, each carrying the name of the node that
//! recorded it, and the kinds of facts ([`RecordKind`]).

use serde::{Deserialize, Serialize};

/// One fact recorded by one node.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    /// When it was recorded, in milliseconds since the Unix epoch (for a heartbeat: when
    /// the sender sampled it).
    pub at_ms: u64,
    /// The name of the node that recorded it.
    pub recorder: String,
    /// What happened.
    pub kind: RecordKind,
}

/// What a [`Record`] says. Serialized with a `kind` tag in snake_case (the `kind` of the
/// audit log), the fields beside it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum RecordKind {
    /// A node's status changed (as it published it).
    NodeStatus {
        /// The node.
        node: String,
        /// The status before (`online`, `degraded`, `draining`, `offline`, `unreachable`).
        old: String,
        /// The status now.
        new: String,
        /// Why.
        reason: String,
    },
    /// A node was seen for the first time, or came back.
    NodeUp {
        /// The node.
        node: String,
        /// Its incarnation, 16 hex digits.
        incarnation: String,
        /// This node had never heard of it (`false`: it is back).
        first_seen: bool,
    },
    /// A node went offline.
    NodeDown {
        /// The node.
        node: String,
        /// Its incarnation, 16 hex digits.
        incarnation: String,
        /// It left on purpose (`false`: declared dead, or vanished).
        left: bool,
        /// Why.
        reason: String,
    },
    /// A link of the recorder to a peer was established.
    LinkOpened {
        /// The peer.
        peer: String,
        /// The peer's incarnation, 16 hex digits.
        peer_incarnation: String,
        /// The recorder's session id of the link.
        session: u64,
        /// `tcp` or `tls`, when the library still listed the session.
        link_kind: Option<String>,
    },
    /// A link of the recorder to a peer closed.
    LinkClosed {
        /// The peer.
        peer: String,
        /// The peer's incarnation, 16 hex digits.
        peer_incarnation: String,
        /// The recorder's session id of the link.
        session: u64,
        /// Why it closed.
        reason: String,
        /// `tcp` or `tls`, when the library still listed the session.
        link_kind: Option<String>,
        /// When it was established, in milliseconds since the Unix epoch, when known.
        established_ms: Option<u64>,
        /// Bytes sent over it, when known.
        bytes_out: Option<u64>,
        /// Bytes received over it, when known.
        bytes_in: Option<u64>,
        /// Frames sent over it, when known.
        frames_out: Option<u64>,
        /// Frames received over it, when known.
        frames_in: Option<u64>,
        /// The last round-trip time measured on it, in microseconds, when known.
        rtt_us: Option<u64>,
    },
    /// A name went to another process in a conflict between nodes; recorded once by each
    /// node that learned of it (the library's `ConflictResolved` event): the winner's node,
    /// the loser's, and any other that held the loser's claim.
    NameConflict {
        /// The scope.
        scope: String,
        /// The name.
        key: String,
        /// The process that kept the name.
        winner: String,
        /// The process that lost it.
        loser: String,
        /// The rule that decided: `keep_oldest`, `keep_newest`, `custom`, or
        /// `custom_panicked` (a custom resolver panicked, keep-oldest decided). Absent in
        /// rows written by agents older than the rule.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        rule: Option<String>,
        /// The node of the winner, when the recorder knew it.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        winner_node: Option<String>,
        /// The node of the loser, when the recorder knew it.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        loser_node: Option<String>,
    },
    /// The recorder's split-brain check suspects a partition, or what it suspects changed.
    PartitionDetected {
        /// The expected nodes it cannot reach.
        unreachable: Vec<String>,
        /// Its side: itself and the expected nodes it reaches.
        side: Vec<String>,
        /// The strategy of the verdict.
        strategy: String,
        /// The verdict, in words.
        verdict: String,
        /// Whether it is fenced.
        fenced: bool,
    },
    /// The recorder's split-brain check no longer suspects a partition.
    PartitionHealed {
        /// Its side.
        side: Vec<String>,
        /// Whether it is still fenced.
        fenced: bool,
    },
    /// The recorder raised its fence: it refuses new unique registrations.
    FenceRaised {
        /// The expected nodes it cannot reach.
        unreachable: Vec<String>,
        /// The verdict, in words.
        verdict: String,
    },
    /// The recorder lowered its fence.
    FenceLowered {
        /// The verdict, in words.
        verdict: String,
    },
    /// A session expired (its holder stopped renewing it).
    SessionExpired {
        /// The session id.
        session_id: String,
        /// The session's name.
        name: String,
        /// The process that held it.
        pid: String,
        /// Why.
        reason: String,
    },
    /// A session was deleted on request.
    SessionDeleted {
        /// The session id.
        session_id: String,
        /// The session's name.
        name: String,
        /// The process that held it.
        pid: String,
        /// Why.
        reason: String,
    },
    /// An alert fired or resolved.
    Alert {
        /// The alert's id (the same when it fires and resolves).
        id: u64,
        /// The rule's kind (`node_offline`, ...).
        rule: String,
        /// What it is about (a node name, or the recorder for cluster-wide rules).
        subject: String,
        /// `firing` or `resolved`.
        state: String,
        /// What it means, in words.
        message: String,
    },
    /// A heartbeat of a node, as received by the recorder.
    Heartbeat {
        /// The node that sent it.
        node: String,
        /// The heartbeat, as `GET /api/nodes/{name}/heartbeats` shows it.
        #[schema(value_type = Object)]
        heartbeat: serde_json::Value,
    },
}

/// The kinds of the audit log (every [`RecordKind`] but heartbeats, which have their own
/// table), by tag.
pub const AUDIT_KINDS: [&str; 13] = [
    "node_status",
    "node_up",
    "node_down",
    "link_opened",
    "link_closed",
    "name_conflict",
    "partition_detected",
    "partition_healed",
    "fence_raised",
    "fence_lowered",
    "session_expired",
    "session_deleted",
    "alert",
];

impl RecordKind {
    /// Its tag, as in the audit log (`node_status`, ...).
    pub fn tag(&self) -> &'static str {
        match self {
            Self::NodeStatus { .. } => "node_status",
            Self::NodeUp { .. } => "node_up",
            Self::NodeDown { .. } => "node_down",
            Self::LinkOpened { .. } => "link_opened",
            Self::LinkClosed { .. } => "link_closed",
            Self::NameConflict { .. } => "name_conflict",
            Self::PartitionDetected { .. } => "partition_detected",
            Self::PartitionHealed { .. } => "partition_healed",
            Self::FenceRaised { .. } => "fence_raised",
            Self::FenceLowered { .. } => "fence_lowered",
            Self::SessionExpired { .. } => "session_expired",
            Self::SessionDeleted { .. } => "session_deleted",
            Self::Alert { .. } => "alert",
            Self::Heartbeat { .. } => "heartbeat",
        }
    }

    /// The node (or name) it is about, for the `node` filter of the audit log: the node of
    /// node facts, the peer of links, the subject of alerts; `None` for facts about the
    /// recorder itself or about names.
    pub fn subject(&self) -> Option<&str> {
        match self {
            Self::NodeStatus { node, .. }
            | Self::NodeUp { node, .. }
            | Self::NodeDown { node, .. }
            | Self::Heartbeat { node, .. } => Some(node),
            Self::LinkOpened { peer, .. } | Self::LinkClosed { peer, .. } => Some(peer),
            Self::Alert { subject, .. } => Some(subject),
            Self::NameConflict { .. }
            | Self::PartitionDetected { .. }
            | Self::PartitionHealed { .. }
            | Self::FenceRaised { .. }
            | Self::FenceLowered { .. }
            | Self::SessionExpired { .. }
            | Self::SessionDeleted { .. } => None,
        }
    }

    /// What makes it the same fact as a row another node recorded, for a fact that every
    /// node learning of it records and the audit log merges into one item: a name
    /// conflict's scope, key, winner, loser and rule; the node and incarnation of a node
    /// that left on purpose (an incarnation leaves once). `None` for a fact that is the
    /// recorder's own view, its own item. Written beside the row (the `fact` column), so
    /// both backends find the rows of a fact by an index.
    pub fn fact_key(&self) -> Option<String> {
        let key = match self {
            Self::NameConflict {
                scope,
                key,
                winner,
                loser,
                rule,
                ..
            } => serde_json::json!([self.tag(), scope, key, winner, loser, rule]),
            Self::NodeDown {
                node,
                incarnation,
                left: true,
                ..
            } => serde_json::json!([self.tag(), node, incarnation]),
            _ => return None,
        };
        Some(key.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_shared_fact_has_a_key_and_a_node_s_own_view_has_none() {
        let conflict = |rule: Option<&str>, winner_node: Option<&str>| RecordKind::NameConflict {
            scope: "default".into(),
            key: "k".into(),
            winner: "<1.1>".into(),
            loser: "<2.1>".into(),
            rule: rule.map(Into::into),
            winner_node: winner_node.map(Into::into),
            loser_node: None,
        };
        let keep_oldest = conflict(Some("keep_oldest"), None).fact_key();
        assert_eq!(
            keep_oldest.as_deref(),
            Some(r#"["name_conflict","default","k","<1.1>","<2.1>","keep_oldest"]"#)
        );
        assert_eq!(
            conflict(Some("keep_oldest"), Some("a")).fact_key(),
            keep_oldest,
            "what the recorder knew of the nodes is not part of the fact"
        );
        assert_ne!(conflict(Some("keep_newest"), None).fact_key(), keep_oldest);
        assert_ne!(conflict(None, None).fact_key(), keep_oldest);
        let down = |left: bool, reason: &str| RecordKind::NodeDown {
            node: "n".into(),
            incarnation: "00000000000000aa".into(),
            left,
            reason: reason.into(),
        };
        assert_eq!(
            down(true, "left the cluster").fact_key().as_deref(),
            Some(r#"["node_down","n","00000000000000aa"]"#)
        );
        assert_eq!(down(false, "declared dead").fact_key(), None);
        let status = RecordKind::NodeStatus {
            node: "n".into(),
            old: "online".into(),
            new: "degraded".into(),
            reason: "cpu".into(),
        };
        assert_eq!(status.fact_key(), None);
    }

    #[test]
    fn a_name_conflict_of_an_older_agent_reads_without_a_rule() {
        let old = r#"{"kind":"name_conflict","scope":"default","key":"k","winner":"<1.1>","loser":"<2.1>"}"#;
        let read: RecordKind = serde_json::from_str(old).unwrap();
        assert_eq!(
            read,
            RecordKind::NameConflict {
                scope: "default".into(),
                key: "k".into(),
                winner: "<1.1>".into(),
                loser: "<2.1>".into(),
                rule: None,
                winner_node: None,
                loser_node: None,
            }
        );
    }
}
