//! The tasks that feed the hub: one per scope the agent is connected to at start (all of
//! its keys) and one for node events. They also count what metrics report: conflicts,
//! resyncs and the events the agent's own subscriptions missed.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use roster::{Delivery, EventKind, Node, Pattern, Reason, Scope};
use serde_json::json;

use super::hub::EventHub;
use super::view::{kind_name, node_data, registry_data};

/// What the pumps counted since the agent started.
#[derive(Debug, Default)]
pub struct EventCounts {
    /// Name conflicts this node learned of, once each (`ConflictResolved` events: on the
    /// winner's node as well as the loser's).
    pub conflicts: AtomicU64,
    /// Entries changed by a resync with a peer.
    pub resyncs: AtomicU64,
    /// Events the agent's subscriptions missed (the library reported lag).
    pub missed: AtomicU64,
}

/// Starts a pump for every scope `node` is connected to and one for its node events.
/// Must run inside a tokio runtime; the tasks end when the node's subscriptions close.
pub fn start(node: &Node, hub: &EventHub) -> Arc<EventCounts> {
    let counts = Arc::new(EventCounts::default());
    for name in node.scopes() {
        match node.scope(name.as_str()) {
            Ok(scope) => {
                tokio::spawn(pump_scope(node.clone(), scope, hub.clone(), counts.clone()));
            }
            Err(e) => {
                tracing::warn!(scope = %name.as_str(), error = %e, "no event stream for scope")
            }
        }
    }
    tokio::spawn(pump_nodes(node.clone(), hub.clone(), counts.clone()));
    counts
}

fn lagged(hub: &EventHub, counts: &EventCounts, scope: Option<String>, missed: u64) {
    counts.missed.fetch_add(missed, Ordering::Relaxed);
    let data = json!({"kind": "lagged", "missed": missed, "scope": scope, "source": "agent"});
    hub.publish("lagged", scope, String::new(), data.to_string());
}

async fn pump_scope(node: Node, scope: Scope, hub: EventHub, counts: Arc<EventCounts>) {
    let mut events = match scope.subscribe(Pattern::All) {
        Ok(events) => events,
        Err(e) => {
            tracing::warn!(scope = scope.scope_name(), error = %e, "cannot subscribe");
            return;
        }
    };
    let name = scope.scope_name().to_owned();
    while let Some(delivery) = events.recv().await {
        match delivery {
            Delivery::Events(batch) => {
                for event in batch {
                    if event.kind == EventKind::ConflictResolved {
                        counts.conflicts.fetch_add(1, Ordering::Relaxed);
                    } else if event.reason == Reason::Resynced {
                        counts.resyncs.fetch_add(1, Ordering::Relaxed);
                    }
                    let data = registry_data(&node, &event).to_string();
                    hub.publish(
                        kind_name(event.kind),
                        Some(name.clone()),
                        event.key.as_str().to_owned(),
                        data,
                    );
                }
            }
            Delivery::Lagged { missed } => lagged(&hub, &counts, Some(name.clone()), missed),
        }
    }
}

async fn pump_nodes(node: Node, hub: EventHub, counts: Arc<EventCounts>) {
    let mut events = node.nodes().subscribe(Pattern::All, false);
    while let Some(delivery) = events.recv().await {
        match delivery {
            Delivery::Events(batch) => {
                for event in batch {
                    if let Some((kind, data)) = node_data(&event) {
                        let key = data["node"].as_str().unwrap_or_default().to_owned();
                        hub.publish(kind, None, key, data.to_string());
                    }
                }
            }
            Delivery::Lagged { missed } => lagged(&hub, &counts, None, missed),
        }
    }
}
