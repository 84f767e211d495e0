//! The node as the runtime of its processes: creating and spawning them, ending them
//! (dead first, then their entries removed), and dropping a disconnected scope's holdings.

use std::sync::Arc;

use super::NodeShared;
use crate::event::ExitReason;
use crate::pid::Pid;
use crate::process::Process;
use crate::scope::Scope;
use crate::store::LocalProcess;
use crate::store::ScopeStore;

impl NodeShared {
    pub(crate) fn default_scope(self: &Arc<Self>) -> Scope {
        Scope {
            state: self.stores.default_scope().clone(),
            node: self.clone(),
        }
    }

    pub(crate) fn new_process(self: &Arc<Self>) -> Process {
        let pid = self.stores.next_pid();
        let live = &self.stores.processes.live;
        let process = Process::new(self.clone(), live, pid, self.mailbox_capacity);
        self.stores.add_process(process.cell().clone());
        process
    }

    pub(crate) fn spawn_process<F, Fut>(self: &Arc<Self>, process: Process, f: F) -> Pid
    where
        F: FnOnce(Process) -> Fut,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let cell = process.cell().clone();
        let task = self.runtime.spawn(f(process));
        cell.set_task(task.abort_handle());
        cell.pid
    }

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
    pub(super) fn disconnect_state(&self, state: &Arc<ScopeStore>) {
        if self.stores.disconnect(state)
            && !state.local_only
            && let Some(cluster) = self.cluster()
        {
            cluster.on_scope_disconnected(&state.name);
        }
    }
}
