//! The node registry of one node: the latest record of every node it has heard of, when
//! it last heard from each, which ones are offline, and a bounded ring of recent
//! heartbeats per node. Fed by the replication core (records and heartbeats from peers,
//! deaths from membership) and by the node itself (its own record and heartbeats).

use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use super::heartbeat::Heartbeat;
use super::record::{NodeRecord, NodeStatus};
use super::split_brain::PartitionStatus;
use crate::subscription::{Keyed, Subscribers, Subscription};
use crate::vocab::key::Pattern;
use crate::vocab::pid::Incarnation;

/// A node event: what changed in the node registry, or on this node's links and
/// partition status. Subscriptions match it by node name (for links: the peer's; for
/// partitions: the node that checked); heartbeats only reach subscribers that opted in.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum NodeEvent {
    /// A node was seen for the first time, or came back: after being offline, or as a new
    /// incarnation (a restart).
    Up {
        /// Its record.
        record: NodeRecord,
        /// Whether this node had never heard of a node of that name (`false`: it is back).
        first_seen: bool,
    },
    /// A node went offline, with the reason.
    Down {
        /// The node's name.
        name: String,
        /// Its incarnation.
        incarnation: Incarnation,
        /// Whether it left on purpose (`Node::shutdown`): it is no longer part of the
        /// expected cluster. `false`: membership declared it dead, or it vanished.
        left: bool,
        /// Why it is offline.
        reason: String,
    },
    /// A node changed its record other than its status (role, labels, version,
    /// addresses): the new record.
    Updated {
        /// The record now.
        record: NodeRecord,
    },
    /// A node's own status changed.
    Status {
        /// The node's name.
        name: String,
        /// The status before.
        old: NodeStatus,
        /// The status now.
        new: NodeStatus,
        /// Why.
        reason: String,
    },
    /// A heartbeat arrived (only for subscribers that opted in).
    Heartbeat {
        /// The node's name.
        name: String,
        /// What it measured.
        heartbeat: Heartbeat,
    },
    /// This node established a link to a peer.
    LinkUp {
        /// The peer's name.
        peer: String,
        /// The peer's incarnation.
        incarnation: Incarnation,
        /// The link's session id.
        session: u64,
    },
    /// A link of this node to a peer closed.
    LinkDown {
        /// The peer's name.
        peer: String,
        /// The peer's incarnation.
        incarnation: Incarnation,
        /// The link's session id.
        session: u64,
        /// Why it closed.
        reason: String,
    },
    /// This node's split-brain check now suspects a partition, or what it suspects
    /// changed (see [`super::PartitionChange::Detected`]).
    PartitionDetected {
        /// The node that checked (this node).
        node: String,
        /// What it concluded.
        status: PartitionStatus,
    },
    /// This node's split-brain check no longer suspects a partition.
    PartitionHealed {
        /// The node that checked (this node).
        node: String,
        /// What it concluded.
        status: PartitionStatus,
    },
}

impl Keyed for NodeEvent {
    fn key(&self) -> &str {
        match self {
            Self::Up { record, .. } | Self::Updated { record } => &record.name,
            Self::Down { name, .. } | Self::Status { name, .. } | Self::Heartbeat { name, .. } => {
                name
            }
            Self::LinkUp { peer, .. } | Self::LinkDown { peer, .. } => peer,
            Self::PartitionDetected { node, .. } | Self::PartitionHealed { node, .. } => node,
        }
    }

    fn opt_in(&self) -> bool {
        matches!(self, Self::Heartbeat { .. })
    }
}

/// The reason of a node that left the cluster on purpose (its own leave record, or
/// membership's leave notice).
pub const LEFT_THE_CLUSTER: &str = "left the cluster";

/// Why a node could not be forgotten ([`NodeRegistry::forget`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ForgetError {
    /// No node of that name is known here.
    #[error("no node named {0:?} is known here")]
    Unknown(String),
    /// The node is not offline.
    #[error(
        "node {0:?} is not offline: only a dead or departed node can be forgotten (a live one comes back with its next record)"
    )]
    Up(String),
}

