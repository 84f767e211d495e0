//! Dispatch: one message to the owner and members of a key, on every node.

use serde::Serialize;

use super::Scope;
use crate::envelope::Envelope;
use crate::error::SendError;
use crate::key::is_prefix;
use crate::pid::Incarnation;

/// Where a dispatch went, as far as this node can tell at once.
///
/// Local recipients are counted one by one. Remote recipients are not counted at all: a
/// dispatch sends one frame per other node that hosts recipients (as this node sees the key
/// when dispatching), and that node delivers it to its own owner and members of the key
/// when the frame arrives, without reporting back. So `remote_nodes` says how many nodes
/// the frame was handed to, not how many processes got the message, nor whether the frame
/// arrived (a link that breaks before sending it loses it, as a message to a remote process
/// would be lost).
///
/// Every other node hosting recipients is counted in exactly one of `remote_nodes`,
/// `remote_too_large` and `remote_unreachable`.
///
/// # Examples
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let node = roster::Node::builder().start().unwrap();
/// let p = node.new_process();
/// p.join("room/1", &()).unwrap();
/// let sent = node.default_scope().dispatch("room/1", &"hi").unwrap();
/// assert_eq!((sent.local, sent.remote_nodes), (1, 0));
/// # }
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Dispatched {
    /// Local processes the message was queued for.
    pub local: usize,
    /// Local recipients whose mailbox was full (by count or by bytes): they did not get the
    /// message.
    pub mailbox_full: usize,
    /// Other nodes the dispatch frame was handed to: queued on this node's link to each,
    /// one frame per node whatever its number of recipients. Each delivers the message to
    /// its own recipients, which are not counted here.
    pub remote_nodes: usize,
    /// Other nodes with recipients that did not get the message because it is larger than
    /// their `max_message_bytes`.
    pub remote_too_large: usize,
    /// Other nodes with recipients that this node has no live link to (the link is down or
    /// not established yet): nothing was sent to them.
    pub remote_unreachable: usize,
}

impl Scope {
    /// Sends `message` to the owner of name `key` and to every member of group `key` (each
    /// process once), encoding it once for all of them. Never waits: a full mailbox is
    /// counted in [`Dispatched::mailbox_full`] and skipped. Only the exact key is reached:
    /// a key ending in `/` is not a prefix query here and reaches nobody.
    ///
    /// # Errors
    ///
    /// [`SendError::Encode`] if the message cannot be encoded.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let node = roster::Node::builder().start().unwrap();
    /// let (mut a, mut b) = (node.new_process(), node.new_process());
    /// a.join("room/1", &()).unwrap();
    /// b.join("room/1", &()).unwrap();
    /// assert_eq!(node.default_scope().dispatch("room/1", &"hello").unwrap().local, 2);
    /// assert_eq!(a.recv::<String>().await.unwrap(), "hello");
    /// assert_eq!(b.recv::<String>().await.unwrap(), "hello");
    /// # }
    /// ```
    pub fn dispatch<T: Serialize + ?Sized>(
        &self,
        key: &str,
        message: &T,
    ) -> Result<Dispatched, SendError> {
        let payload = self.node.encode_message(message)?;
        let envelope = Envelope::new(None, payload.clone());
        // A prefix is not a dispatch target: only the exact key is.
        let targets = if is_prefix(key) {
            Vec::new()
        } else {
            self.state.targets(key)
        };
        let peers = self
            .node
            .dispatch_to_peers(&self.state.name, key, &targets, &payload);
        let mut result = Dispatched {
            remote_nodes: peers.sent,
            remote_too_large: peers.too_large,
            remote_unreachable: peers.unreachable,
            ..Dispatched::default()
        };
        let local = self.node.incarnation;
        for pid in targets
            .into_iter()
            .filter(|p| p.incarnation() == Incarnation::new(local))
        {
            match self.node.deliver(pid, envelope.clone()) {
                Ok(()) => result.local += 1,
                Err(SendError::MailboxFull(_)) => result.mailbox_full += 1,
                Err(_) => {}
            }
        }
        Ok(result)
    }
}
