//! Resolution of unique-name conflicts between nodes.
//!
//! Two processes on different nodes can hold the same name at once: both registered it
//! concurrently, or each side of a partition registered it. Every node that sees both
//! contenders picks the same winner from the data alone, without talking to anyone; only
//! the loser's node acts on the result (removes the name, tells the process, broadcasts
//! the removal). The winner's node gives it a fresh fencing token greater than both.
//!
//! A custom resolver runs inside replication, so its panics are contained: the panic is
//! caught, the pair is decided by [`ConflictRule::KeepOldest`] instead (what every node
//! decides, whether or not its resolver panicked on that pair too), counted, and logged
//! once per key.
//!
//! Every decision says which rule made it ([`DecidedBy`]): events of a conflict carry it in
//! [`crate::vocab::event::Reason::Conflict`] with the winner and the loser.

use std::any::Any;
use std::cmp::Ordering;
use std::collections::BTreeSet;
use std::fmt;
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{self, AtomicU64};
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};

use crate::vocab::entry::Registration;

/// Which of two contenders keeps a name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Winner {
    /// The first argument of the resolver.
    First,
    /// The second argument of the resolver.
    Second,
}

/// Which rule decided a name conflict: the one a node is configured with, or
/// [`DecidedBy::CustomPanicked`] where a custom resolver panicked and keep-oldest decided
/// instead. Carried by [`crate::vocab::event::Reason::Conflict`], and on the wire with the loser's
/// removal.
///
/// # Examples
///
/// ```
/// use std::sync::Arc;
/// use roster::{ConflictRule, DecidedBy, Incarnation, Meta, Pid, Registration, Winner};
///
/// let a = Registration { pid: Pid::new(Incarnation::new(1), 1), meta: Meta::EMPTY, registered_at: 5, token: 5 };
/// let b = Registration { pid: Pid::new(Incarnation::new(2), 1), meta: Meta::EMPTY, registered_at: 6, token: 6 };
/// assert_eq!(ConflictRule::KeepOldest.decide("k", &a, &b), (Winner::First, DecidedBy::KeepOldest));
/// let buggy = ConflictRule::Custom(Arc::new(|_, _, _| panic!("resolver bug")));
/// assert_eq!(buggy.decide("k", &a, &b), (Winner::First, DecidedBy::CustomPanicked));
/// assert_eq!(DecidedBy::CustomPanicked.as_str(), "custom_panicked");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[non_exhaustive]
pub enum DecidedBy {
    /// [`ConflictRule::KeepOldest`] (the default).
    KeepOldest,
    /// [`ConflictRule::KeepNewest`].
    KeepNewest,
    /// A [`ConflictRule::Custom`] resolver.
    Custom,
    /// A [`ConflictRule::Custom`] resolver panicked on the pair, so keep-oldest decided.
    CustomPanicked,
}

impl DecidedBy {
    /// Its name in snake case, as the agent's history and API show it: `keep_oldest`,
    /// `keep_newest`, `custom`, `custom_panicked`.
    ///
    /// ```
    /// assert_eq!(roster::DecidedBy::KeepOldest.as_str(), "keep_oldest");
    /// ```
    pub fn as_str(self) -> &'static str {
        match self {
            Self::KeepOldest => "keep_oldest",
            Self::KeepNewest => "keep_newest",
            Self::Custom => "custom",
            Self::CustomPanicked => "custom_panicked",
        }
    }
}

impl fmt::Display for DecidedBy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A user resolver: `(key, first, second) -> winner`. It must be deterministic, fast and
/// installed identically on every node; it is always called with the contenders ordered by
/// pid, so the argument order carries no information. If it panics, the panic is caught
/// and that pair is decided by [`ConflictRule::KeepOldest`].
pub type Resolver = dyn Fn(&str, &Registration, &Registration) -> Winner + Send + Sync;

/// How name conflicts are decided; set with `roster::NodeBuilder::conflict_rule`.
///
/// # Examples
///
/// ```
/// use roster::{ConflictRule, Incarnation, Pid, Registration, Meta, Winner};
///
/// let older = Registration { pid: Pid::new(Incarnation::new(1), 1), meta: Meta::EMPTY, registered_at: 10, token: 10 };
/// let newer = Registration { pid: Pid::new(Incarnation::new(2), 1), meta: Meta::EMPTY, registered_at: 20, token: 20 };
/// assert_eq!(ConflictRule::KeepOldest.resolve("k", &older, &newer), Winner::First);
/// assert_eq!(ConflictRule::KeepNewest.resolve("k", &older, &newer), Winner::Second);
/// ```
#[derive(Clone, Default)]
pub enum ConflictRule {
    /// The earlier registration wins (a running singleton is not evicted by a newcomer);
    /// ties go to the smaller pid. The default.
    #[default]
    KeepOldest,
    /// The later registration wins; ties go to the smaller pid.
    KeepNewest,
    /// A user callback decides; where it panics, [`ConflictRule::KeepOldest`] does.
    Custom(Arc<Resolver>),
}