/// Why a node is offline, and since when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Offline {
    /// When this node recorded it, in milliseconds since the Unix epoch.
    pub since_ms: u64,
    /// Why (membership declared it dead, it left, it vanished).
    pub reason: String,
    /// It left on purpose: it is no longer part of the expected cluster.
    pub left: bool,
}

/// One node as this node knows it.
#[derive(Debug, Clone, PartialEq)]
pub struct NodeEntry {
    /// Its latest record.
    pub record: NodeRecord,
    /// Set while the node is offline.
    pub offline: Option<Offline>,
    /// When this node last heard from it (record or heartbeat), in milliseconds since the
    /// Unix epoch (this node's clock).
    pub last_seen_ms: u64,
    /// Its latest heartbeats, oldest first, each with when this node received it (in
    /// milliseconds since the Unix epoch, this node's clock: the sender's clock may
    /// differ).
    pub heartbeats: VecDeque<(u64, Heartbeat)>,
}

impl NodeEntry {
    /// The entry of a node first heard of at `now_ms`, with no heartbeat yet.
    fn first(record: NodeRecord, offline: Option<Offline>, now_ms: u64) -> Self {
        Self {
            record,
            offline,
            last_seen_ms: now_ms,
            heartbeats: VecDeque::new(),
        }
    }

    /// A copy without the heartbeats (they can be many).
    fn without_heartbeats(&self) -> Self {
        Self::first(self.record.clone(), self.offline.clone(), self.last_seen_ms)
    }

    /// Its status as this node sees it: `Offline` while offline, else its own.
    pub fn status(&self) -> NodeStatus {
        if self.offline.is_some() {
            NodeStatus::Offline
        } else {
            self.record.status
        }
    }
}

/// The registry of every node this node knows; see the module docs of `nodes::registry`.
///
/// ```
/// use roster_proto::nodes::{NodeRecord, NodeRegistry, NodeStatus};
/// use roster_proto::pid::Incarnation;
///
/// let registry = NodeRegistry::new(8);
/// registry.apply_record(NodeRecord::new("api-1", Incarnation::new(7), 1_000), 1_000);
/// registry.mark_offline(7, "declared dead by membership", false, 2_000);
/// assert_eq!(registry.get("api-1").unwrap().status(), NodeStatus::Offline);
/// ```
pub struct NodeRegistry {
    inner: Mutex<BTreeMap<String, NodeEntry>>,
    ring: AtomicUsize,
    /// Subscribers to node events, fed under `inner`'s lock (so a watch's copy and its
    /// subscription start at one instant).
    subscribers: Arc<Subscribers<NodeEvent>>,
}

impl NodeRegistry {
    /// An empty registry keeping at most `ring` heartbeats per node.
    pub fn new(ring: usize) -> Self {
        Self {
            inner: Mutex::new(BTreeMap::new()),
            ring: AtomicUsize::new(ring),
            subscribers: Arc::default(),
        }
    }

    /// Keeps at most `ring` heartbeats per node from now on.
    pub fn set_ring(&self, ring: usize) {
        self.ring.store(ring, Ordering::Relaxed);
    }

    fn lock(&self) -> MutexGuard<'_, BTreeMap<String, NodeEntry>> {
        // No critical section leaves the map half-written before a panic could occur.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A record arrived (from its node over its current link, or the node's own) at
    /// `now_ms`: a record of another incarnation of the name replaces the known one (the
    /// node restarted: the replication core ignores frames of an incarnation replaced by a
    /// newer link, so an old one cannot come late); within an incarnation the higher
    /// revision is kept. A record over a live link also means the node is up, unless the
    /// record itself says `Offline` (the node is leaving the cluster).
    pub fn apply_record(&self, record: NodeRecord, now_ms: u64) -> Vec<NodeEvent> {
        let mut nodes = self.lock();
        let events = if record.status == NodeStatus::Offline {
            leave(&mut nodes, record, now_ms)
        } else {
            arrive(&mut nodes, record, now_ms)
        };
        self.subscribers.emit_batch(events.clone());
        events
    }
}

