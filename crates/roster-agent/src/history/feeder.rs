//! The feeder: tasks that subscribe to the node's node events (heartbeats included) and to
//! the registry events of every scope connected at start, and turn them into records.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use roster::nodes::{NodeEvent, PartitionStatus};
use roster::{Delivery, Event, EventKind, LinkSession, Node, NodeWatch, Pattern, Pid, Reason};

use super::record::RecordKind;
use super::recorder::Recorder;
use crate::views::heartbeat::HeartbeatView;

/// The running feeder of a node.
#[derive(Debug)]
pub struct Feeder {
    node: Node,
    recorder: Recorder,
    closing: Arc<AtomicBool>,
}

impl Feeder {
    /// Records every live link session of the node as closed ("this node is shutting
    /// down"), with its counters, and stops recording link closes: call it before
    /// `Node::shutdown`, whose link closes may not reach the feeder any more.
    pub fn close_links(&self) {
        self.closing.store(true, Ordering::SeqCst);
        for session in open_sessions(&self.node) {
            self.recorder.record(closed(
                &session,
                "this node is shutting down".to_owned(),
                session
                    .rtt
                    .map(|rtt| u64::try_from(rtt.as_micros()).unwrap_or(u64::MAX)),
            ));
        }
    }
}

/// The node's link sessions that are not closed.
fn open_sessions(node: &Node) -> impl Iterator<Item = LinkSession> {
    node.cluster()
        .link_sessions()
        .into_iter()
        .filter(|s| s.closed.is_none())
}

/// The record of the open session `session`.
fn opened(session: &LinkSession) -> RecordKind {
    RecordKind::LinkOpened {
        peer: session.peer.clone(),
        peer_incarnation: session.peer_incarnation.to_string(),
        session: session.session,
        link_kind: Some(session.kind.to_string()),
    }
}

/// The record of the closed session `session`.
fn closed(session: &LinkSession, reason: String, rtt_us: Option<u64>) -> RecordKind {
    RecordKind::LinkClosed {
        peer: session.peer.clone(),
        peer_incarnation: session.peer_incarnation.to_string(),
        session: session.session,
        reason,
        link_kind: Some(session.kind.to_string()),
        established_ms: Some(epoch_ms(session.established_at)),
        bytes_out: Some(session.bytes_out),
        bytes_in: Some(session.bytes_in),
        frames_out: Some(session.frames_out),
        frames_in: Some(session.frames_in),
        rtt_us,
    }
}

/// Starts the feeder tasks of `node` into `recorder`; they end when the node stops.
pub fn spawn(node: &Node, recorder: &Recorder) -> Feeder {
    let closing = Arc::new(AtomicBool::new(false));
    // Taken here, not in the task: the nodes known now and every event after, so that a
    // peer whose record arrived before the feeder started is recorded up all the same;
    // then the links live now (after the watch: a link in both is recorded once).
    let watch = node.nodes().watch_with(Pattern::All, true);
    let live = open_sessions(node).collect();
    tokio::spawn(node_events(
        node.clone(),
        watch,
        live,
        recorder.clone(),
        Arc::clone(&closing),
    ));
    for name in node.scopes() {
        let Ok(scope) = node.scope(&name) else {
            continue;
        };
        match scope.subscribe(Pattern::All) {
            Ok(events) => {
                tokio::spawn(registry_events(
                    node.clone(),
                    name.to_string(),
                    events,
                    recorder.clone(),
                ));
            }
            Err(e) => {
                tracing::warn!(scope = %name, error = %e, "history: cannot watch the scope's conflicts");
            }
        }
    }
    Feeder {
        node: node.clone(),
        recorder: recorder.clone(),
        closing,
    }
}

/// What the feeder remembers between node events.
struct NodeFeed {
    node: Node,
    recorder: Recorder,
    fenced: bool,
    /// The last round-trip time this node measured to each peer (from its heartbeats),
    /// in microseconds: closed sessions no longer carry one.
    rtt_us: HashMap<String, u64>,
    /// Set once the agent recorded its live sessions as closed at shutdown.
    closing: Arc<AtomicBool>,
    /// The sessions of the links recorded open from the list at the start: their
    /// `LinkUp`, if it comes after the watch began, is not recorded twice.
    opened_at_start: HashSet<u64>,
}

