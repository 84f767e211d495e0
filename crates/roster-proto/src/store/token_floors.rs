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
//! The floors are bounded: each shard remembers the tokens of its last
//! [`FLOORS_PER_SHARD`] removed names (per scope, 64 times that), the oldest forgotten
//! first. A name whose floor was forgotten comes back with the token it has.

use std::collections::VecDeque;

use super::FastMap;
use crate::key::Key;

/// How many removed names each shard remembers the token of: 1,024, so 65,536 per scope,
/// about 4 MiB at most (a key of up to 24 bytes is stored inline twice, with a token).
/// Only names removed while a registration of theirs with a smaller token may still be
/// elsewhere need one; 65,536 removals per scope cover the churn of a long partition of a
/// busy cluster.
pub(super) const FLOORS_PER_SHARD: usize = 1024;

/// The largest token shown for each of a shard's recently removed names.
#[derive(Default)]
pub(super) struct TokenFloors {
    floors: FastMap<Key, u64>,
    /// The keys of `floors` in the order they were first added, to forget the oldest.
    order: VecDeque<Key>,
}

impl TokenFloors {
    /// Records that `key` was shown with `token` and is now gone.
    pub(super) fn raise(&mut self, key: &Key, token: u64) {
        if let Some(floor) = self.floors.get_mut(key.as_str()) {
            *floor = (*floor).max(token);
            return;
        }
        if self.order.len() >= FLOORS_PER_SHARD
            && let Some(oldest) = self.order.pop_front()
        {
            self.floors.remove(oldest.as_str());
        }
        self.floors.insert(key.clone(), token);
        self.order.push_back(key.clone());
    }

    /// The token a registration of `key` must exceed to be shown, if it is larger than
    /// `token`: `None` when a registration with `token` may be shown as it is.
    pub(super) fn above(&self, key: &str, token: u64) -> Option<u64> {
        if self.floors.is_empty() {
            return None;
        }
        self.floors.get(key).copied().filter(|floor| *floor > token)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_floor_holds_back_only_smaller_tokens_and_keeps_the_largest() {
        let mut floors = TokenFloors::default();
        assert_eq!(floors.above("k", 1), None);
        floors.raise(&"k".into(), 50);
        floors.raise(&"k".into(), 40);
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
    fn the_oldest_floor_is_forgotten_first() {
        let mut floors = TokenFloors::default();
        for i in 0..FLOORS_PER_SHARD {
            floors.raise(&format!("k{i}").into(), 100);
        }
        // Raising a remembered key again does not make room.
        floors.raise(&"k0".into(), 200);
        assert_eq!(floors.above("k0", 1), Some(200));
        floors.raise(&"new".into(), 100);
        assert_eq!(floors.above("k0", 1), None, "the first added is forgotten");
        assert_eq!(floors.above("k1", 1), Some(100));
        assert_eq!(floors.above("new", 1), Some(100));
        assert_eq!(floors.floors.len(), FLOORS_PER_SHARD);
    }
}
