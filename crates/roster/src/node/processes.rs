//! The node as the runtime of its processes: creating and spawning them, ending them
//! (dead first, then their entries removed), and dropping a disconnected scope's holdings.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use super::NodeShared;
use crate::event::ExitReason;
use crate::pid::Pid;
use crate::process::{HeldEntry, LocalProcess, Process};
use crate::scope::Scope;
use crate::store::ScopeStore;

impl NodeShared {
    pub(crate) fn default_scope(self: &Arc<Self>) -> Scope {
        Scope {
            state: self.default_scope.clone(),
            node: self.clone(),
        }
    }

    pub(crate) fn new_process(self: &Arc<Self>) -> Process {
        let serial = self.next_serial.fetch_add(1, Ordering::Relaxed);
        let pid = Pid::new(self.incarnation, serial);
        let process = Process::new(self.clone(), &self.locals.live, pid, self.mailbox_capacity);
        self.locals.cells.pin().insert(pid, process.cell().clone());
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
        self.locals.cells.pin().get(&pid).cloned()
    }

    /// Ends a process: marks it dead, then removes its entries scope by scope (one event
    /// batch per subscriber and scope). Does nothing and returns `false` if it had already
    /// exited.
    pub(crate) fn exit(&self, cell: &LocalProcess, reason: ExitReason) -> bool {
        let Some(mut holdings) = cell.mark_dead(reason.clone()) else {
            return false;
        };
        holdings.sort_by_key(|h| Arc::as_ptr(&h.scope));
        for same_scope in holdings.chunk_by(|a, b| Arc::ptr_eq(&a.scope, &b.scope)) {
            let refs: Vec<&HeldEntry> = same_scope.iter().collect();
            same_scope[0].scope.remove_exited(cell.pid, &refs, &reason);
        }
        // Kept in the table until now so that a writer replacing one of its entries can
        // still read its exit reason.
        self.locals.cells.pin().remove(&cell.pid);
        true
    }

    pub(super) fn disconnect_state(&self, state: &Arc<ScopeStore>) {
        let scopes = self.scopes.pin();
        let removed = scopes.remove_if(&state.name, |_, current| Arc::ptr_eq(current, state));
        if !matches!(removed, Ok(Some(_))) {
            return;
        }
        drop(scopes);
        for pid in state.close() {
            if let Some(cell) = self.process_cell(pid) {
                state.forget_all_holdings(&cell);
            }
        }
        if !state.local_only
            && let Some(cluster) = self.cluster()
        {
            cluster.on_scope_disconnected(&state.name);
        }
    }
}
