//! The recorded history: every operation of the workload with its start and end time, node,
//! result and what the agent returned (pid, fencing token), what happened to the nodes, and
//! the fault windows.

use std::sync::{Arc, Mutex, MutexGuard};

/// What an operation did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OpKind {
    /// `POST /api/sessions`.
    CreateSession,
    /// `PUT /api/sessions/{id}/keepalive`.
    Keepalive,
    /// `DELETE /api/sessions/{id}`.
    DeleteSession,
    /// The workload stopped renewing a session (no request): it expires within its TTL.
    Abandon,
    /// `PUT /api/sessions/{id}/names/{key}`.
    Register,
    /// `DELETE /api/sessions/{id}/names/{key}`.
    Unregister,
    /// `PUT /api/sessions/{id}/groups/{key}`.
    Join,
    /// `DELETE /api/sessions/{id}/groups/{key}`.
    Leave,
    /// `POST /api/dispatch`.
    Dispatch,
    /// `GET /api/registry/{key}`: the owner and fencing token one node shows.
    Read,
}

/// How an operation ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// 2xx.
    Ok,
    /// The agent refused: status and error code.
    Refused(u16, String),
    /// No answer (timeout, refused connection): the effect is unknown.
    Unknown(String),
}

/// One operation.
#[derive(Debug, Clone)]
pub struct Op {
    /// Its index in the history.
    pub id: usize,
    /// The workload thread.
    pub worker: usize,
    /// The node it was sent to.
    pub node: usize,
    /// What.
    pub kind: OpKind,
    /// The session, if any.
    pub session: Option<String>,
    /// The session's pid (the process that holds its names).
    pub pid: Option<String>,
    /// The name or group.
    pub key: Option<String>,
    /// Sent at, ms since the epoch.
    pub start_ms: u64,
    /// Answered (or given up) at.
    pub end_ms: u64,
    /// How it ended.
    pub outcome: Outcome,
    /// For a read: the owner's pid the node showed.
    pub owner: Option<String>,
    /// For a read: the fencing token the node showed. The registration's own answer
    /// carries no token (only scope, key and pid), so the workload reads the name back
    /// after each acknowledged registration.
    pub token: Option<u64>,
}

impl Op {
    /// Whether it was acknowledged (2xx).
    pub fn acked(&self) -> bool {
        self.outcome == Outcome::Ok
    }
}

/// Something that happened to a node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeEventKind {
    /// Killed with SIGKILL: its sessions are gone.
    Killed,
    /// Stopped gracefully (SIGTERM): its sessions are gone.
    Terminated,
    /// (Re)started.
    Started,
    /// SIGSTOP.
    Stopped,
    /// SIGCONT.
    Continued,
}

/// A node event.
#[derive(Debug, Clone, Copy)]
pub struct NodeEvent {
    /// The node.
    pub node: usize,
    /// When, ms since the epoch.
    pub at_ms: u64,
    /// What.
    pub kind: NodeEventKind,
}

/// A fault, from its injection to the convergence after its heal.
#[derive(Debug, Clone)]
pub struct FaultWindow {
    /// What was injected.
    pub label: String,
    /// Injected at.
    pub start_ms: u64,
    /// Healed at (`None` while active).
    pub heal_ms: Option<u64>,
    /// All nodes agreed again at (`None` until then, or if they never did).
    pub converged_ms: Option<u64>,
}

impl FaultWindow {
    /// Whether `at` is inside the window (an unfinished window reaches `u64::MAX`).
    pub fn covers(&self, at: u64) -> bool {
        self.start_ms <= at && at <= self.converged_ms.unwrap_or(u64::MAX)
    }
}

/// Everything recorded.
#[derive(Debug, Default)]
pub struct History {
    /// The operations, in the order they ended.
    pub ops: Vec<Op>,
    /// What happened to the nodes.
    pub node_events: Vec<NodeEvent>,
    /// The faults.
    pub windows: Vec<FaultWindow>,
}

/// The history shared by the workload threads and the harness.
#[derive(Debug, Clone, Default)]
pub struct Recorder(Arc<Mutex<History>>);

impl Recorder {
    /// Locks the history.
    pub fn lock(&self) -> MutexGuard<'_, History> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Appends an operation (its id is set here).
    pub fn op(&self, mut op: Op) {
        let mut history = self.lock();
        op.id = history.ops.len();
        history.ops.push(op);
    }

    /// Records a node event now.
    pub fn node_event(&self, node: usize, kind: NodeEventKind) {
        self.lock().node_events.push(NodeEvent {
            node,
            at_ms: crate::time::now_ms(),
            kind,
        });
    }

    /// Opens a fault window now; returns its index.
    pub fn fault_started(&self, label: &str) -> usize {
        let mut history = self.lock();
        history.windows.push(FaultWindow {
            label: label.to_owned(),
            start_ms: crate::time::now_ms(),
            heal_ms: None,
            converged_ms: None,
        });
        history.windows.len() - 1
    }

    /// Marks window `index` healed now.
    pub fn fault_healed(&self, index: usize) {
        if let Some(w) = self.lock().windows.get_mut(index) {
            w.heal_ms = Some(crate::time::now_ms());
        }
    }

    /// Marks window `index` converged at `at_ms`.
    pub fn fault_converged(&self, index: usize, at_ms: u64) {
        if let Some(w) = self.lock().windows.get_mut(index) {
            w.converged_ms = Some(at_ms);
        }
    }
}
