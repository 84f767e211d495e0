//! A process's tokio side as the process table sees it: its mailbox is a bounded tokio
//! channel (bounded by message count) with a count of the bytes it holds (bounded too), its
//! task a tokio task.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::sync::{mpsc, watch};
use tokio::task::AbortHandle;

use crate::envelope::Envelope;
use crate::store::{Mailbox, Refused, Task};

/// The bytes of the messages queued in one mailbox: reserved by the sender before it
/// queues a message, released by the process when it receives it.
pub(super) struct QueuedBytes {
    queued: AtomicUsize,
    max: usize,
}

impl QueuedBytes {
    /// An empty mailbox that holds at most `max` bytes.
    pub(super) fn new(max: usize) -> Self {
        QueuedBytes {
            queued: AtomicUsize::new(0),
            max,
        }
    }

    /// Reserves room for a message of `len` bytes; `false` if it would go over the bound.
    fn reserve(&self, len: usize) -> bool {
        self.queued
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |queued| {
                queued.checked_add(len).filter(|&total| total <= self.max)
            })
            .is_ok()
    }

    /// Releases the bytes of a message taken out of the mailbox (or never queued).
    pub(super) fn release(&self, envelope: &Envelope) {
        self.queued
            .fetch_sub(envelope.payload().len(), Ordering::AcqRel);
    }
}

/// The sending side of a process's mailbox channel, with the mailbox's byte count.
pub(super) struct ChannelMailbox {
    pub(super) sender: mpsc::Sender<Envelope>,
    pub(super) bytes: Arc<QueuedBytes>,
    /// Dropped with the mailbox when the process exits: its receivers' `changed()` then
    /// returns an error, which wakes whoever waits on the process's life (`await_name`).
    pub(super) _alive: watch::Sender<()>,
}

impl Mailbox for ChannelMailbox {
    fn try_deliver(&self, envelope: Envelope) -> Result<(), Refused> {
        if !self.bytes.reserve(envelope.payload().len()) {
            return Err(Refused::Full);
        }
        self.sender.try_send(envelope).map_err(|e| {
            let (refused, envelope) = match e {
                mpsc::error::TrySendError::Full(envelope) => (Refused::Full, envelope),
                mpsc::error::TrySendError::Closed(envelope) => (Refused::Closed, envelope),
            };
            self.bytes.release(&envelope);
            refused
        })
    }
}

/// The tokio task running a spawned process.
pub(super) struct TokioTask(pub(super) AbortHandle);

impl Task for TokioTask {
    fn abort(&self) {
        self.0.abort();
    }
}
