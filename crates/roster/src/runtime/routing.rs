//! Message routing: to local mailboxes, or to the node of a remote process as one frame;
//! dispatch to the owner and members of a key, one frame per remote node.

use serde::Serialize;

use super::NodeShared;
use crate::envelope::Envelope;
use crate::error::SendError;
use crate::key::ScopeName;
use crate::meta::Meta;
use crate::pid::{Incarnation, Pid};
use crate::replication::core::Unsent;
use crate::replication::wire::{Dispatch, Message};

/// What became of a dispatch's frames to other nodes (one per node hosting recipients).
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct PeerDispatch {
    /// Nodes the frame was handed to (queued on their link).
    pub(crate) sent: usize,
    /// Nodes whose `max_message_bytes` is below the message's size.
    pub(crate) too_large: usize,
    /// Nodes without a live link.
    pub(crate) unreachable: usize,
}

impl NodeShared {
    pub(crate) fn deliver(&self, to: Pid, envelope: Envelope) -> Result<(), SendError> {
        let cell = self.stores.process(to).ok_or(SendError::NoProcess(to))?;
        cell.deliver(envelope)
    }

    pub(crate) fn send_from<T: Serialize + ?Sized>(
        &self,
        from: Option<Pid>,
        to: Pid,
        message: &T,
    ) -> Result<(), SendError> {
        let payload = self.encode_message(message)?;
        if to.incarnation() == Incarnation::new(self.incarnation) {
            return self.deliver(to, Envelope::new(from, payload));
        }
        let len = payload.encoded_len();
        let cluster = self.cluster.load();
        let Some(cluster) = cluster.as_ref() else {
            return Err(self.unsendable(to));
        };
        match cluster.send_message(to.incarnation(), Message { to, from, payload }) {
            Ok(()) => Ok(()),
            Err(Unsent::NoLink) => Err(self.unsendable(to)),
            Err(Unsent::TooLarge { max }) => Err(SendError::TooLarge { len, max }),
        }
    }

    /// Why a message for `to`, whose node has no link from here, was not sent: its node is
    /// live but unlinked right now, or no live node runs it.
    fn unsendable(&self, to: Pid) -> SendError {
        if self.stores.nodes.is_live(to.incarnation().get()) {
            SendError::NodeUnreachable(to)
        } else {
            SendError::NodeGone(to)
        }
    }

    /// Encodes a message, within this node's `max_message_bytes`.
    pub(crate) fn encode_message<T: Serialize + ?Sized>(
        &self,
        message: &T,
    ) -> Result<Meta, SendError> {
        let payload = Meta::encode(message)?;
        let (len, max) = (payload.encoded_len(), self.limits.max_message_bytes);
        if len > max {
            return Err(SendError::TooLarge { len, max });
        }
        Ok(payload)
    }

    /// Sends a dispatch to every other node that hosts one of `targets`, one frame per node;
    /// says to how many nodes it was handed, how many refused it as larger than their
    /// `max_message_bytes`, and how many had no live link.
    pub(crate) fn dispatch_to_peers(
        &self,
        scope: &ScopeName,
        key: &str,
        targets: &[Pid],
        payload: &Meta,
    ) -> PeerDispatch {
        let mut counts = PeerDispatch::default();
        let me = Incarnation::new(self.incarnation);
        let mut nodes: Vec<Incarnation> = targets
            .iter()
            .map(|p| p.incarnation())
            .filter(|&i| i != me)
            .collect();
        nodes.sort_unstable();
        nodes.dedup();
        let cluster = self.cluster.load();
        let Some(cluster) = cluster.as_ref() else {
            counts.unreachable = nodes.len();
            return counts;
        };
        for peer in nodes {
            let dispatch = Dispatch {
                scope: scope.clone(),
                key: key.into(),
                payload: payload.clone(),
            };
            match cluster.send_dispatch(peer, dispatch) {
                Ok(()) => counts.sent += 1,
                Err(Unsent::TooLarge { .. }) => counts.too_large += 1,
                Err(Unsent::NoLink) => counts.unreachable += 1,
            }
        }
        counts
    }

    /// Delivers a message that came from another node to a local process. A message for
    /// a process that is gone is dropped, as in Erlang.
    pub(crate) fn deliver_remote(&self, to: Pid, from: Option<Pid>, payload: Meta) {
        let _ = self.deliver(to, Envelope::new(from, payload));
    }

    /// Delivers a dispatch that came from another node to the local owner and members of
    /// `key` in `scope`.
    pub(crate) fn dispatch_remote(&self, scope: &str, key: &str, payload: Meta) {
        if let Some(state) = self.stores.get(scope) {
            let envelope = Envelope::new(None, payload);
            for pid in state.local_targets(key) {
                let _ = self.deliver(pid, envelope.clone());
            }
        }
    }
}
