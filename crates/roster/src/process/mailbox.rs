//! A process's runtime side as the process table sees it: its mailbox, a queue bounded by
//! message count and by queued bytes that one handle receives from, and its task, a tokio
//! task.
//!
//! The mailbox is a mutex around a `VecDeque` and the receiver's waker rather than a tokio
//! channel: a process that never gets a message allocates nothing for its queue, and its
//! exit is one flag set under that mutex (no channel to close, no block list to free, no
//! sender to swap out of the process table). Messages to one process are serialized by
//! the mutex; a process is one receiver, so this is not where contention lies.

use std::collections::VecDeque;
use std::pin::pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};

use tokio::sync::Notify;
use tokio::task::AbortHandle;

use crate::envelope::Envelope;
use crate::store::{Mailbox, Refused, Task};

/// What the mailbox's mutex guards.
struct Queue {
    messages: VecDeque<Envelope>,
    /// The payload bytes of `messages`.
    bytes: usize,
    /// Set when the process exits: nothing more is queued, and once `messages` is empty
    /// the receiver is told the process exited.
    closed: bool,
    /// The receiver waiting for a message, if it is waiting.
    receiver: Option<Waker>,
}

impl Queue {
    /// Takes the oldest message.
    fn pop(&mut self) -> Option<Envelope> {
        let envelope = self.messages.pop_front()?;
        self.bytes -= envelope.payload().len();
        Some(envelope)
    }
}

/// A process's mailbox, shared by its handle (the receiver) and the process table (every
/// sender goes through it).
pub(super) struct ProcessMailbox {
    queue: Mutex<Queue>,
    /// At most this many messages are queued...
    capacity: usize,
    /// ... and at most this many payload bytes.
    max_bytes: usize,
    /// Notified when the process exits (for [`ProcessMailbox::closed`]).
    exit: Notify,
}

/// Why [`ProcessMailbox::try_recv`] took nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Nothing {
    /// No message is queued.
    Empty,
    /// No message is queued and the process has exited.
    Closed,
}

impl ProcessMailbox {
    /// An empty mailbox of at most `capacity` messages and `max_bytes` payload bytes.
    pub(super) fn new(capacity: usize, max_bytes: usize) -> Self {
        Self {
            queue: Mutex::new(Queue {
                messages: VecDeque::new(),
                bytes: 0,
                closed: false,
                receiver: None,
            }),
            capacity,
            max_bytes,
            exit: Notify::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Queue> {
        // Every critical section leaves the queue whole (a push, a pop, a flag), so
        // poisoning is ignored.
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Takes the next message; `Ready(None)` once the process has exited and everything
    /// queued before was taken. Registers `cx` for the next message otherwise.
    pub(super) fn poll_recv(&self, cx: &mut Context<'_>) -> Poll<Option<Envelope>> {
        let mut queue = self.lock();
        if let Some(envelope) = queue.pop() {
            return Poll::Ready(Some(envelope));
        }
        if queue.closed {
            return Poll::Ready(None);
        }
        match &mut queue.receiver {
            Some(waker) if waker.will_wake(cx.waker()) => {}
            slot => *slot = Some(cx.waker().clone()),
        }
        Poll::Pending
    }

    /// Takes the next message if one is queued; once the process has exited and nothing
    /// is queued, says so.
    pub(super) fn try_recv(&self) -> Result<Envelope, Nothing> {
        let mut queue = self.lock();
        match queue.pop() {
            Some(envelope) => Ok(envelope),
            None if queue.closed => Err(Nothing::Closed),
            None => Err(Nothing::Empty),
        }
    }

    /// Drops every queued message: the handle is gone, nobody will receive them (the
    /// process table may keep the mailbox a while longer).
    pub(super) fn discard(&self) {
        let mut queue = self.lock();
        let messages = std::mem::take(&mut queue.messages);
        queue.bytes = 0;
        drop(queue);
        drop(messages);
    }

    /// Whether the process has exited (the mailbox takes nothing more).
    fn is_closed(&self) -> bool {
        self.lock().closed
    }

    /// Resolves once the process has exited, at once if it already has.
    pub(super) async fn closed(&self) {
        loop {
            let mut notified = pin!(self.exit.notified());
            // Registered before the flag is read: a close after the read notifies us.
            notified.as_mut().enable();
            if self.is_closed() {
                return;
            }
            notified.await;
        }
    }
}

/// The process table's side of a mailbox.
pub(super) struct MailboxSender(pub(super) Arc<ProcessMailbox>);

impl Mailbox for MailboxSender {
    fn try_deliver(&self, envelope: Envelope) -> Result<(), Refused> {
        let mailbox = &self.0;
        let mut queue = mailbox.lock();
        if queue.closed {
            return Err(Refused::Closed);
        }
        let len = envelope.payload().len();
        if queue.messages.len() >= mailbox.capacity
            || queue
                .bytes
                .checked_add(len)
                .is_none_or(|b| b > mailbox.max_bytes)
        {
            return Err(Refused::Full);
        }
        queue.messages.push_back(envelope);
        queue.bytes += len;
        let receiver = queue.receiver.take();
        drop(queue);
        if let Some(waker) = receiver {
            waker.wake();
        }
        Ok(())
    }

    fn close(&self) {
        let mut queue = self.0.lock();
        queue.closed = true;
        let receiver = queue.receiver.take();
        drop(queue);
        if let Some(waker) = receiver {
            waker.wake();
        }
        self.0.exit.notify_waiters();
    }
}

/// The tokio task running a spawned process.
pub(super) struct TokioTask(pub(super) AbortHandle);

impl Task for TokioTask {
    fn abort(&self) {
        self.0.abort();
    }
}
