//! The node as the runtime of its processes: finding and ending them (dead first, then
//! their entries removed), and dropping a disconnected scope's holdings.

use std::sync::Arc;

use super::NodeShared;
use crate::event::ExitReason;
use crate::pid::Pid;
use crate::store::LocalProcess;
use crate::store::ScopeStore;

impl NodeShared {
    pub(crate) fn process_cell(&self, pid: Pid) -> Option<Arc<LocalProcess>> {
        self.stores.process(pid)
    }

    /// Ends a process: marks it dead, then removes its entries scope by scope (one event
    /// batch per subscriber and scope). Does nothing and returns `false` if it had already
    /// exited.
    pub(crate) fn exit(&self, cell: &LocalProcess, reason: ExitReason) -> bool {
        self.stores.exit(cell, reason)
    }

    /// Disconnects a scope's store (if it is still connected) and tells the peers.
    pub(crate) fn disconnect_state(&self, state: &Arc<ScopeStore>) {
        if self.stores.disconnect(state)
            && !state.local_only
            && let Some(cluster) = self.cluster()
        {
            cluster.on_scope_disconnected(&state.name);
        }
    }
}
