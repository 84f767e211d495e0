//! Processes: the RAII handles that own registrations and memberships.

use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

use arc_swap::ArcSwapOption;
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::sync::mpsc;
use tokio::task::AbortHandle;

use crate::entry::Registration;
use crate::error::{RecvError, RegistryError, SendError};
use crate::event::ExitReason;
use crate::key::Key;
use crate::live::LiveSet;
use crate::meta::Meta;
use crate::node::{Node, NodeShared};
use crate::pid::Pid;
use crate::store::ScopeState;

/// Where a process holds an entry: the reverse index by owner that makes death cleanup
/// cost proportional to the process's own entries.
pub(crate) struct Holding {
    pub(crate) scope: Arc<ScopeState>,
    pub(crate) key: Key,
    pub(crate) kind: HoldingKind,
}

/// Whether a holding is a unique name or a group membership.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum HoldingKind {
    Name,
    Member,
}

/// A message in a mailbox: the sender (if any) and the MessagePack payload.
///
/// One encoding is shared by every local receiver of a dispatch.
#[derive(Debug, Clone)]
pub struct Envelope {
    from: Option<Pid>,
    payload: Meta,
}

impl Envelope {
    pub(crate) fn new(from: Option<Pid>, payload: Meta) -> Self {
        Envelope { from, payload }
    }

    /// The sending process, if the message was sent by one.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let node = roster::Node::builder().start().unwrap();
    /// let (a, mut b) = (node.process(), node.process());
    /// a.send(b.pid(), &"hi").unwrap();
    /// assert_eq!(b.recv_envelope().await.unwrap().from(), Some(a.pid()));
    /// # }
    /// ```
    pub fn from(&self) -> Option<Pid> {
        self.from
    }

    /// Decodes the payload.
    ///
    /// # Errors
    ///
    /// [`RecvError::Decode`] when the payload is not a `T`.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let node = roster::Node::builder().start().unwrap();
    /// let mut p = node.process();
    /// node.send(p.pid(), &7u32).unwrap();
    /// assert_eq!(p.recv_envelope().await.unwrap().decode::<u32>().unwrap(), 7);
    /// # }
    /// ```
    pub fn decode<T: DeserializeOwned>(&self) -> Result<T, RecvError> {
        self.payload.decode().map_err(|e| RecvError::Decode {
            from: self.from,
            reason: e.to_string(),
        })
    }

    /// The raw MessagePack payload.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let node = roster::Node::builder().start().unwrap();
    /// let mut p = node.process();
    /// node.send(p.pid(), &()).unwrap();
    /// assert_eq!(p.recv_envelope().await.unwrap().payload(), &[0xc0]);
    /// # }
    /// ```
    pub fn payload(&self) -> &[u8] {
        self.payload.as_bytes()
    }
}

/// The node-side state of a local process: what the node keeps in its process table.
pub(crate) struct ProcessCell {
    pub(crate) pid: Pid,
    /// The node's set of live processes (this process is alive while its serial is in it).
    live: Arc<LiveSet>,
    exit: OnceLock<ExitReason>,
    holdings: Mutex<Vec<Holding>>,
    /// Names lost to conflicts while the node does not kill losers: `(name, winner)`.
    lost: Mutex<Vec<(Key, Pid)>>,
    /// The mailbox's only sender. Dropped when the process exits so that the channel
    /// closes: a handle waiting in `recv` wakes, drains what was queued, then gets `Exited`.
    mailbox: ArcSwapOption<mpsc::Sender<Envelope>>,
    task: OnceLock<AbortHandle>,
}

impl ProcessCell {
    /// Locks the process's holdings. Lock order: a shard lock (if any) first, then this.
    pub(crate) fn holdings(&self) -> MutexGuard<'_, Vec<Holding>> {
        // A panic while holding this lock cannot leave the Vec inconsistent (every
        // critical section is a single push, swap_remove or take), so poisoning is ignored.
        self.holdings.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Marks the process dead with `reason` and takes its holdings for cleanup.
    ///
    /// Returns `None` if it had already exited. After this returns, readers skip its
    /// entries and its names are free for others, before the entries are removed.
    pub(crate) fn mark_dead(&self, reason: ExitReason) -> Option<Vec<Holding>> {
        let mut holdings = self.holdings();
        if !self.is_alive() {
            return None;
        }
        let _ = self.exit.set(reason);
        self.live.remove(self.pid.serial());
        self.mailbox.store(None);
        Some(std::mem::take(&mut *holdings))
    }

    /// Whether the process is alive. Lock-free.
    #[inline]
    pub(crate) fn is_alive(&self) -> bool {
        self.live.contains(self.pid.serial())
    }

    /// The exit reason, once the process has exited.
    pub(crate) fn exit_reason(&self) -> Option<&ExitReason> {
        self.exit.get()
    }

    /// Records a name this (surviving) process lost in a conflict.
    pub(crate) fn lost_name(&self, key: Key, winner: Pid) {
        self.lost
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push((key, winner));
    }

