//! The node's scopes as the cluster sees them: disconnecting a scope's store also tells
//! the peers.

use std::sync::Arc;

use super::NodeShared;
use crate::store::ScopeStore;

impl NodeShared {
    /// Disconnects a scope's store (if it is still connected) and tells the peers.
    /// Its own `extract_meta` transform, if any, is forgotten.
    pub(crate) fn disconnect_state(&self, state: &Arc<ScopeStore>) {
        if !self.stores.disconnect(state) {
            return;
        }
        self.extracts.forget_scope(state.epoch);
        if !state.local_only
            && let Some(cluster) = self.cluster()
        {
            cluster.on_scope_disconnected(&state.name);
        }
    }
}