/// A record that says its node is up arrived; see [`NodeRegistry::apply_record`].
fn arrive(
    nodes: &mut BTreeMap<String, NodeEntry>,
    record: NodeRecord,
    now_ms: u64,
) -> Vec<NodeEvent> {
    let mut changes = Vec::new();
    if let Some(entry) = nodes.get(&record.name)
        && !takes_the_name(entry, &record)
    {
        return changes;
    }
    match nodes.get_mut(&record.name) {
        None => {
            changes.push(NodeEvent::Up {
                record: record.clone(),
                first_seen: true,
            });
            nodes.insert(record.name.clone(), NodeEntry::first(record, None, now_ms));
        }
        Some(entry) => {
            let restarted = entry.record.incarnation != record.incarnation;
            if restarted || entry.offline.is_some() {
                changes.push(NodeEvent::Up {
                    record: record.clone(),
                    first_seen: false,
                });
            } else if record.revision > entry.record.revision {
                if record.status != entry.record.status {
                    changes.push(NodeEvent::Status {
                        name: record.name.clone(),
                        old: entry.record.status,
                        new: record.status,
                        reason: record.status_reason.clone(),
                    });
                }
                let described = |r: &NodeRecord| {
                    (
                        r.role.clone(),
                        r.labels.clone(),
                        r.version.clone(),
                        r.addrs.clone(),
                    )
                };
                if described(&record) != described(&entry.record) {
                    changes.push(NodeEvent::Updated {
                        record: record.clone(),
                    });
                }
            }
            if restarted {
                entry.heartbeats.clear();
            }
            let old_incarnation = entry.record.incarnation;
            if restarted || record.revision > entry.record.revision {
                entry.record = record;
            }
            entry.offline = None;
            entry.last_seen_ms = now_ms;
            if restarted {
                // The nodes the old incarnation kept have no keeper any more.
                let name = entry.record.name.clone();
                changes.extend(orphan_kept(nodes, old_incarnation, &name, now_ms));
            }
        }
    }
    changes
}

/// Whether `record` (another incarnation of the name, or the same) may replace `entry`:
/// a member's record always may, and so may any record once the entry is offline; an
/// external node's record never replaces a live member, and between two live external
/// nodes of one name kept by different members (both registered during a partition) the
/// one that started first keeps the name, on every node alike.
fn takes_the_name(entry: &NodeEntry, record: &NodeRecord) -> bool {
    if entry.record.incarnation == record.incarnation
        || record.keeper.is_none()
        || entry.offline.is_some()
    {
        return true;
    }
    match &entry.record.keeper {
        None => false,
        Some(_) => {
            (record.started_at_ms, record.incarnation)
                < (entry.record.started_at_ms, entry.record.incarnation)
        }
    }
}

/// Marks offline every live external node kept by the incarnation `keeper` of the node
/// `keeper_name`, which is gone or restarted.
fn orphan_kept(
    nodes: &mut BTreeMap<String, NodeEntry>,
    keeper: Incarnation,
    keeper_name: &str,
    now_ms: u64,
) -> Vec<NodeEvent> {
    let reason = format!("its keeper {keeper_name} is offline");
    nodes
        .values_mut()
        .filter(|e| e.offline.is_none())
        .filter(|e| {
            e.record
                .keeper
                .as_ref()
                .is_some_and(|k| k.incarnation == keeper)
        })
        .map(|entry| {
            entry.offline = Some(Offline {
                since_ms: now_ms,
                reason: reason.clone(),
                left: false,
            });
            NodeEvent::Down {
                name: entry.record.name.clone(),
                incarnation: entry.record.incarnation,
                left: false,
                reason: reason.clone(),
            }
        })
        .collect()
}

