//! A process's tokio side as the process table sees it: its mailbox is a bounded tokio
//! channel, its task a tokio task.

use tokio::sync::mpsc;
use tokio::task::AbortHandle;

use crate::envelope::Envelope;
use crate::store::{Mailbox, Refused, Task};

/// The sending side of a process's mailbox channel.
pub(super) struct ChannelMailbox(pub(super) mpsc::Sender<Envelope>);

impl Mailbox for ChannelMailbox {
    fn try_deliver(&self, envelope: Envelope) -> Result<(), Refused> {
        self.0.try_send(envelope).map_err(|e| match e {
            mpsc::error::TrySendError::Full(_) => Refused::Full,
            mpsc::error::TrySendError::Closed(_) => Refused::Closed,
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
