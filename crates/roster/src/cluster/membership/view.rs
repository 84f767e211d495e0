//! The member view: the members this node reports alive, and the rules that turn foca's
//! notifications into Up/Down [`MembershipEvent`]s (a `Down` always carries exactly the
//! member of its `Up`).

use std::collections::HashMap;
use std::net::SocketAddr;

use foca::OwnedNotification;

use super::identity::MemberId;

/// A change in the set of live members, as reported to the transport layer.
#[derive(Clone, Debug, PartialEq, Eq)]
#[allow(dead_code)] // used by the transport layer (in progress)
pub(crate) enum MembershipEvent {
    /// A member (other than ourselves) is up. Emitted when a member is first seen alive,
    /// and again only after a `Down` for it (a member wrongly declared down that rejoins
    /// comes back with the same incarnation and a greater `bump`). A renewal while the
    /// member is alive emits nothing.
    Up(MemberId),
    /// A member was declared down by SWIM (failure or graceful leave), or replaced by a new
    /// incarnation at the same address (then `Down(old)` comes before `Up(new)`). Carries
    /// exactly the identity of the matching `Up`.
    Down(MemberId),
    /// As `Down`, for a member that announced it leaves on purpose (its leave notice came
    /// before its down; see `leave_notice`).
    Left(MemberId),
    /// The member of this incarnation, already reported `Down`, had left on purpose: its
    /// leave notice came after its down.
    LeftEarlier(u64),
}

/// The members this node reports alive, and the rules that turn foca notifications into
/// [`MembershipEvent`]s. Keyed by address: foca keeps one identity per address.
#[derive(Debug, Default)]
pub(super) struct MemberView {
    /// Members reported `Up` and not yet `Down`, as they were reported.
    alive: HashMap<SocketAddr, MemberId>,
}

impl MemberView {
    /// Applies the notifications of one foca call, in order, appending the resulting
    /// events to `events`.
    ///
    /// foca follows `Rename(old, new)` with `MemberUp(new)` or `MemberDown(new)` when the
    /// liveness at that address changed; a lone `Rename` means it did not. So a `Rename`
    /// followed by such a notification is left to it, and a lone `Rename` of a live member
    /// to a new incarnation is a replacement (`Down(old)`, `Up(new)`); a lone `Rename` to
    /// the same incarnation (a renewal) changes nothing.
    pub(super) fn apply(
        &mut self,
        notifications: Vec<OwnedNotification<MemberId>>,
        events: &mut Vec<MembershipEvent>,
    ) {
        let mut notifications = notifications.into_iter().peekable();
        while let Some(notification) = notifications.next() {
            match notification {
                OwnedNotification::MemberUp(member) => self.set_alive(member, events),
                OwnedNotification::MemberDown(member) => self.set_down(member.addr, events),
                OwnedNotification::Rename(old, new) => {
                    let liveness_follows = matches!(
                        notifications.peek(),
                        Some(OwnedNotification::MemberUp(next) | OwnedNotification::MemberDown(next))
                            if *next == new
                    );
                    tracing::debug!(?old, ?new, "membership: member renamed");
                    if !liveness_follows && self.alive.contains_key(&new.addr) {
                        self.set_alive(new, events);
                    }
                }
                OwnedNotification::Active => {
                    tracing::debug!("membership: known by the cluster");
                }
                OwnedNotification::Idle => {
                    tracing::debug!("membership: no live member left");
                }
                OwnedNotification::Rejoin(id) => {
                    tracing::warn!(
                        bump = id.bump,
                        "membership: declared down by the cluster; rejoined"
                    );
                }
                OwnedNotification::Defunct => {
                    tracing::warn!(
                        "membership: declared down and cannot renew; this node is out of the cluster"
                    );
                }
            }
        }
    }

    /// `member` is alive: reports it unless its incarnation is already reported at its
    /// address, replacing (and reporting down) another incarnation there.
    fn set_alive(&mut self, member: MemberId, events: &mut Vec<MembershipEvent>) {
        match self.alive.get(&member.addr) {
            Some(known) if known.incarnation == member.incarnation => {}
            Some(_) => {
                self.set_down(member.addr, events);
                self.alive.insert(member.addr, member.clone());
                events.push(MembershipEvent::Up(member));
            }
            None => {
                self.alive.insert(member.addr, member.clone());
                events.push(MembershipEvent::Up(member));
            }
        }
    }

    /// The member at `addr` is down: reports the identity reported up there, if any.
    fn set_down(&mut self, addr: SocketAddr, events: &mut Vec<MembershipEvent>) {
        if let Some(known) = self.alive.remove(&addr) {
            events.push(MembershipEvent::Down(known));
        }
    }

    /// The live members, ordered by address.
    pub(super) fn members(&self) -> Vec<MemberId> {
        let mut members: Vec<MemberId> = self.alive.values().cloned().collect();
        members.sort_unstable_by_key(|member| member.addr);
        members
    }

    /// Whether the member at `addr` is reported alive.
    pub(super) fn is_alive(&self, addr: &SocketAddr) -> bool {
        self.alive.contains_key(addr)
    }
}

#[cfg(test)]
mod tests {
    use foca::Identity;

    use super::*;
    use crate::cluster::membership::identity::tests::member;

    fn apply(
        view: &mut MemberView,
        notifications: Vec<OwnedNotification<MemberId>>,
    ) -> Vec<MembershipEvent> {
        let mut events = Vec::new();
        view.apply(notifications, &mut events);
        events
    }

    #[test]
    fn notifications_map_to_up_and_down_events() {
        use MembershipEvent::{Down, Up};
        use OwnedNotification::{MemberDown, MemberUp, Rename};

        let mut view = MemberView::default();
        let a = member(1, 10, 100, 0);
        assert_eq!(
            apply(&mut view, vec![MemberUp(a.clone())]),
            vec![Up(a.clone())]
        );
        assert_eq!(
            apply(&mut view, vec![MemberUp(a.clone())]),
            vec![],
            "no duplicate Up"
        );

        // A renewal of a live member: nothing; the later Down carries the reported identity.
        let a1 = a.renew().unwrap();
        assert_eq!(
            apply(&mut view, vec![Rename(a.clone(), a1.clone())]),
            vec![]
        );
        assert_eq!(view.members(), vec![a.clone()]);
        let a2 = a1.renew().unwrap();
        assert_eq!(
            apply(
                &mut view,
                vec![Rename(a1.clone(), a2.clone()), MemberDown(a2.clone())]
            ),
            vec![Down(a.clone())]
        );
        assert!(view.members().is_empty());

        // Back after a false Down, same incarnation: Up again.
        let a3 = a2.renew().unwrap();
        assert_eq!(
            apply(
                &mut view,
                vec![Rename(a2.clone(), a3.clone()), MemberUp(a3.clone())]
            ),
            vec![Up(a3.clone())]
        );

        // A restart at the same address while alive: Down(old) then Up(new).
        let restarted = member(1, 11, 200, 0);
        assert_eq!(
            apply(&mut view, vec![Rename(a3.clone(), restarted.clone())]),
            vec![Down(a3.clone()), Up(restarted.clone())]
        );

        // A rename between two down identities: nothing.
        assert_eq!(
            apply(&mut view, vec![MemberDown(restarted.clone())]),
            vec![Down(restarted.clone())]
        );
        let again = member(1, 12, 300, 0);
        assert_eq!(
            apply(&mut view, vec![Rename(restarted, again.clone())]),
            vec![]
        );
        assert_eq!(
            apply(&mut view, vec![MemberDown(again), OwnedNotification::Idle]),
            vec![]
        );
    }
}
