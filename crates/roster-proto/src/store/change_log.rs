//! The hook through which a node logs every change its stores apply (the `roster` shell's
//! verbose log level): the store tells it what changed, after the change, outside the
//! shard locks, and does no IO itself.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

use crate::vocab::event::ExitReason;
use crate::vocab::op::Op;
use crate::vocab::pid::Pid;

/// What kind of change a [`Change`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeKind {
    /// A name registered, or its meta updated.
    Register,
    /// A name removed.
    Unregister,
    /// A group joined, or the member's meta updated.
    Join,
    /// A group left.
    Leave,
}

impl ChangeKind {
    /// The kind of change an op makes.
    pub fn of(op: &Op) -> Self {
        match op {
            Op::Register { .. } => Self::Register,
            Op::Unregister { .. } => Self::Unregister,
            Op::Join { .. } => Self::Join,
            Op::Leave { .. } => Self::Leave,
        }
    }
}

/// One change applied by a scope's store: a local write, or an op of a peer's stream.
#[derive(Debug, Clone, Copy)]
pub struct Change<'a> {
    /// The scope's name.
    pub scope: &'a str,
    /// What changed.
    pub kind: ChangeKind,
    /// The name or group key.
    pub key: &'a str,
    /// The owning or member process.
    pub pid: Pid,
    /// Whether the change is an op received from a peer (`false`: a local write).
    pub remote: bool,
}

/// Told of the changes of a node's stores while its [`ChangeHook`] is enabled. Called
/// after each change, outside every store lock.
pub trait ChangeLog: Send + Sync {
    /// A write or an op from a peer was applied.
    fn change(&self, change: &Change<'_>);

    /// A local process exited (once per process).
    fn exited(&self, pid: Pid, reason: &ExitReason);
}

/// Where a node's stores find its [`ChangeLog`]: disabled by default, so that a write
/// pays one relaxed load to learn there is nothing to tell.
#[derive(Default)]
pub struct ChangeHook {
    enabled: AtomicBool,
    log: OnceLock<Arc<dyn ChangeLog>>,
}

impl ChangeHook {
    /// Installs the log if none is installed yet (the first one stays), and enables or
    /// disables telling it.
    pub fn set(&self, enabled: bool, log: impl FnOnce() -> Arc<dyn ChangeLog>) {
        if enabled {
            self.log.get_or_init(log);
        }
        self.enabled.store(enabled, Ordering::Relaxed);
    }

    /// The log, when enabled.
    #[inline]
    pub fn active(&self) -> Option<&dyn ChangeLog> {
        if !self.enabled.load(Ordering::Relaxed) {
            return None;
        }
        self.log.get().map(|log| &**log)
    }
}

/// The changes a batch of ops from a peer makes, noted before it is applied (only while
/// the hook is enabled) and told after its locks are released.
pub(super) struct NotedOps<'h> {
    log: &'h dyn ChangeLog,
    ops: Vec<(ChangeKind, crate::vocab::key::Key, Pid)>,
}

impl<'h> NotedOps<'h> {
    /// Notes `ops` if `hook` is enabled.
    pub(super) fn note(hook: &'h ChangeHook, ops: &[Op]) -> Option<Self> {
        let log = hook.active()?;
        let ops = ops
            .iter()
            .map(|op| (ChangeKind::of(op), op.key().clone(), op.pid()))
            .collect();
        Some(NotedOps { log, ops })
    }

    /// Tells the log of each op, as applied in `scope`.
    pub(super) fn tell(self, scope: &str) {
        for (kind, key, pid) in &self.ops {
            self.log.change(&Change {
                scope,
                kind: *kind,
                key,
                pid: *pid,
                remote: true,
            });
        }
    }
}

impl super::ScopeStore {
    /// Tells `log` of a local write to `key` by `pid`, once its shard lock is released.
    pub(super) fn tell(&self, log: &dyn ChangeLog, kind: ChangeKind, key: &str, pid: Pid) {
        log.change(&Change {
            scope: &self.name,
            kind,
            key,
            pid,
            remote: false,
        });
    }
}