/// Records the nodes of `watch` and the links `live` known when the feeder started, then
/// every node event of `watch`.
async fn node_events(
    node: Node,
    watch: NodeWatch,
    live: Vec<LinkSession>,
    recorder: Recorder,
    closing: Arc<AtomicBool>,
) {
    let NodeWatch {
        nodes: known,
        mut events,
        ..
    } = watch;
    // The peers up before the feeder started: their `Up` came before its subscription.
    // This node's own record is not a peer's arrival (its `Up` is never recorded).
    for info in known {
        if info.offline.is_none() && info.record.name != node.name() {
            recorder.record(RecordKind::NodeUp {
                node: info.record.name,
                incarnation: info.record.incarnation.to_string(),
                first_seen: true,
            });
        }
    }
    let fenced = node.nodes().partition().is_some_and(|p| p.fenced);
    let mut opened_at_start = HashSet::new();
    for session in live {
        opened_at_start.insert(session.session);
        recorder.record(opened(&session));
    }
    let mut feed = NodeFeed {
        node,
        recorder,
        fenced,
        rtt_us: HashMap::new(),
        closing,
        opened_at_start,
    };
    while let Some(delivery) = events.recv().await {
        match delivery {
            Delivery::Events(batch) => {
                for event in batch {
                    feed.on(event);
                }
            }
            Delivery::Lagged { missed } => {
                feed.recorder
                    .stats()
                    .missed_events
                    .fetch_add(missed, Ordering::Relaxed);
                tracing::warn!(
                    missed,
                    "history: node events missed (the feeder fell behind)"
                );
            }
        }
    }
}

impl NodeFeed {
    fn on(&mut self, event: NodeEvent) {
        let kind = match event {
            NodeEvent::Up { record, first_seen } => RecordKind::NodeUp {
                node: record.name,
                incarnation: record.incarnation.to_string(),
                first_seen,
            },
            NodeEvent::Down {
                name,
                incarnation,
                left,
                reason,
            } => RecordKind::NodeDown {
                node: name,
                incarnation: incarnation.to_string(),
                left,
                reason,
            },
            NodeEvent::Status {
                name,
                old,
                new,
                reason,
            } => RecordKind::NodeStatus {
                node: name,
                old: old.to_string(),
                new: new.to_string(),
                reason,
            },
            NodeEvent::Heartbeat { name, heartbeat } => {
                if name == self.node.name() {
                    for peer in &heartbeat.peers {
                        if let Some(rtt) = peer.rtt_us {
                            self.rtt_us.insert(peer.name.clone(), rtt);
                        }
                    }
                }
                let at_ms = heartbeat.at_ms;
                let heartbeat =
                    serde_json::to_value(HeartbeatView::from(heartbeat)).unwrap_or_default();
                self.recorder.record_at(
                    at_ms,
                    RecordKind::Heartbeat {
                        node: name,
                        heartbeat,
                    },
                );
                return;
            }
            NodeEvent::LinkUp {
                peer,
                incarnation,
                session,
            } => {
                if self.opened_at_start.remove(&session) {
                    return;
                }
                let listed = self.session(&peer, session);
                RecordKind::LinkOpened {
                    peer,
                    peer_incarnation: incarnation.to_string(),
                    session,
                    link_kind: listed.map(|s| s.kind.to_string()),
                }
            }
            NodeEvent::LinkDown {
                peer,
                incarnation,
                session,
                reason,
            } => {
                if self.closing.load(Ordering::SeqCst) {
                    return;
                }
                let rtt_us = self.rtt_us.get(&peer).copied();
                match self.session(&peer, session) {
                    Some(listed) => closed(&listed, reason, rtt_us),
                    None => RecordKind::LinkClosed {
                        peer,
                        peer_incarnation: incarnation.to_string(),
                        session,
                        reason,
                        link_kind: None,
                        established_ms: None,
                        bytes_out: None,
                        bytes_in: None,
                        frames_out: None,
                        frames_in: None,
                        rtt_us,
                    },
                }
            }
            NodeEvent::PartitionDetected { status, .. } => {
                self.fence(&status);
                RecordKind::PartitionDetected {
                    unreachable: status.unreachable,
                    side: status.side,
                    strategy: status.strategy.to_string(),
                    verdict: status.verdict.reason,
                    fenced: status.fenced,
                }
            }
            NodeEvent::PartitionHealed { status, .. } => {
                self.fence(&status);
                RecordKind::PartitionHealed {
                    side: status.side,
                    fenced: status.fenced,
                }
            }
            NodeEvent::Updated { .. } => return,
            other => {
                tracing::debug!(event = ?other, "history: a node event this agent does not record");
                return;
            }
        };
        self.recorder.record(kind);
    }

    /// Records a fence raised or lowered by the partition status `status`.
    fn fence(&mut self, status: &PartitionStatus) {
        if status.fenced == self.fenced {
            return;
        }
        self.fenced = status.fenced;
        let verdict = status.verdict.reason.clone();
        self.recorder.record(if status.fenced {
            RecordKind::FenceRaised {
                unreachable: status.unreachable.clone(),
                verdict,
            }
        } else {
            RecordKind::FenceLowered { verdict }
        });
    }