/// A record says its node is offline: a member leaving the cluster (no longer part of
/// the expected cluster), or an external node its keeper marked offline (`record.left`
/// says whether on purpose).
fn leave(
    nodes: &mut BTreeMap<String, NodeEntry>,
    record: NodeRecord,
    now_ms: u64,
) -> Vec<NodeEvent> {
    let offline = Offline {
        since_ms: now_ms,
        reason: record.status_reason.clone(),
        left: record.left,
    };
    let change = NodeEvent::Down {
        name: record.name.clone(),
        incarnation: record.incarnation,
        left: record.left,
        reason: record.status_reason.clone(),
    };
    let mut changes = Vec::new();
    match nodes.get_mut(&record.name) {
        Some(entry) if entry.record.incarnation == record.incarnation => {
            if record.revision <= entry.record.revision {
                return changes;
            }
            let was_up = entry.offline.is_none();
            let name = record.name.clone();
            entry.record = record;
            entry.offline = Some(offline);
            entry.last_seen_ms = now_ms;
            if was_up {
                changes.push(change);
                let incarnation = entry.record.incarnation;
                changes.extend(orphan_kept(nodes, incarnation, &name, now_ms));
            }
        }
        // Another incarnation of the name is live here: the departure of this one is old
        // news about it.
        Some(entry) if entry.offline.is_none() => {}
        _ => {
            nodes.insert(
                record.name.clone(),
                NodeEntry::first(record, Some(offline), now_ms),
            );
            changes.push(change);
        }
    }
    changes
}

impl NodeRegistry {
    /// A heartbeat of the node of `incarnation` arrived at `now_ms`. Ignored if its
    /// record is not known (the record always comes first on a link).
    pub fn apply_heartbeat(
        &self,
        incarnation: u64,
        heartbeat: Heartbeat,
        now_ms: u64,
    ) -> Vec<NodeEvent> {
        let mut nodes = self.lock();
        let Some(entry) = nodes.values_mut().find(|e| {
            e.record.incarnation == Incarnation::new(incarnation) && !e.record.is_external()
        }) else {
            return Vec::new();
        };
        let events = self.push_heartbeat(entry, heartbeat, now_ms);
        self.subscribers.emit_batch(events.clone());
        events
    }

    /// The node of `incarnation` is gone (`left`: it left on purpose) at `now_ms`. For a
    /// node already offline, `left` only corrects an earlier death into a departure.
    pub fn mark_offline(
        &self,
        incarnation: u64,
        reason: &str,
        left: bool,
        now_ms: u64,
    ) -> Vec<NodeEvent> {
        let mut nodes = self.lock();
        let Some(entry) = nodes
            .values_mut()
            .find(|e| e.record.incarnation == Incarnation::new(incarnation))
        else {
            return Vec::new();
        };
        if let Some(offline) = &mut entry.offline {
            // Already down: learning that it left on purpose only corrects the record (the
            // split-brain check no longer expects it); no second event.
            if left && !offline.left {
                offline.left = true;
                reason.clone_into(&mut offline.reason);
            }
            return Vec::new();
        }
        entry.offline = Some(Offline {
            since_ms: now_ms,
            reason: reason.to_owned(),
            left,
        });
        let name = entry.record.name.clone();
        let mut events = vec![NodeEvent::Down {
            name: name.clone(),
            incarnation: entry.record.incarnation,
            left,
            reason: reason.to_owned(),
        }];
        events.extend(orphan_kept(
            &mut nodes,
            Incarnation::new(incarnation),
            &name,
            now_ms,
        ));
        self.subscribers.emit_batch(events.clone());
        events
    }

    /// A heartbeat of the external node of `incarnation`, kept by the member of
    /// incarnation `keeper`, arrived at `now_ms`. Ignored unless that member keeps the
    /// node's current record here.
    pub fn apply_kept_heartbeat(
        &self,
        keeper: u64,
        incarnation: Incarnation,
        heartbeat: Heartbeat,
        now_ms: u64,
    ) -> Vec<NodeEvent> {
        let mut nodes = self.lock();
        let Some(entry) = nodes.values_mut().find(|e| {
            e.record.incarnation == incarnation
                && e.record
                    .keeper
                    .as_ref()
                    .is_some_and(|k| k.incarnation == Incarnation::new(keeper))
        }) else {
            return Vec::new();
        };
        let events = self.push_heartbeat(entry, heartbeat, now_ms);
        self.subscribers.emit_batch(events.clone());
        events
    }

    fn push_heartbeat(
        &self,
        entry: &mut NodeEntry,
        heartbeat: Heartbeat,
        now_ms: u64,
    ) -> Vec<NodeEvent> {
        entry.last_seen_ms = now_ms;
        let ring = self.ring.load(Ordering::Relaxed).max(1);
        while entry.heartbeats.len() >= ring {
            entry.heartbeats.pop_front();
        }
        entry.heartbeats.push_back((now_ms, heartbeat.clone()));
        vec![NodeEvent::Heartbeat {
            name: entry.record.name.clone(),
            heartbeat,
        }]
    }

