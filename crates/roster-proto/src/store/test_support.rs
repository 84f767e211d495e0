//! What the tests of the stores and of the replication core build their nodes from.

use std::sync::Arc;

use super::{Mailbox, NodeStores, ProcessTable, Refused, ScopeConfig};
use crate::vocab::clock::Clock;
use crate::vocab::conflict::ConflictRule;
use crate::vocab::envelope::Envelope;
use crate::vocab::op::Outbox;

/// A mailbox nobody reads: the tests send no messages.
pub(crate) struct Discard;

impl Mailbox for Discard {
    fn try_deliver(&self, _: Envelope) -> Result<(), Refused> {
        Err(Refused::Closed)
    }
}

/// The stores of a replicating node of `incarnation` whose wall clock is `clock`
/// (keep-oldest conflicts, an outbox for the replication core).
pub(crate) fn replicating_stores(incarnation: u64, clock: Arc<dyn Clock>) -> NodeStores {
    replicating_stores_ruled(incarnation, clock, ConflictRule::KeepOldest)
}

/// [`replicating_stores`] deciding conflicts by `rule`.
pub(crate) fn replicating_stores_ruled(
    incarnation: u64,
    clock: Arc<dyn Clock>,
    rule: ConflictRule,
) -> NodeStores {
    NodeStores::new(ScopeConfig {
        rule,
        outbox: Some(Arc::new(Outbox::default())),
        clock,
        locals: Arc::new(ProcessTable::new(incarnation)),
        fence: Arc::default(),
        resolver_panics: Arc::default(),
        end_conflict_losers: true,
    })
}
