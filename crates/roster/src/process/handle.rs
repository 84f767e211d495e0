//! The RAII handle of a process.

use std::fmt;
use std::future::poll_fn;
use std::sync::Arc;

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::mailbox::Nothing::{Closed, Empty};
use super::mailbox::{MailboxSender, ProcessMailbox, TokioTask};
use crate::envelope::Envelope;
use crate::error::{RecvError, SendError, TryRecvError};
use crate::event::ExitReason;
use crate::key::Key;
use crate::pid::Pid;
use crate::runtime::NodeShared;
use crate::store::LocalProcess;

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
/// [`crate::Node::kill`] ends it at once with [`ExitReason::Killed`] (and aborts its task when it
/// was started with [`crate::Node::spawn`]). Readers stop seeing a process's entries the moment it
/// is marked dead, before they are removed, so its names are free for a new owner at once.
///
/// # Examples
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let node = roster::Node::builder().start().unwrap();
/// let proc = node.new_process();
/// proc.register("session/1", &"eu").unwrap();
/// assert_eq!(node.default_scope().lookup("session/1").unwrap().pid, proc.pid());
/// drop(proc);
/// assert!(node.default_scope().lookup("session/1").is_none());
/// # }
/// ```
pub struct Process {
    cell: Arc<LocalProcess>,
    /// The process's mailbox, which this handle alone receives from (the process table
    /// delivers to it, and closes it when the process exits).
    mailbox: Arc<ProcessMailbox>,
    node: Arc<NodeShared>,
}

impl Process {
    /// A new live local process of `node`, in its process table.
    pub(crate) fn start(node: &Arc<NodeShared>) -> Self {
        let mailbox = Arc::new(ProcessMailbox::new(
            node.mailbox_capacity,
            node.mailbox_bytes,
        ));
        let cell = node
            .stores
            .new_process(Box::new(MailboxSender(mailbox.clone())));
        Self {
            cell,
            mailbox,
            node: node.clone(),
        }
    }

    /// Runs the process in a task that `kill` can abort; returns its pid.
    pub(crate) fn spawn<F, Fut>(self, f: F) -> Pid
    where
        F: FnOnce(Self) -> Fut,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let cell = self.cell.clone();
        let runtime = self.node.runtime.clone();
        let task = runtime.spawn(f(self));
        cell.set_task(Box::new(TokioTask(task.abort_handle())));
        cell.pid
    }

    /// The process's entry in the node's process table: what it holds, its liveness,
    /// its mailbox.
    pub(crate) fn table_entry(&self) -> &Arc<LocalProcess> {
        &self.cell
    }

    pub(crate) fn node_shared(&self) -> &Arc<NodeShared> {
        &self.node
    }

    /// Resolves (with an error) once the process has exited, at once if it already has.
    pub(crate) async fn exited(&self) {
        self.mailbox.closed().await;
    }

    /// This process's pid.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let node = roster::Node::builder().start().unwrap();
    /// assert_eq!(node.new_process().pid().incarnation(), node.incarnation());
    /// # }
    /// ```
    pub fn pid(&self) -> Pid {
        self.cell.pid
    }

    /// Whether the process is alive (it is not once killed).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let node = roster::Node::builder().start().unwrap();
    /// let proc = node.new_process();
    /// assert!(proc.is_alive());
    /// node.kill(proc.pid());
    /// assert!(!proc.is_alive());
    /// # }
    /// ```
    pub fn is_alive(&self) -> bool {
        self.cell.is_alive()
    }

    /// Why the process exited, once it has (for example after [`crate::Node::kill`]).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// use roster::ExitReason;
    /// let node = roster::Node::builder().start().unwrap();
    /// let proc = node.new_process();
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
    /// assert!(node.new_process().lost_names().is_empty());
    /// # }
    /// ```
    pub fn lost_names(&self) -> Vec<(Key, Pid)> {
        self.cell.take_lost_names()
    }

    /// Sends a message to a process, with this process as the sender; see [`crate::Node::send`].
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let node = roster::Node::builder().start().unwrap();
    /// let (a, mut b) = (node.new_process(), node.new_process());
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
    /// let mut p = node.new_process();
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
    /// let mut p = node.new_process();
    /// node.send(p.pid(), &1u8).unwrap();
    /// assert_eq!(p.recv_envelope().await.unwrap().from(), None);
    /// # }
    /// ```
    pub async fn recv_envelope(&mut self) -> Result<Envelope, RecvError> {
        // The mailbox closes when the process exits, which wakes a waiting handle: it
        // receives what was queued before, then `Exited`.
        poll_fn(|cx| self.mailbox.poll_recv(cx))
            .await
            .ok_or(RecvError::Exited(self.pid()))
    }

    /// Takes the next message if one is queued, without waiting.
    ///
    /// # Errors
    ///
    /// [`TryRecvError::Empty`] if no message is queued, [`TryRecvError::Exited`] once the
    /// process has exited and its queued messages were taken, [`TryRecvError::Decode`] if
    /// the message is not a `T` (it is consumed).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// use roster::TryRecvError;
    /// let node = roster::Node::builder().start().unwrap();
    /// let mut p = node.new_process();
    /// assert_eq!(p.try_recv::<u8>(), Err(TryRecvError::Empty));
    /// node.send(p.pid(), &5u8).unwrap();
    /// assert_eq!(p.try_recv::<u8>(), Ok(5));
    /// assert!(node.kill(p.pid()));
    /// assert_eq!(p.try_recv::<u8>(), Err(TryRecvError::Exited(p.pid())));
    /// # }
    /// ```
    pub fn try_recv<T: DeserializeOwned>(&mut self) -> Result<T, TryRecvError> {
        match self.mailbox.try_recv() {
            Ok(envelope) => Ok(envelope.decode()?),
            Err(Closed) => Err(TryRecvError::Exited(self.pid())),
            Err(Empty) => Err(TryRecvError::Empty),
        }
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
        self.node.stores.exit(&self.cell, reason);
        self.node.flush_local();
        self.mailbox.discard();
    }
}