    /// Publishes an event of this node's own (its links, its partition status) to the
    /// subscribers.
    pub fn publish(&self, event: NodeEvent) {
        let _nodes = self.lock();
        self.subscribers.emit(|| event);
    }

    /// Subscribes to node events of the nodes matching `patterns` (by name); `heartbeats`:
    /// also every heartbeat. With `initial`, also returns every known node matching them,
    /// taken at the same instant the subscription starts (list-then-watch: each change
    /// is in the list or an event after it, never both, never neither).
    pub fn subscribe(
        &self,
        patterns: Vec<Pattern>,
        capacity: usize,
        heartbeats: bool,
    ) -> (Vec<NodeEntry>, Subscription<NodeEvent>) {
        let nodes = self.lock();
        let queue = self.subscribers.add_with(patterns, capacity, heartbeats);
        let initial = nodes
            .values()
            .filter(|e| queue.matches(&e.record.name))
            .map(NodeEntry::without_heartbeats)
            .collect();
        drop(nodes);
        (
            initial,
            Subscription::new(queue, Arc::downgrade(&self.subscribers)),
        )
    }

    /// Drops the record of the offline node `name` now, before its retention ends: it
    /// leaves the expected cluster that split-brain checks learn from the records.
    ///
    /// # Errors
    ///
    /// [`ForgetError::Unknown`] if no node of that name is known here,
    /// [`ForgetError::Up`] if it is not offline (only a dead or departed node can be
    /// forgotten: a live one would come back with its next record).
    pub fn forget(&self, name: &str) -> Result<(), ForgetError> {
        let mut nodes = self.lock();
        match nodes.get(name) {
            None => Err(ForgetError::Unknown(name.to_owned())),
            Some(entry) if entry.offline.is_none() => Err(ForgetError::Up(name.to_owned())),
            Some(_) => {
                nodes.remove(name);
                Ok(())
            }
        }
    }

    /// Drops the nodes offline for at least `retention_ms` at `now_ms`; returns their
    /// names.
    pub fn expire(&self, now_ms: u64, retention_ms: u64) -> Vec<String> {
        let mut nodes = self.lock();
        let gone: Vec<String> = nodes
            .iter()
            .filter(|(_, e)| {
                e.offline
                    .as_ref()
                    .is_some_and(|o| now_ms.saturating_sub(o.since_ms) >= retention_ms)
            })
            .map(|(name, _)| name.clone())
            .collect();
        for name in &gone {
            nodes.remove(name);
        }
        gone
    }

    /// The node named `name`.
    pub fn get(&self, name: &str) -> Option<NodeEntry> {
        self.lock().get(name).cloned()
    }

    /// The name of the node of `incarnation`, if known.
    pub fn name_of(&self, incarnation: u64) -> Option<String> {
        self.lock()
            .values()
            .find(|e| e.record.incarnation == Incarnation::new(incarnation))
            .map(|e| e.record.name.clone())
    }

    /// Whether a node of `incarnation` is known here and not offline.
    ///
    /// ```
    /// use roster_proto::nodes::{NodeRecord, NodeRegistry};
    /// use roster_proto::pid::Incarnation;
    ///
    /// let registry = NodeRegistry::new(8);
    /// registry.apply_record(NodeRecord::new("api-1", Incarnation::new(7), 1_000), 1_000);
    /// assert!(registry.is_live(7));
    /// registry.mark_offline(7, "declared dead by membership", false, 2_000);
    /// assert!(!registry.is_live(7));
    /// assert!(!registry.is_live(8));
    /// ```
    pub fn is_live(&self, incarnation: u64) -> bool {
        self.lock()
            .values()
            .any(|e| e.record.incarnation == Incarnation::new(incarnation) && e.offline.is_none())
    }

    /// Every node, by name, with its heartbeats left out (they can be many).
    pub fn list(&self) -> Vec<NodeEntry> {
        self.lock()
            .values()
            .map(NodeEntry::without_heartbeats)
            .collect()
    }

