//! The fence of a node: while its side of a partition has lost the split-brain verdict
//! and the action is to fence, new unique registrations in replicated scopes are refused.
//! Reads, groups, unregistrations and names already held keep working.

use std::sync::Arc;

use arc_swap::ArcSwapOption;

/// Why and since when a node is fenced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fenced {
    /// The verdict that fenced the node, in words.
    pub reason: String,
    /// Since when, in milliseconds since the Unix epoch.
    pub since_ms: u64,
}

/// The fence state shared by a node's scope stores; read on every new registration
/// without a lock.
///
/// ```
/// use roster_proto::nodes::{Fence, Fenced};
///
/// let fence = Fence::default();
/// assert!(fence.check().is_ok());
/// fence.raise(Fenced { reason: "minority side".into(), since_ms: 1 });
/// assert!(fence.check().is_err());
/// fence.lower();
/// assert!(fence.current().is_none());
/// ```
#[derive(Default)]
pub struct Fence(ArcSwapOption<Fenced>);

impl Fence {
    /// Fences the node (new unique registrations fail) until [`Fence::lower`].
    pub fn raise(&self, fenced: Fenced) {
        self.0.store(Some(Arc::new(fenced)));
    }

    /// Lifts the fence.
    pub fn lower(&self) {
        self.0.store(None);
    }

    /// The fence, if raised.
    pub fn current(&self) -> Option<Fenced> {
        self.0.load().as_deref().cloned()
    }

    /// `Err` with the fence while raised.
    pub fn check(&self) -> Result<(), Fenced> {
        match self.0.load().as_deref() {
            None => Ok(()),
            Some(fenced) => Err(fenced.clone()),
        }
    }
}
