//! The ordered index of one table's keys: prefix queries, watches and snapshot chunks
//! walk it in byte order.

use std::ops::Bound;

use scc::TreeIndex;

use super::{HeldKind, StoredKey};

/// The keys of one table (names or groups) in byte order.
///
/// It always holds one entry that is no key, the empty key (a written key is never
/// empty), and never yields it. Without it, scc's `TreeIndex` frees its root leaf when its
/// last key goes and allocates a new one for the next insert; the freed leaves are
/// reclaimed in a batch every 128 guards, so a scope whose only name comes and goes
/// stalled 3-5 µs every 64 register/unregister cycles (the tail of the L4 cycle). With
/// the entry the root leaf stays.
pub(super) struct OrderedKeys {
    index: TreeIndex<StoredKey, ()>,
    /// The kind of the table, which the standing entry is stored as.
    kind: HeldKind,
}

impl OrderedKeys {
    /// An index with no keys.
    pub(super) fn new(kind: HeldKind) -> Self {
        let keys = Self {
            index: TreeIndex::new(),
            kind,
        };
        keys.hold_root();
        keys
    }

    /// Adds `key` (a key just inserted in the table; nothing if it is already there).
    pub(super) fn insert(&self, key: StoredKey) {
        debug_assert!(!key.as_str().is_empty(), "a written key is never empty");
        let _ = self.index.insert_sync(key, ());
    }

    /// Removes `key`.
    pub(super) fn remove(&self, key: &str) {
        if !key.is_empty() {
            self.index.remove_sync(key);
        }
    }

    /// Removes every key.
    pub(super) fn clear(&self) {
        self.index.clear();
        self.hold_root();
    }

    /// The keys from `start` on, in byte order.
    pub(super) fn from<'g>(
        &'g self,
        start: Bound<&'g str>,
        guard: &'g scc::Guard,
    ) -> impl Iterator<Item = &'g StoredKey> + 'g {
        // Every key is above the standing entry, which is the empty key.
        let start = match start {
            Bound::Unbounded | Bound::Included("") => Bound::Excluded(""),
            other => other,
        };
        self.index
            .range::<str, _>((start, Bound::Unbounded), guard)
            .map(|(key, ())| key)
    }

    fn hold_root(&self) {
        let _ = self.index.insert_sync(StoredKey::new(self.kind, ""), ());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(index: &OrderedKeys, start: Bound<&str>) -> Vec<String> {
        let guard = scc::Guard::new();
        index
            .from(start, &guard)
            .map(|k| k.as_str().to_owned())
            .collect()
    }

    /// The standing entry is never yielded, from any start, before or after a clear.
    #[test]
    fn the_standing_entry_is_never_a_key() {
        let index = OrderedKeys::new(HeldKind::Name);
        assert!(keys(&index, Bound::Unbounded).is_empty());
        for key in ["b", "a/1", "a/2"] {
            index.insert(StoredKey::new(HeldKind::Name, key));
        }
        index.remove("");
        assert_eq!(keys(&index, Bound::Unbounded), ["a/1", "a/2", "b"]);
        assert_eq!(keys(&index, Bound::Included("")), ["a/1", "a/2", "b"]);
        assert_eq!(keys(&index, Bound::Excluded("")), ["a/1", "a/2", "b"]);
        assert_eq!(keys(&index, Bound::Included("a/2")), ["a/2", "b"]);
        assert_eq!(keys(&index, Bound::Excluded("a/2")), ["b"]);
        index.remove("a/1");
        assert_eq!(keys(&index, Bound::Unbounded), ["a/2", "b"]);
        index.clear();
        assert!(keys(&index, Bound::Unbounded).is_empty());
        index.insert(StoredKey::new(HeldKind::Name, "c"));
        assert_eq!(keys(&index, Bound::Unbounded), ["c"]);
    }
}
