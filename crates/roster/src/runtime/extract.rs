//! The node's read-side transforms of meta (`extract_meta`): the node-wide one, each
//! scope's own, and running one so that a panic in it breaks nothing.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::meta::Meta;
use crate::store::ScopeStore;

/// A transform of the meta that reads return: `(key, stored meta) -> meta seen`.
pub(crate) type ExtractFn = Arc<dyn Fn(&str, &Meta) -> Meta + Send + Sync>;

/// The transforms of a node's reads.
pub(crate) struct Extracts {
    /// The node-wide transform, for scopes without their own.
    node: Option<ExtractFn>,
    /// Each scope's own transform, by the epoch of its connection (forgotten when it
    /// disconnects).
    scopes: papaya::HashMap<u64, ExtractFn, foldhash::fast::RandomState>,
    /// Transforms that panicked (the read returned the stored meta).
    panics: AtomicU64,
}

impl Extracts {
    pub(crate) fn new(node: Option<ExtractFn>) -> Self {
        Self {
            node,
            scopes: papaya::HashMap::default(),
            panics: AtomicU64::new(0),
        }
    }

    /// The transform of `scope`'s reads: its own, else the node's, else none. A scope
    /// without one pays one relaxed load of a flag beside its maps.
    #[inline]
    pub(crate) fn of(&self, scope: &ScopeStore) -> Option<ExtractFn> {
        if !scope.has_read_transform() {
            return None;
        }
        self.configured(scope.epoch)
    }

    #[cold]
    fn configured(&self, epoch: u64) -> Option<ExtractFn> {
        self.scopes
            .pin()
            .get(&epoch)
            .or(self.node.as_ref())
            .cloned()
    }

    /// Gives `scope` (this connection of it) its own transform, replacing an earlier one.
    pub(crate) fn set_scope(&self, scope: &ScopeStore, extract: ExtractFn) {
        self.scopes.pin().insert(scope.epoch, extract);
        scope.set_read_transform();
    }

    /// A scope connected without a transform of its own takes the node's, if any.
    pub(crate) fn adopt(&self, scope: &ScopeStore) {
        if self.node.is_some() {
            scope.set_read_transform();
        }
    }

    /// Forgets the transform of a disconnected scope.
    pub(crate) fn forget_scope(&self, epoch: u64) {
        self.scopes.pin().remove(&epoch);
    }

    /// Runs `extract` on one entry. If it panics, the panic is caught (and counted,
    /// logged the first time on this node) and the stored meta is returned: the
    /// transform runs outside every store lock, on immutable inputs, so nothing is left
    /// half done.
    pub(crate) fn run(&self, extract: &ExtractFn, key: &str, meta: &Meta) -> Meta {
        match catch_unwind(AssertUnwindSafe(|| extract(key, meta))) {
            Ok(seen) => seen,
            Err(_) => {
                if self.panics.fetch_add(1, Ordering::Relaxed) == 0 {
                    tracing::error!(
                        key,
                        "extract_meta panicked: the read returns the stored meta (logged once per node, see Node::extract_meta_panics)"
                    );
                }
                meta.clone()
            }
        }
    }

    /// How many times a transform panicked on this node.
    pub(crate) fn panics(&self) -> u64 {
        self.panics.load(Ordering::Relaxed)
    }
}