    /// The heartbeats of `name` kept here that this node received at or after `since_ms`
    /// (its own clock, whatever the sender's clock says), oldest first.
    pub fn heartbeats(&self, name: &str, since_ms: u64) -> Vec<Heartbeat> {
        self.lock().get(name).map_or_else(Vec::new, |e| {
            e.heartbeats
                .iter()
                .filter(|(received, _)| *received >= since_ms)
                .map(|(_, heartbeat)| heartbeat.clone())
                .collect()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(name: &str, incarnation: u64, started: u64) -> NodeRecord {
        NodeRecord::new(name, Incarnation::new(incarnation), started)
    }

    #[test]
    fn a_restarted_node_replaces_its_record_whatever_the_clocks_say() {
        let registry = NodeRegistry::new(4);
        registry.apply_record(record("a", 7, 100), 100);
        registry.apply_heartbeat(7, Heartbeat::at(150), 150);
        let changes = registry.apply_record(record("a", 3, 50), 200);
        assert!(matches!(
            &changes[..],
            [NodeEvent::Up { record, first_seen: false }] if record.incarnation == Incarnation::new(3)
        ));
        let entry = registry.get("a").expect("known");
        assert_eq!(entry.record.incarnation, Incarnation::new(3));
        assert!(
            entry.heartbeats.is_empty(),
            "the old incarnation's beats go"
        );
    }

    #[test]
    fn status_changes_and_offline_and_back() {
        let registry = NodeRegistry::new(4);
        let mut r = record("a", 7, 100);
        registry.apply_record(r.clone(), 100);
        r.status = NodeStatus::Draining;
        r.status_reason = "maintenance".into();
        r.revision += 1;
        let changes = registry.apply_record(r.clone(), 110);
        assert_eq!(
            changes,
            vec![NodeEvent::Status {
                name: "a".into(),
                old: NodeStatus::Online,
                new: NodeStatus::Draining,
                reason: "maintenance".into()
            }]
        );
        assert!(matches!(
            &registry.mark_offline(7, "dead", false, 120)[..],
            [NodeEvent::Down { left: false, .. }]
        ));
        assert!(
            registry.mark_offline(7, "dead", false, 130).is_empty(),
            "once"
        );
        let entry = registry.get("a").expect("kept while offline");
        assert_eq!(entry.status(), NodeStatus::Offline);
        assert_eq!(entry.last_seen_ms, 110, "last seen stays");
        let back = registry.apply_record(r, 140);
        assert!(matches!(
            &back[..],
            [NodeEvent::Up {
                first_seen: false,
                ..
            }]
        ));
        assert_eq!(
            registry.get("a").expect("known").status(),
            NodeStatus::Draining
        );
    }

    #[test]
    fn offline_nodes_are_dropped_after_the_retention() {
        let registry = NodeRegistry::new(4);
        registry.apply_record(record("a", 7, 100), 100);
        registry.apply_record(record("b", 8, 100), 100);
        registry.mark_offline(7, "dead", false, 1_000);
        assert!(registry.expire(1_500, 1_000).is_empty());
        assert_eq!(registry.expire(2_000, 1_000), vec!["a".to_owned()]);
        assert!(registry.get("a").is_none());
        assert!(registry.get("b").is_some());
    }

    #[test]
    fn a_heartbeat_window_is_on_the_receivers_clock() {
        let registry = NodeRegistry::new(8);
        registry.apply_record(record("a", 7, 100), 100);
        // a's clock is an hour behind: its heartbeats say 0..2, they arrive at 3_600_000..
        for i in 0..3 {
            registry.apply_heartbeat(7, Heartbeat::at(i), 3_600_000 + i);
        }
        assert_eq!(registry.heartbeats("a", 3_600_001).len(), 2);
        assert_eq!(registry.heartbeats("a", 3_600_003).len(), 0);
        assert_eq!(registry.heartbeats("a", 0).len(), 3);
    }

    fn kept(name: &str, incarnation: u64, started: u64, keeper: (&str, u64)) -> NodeRecord {
        let mut record = record(name, incarnation, started);
        record.keeper = Some(super::super::Keeper {
            name: keeper.0.to_owned(),
            incarnation: Incarnation::new(keeper.1),
        });
        record
    }

    #[test]
    fn between_two_keepers_the_external_node_that_started_first_keeps_the_name() {
        // Registered on both sides of a partition: every node keeps the older one, in
        // whichever order the records arrive.
        for older_first in [true, false] {
            let registry = NodeRegistry::new(4);
            registry.apply_record(record("k1", 1, 0), 0);
            registry.apply_record(record("k2", 2, 0), 0);
            let older = kept("w", 10, 100, ("k1", 1));
            let newer = kept("w", 11, 200, ("k2", 2));
            let (first, second) = if older_first {
                (older.clone(), newer)
            } else {
                (newer, older.clone())
            };
            registry.apply_record(first, 300);
            registry.apply_record(second, 300);
            assert_eq!(registry.get("w").expect("known").record, older);
            // The loser's heartbeats are ignored; the keeper's only count.
            assert!(
                registry
                    .apply_kept_heartbeat(2, Incarnation::new(11), Heartbeat::at(1), 400)
                    .is_empty()
            );
            assert!(
                registry
                    .apply_kept_heartbeat(2, Incarnation::new(10), Heartbeat::at(1), 400)
                    .is_empty(),
                "only from its keeper"
            );
            assert_eq!(
                registry
                    .apply_kept_heartbeat(1, Incarnation::new(10), Heartbeat::at(1), 400)
                    .len(),
                1
            );
        }
    }

    #[test]
    fn a_member_takes_its_name_from_an_external_node_never_the_reverse() {
        let registry = NodeRegistry::new(4);
        registry.apply_record(record("k", 1, 0), 0);
        registry.apply_record(kept("w", 10, 100, ("k", 1)), 100);
        registry.apply_record(record("w", 20, 50), 200);
        let entry = registry.get("w").expect("known");
        assert!(!entry.record.is_external(), "the member has the name");
        assert!(
            registry
                .apply_record(kept("w", 10, 1, ("k", 1)), 300)
                .is_empty()
        );
        assert!(!registry.get("w").expect("known").record.is_external());
    }

    #[test]
    fn the_kept_nodes_go_offline_with_their_keeper_and_a_restart() {
        let registry = NodeRegistry::new(4);
        registry.apply_record(record("k", 1, 0), 0);
        registry.apply_record(kept("w1", 10, 100, ("k", 1)), 100);
        let events = registry.mark_offline(1, "declared dead by membership", false, 200);
        assert!(matches!(
            &events[..],
            [NodeEvent::Down { name: k, .. }, NodeEvent::Down { name: w, left: false, reason, .. }]
                if k == "k" && w == "w1" && reason == "its keeper k is offline"
        ));
        // The keeper back as a new incarnation: what the old one kept stays offline.
        registry.apply_record(kept("w2", 11, 100, ("k", 1)), 300);
        registry.apply_record(record("k", 2, 400), 400);
        assert_eq!(
            registry.get("w1").expect("kept").status(),
            NodeStatus::Offline
        );
        assert_eq!(
            registry.get("w2").expect("kept").status(),
            NodeStatus::Offline
        );
    }

    #[test]
    fn an_old_departure_does_not_take_down_a_live_incarnation() {
        let registry = NodeRegistry::new(4);
        registry.apply_record(record("a", 2, 500), 500);
        let mut gone = record("a", 1, 0);
        gone.status = NodeStatus::Offline;
        gone.left = true;
        gone.revision = 2;
        assert!(registry.apply_record(gone, 600).is_empty());
        assert_eq!(
            registry.get("a").expect("known").status(),
            NodeStatus::Online
        );
    }

    #[test]
    fn heartbeats_are_a_bounded_ring() {
        let registry = NodeRegistry::new(3);
        registry.apply_record(record("a", 7, 100), 100);
        for at in 1..=5 {
            registry.apply_heartbeat(7, Heartbeat::at(at), at);
        }
        let kept: Vec<u64> = registry
            .heartbeats("a", 0)
            .iter()
            .map(|h| h.at_ms)
            .collect();
        assert_eq!(kept, vec![3, 4, 5]);
        assert_eq!(registry.heartbeats("a", 5).len(), 1);
    }
}