    /// Queues a message without waiting.
    pub(crate) fn deliver(&self, envelope: Envelope) -> Result<(), SendError> {
        if !self.is_alive() {
            return Err(SendError::NoProcess(self.pid));
        }
        let mailbox = self.mailbox.load();
        let mailbox = mailbox.as_ref().ok_or(SendError::NoProcess(self.pid))?;
        mailbox.try_send(envelope).map_err(|e| match e {
            mpsc::error::TrySendError::Full(_) => SendError::MailboxFull(self.pid),
            mpsc::error::TrySendError::Closed(_) => SendError::NoProcess(self.pid),
        })
    }

    /// Remembers the task running this process so that `kill` can abort it; aborts it at
    /// once if the process was killed before its task was recorded.
    ///
    /// Runs under the holdings lock, which `mark_dead` also takes: either this sees the
    /// process dead, or the killer (which aborts after marking) sees the task.
    pub(crate) fn set_task(&self, handle: AbortHandle) {
        let _holdings = self.holdings();
        if self.is_alive() {
            let _ = self.task.set(handle);
        } else {
            handle.abort();
        }
    }

    /// Aborts the task running this process, if it was spawned.
    pub(crate) fn abort_task(&self) {
        if let Some(task) = self.task.get() {
            task.abort();
        }
    }
}

/// A process: the unit that owns names and group memberships.
///
/// Rust has no BEAM processes, so a process is this RAII handle. It has a cluster-wide
/// [`Pid`], a mailbox, and a life that ends when the handle is dropped or the process
/// is killed. Any actor framework's actor, or a plain task, can own one.
///
/// # Exit
///
/// Dropping the handle removes every name and membership it holds, in every scope, and
/// emits the `Unregistered`/`Left` events with reason [`ExitReason::Normal`], or
/// [`ExitReason::Panicked`] when it is dropped while its thread unwinds from a panic.
/// [`Node::kill`] ends it at once with [`ExitReason::Killed`] (and aborts its task when it
/// was started with [`Node::spawn`]). Readers stop seeing a process's entries the moment it
/// is marked dead, before they are removed, so its names are free for a new owner at once.
///
/// # Examples
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let node = roster::Node::builder().start().unwrap();
/// let proc = node.process();
/// proc.register("session/1", &"eu").unwrap();
/// assert_eq!(node.lookup("session/1").unwrap().pid, proc.pid());
/// drop(proc);
/// assert!(node.lookup("session/1").is_none());
/// # }
/// ```
pub struct Process {
    cell: Arc<ProcessCell>,
    inbox: mpsc::Receiver<Envelope>,
    node: Arc<NodeShared>,
}

impl Process {
    /// A new live process; the caller has not yet published it anywhere.
    pub(crate) fn new(
        node: Arc<NodeShared>,
        live: &Arc<LiveSet>,
        pid: Pid,
        mailbox_capacity: usize,
    ) -> Self {
        let (tx, rx) = mpsc::channel(mailbox_capacity);
        live.insert(pid.serial());
        let cell = Arc::new(ProcessCell {
            pid,
            live: live.clone(),
            exit: OnceLock::new(),
            holdings: Mutex::new(Vec::new()),
            lost: Mutex::new(Vec::new()),
            mailbox: ArcSwapOption::from_pointee(tx),
            task: OnceLock::new(),
        });
        Process {
            cell,
            inbox: rx,
            node,
        }
    }

    pub(crate) fn cell(&self) -> &Arc<ProcessCell> {
        &self.cell
    }

    pub(crate) fn node_shared(&self) -> &Arc<NodeShared> {
        &self.node
    }

    /// This process's pid.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let node = roster::Node::builder().start().unwrap();
    /// assert_eq!(node.process().pid().incarnation(), node.incarnation());
    /// # }
    /// ```
    pub fn pid(&self) -> Pid {
        self.cell.pid
    }

    /// The node this process lives on.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let node = roster::Node::builder().name("api-1").start().unwrap();
    /// assert_eq!(node.process().node().name(), "api-1");
    /// # }
    /// ```
    pub fn node(&self) -> Node {
        Node::from_shared(self.node.clone())
    }

    /// Whether the process is alive (it is not once killed).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let node = roster::Node::builder().start().unwrap();
    /// let proc = node.process();
    /// assert!(proc.is_alive());
    /// node.kill(proc.pid());
    /// assert!(!proc.is_alive());
    /// # }
    /// ```
    pub fn is_alive(&self) -> bool {
        self.cell.is_alive()
    }

    /// Why the process exited, once it has (for example after [`Node::kill`]).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// use roster::ExitReason;
    /// let node = roster::Node::builder().start().unwrap();
    /// let proc = node.process();
    /// node.kill(proc.pid());
    /// assert_eq!(proc.exit_reason(), Some(ExitReason::Killed));
    /// # }
    /// ```
    pub fn exit_reason(&self) -> Option<ExitReason> {
        self.cell.exit_reason().cloned()
    }

