//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::future::Future;
use std::time::Duration;

use futures_util::FutureExt;
use roster::{
    ClusterConfig, Delivery, Event, EventKind, FailureDetection, Meta, Node, NodeBuilder, Pattern,
    Pid, Scope, Subscription, Table, Watch,
};
use serde::Serialize;

/// Generous bound on anything awaited in a test: only guards against hangs.
pub(crate) const HANG_GUARD: Duration = Duration::from_secs(10);

/// A node with default settings on the current runtime.
pub(crate) fn node() -> Node {
    Node::builder()
        .start()
        .expect("node starts inside a runtime")
}

/// The cluster settings of a test node on 127.0.0.1 (a free port) that announces itself to
/// `seeds`: fast failure detection, an announce every 200 ms.
pub(crate) fn cluster_config(secret: &str, seeds: &[&Node]) -> ClusterConfig {
    let seeds: Vec<String> = seeds
        .iter()
        .map(|n| n.cluster().addr().expect("clustered").to_string())
        .collect();
    ClusterConfig::new("127.0.0.1:0".parse().unwrap(), secret)
        .seeds(seeds)
        .failure_detection(FailureDetection::Fast)
        .announce_interval(Duration::from_millis(200))
}

/// Starts `builder` as node `name` of the cluster `config` describes.
pub(crate) fn start_clustered(builder: NodeBuilder, name: &str, config: ClusterConfig) -> Node {
    builder
        .name(name)
        .cluster(config)
        .start()
        .expect("node starts")
}

/// Whether every node lists every other one as linked.
pub(crate) fn fully_linked(nodes: &[&Node]) -> bool {
    nodes
        .iter()
        .all(|n| n.cluster().peers().len() == nodes.len() - 1)
}

/// Encodes a value the way the library encodes meta.
pub(crate) fn meta<T: Serialize + ?Sized>(value: &T) -> Meta {
    Meta::encode(value).expect("encodable meta")
}

/// Awaits `future`, failing the test instead of hanging.
pub(crate) async fn within<F: Future>(what: &str, future: F) -> F::Output {
    tokio::time::timeout(HANG_GUARD, future)
        .await
        .unwrap_or_else(|_| panic!("timed out waiting for {what}"))
}

/// The delivery already queued for `sub`, without waiting: `None` if nothing is queued.
/// Panics if the subscription has ended.
pub(crate) fn queued(sub: &mut Subscription) -> Option<Delivery> {
    match sub.recv().now_or_never() {
        None => None,
        Some(Some(delivery)) => Some(delivery),
        Some(None) => panic!("subscription ended unexpectedly"),
    }
}

/// The next queued batch of events; panics if nothing is queued or it is a lag notice.
pub(crate) fn batch(sub: &mut Subscription) -> Vec<Event> {
    match queued(sub) {
        Some(Delivery::Events(events)) => events,
        other => panic!("expected a queued batch of events, got {other:?}"),
    }
}

/// The single event of the next queued batch; panics unless the batch has exactly one.
pub(crate) fn single(sub: &mut Subscription) -> Event {
    let mut events = batch(sub);
    assert_eq!(
        events.len(),
        1,
        "expected a one-event batch, got {events:?}"
    );
    events.pop().expect("one event")
}

/// Asserts that nothing is queued for `sub`.
pub(crate) fn assert_quiet(sub: &mut Subscription) {
    if let Some(delivery) = queued(sub) {
        panic!("expected no delivery, got {delivery:?}");
    }
}

/// Every event queued for `sub`, flattened; panics on a lag notice.
pub(crate) fn drain(sub: &mut Subscription) -> Vec<Event> {
    let mut all = Vec::new();
    while let Some(delivery) = queued(sub) {
        match delivery {
            Delivery::Events(events) => all.extend(events),
            Delivery::Lagged { missed } => panic!("subscription lagged by {missed}"),
        }
    }
    all
}