    /// The session `session` to `peer` as the library lists it (live or recently closed).
    fn session(&self, peer: &str, session: u64) -> Option<LinkSession> {
        self.node
            .cluster()
            .link_sessions()
            .into_iter()
            .rev()
            .find(|s| s.session == session && s.peer == peer)
    }
}

async fn registry_events(
    node: Node,
    scope: String,
    mut events: roster::Subscription,
    recorder: Recorder,
) {
    while let Some(delivery) = events.recv().await {
        let batch = match delivery {
            Delivery::Events(batch) => batch,
            Delivery::Lagged { missed } => {
                recorder
                    .stats()
                    .missed_events
                    .fetch_add(missed, Ordering::Relaxed);
                tracing::warn!(
                    scope,
                    missed,
                    "history: registry events missed (the feeder fell behind)"
                );
                continue;
            }
        };
        for event in batch {
            if let Some(kind) = conflict(&scope, &event, |pid| node.node_name_of(pid)) {
                recorder.record(kind);
            }
        }
    }
}

/// The record of a name conflict, if `event` reports one (`ConflictResolved`: once per
/// conflict on each node that learns of it, the winner's as well as the loser's; the
/// loser's `Unregistered` is not recorded again). `node_of` names the node of a pid.
pub fn conflict(
    scope: &str,
    event: &Event,
    node_of: impl Fn(Pid) -> Option<String>,
) -> Option<RecordKind> {
    match (&event.kind, &event.reason) {
        (
            EventKind::ConflictResolved,
            Reason::Conflict {
                winner,
                loser,
                rule,
                ..
            },
        ) => Some(RecordKind::NameConflict {
            scope: scope.to_owned(),
            key: event.key.to_string(),
            winner: winner.to_string(),
            loser: loser.to_string(),
            rule: Some(rule.as_str().to_owned()),
            winner_node: node_of(*winner),
            loser_node: node_of(*loser),
        }),
        _ => None,
    }
}

fn epoch_ms(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use roster::{ClusterConfig, FailureDetection, Node};

    use super::spawn;
    use crate::history::History;
    use crate::history::record::RecordKind;
    use crate::history::settings::HistorySettings;
    use crate::history::store::AuditQuery;

    fn clustered(name: &str, seeds: &[&Node]) -> Node {
        let seeds: Vec<String> = seeds
            .iter()
            .map(|n| n.cluster().addr().expect("clustered").to_string())
            .collect();
        let config = ClusterConfig::new("127.0.0.1:0".parse().unwrap(), "feeder-test")
            .seeds(seeds)
            .failure_detection(FailureDetection::Fast);
        Node::builder()
            .name(name)
            .cluster(config)
            .start()
            .expect("node starts")
    }

    /// A peer whose record arrived before the feeder started (an agent's node links while
    /// its HTTP address is still being bound) is recorded up, and its link open, all the
    /// same: their events came before the feeder's subscription, so the feeder starts
    /// from the nodes and links known.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_peer_up_before_the_feeder_started_is_recorded_up() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("history.db");
        let settings = HistorySettings::parse(
            Some(&format!("sqlite:{}", path.display())),
            None,
            None,
            dir.path(),
        )
        .expect("valid settings");
        let history = History::open(&settings, "a").await.unwrap().expect("on");
        let a = clustered("a", &[]);
        let b = clustered("b", &[&a]);
        let deadline = Instant::now() + Duration::from_secs(10);
        while a.nodes().get("b").is_none() {
            assert!(Instant::now() < deadline, "a never learned b's record");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let _feeder = spawn(&a, history.recorder());
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            assert!(history.flush(Duration::from_secs(5)).await, "flushed");
            let rows = history
                .reader()
                .read(|store| {
                    store.audit(&AuditQuery {
                        kinds: vec!["node_up".to_owned(), "link_opened".to_owned()],
                        limit: 100,
                        ..AuditQuery::default()
                    })
                })
                .await
                .expect("readable");
            let recorded = |of: fn(&RecordKind) -> bool| {
                rows.iter()
                    .any(|row| row.record.recorder == "a" && of(&row.record.kind))
            };
            let up = recorded(|k| matches!(k, RecordKind::NodeUp { node, .. } if node == "b"));
            let linked =
                recorded(|k| matches!(k, RecordKind::LinkOpened { peer, .. } if peer == "b"));
            if up && linked {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "a never recorded b up and its link open: {rows:?}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        b.shutdown().await;
        a.shutdown().await;
    }
}
