//! The node's table of local processes: each one's node-side state and the entries it
//! holds.

use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

use smallvec::SmallVec;

use super::{ScopeStore, StoredKey};
use crate::vocab::envelope::Envelope;
use crate::vocab::error::SendError;
use crate::vocab::event::ExitReason;
use crate::vocab::key::{Key, KeyTag};
use crate::vocab::live::LiveSet;
use crate::vocab::pid::{Incarnation, Pid};

/// Why a mailbox did not take a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// It holds as many messages as it may.
    Full,
    /// Its receiver is gone.
    Closed,
}

/// The sending side of a process's mailbox, implemented by the runtime (a tokio channel
/// in the `roster` shell): the process table never names a runtime.
pub trait Mailbox: Send + Sync {
    /// Queues `envelope` without waiting.
    fn try_deliver(&self, envelope: Envelope) -> Result<(), Refused>;

    /// The process exited (called once): refuse every later message with
    /// [`Refused::Closed`] and wake a receiver waiting for one, which then takes what was
    /// queued before and learns the process exited. Does nothing by default.
    fn close(&self) {}
}

/// A task running a process, which `kill` aborts (implemented by the runtime).
pub trait Task: Send + Sync {
    /// Stops the task at its next await point.
    fn abort(&self);
}

/// Cells the process table removes before its collector frees them as a batch (seize's
/// default is 32). Freeing a batch costs a barrier: with seize's `fast-barrier` feature (off
/// in this workspace) a `membarrier` system call, which interrupts every CPU running the
/// node's threads; with 32, the table's batches were then about a tenth of a process
/// death's cost. Without it, a fence. A retired entry keeps its cell (a few hundred bytes; the `roster`
/// handle empties the mailbox when it is dropped) until its batch is freed, so 256 holds
/// back at most ~100 KiB per thread for one call per 256 exits. The maps of names and
/// groups keep the default: their retired entries hold metas, and larger batches there
/// showed in `tests/memory_churn.rs` (2 KiB metas).
const CELLS_RETIRE_BATCH: usize = 256;

/// The table of a node's local processes: which are alive (the live set) and each one's
/// [`LocalProcess`] until it has finished exiting.
pub struct ProcessTable {
    /// The node's incarnation (the first half of every local pid).
    pub incarnation: u64,
    /// Which local processes are alive, by serial.
    pub live: Arc<LiveSet>,
    /// Every local process that has not finished exiting.
    pub cells: papaya::HashMap<Pid, Arc<LocalProcess>, foldhash::fast::RandomState>,
    /// The node's change log (its verbose log level), which every scope reaches through
    /// this table: told of each write, op from a peer and process exit while enabled.
    pub changes: super::ChangeHook,
}

impl ProcessTable {
    /// An empty table for the node of incarnation `incarnation`.
    pub fn new(incarnation: u64) -> Self {
        Self {
            incarnation,
            live: Arc::new(LiveSet::default()),
            cells: papaya::HashMap::builder()
                .hasher(foldhash::fast::RandomState::default())
                .collector(seize::Collector::new().batch_size(CELLS_RETIRE_BATCH))
                .build(),
            changes: super::ChangeHook::default(),
        }
    }

    /// Whether `pid` is alive as far as this node knows: a local process that has not
    /// exited, or any remote process (remote entries are removed when they go).
    #[inline]
    pub fn is_live(&self, pid: Pid) -> bool {
        pid.incarnation() != Incarnation::new(self.incarnation) || self.live.contains(pid.serial())
    }

    /// Why a local process exited (`Normal` if it is unknown by now).
    pub fn exit_reason(&self, pid: Pid) -> ExitReason {
        self.cells
            .pin()
            .get(&pid)
            .and_then(|cell| cell.exit_reason().cloned())
            .unwrap_or(ExitReason::Normal)
    }
}

/// An entry a local process holds (a name or a membership in a scope): the reverse index
/// by owner that makes death cleanup cost proportional to the process's own entries.
///
/// Three words: the scope, and the key as its table stores it, whose tag says whether the
/// entry is a name or a membership.
pub struct HeldEntry {
    /// The store of the scope the entry is in.
    pub scope: Arc<ScopeStore>,
    /// The entry's key, as its table stores it.
    pub key: StoredKey,
}

impl HeldEntry {
    /// A name or a membership.
    pub fn kind(&self) -> HeldKind {
        self.key.tag()
    }
}

/// The entries a local process holds. Most processes hold one, kept in place: a process's
/// first name or membership costs its record no allocation of its own.
pub type Holdings = SmallVec<[HeldEntry; 1]>;

