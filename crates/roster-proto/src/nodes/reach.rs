//! Which nodes a node reaches: membership sees them alive **and** a replication link to
//! each is up, or has been down for less than a grace. A cut that membership does not see
//! (the link's TCP blocked, its UDP not) leaves a node a member that no link reaches: once
//! the grace has run out it is unreachable, for the node's status and for the split-brain
//! check alike. Pure: the caller passes the members, which of them are linked, and the
//! time.

use std::collections::{BTreeMap, BTreeSet};

use crate::vocab::pid::Incarnation;

/// A member that no link has reached for at least the grace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unreachable {
    /// Its name.
    pub name: String,
    /// Since when no link reaches it, in milliseconds since the Unix epoch (this node's
    /// clock).
    pub since_ms: u64,
}

/// The members of one node's membership view, judged by its links (see the module docs).
///
/// ```
/// use roster_proto::nodes::Reach;
/// use roster_proto::pid::Incarnation;
///
/// let mut reach = Reach::new(1_000);
/// let members = [("b".to_owned(), Incarnation::new(2))];
/// // b is a member, not linked: reachable during the grace, then not.
/// assert!(reach.update(&members, |_| false, 0).contains("b"));
/// assert!(reach.update(&members, |_| false, 999).contains("b"));
/// assert!(!reach.update(&members, |_| false, 1_000).contains("b"));
/// assert_eq!(reach.unreachable()[&Incarnation::new(2)].since_ms, 0);
/// // Linked again: reachable at once.
/// assert!(reach.update(&members, |_| true, 1_001).contains("b"));
/// assert!(reach.unreachable().is_empty());
/// ```
#[derive(Debug, Clone)]
pub struct Reach {
    grace_ms: u64,
    /// Members not linked, by incarnation: their name and since when.
    unlinked: BTreeMap<Incarnation, Unreachable>,
    /// Those of them past the grace at the last update.
    unreachable: BTreeMap<Incarnation, Unreachable>,
}

impl Reach {
    /// A view in which a member no link reaches for `grace_ms` is unreachable.
    pub fn new(grace_ms: u64) -> Self {
        Self {
            grace_ms,
            unlinked: BTreeMap::new(),
            unreachable: BTreeMap::new(),
        }
    }

    /// Judges `members` (name and incarnation of each member membership sees alive, this
    /// node not included) at `now_ms`, `linked` telling which incarnations a link is up
    /// to; returns the names of those it reaches. Members that left the view are
    /// forgotten.
    pub fn update(
        &mut self,
        members: &[(String, Incarnation)],
        linked: impl Fn(Incarnation) -> bool,
        now_ms: u64,
    ) -> BTreeSet<String> {
        let current: BTreeSet<Incarnation> = members.iter().map(|(_, inc)| *inc).collect();
        self.unlinked.retain(|inc, _| current.contains(inc));
        let mut reachable = BTreeSet::new();
        for (name, inc) in members {
            if linked(*inc) {
                self.unlinked.remove(inc);
                reachable.insert(name.clone());
                continue;
            }
            let since = self
                .unlinked
                .entry(*inc)
                .or_insert_with(|| Unreachable {
                    name: name.clone(),
                    since_ms: now_ms,
                })
                .since_ms;
            if now_ms.saturating_sub(since) < self.grace_ms {
                reachable.insert(name.clone());
            }
        }
        self.unreachable = self
            .unlinked
            .iter()
            .filter(|(_, u)| now_ms.saturating_sub(u.since_ms) >= self.grace_ms)
            .map(|(inc, u)| (*inc, u.clone()))
            .collect();
        reachable
    }

    /// The members past the grace at the last update, by incarnation.
    pub fn unreachable(&self) -> &BTreeMap<Incarnation, Unreachable> {
        &self.unreachable
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn members(names: &[(&str, u64)]) -> Vec<(String, Incarnation)> {
        names
            .iter()
            .map(|(n, i)| ((*n).to_owned(), Incarnation::new(*i)))
            .collect()
    }

    #[test]
    fn a_member_that_leaves_the_view_is_forgotten_and_a_new_incarnation_starts_over() {
        let mut reach = Reach::new(100);
        let both = members(&[("b", 2), ("c", 3)]);
        reach.update(&both, |_| false, 0);
        assert_eq!(reach.update(&both, |_| false, 100).len(), 0);
        assert_eq!(reach.unreachable().len(), 2);
        // c restarted: a new incarnation, a new grace.
        let restarted = members(&[("b", 2), ("c", 4)]);
        let reachable = reach.update(&restarted, |_| false, 150);
        assert_eq!(reachable, BTreeSet::from(["c".to_owned()]));
        assert_eq!(
            reach.unreachable().keys().copied().collect::<Vec<_>>(),
            [Incarnation::new(2)]
        );
        // b died (membership dropped it): it is nobody's concern here any more.
        reach.update(&members(&[("c", 4)]), |_| true, 200);
        assert!(reach.unreachable().is_empty());
    }

    #[test]
    fn a_flapping_link_restarts_the_grace() {
        let mut reach = Reach::new(100);
        let b = members(&[("b", 2)]);
        reach.update(&b, |_| false, 0);
        reach.update(&b, |_| true, 90);
        assert!(
            reach.update(&b, |_| false, 150).contains("b"),
            "grace from 150"
        );
        assert!(!reach.update(&b, |_| false, 250).contains("b"));
    }
}