impl ConflictRule {
    /// Decides between two contenders for `key`. The same inputs give the same winner in
    /// either argument order. A [`ConflictRule::Custom`] resolver that panics does not
    /// unwind out of here: the pair is decided by [`ConflictRule::KeepOldest`].
    ///
    /// ```
    /// use std::sync::Arc;
    /// use roster::{ConflictRule, Incarnation, Pid, Registration, Meta, Winner};
    ///
    /// let a = Registration { pid: Pid::new(Incarnation::new(1), 1), meta: Meta::EMPTY, registered_at: 5, token: 5 };
    /// let b = Registration { pid: Pid::new(Incarnation::new(2), 1), meta: Meta::EMPTY, registered_at: 5, token: 5 };
    /// // a tie: the smaller pid wins, whichever is passed first
    /// assert_eq!(ConflictRule::KeepOldest.resolve("k", &a, &b), Winner::First);
    /// assert_eq!(ConflictRule::KeepOldest.resolve("k", &b, &a), Winner::Second);
    ///
    /// // a panicking resolver falls back to keep-oldest
    /// let buggy = ConflictRule::Custom(Arc::new(|_, _, _| panic!("resolver bug")));
    /// assert_eq!(buggy.resolve("k", &b, &a), Winner::Second);
    /// ```
    pub fn resolve(&self, key: &str, first: &Registration, second: &Registration) -> Winner {
        self.decide(key, first, second).0
    }

    /// As [`ConflictRule::decide`], and adds one to `panics` if a custom resolver
    /// panicked (the store counts them per node this way).
    ///
    /// ```
    /// use std::sync::Arc;
    /// use std::sync::atomic::{AtomicU64, Ordering};
    /// use roster::{ConflictRule, DecidedBy, Incarnation, Pid, Registration, Meta, Winner};
    ///
    /// let a = Registration { pid: Pid::new(Incarnation::new(1), 1), meta: Meta::EMPTY, registered_at: 5, token: 5 };
    /// let b = Registration { pid: Pid::new(Incarnation::new(2), 1), meta: Meta::EMPTY, registered_at: 6, token: 6 };
    /// let buggy = ConflictRule::Custom(Arc::new(|_, _, _| panic!("resolver bug")));
    /// let panics = AtomicU64::new(0);
    /// assert_eq!(
    ///     buggy.resolve_counting("k", &a, &b, &panics),
    ///     (Winner::First, DecidedBy::CustomPanicked)
    /// );
    /// assert_eq!(panics.load(Ordering::Relaxed), 1);
    /// ```
    pub fn resolve_counting(
        &self,
        key: &str,
        first: &Registration,
        second: &Registration,
        panics: &AtomicU64,
    ) -> (Winner, DecidedBy) {
        let decided = self.decide(key, first, second);
        if decided.1 == DecidedBy::CustomPanicked {
            panics.fetch_add(1, atomic::Ordering::Relaxed);
        }
        decided
    }

    /// As [`ConflictRule::resolve`], with the rule that decided: the configured one, or
    /// [`DecidedBy::CustomPanicked`] where a custom resolver panicked.
    ///
    /// ```
    /// use roster::{ConflictRule, DecidedBy, Incarnation, Pid, Registration, Meta, Winner};
    ///
    /// let older = Registration { pid: Pid::new(Incarnation::new(1), 1), meta: Meta::EMPTY, registered_at: 10, token: 10 };
    /// let newer = Registration { pid: Pid::new(Incarnation::new(2), 1), meta: Meta::EMPTY, registered_at: 20, token: 20 };
    /// assert_eq!(
    ///     ConflictRule::KeepNewest.decide("k", &older, &newer),
    ///     (Winner::Second, DecidedBy::KeepNewest)
    /// );
    /// ```
    pub fn decide(
        &self,
        key: &str,
        first: &Registration,
        second: &Registration,
    ) -> (Winner, DecidedBy) {
        let by_pid = first.pid.cmp(&second.pid);
        let keep_oldest =
            || first.registered_at.cmp(&second.registered_at).then(by_pid) == Ordering::Less;
        let (first_wins, rule) = match self {
            Self::KeepOldest => (keep_oldest(), DecidedBy::KeepOldest),
            Self::KeepNewest => (
                second.registered_at.cmp(&first.registered_at).then(by_pid) == Ordering::Less,
                DecidedBy::KeepNewest,
            ),
            Self::Custom(resolver) => {
                let swapped = by_pid == Ordering::Greater;
                let (low, high) = if swapped {
                    (second, first)
                } else {
                    (first, second)
                };
                // Only the user's callback is inside, and it sees shared references only:
                // its panic stops here, never unwinding through the callers' shard locks
                // or a half-applied change.
                match panic::catch_unwind(AssertUnwindSafe(|| resolver(key, low, high))) {
                    Ok(winner) => ((winner == Winner::First) != swapped, DecidedBy::Custom),
                    Err(payload) => {
                        log_resolver_panic(key, &*payload);
                        (keep_oldest(), DecidedBy::CustomPanicked)
                    }
                }
            }
        };
        let winner = if first_wins {
            Winner::First
        } else {
            Winner::Second
        };
        (winner, rule)
    }
}

