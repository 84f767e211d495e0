//! What the replication core reads of the node that hosts it: its stores. Everything the
//! core causes on the node (messages to deliver, names lost in a conflict) comes back as a
//! [`super::core::CoreEvent`] instead.

use std::sync::Arc;

use crate::nodes::NodeRegistry;
use crate::store::{ApplyOutcome, NodeStores, ScopeStore};
use crate::vocab::op::Outgoing;

/// The node's replicated stores, as the replication core sees them.
pub trait ReplicaHost {
    /// A connected replicated (not local-only) scope.
    fn replicated_scope(&self, name: &str) -> Option<Arc<ScopeStore>>;

    /// Every connected replicated scope, by name.
    fn replicated_scopes(&self) -> Vec<Arc<ScopeStore>>;

    /// Whether local writes were applied to the stores but not handed to the core yet: a
    /// digest of this node's entries is then ahead of its stream and not comparable.
    fn local_ops_pending(&self) -> bool;

    /// Takes the ops of local writes applied since the last call, in the order they were
    /// applied. The core takes them itself before it reacts to anything.
    fn take_local_ops(&self) -> Vec<Outgoing>;

    /// The node registry records and heartbeats from peers go into.
    fn node_registry(&self) -> &NodeRegistry;

    /// The node's wall clock, in milliseconds since the Unix epoch.
    fn now_ms(&self) -> u64;

    /// Local processes lost names to remote contenders (the names are already removed):
    /// end them or tell them, as the node is configured. The core takes what their exits
    /// removed as local ops in the same call.
    fn names_lost(&self, outcome: ApplyOutcome);

    /// Whether any scope holds entries of `origin`.
    fn has_entries_of(&self, origin: u64) -> bool {
        self.replicated_scopes()
            .iter()
            .any(|s| s.remote_origins().contains(&origin))
    }
}

impl ReplicaHost for NodeStores {
    fn replicated_scope(&self, name: &str) -> Option<Arc<ScopeStore>> {
        self.get(name).filter(|s| !s.local_only && s.is_connected())
    }

    fn replicated_scopes(&self) -> Vec<Arc<ScopeStore>> {
        self.replicated().collect()
    }

    fn local_ops_pending(&self) -> bool {
        self.outbox().is_some_and(|o| !o.is_empty())
    }

    fn take_local_ops(&self) -> Vec<Outgoing> {
        Self::take_local_ops(self)
    }

    fn names_lost(&self, outcome: ApplyOutcome) {
        self.conflicts_lost(outcome);
    }

    fn node_registry(&self) -> &NodeRegistry {
        &self.nodes
    }

    fn now_ms(&self) -> u64 {
        self.clock().now_millis()
    }
}
