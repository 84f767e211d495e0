//! The fencing tokens a shard has shown for names that are gone, so that a name coming
//! back never shows a smaller one.
//!
//! A fencing token grows each time a name changes owner, and a downstream system fenced
//! at a token rejects every smaller one. When a partition heals, an older registration of
//! a name can arrive at a node that showed a newer one for it in the meantime (the newer
//! owner released the name, or its node died, so no conflict ever decides between the
//! two). Installing the older registration as it is would show that node's readers a
//! smaller token than before. Instead the node keeps the registration back and asks its
//! owner's node to re-stamp it above the token it showed (see `replica`): every token a
//! node shows for a name is then at least every one it showed before.
//!
//! The floors are a bounded, lossy table: [`FLOORS_PER_SHARD`] slots per shard (16,384
//! per scope, 256 KiB), one per name by its hash, allocated at the shard's first removal. A removal
//! costs a hash and one store, whatever the table holds (a node's death removes thousands
//! of names under their shard locks). A later removal of a name that falls in the same
//! slot takes it over, and the earlier name's floor is forgotten: that name can then come
//! back with the token it has. Two names with the same 64-bit hash would share a floor: a
//! registration of the other could be kept back and re-stamped for nothing, never shown
//! below a token it was shown with.

use std::hash::BuildHasher;

/// Slots per shard: 256 (4 KiB, one page), so 16,384 per scope. Only names removed while
/// a registration of theirs with a smaller token may still be elsewhere need one; a table
/// of a page per shard keeps the first removals of a scope from paying for more memory
/// than they fill.
pub(super) const FLOORS_PER_SHARD: usize = 256;

/// One remembered name: its hash and the largest token shown for it (0: empty).
#[derive(Debug, Default, Clone, Copy)]
struct Floor {
    name: u64,
    token: u64,
}

/// The largest token shown for a shard's recently removed names.
#[derive(Default)]
pub(super) struct TokenFloors {
    slots: Option<Box<[Floor]>>,
}

/// The hash a name is remembered by: fixed for the process, so every shard agrees.
fn name_hash(key: &str) -> u64 {
    foldhash::fast::FixedState::with_seed(0x746f_6b65_6e5f_666c).hash_one(key)
}

/// The slot of a name's hash.
fn slot(name: u64) -> usize {
    name as usize & (FLOORS_PER_SHARD - 1)
}

impl TokenFloors {
    /// Records that `key` was shown with `token` and is now gone.
    pub(super) fn raise(&mut self, key: &str, token: u64) {
        let name = name_hash(key);
        let slots = self
            .slots
            .get_or_insert_with(|| vec![Floor::default(); FLOORS_PER_SHARD].into_boxed_slice());
        let floor = &mut slots[slot(name)];
        if floor.name == name {
            floor.token = floor.token.max(token);
        } else {
            *floor = Floor { name, token };
        }
    }

    /// The token a registration of `key` must exceed to be shown, if it is larger than
    /// `token`: `None` when a registration with `token` may be shown as it is.
    pub(super) fn above(&self, key: &str, token: u64) -> Option<u64> {
        let slots = self.slots.as_ref()?;
        let name = name_hash(key);
        let floor = slots[slot(name)];
        (floor.name == name && floor.token > token).then_some(floor.token)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_floor_holds_back_only_smaller_tokens_and_keeps_the_largest() {
        let mut floors = TokenFloors::default();
        assert_eq!(floors.above("k", 1), None);
        floors.raise("k", 50);
        floors.raise("k", 40);
        assert_eq!(floors.above("k", 10), Some(50));
        assert_eq!(
            floors.above("k", 50),
            None,
            "an equal token is the same claim"
        );
        assert_eq!(floors.above("k", 60), None);
        assert_eq!(floors.above("other", 10), None);
    }

    #[test]
    fn a_later_name_in_the_same_slot_takes_the_floor_over() {
        let mut floors = TokenFloors::default();
        let first = "k0".to_owned();
        let same_slot = (1..)
            .map(|i| format!("k{i}"))
            .find(|k| slot(name_hash(k)) == slot(name_hash(&first)))
            .expect("some name shares the slot");
        floors.raise(&first, 100);
        floors.raise(&same_slot, 70);
        assert_eq!(floors.above(&first, 1), None, "forgotten");
        assert_eq!(floors.above(&same_slot, 1), Some(70));
    }
}