    /// Names this process lost to processes of other nodes in conflicts since the last
    /// call, with the winner of each, when the node keeps conflict losers alive (see
    /// [`crate::NodeBuilder::kill_conflict_losers`]). Otherwise a loser is ended with
    /// [`ExitReason::Conflict`] and this stays empty.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let node = roster::Node::builder().kill_conflict_losers(false).start().unwrap();
    /// assert!(node.process().lost_names().is_empty());
    /// # }
    /// ```
    pub fn lost_names(&self) -> Vec<(Key, Pid)> {
        std::mem::take(&mut *self.cell.lost.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// Registers a unique name in the default scope; see [`crate::Scope::register`].
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let node = roster::Node::builder().start().unwrap();
    /// let proc = node.process();
    /// proc.register("leader/shard-7", &()).unwrap();
    /// # }
    /// ```
    pub fn register<M: Serialize + ?Sized>(
        &self,
        key: &str,
        meta: &M,
    ) -> Result<Registration, RegistryError> {
        self.node.default_scope().register(self, key, meta)
    }

    /// Unregisters a name of this process in the default scope; see [`crate::Scope::unregister`].
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let node = roster::Node::builder().start().unwrap();
    /// let proc = node.process();
    /// proc.register("k", &()).unwrap();
    /// proc.unregister("k").unwrap();
    /// # }
    /// ```
    pub fn unregister(&self, key: &str) -> Result<(), RegistryError> {
        self.node.default_scope().unregister(self, key)
    }

    /// Joins a group in the default scope; see [`crate::Scope::join`].
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let node = roster::Node::builder().start().unwrap();
    /// node.process().join("room/42", &()).unwrap();
    /// # }
    /// ```
    pub fn join<M: Serialize + ?Sized>(&self, key: &str, meta: &M) -> Result<(), RegistryError> {
        self.node.default_scope().join(self, key, meta)
    }

    /// Leaves a group in the default scope; see [`crate::Scope::leave`].
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let node = roster::Node::builder().start().unwrap();
    /// let proc = node.process();
    /// proc.join("room/42", &()).unwrap();
    /// proc.leave("room/42").unwrap();
    /// # }
    /// ```
    pub fn leave(&self, key: &str) -> Result<(), RegistryError> {
        self.node.default_scope().leave(self, key)
    }

    /// Sends a message to a process, with this process as the sender; see [`Node::send`].
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let node = roster::Node::builder().start().unwrap();
    /// let (a, mut b) = (node.process(), node.process());
    /// a.send(b.pid(), &"ping").unwrap();
    /// assert_eq!(b.recv::<String>().await.unwrap(), "ping");
    /// # }
    /// ```
    pub fn send<T: Serialize + ?Sized>(&self, to: Pid, message: &T) -> Result<(), SendError> {
        self.node.send_from(Some(self.pid()), to, message)
    }

    /// Waits for the next message and decodes it as `T`.
    ///
    /// # Errors
    ///
    /// [`RecvError::Decode`] if the next message is not a `T` (it is consumed);
    /// [`RecvError::Exited`] once the process has been killed and its mailbox drained.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: if the future is dropped before it completes, no message is lost.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let node = roster::Node::builder().start().unwrap();
    /// let mut p = node.process();
    /// node.send(p.pid(), &(1u8, "x")).unwrap();
    /// assert_eq!(p.recv::<(u8, String)>().await.unwrap(), (1, "x".to_string()));
    /// # }
    /// ```
    pub async fn recv<T: DeserializeOwned>(&mut self) -> Result<T, RecvError> {
        self.recv_envelope().await?.decode()
    }

    /// Waits for the next message without decoding it.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe, like [`Process::recv`].
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let node = roster::Node::builder().start().unwrap();
    /// let mut p = node.process();
    /// node.send(p.pid(), &1u8).unwrap();
    /// assert_eq!(p.recv_envelope().await.unwrap().from(), None);
    /// # }
    /// ```
    pub async fn recv_envelope(&mut self) -> Result<Envelope, RecvError> {
        // The channel closes when the process exits (its sender is dropped), so a kill wakes
        // a waiting handle: it receives what was queued before, then `Exited`.
        self.inbox.recv().await.ok_or(RecvError::Exited(self.pid()))
    }

    /// Takes the next message if one is queued, without waiting.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let node = roster::Node::builder().start().unwrap();
    /// let mut p = node.process();
    /// assert!(p.try_recv::<u8>().is_none());
    /// node.send(p.pid(), &5u8).unwrap();
    /// assert_eq!(p.try_recv::<u8>().unwrap().unwrap(), 5);
    /// # }
    /// ```
    pub fn try_recv<T: DeserializeOwned>(&mut self) -> Option<Result<T, RecvError>> {
        self.inbox.try_recv().ok().map(|envelope| envelope.decode())
    }
}

impl fmt::Debug for Process {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Process")
            .field("pid", &self.cell.pid)
            .field("alive", &self.is_alive())
            .finish()
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let reason = if std::thread::panicking() {
            ExitReason::Panicked
        } else {
            ExitReason::Normal
        };
        self.node.exit(&self.cell, reason);
        self.node.flush_local();
    }
}