/// Whether a held entry is a unique name or a group membership.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum HeldKind {
    /// A unique name.
    Name,
    /// A group membership.
    Member,
}

/// The tag of the keys of the table of names, or of groups.
impl KeyTag for HeldKind {
    fn to_byte(self) -> u8 {
        self as u8
    }

    fn from_byte(byte: u8) -> Self {
        if byte == Self::Name as u8 {
            Self::Name
        } else {
            Self::Member
        }
    }
}

/// The node-side state of a local process: what the node keeps in its process table.
pub struct LocalProcess {
    /// The process's pid.
    pub pid: Pid,
    /// The node's set of live processes (this process is alive while its serial is in it).
    live: Arc<LiveSet>,
    exit: OnceLock<ExitReason>,
    holdings: Mutex<Holdings>,
    /// Names lost to conflicts while the node does not kill losers: `(name, winner)`.
    lost: Mutex<Vec<(Key, Pid)>>,
    /// The mailbox's sending side, closed when the process exits: a handle waiting in
    /// `recv` wakes, drains what was queued, then gets `Exited`.
    mailbox: Box<dyn Mailbox>,
    task: OnceLock<Box<dyn Task>>,
}

impl LocalProcess {
    /// The cell of a new live process (already in `live`) whose mailbox `mailbox` feeds.
    pub fn new(pid: Pid, live: Arc<LiveSet>, mailbox: Box<dyn Mailbox>) -> Self {
        Self {
            pid,
            live,
            exit: OnceLock::new(),
            holdings: Mutex::new(Holdings::new()),
            lost: Mutex::new(Vec::new()),
            mailbox,
            task: OnceLock::new(),
        }
    }

    /// Locks the process's holdings. Lock order: a shard lock (if any) first, then this.
    pub fn holdings(&self) -> MutexGuard<'_, Holdings> {
        // A panic while holding this lock cannot leave the list inconsistent (every
        // critical section is a single push, swap_remove or take), so poisoning is ignored.
        self.holdings.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Marks the process dead with `reason` and takes its holdings for cleanup.
    ///
    /// Returns `None` if it had already exited. After this returns, readers skip its
    /// entries and its names are free for others, before the entries are removed; the
    /// caller removes them, then tells the live set (`LiveSet::exit_finished`).
    pub fn mark_dead(&self, reason: ExitReason) -> Option<Holdings> {
        let mut holdings = self.holdings();
        if !self.is_alive() {
            return None;
        }
        let _ = self.exit.set(reason);
        self.live.exit_begins();
        self.live.remove(self.pid.serial());
        self.mailbox.close();
        Some(std::mem::take(&mut *holdings))
    }

    /// Whether the process is alive. Lock-free.
    #[inline]
    pub fn is_alive(&self) -> bool {
        self.live.contains(self.pid.serial())
    }

    /// The exit reason, once the process has exited.
    pub fn exit_reason(&self) -> Option<&ExitReason> {
        self.exit.get()
    }

    /// Records a name this (surviving) process lost in a conflict.
    pub fn lost_name(&self, key: Key, winner: Pid) {
        self.lost
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push((key, winner));
    }

    /// Takes the names lost in conflicts since the last call.
    pub fn take_lost_names(&self) -> Vec<(Key, Pid)> {
        std::mem::take(&mut *self.lost.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// Queues a message without waiting.
    pub fn deliver(&self, envelope: Envelope) -> Result<(), SendError> {
        if !self.is_alive() {
            return Err(SendError::NoProcess(self.pid));
        }
        self.mailbox
            .try_deliver(envelope)
            .map_err(|refusal| match refusal {
                Refused::Full => SendError::MailboxFull(self.pid),
                Refused::Closed => SendError::NoProcess(self.pid),
            })
    }

    /// Remembers the task running this process so that `kill` can abort it; aborts it at
    /// once if the process was killed before its task was recorded.
    ///
    /// Runs under the holdings lock, which `mark_dead` also takes: either this sees the
    /// process dead, or the killer (which aborts after marking) sees the task.
    pub fn set_task(&self, handle: Box<dyn Task>) {
        let _holdings = self.holdings();
        if self.is_alive() {
            let _ = self.task.set(handle);
        } else {
            handle.abort();
        }
    }

    /// Aborts the task running this process, if it was spawned.
    pub fn abort_task(&self) {
        if let Some(task) = self.task.get() {
            task.abort();
        }
    }
}
