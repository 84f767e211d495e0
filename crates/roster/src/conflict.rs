//! Resolution of unique-name conflicts between nodes.
//!
//! Two processes on different nodes can hold the same name at once: both registered it
//! concurrently, or each side of a partition registered it. Every node that sees both
//! contenders picks the same winner from the data alone, without talking to anyone; only
//! the loser's node acts on the result (removes the name, tells the process, broadcasts
//! the removal). The winner's node gives it a fresh fencing token greater than both.

use std::cmp::Ordering;
use std::fmt;
use std::sync::Arc;

use crate::entry::Registration;

/// Which of two contenders keeps a name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Winner {
    /// The first argument of the resolver.
    First,
    /// The second argument of the resolver.
    Second,
}

/// A user resolver: `(key, first, second) -> winner`. It must be deterministic, fast and
/// installed identically on every node; it is always called with the contenders ordered by
/// pid, so the argument order carries no information.
pub type Resolver = dyn Fn(&str, &Registration, &Registration) -> Winner + Send + Sync;

/// How name conflicts are decided; set with [`crate::NodeBuilder::conflict_rule`].
///
/// # Examples
///
/// ```
/// use roster::{ConflictRule, Pid, Registration, Meta, Winner};
///
/// let older = Registration { pid: Pid::new(1, 1), meta: Meta::EMPTY, registered_at: 10, token: 10 };
/// let newer = Registration { pid: Pid::new(2, 1), meta: Meta::EMPTY, registered_at: 20, token: 20 };
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
    /// A user callback decides.
    Custom(Arc<Resolver>),
}

impl ConflictRule {
    /// Decides between two contenders for `key`. The same inputs give the same winner in
    /// either argument order.
    ///
    /// ```
    /// use roster::{ConflictRule, Pid, Registration, Meta, Winner};
    ///
    /// let a = Registration { pid: Pid::new(1, 1), meta: Meta::EMPTY, registered_at: 5, token: 5 };
    /// let b = Registration { pid: Pid::new(2, 1), meta: Meta::EMPTY, registered_at: 5, token: 5 };
    /// // a tie: the smaller pid wins, whichever is passed first
    /// assert_eq!(ConflictRule::KeepOldest.resolve("k", &a, &b), Winner::First);
    /// assert_eq!(ConflictRule::KeepOldest.resolve("k", &b, &a), Winner::Second);
    /// ```
    pub fn resolve(&self, key: &str, first: &Registration, second: &Registration) -> Winner {
        let by_pid = first.pid.cmp(&second.pid);
        let first_wins = match self {
            ConflictRule::KeepOldest => {
                first.registered_at.cmp(&second.registered_at).then(by_pid) == Ordering::Less
            }
            ConflictRule::KeepNewest => {
                second.registered_at.cmp(&first.registered_at).then(by_pid) == Ordering::Less
            }
            ConflictRule::Custom(resolver) => {
                if by_pid == Ordering::Greater {
                    resolver(key, second, first) == Winner::Second
                } else {
                    resolver(key, first, second) == Winner::First
                }
            }
        };
        if first_wins {
            Winner::First
        } else {
            Winner::Second
        }
    }
}

impl fmt::Debug for ConflictRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConflictRule::KeepOldest => f.write_str("KeepOldest"),
            ConflictRule::KeepNewest => f.write_str("KeepNewest"),
            ConflictRule::Custom(_) => f.write_str("Custom(..)"),
        }
    }
}