/// What `recv` gives without waiting: `None` if it would wait, `Some(None)` once the
/// subscription has ended, `Some(Some(delivery))` otherwise.
pub(crate) fn queued_or_end(sub: &mut Subscription) -> Option<Option<Delivery>> {
    sub.recv().now_or_never()
}

/// Polls `check` every 5 ms until it holds; panics after 15 s naming `what`.
pub(crate) async fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    while !check() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for: {what}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// The entries of a scope as a subscriber rebuilds them from events, checking each event
/// against what it holds: a registration (or join) of an entry it has, or an update or
/// removal of one it lacks or holds with other meta, panics. Registrations are unique per
/// key; memberships per (key, pid).
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct EntryModel {
    /// Names: key -> (owner, meta).
    pub names: BTreeMap<String, (Pid, Meta)>,
    /// Memberships: (key, member) -> meta.
    pub members: BTreeMap<(String, Pid), Meta>,
}

impl EntryModel {
    /// The initial entries of a watch.
    pub(crate) fn of_watch(watch: &Watch) -> Self {
        let mut model = Self::default();
        for (key, r) in &watch.names {
            let held = model.names.insert(key.to_string(), (r.pid, r.meta.clone()));
            assert!(held.is_none(), "{key} twice in the watch");
        }
        for (key, m) in &watch.members {
            let held = model
                .members
                .insert((key.to_string(), m.pid()), m.meta().clone());
            assert!(held.is_none(), "{key}/{} twice in the watch", m.pid());
        }
        model
    }

    /// The live entries of `scope` whose keys match `pattern`.
    pub(crate) fn of_scope(scope: &Scope, pattern: &Pattern) -> Self {
        let mut model = Self::default();
        for (key, r) in scope.names("", usize::MAX).expect("all names") {
            if pattern.matches(&key) {
                model.names.insert(key.to_string(), (r.pid, r.meta));
            }
        }
        let all = |_: &roster::Entry| true;
        for e in scope.select(Table::Groups, None, all).expect("all members") {
            if pattern.matches(&e.key) {
                model.members.insert((e.key.to_string(), e.pid), e.meta);
            }
        }
        model
    }

    /// Applies one event, checking it against the entries held.
    pub(crate) fn apply(&mut self, e: &Event) {
        let key = e.key.to_string();
        match (e.kind, &e.previous_meta) {
            (EventKind::Registered, None) => {
                let held = self.names.insert(key, (e.pid, e.meta.clone()));
                assert!(held.is_none(), "registered while held: {e:?}");
            }
            (EventKind::Registered, Some(previous)) => {
                let current = self.names.get_mut(&key).expect("update of a free name");
                assert_eq!((current.0, &current.1), (e.pid, previous), "{e:?}");
                current.1 = e.meta.clone();
            }
            (EventKind::Unregistered, _) => {
                let held = self.names.remove(&key);
                assert_eq!(held, Some((e.pid, e.meta.clone())), "{e:?}");
            }
            (EventKind::Joined, None) => {
                let held = self.members.insert((key, e.pid), e.meta.clone());
                assert!(held.is_none(), "joined twice: {e:?}");
            }
            (EventKind::Joined, Some(previous)) => {
                let current = self
                    .members
                    .get_mut(&(key, e.pid))
                    .expect("update of a non-member");
                assert_eq!(&*current, previous, "{e:?}");
                *current = e.meta.clone();
            }
            (EventKind::Left, _) => {
                let held = self.members.remove(&(key, e.pid));
                assert_eq!(held, Some(e.meta.clone()), "{e:?}");
            }
            // It reports a conflict; the changes it causes are events of their own.
            (EventKind::ConflictResolved, _) => {}
            (kind, _) => panic!("an event kind this model does not know: {kind:?}"),
        }
    }

    /// Whether no entry is held.
    pub(crate) fn is_empty(&self) -> bool {
        self.names.is_empty() && self.members.is_empty()
    }
}