/// How many keys [`LOGGED_KEYS`] remembers: at most this many keys of at most
/// `max_key_bytes` each (1 MiB with the default 1 KiB limit). When it is full it is
/// emptied, so a key is logged again only after this many other keys made a resolver panic.
const MAX_LOGGED_KEYS: usize = 1024;

/// Keys whose resolver panic has been logged (see [`MAX_LOGGED_KEYS`]).
static LOGGED_KEYS: Mutex<BTreeSet<Box<str>>> = Mutex::new(BTreeSet::new());

/// Logs a caught resolver panic if it is the first for `key` (in this process).
fn log_resolver_panic(key: &str, payload: &(dyn Any + Send)) {
    // Nothing panics while this lock is held; a poisoned one holds a valid set.
    let first_for_key = remember(
        &mut LOGGED_KEYS.lock().unwrap_or_else(|e| e.into_inner()),
        key,
    );
    if first_for_key {
        let message = payload
            .downcast_ref::<&str>()
            .copied()
            .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
            .unwrap_or("(not a string)");
        tracing::warn!(
            key,
            panic = message,
            "conflict resolver panicked: decided by keep-oldest; \
             later panics for this key are only counted"
        );
    }
}

/// Adds `key` to `logged` unless it is there, emptying a full set first (see
/// [`MAX_LOGGED_KEYS`]). Returns whether it was added.
fn remember(logged: &mut BTreeSet<Box<str>>, key: &str) -> bool {
    if logged.contains(key) {
        return false;
    }
    if logged.len() >= MAX_LOGGED_KEYS {
        logged.clear();
    }
    logged.insert(key.into())
}

impl fmt::Debug for ConflictRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::KeepOldest => f.write_str("KeepOldest"),
            Self::KeepNewest => f.write_str("KeepNewest"),
            Self::Custom(_) => f.write_str("Custom(..)"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vocab::meta::Meta;
    use crate::vocab::pid::Incarnation;
    use crate::vocab::pid::Pid;

    fn registration(pid: Pid, registered_at: u64) -> Registration {
        Registration {
            pid,
            meta: Meta::EMPTY,
            registered_at,
            token: registered_at,
        }
    }

    #[test]
    fn a_panicking_resolver_falls_back_to_keep_oldest_and_is_counted() {
        let rule = ConflictRule::Custom(Arc::new(|_, _, _| panic!("resolver bug")));
        // The older registration has the larger pid, so keep-oldest and "smaller pid" differ.
        let older = registration(Pid::new(Incarnation::new(9), 1), 10);
        let newer = registration(Pid::new(Incarnation::new(1), 1), 20);
        let key = "conflict::tests/panicking";
        let panics = AtomicU64::new(0);
        assert_eq!(
            rule.resolve_counting(key, &older, &newer, &panics),
            (Winner::First, DecidedBy::CustomPanicked)
        );
        assert_eq!(
            rule.resolve_counting(key, &newer, &older, &panics),
            (Winner::Second, DecidedBy::CustomPanicked)
        );
        assert_eq!(
            panics.load(atomic::Ordering::Relaxed),
            2,
            "both panics are counted"
        );
        assert_eq!(
            rule.resolve(key, &older, &newer),
            Winner::First,
            "uncounted, same winner"
        );
        let sane = ConflictRule::Custom(Arc::new(|_, _, _| Winner::Second));
        assert_eq!(
            sane.resolve_counting(key, &older, &newer, &panics).1,
            DecidedBy::Custom,
            "a resolver that returns decided"
        );
        assert_eq!(
            panics.load(atomic::Ordering::Relaxed),
            2,
            "only panics are counted"
        );
        assert!(
            LOGGED_KEYS
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .contains(key),
            "the key is remembered as logged"
        );
    }

    #[test]
    fn logged_keys_are_remembered_once_and_bounded() {
        let mut logged = BTreeSet::new();
        for i in 0..MAX_LOGGED_KEYS {
            assert!(remember(&mut logged, &format!("k/{i}")));
        }
        assert!(!remember(&mut logged, "k/0"), "logged once per key");
        assert_eq!(logged.len(), MAX_LOGGED_KEYS);
        assert!(remember(&mut logged, "k/new"), "a new key is still logged");
        assert_eq!(logged.len(), 1, "a full set starts over");
        assert!(remember(&mut logged, "k/0"));
    }

    #[test]
    fn a_resolver_that_returns_is_obeyed_in_either_argument_order() {
        // Always picks its first argument, which is the smaller pid.
        let rule = ConflictRule::Custom(Arc::new(|_, _, _| Winner::First));
        let older = registration(Pid::new(Incarnation::new(9), 1), 10);
        let newer = registration(Pid::new(Incarnation::new(1), 1), 20);
        assert_eq!(rule.resolve("k", &older, &newer), Winner::Second);
        assert_eq!(rule.resolve("k", &newer, &older), Winner::First);
    }
}
