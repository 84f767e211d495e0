//! Who a member is: [`MemberId`] (address plus node instance), and the foca identity
//! rules that decide which of two identities at one address wins.

use std::net::SocketAddr;

/// Identity of a member as SWIM sees it.
#[derive(Clone, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[allow(dead_code)] // used by the transport layer (in progress)
pub(crate) struct MemberId {
    /// Cluster address of the node: its TCP listener and its UDP membership socket share
    /// this address (same IP and port).
    pub(crate) addr: SocketAddr,
    /// The node's incarnation (random u64 per start; identifies the Roster node instance).
    pub(crate) incarnation: u64,
    /// Human node name. It travels in every membership update, so keep it short (a few
    /// dozen bytes).
    pub(crate) name: String,
    /// Milliseconds since the Unix epoch when this node instance started (decides address
    /// conflicts: the newer start wins).
    pub(crate) started_at_ms: u64,
    /// foca renewal counter: bumped by [`foca::Identity::renew`] when this node learns it
    /// was wrongly declared down, so it rejoins with the same incarnation.
    pub(crate) bump: u32,
}

impl MemberId {
    /// The key that decides address conflicts: greater wins.
    fn conflict_rank(&self) -> (u64, u64, u32) {
        (self.started_at_ms, self.incarnation, self.bump)
    }

    /// A stand-in identity for an address whose member is unknown (a seed). foca accepts
    /// an announce addressed to any identity with its address.
    pub(super) fn placeholder(addr: SocketAddr) -> Self {
        Self {
            addr,
            incarnation: 0,
            name: String::new(),
            started_at_ms: 0,
            bump: 0,
        }
    }
}

impl foca::Identity for MemberId {
    type Addr = SocketAddr;

    /// The same node instance with `bump + 1`, which wins the address conflict against
    /// `self`; `None` once `bump` is `u32::MAX` (foca then goes defunct instead).
    fn renew(&self) -> Option<Self> {
        let bump = self.bump.checked_add(1)?;
        Some(Self {
            bump,
            ..self.clone()
        })
    }

    fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `self` wins if its `(started_at_ms, incarnation, bump)` is greater; equal ranks
    /// never win, so foca keeps the identity it already knows.
    fn win_addr_conflict(&self, adversary: &Self) -> bool {
        self.conflict_rank() > adversary.conflict_rank()
    }
}

#[cfg(test)]
pub(super) mod tests {
    use foca::Identity;

    use super::*;

    /// A member on 127.0.0.1:`port`; the other tests of the module use it too.
    pub(crate) fn member(port: u16, incarnation: u64, started_at_ms: u64, bump: u32) -> MemberId {
        MemberId {
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            incarnation,
            name: format!("node-{port}"),
            started_at_ms,
            bump,
        }
    }

    #[test]
    fn newer_start_wins_address_conflict_then_incarnation_then_bump() {
        let old = member(1, 9, 100, 7);
        let restarted = member(1, 1, 101, 0);
        assert!(restarted.win_addr_conflict(&old));
        assert!(!old.win_addr_conflict(&restarted));

        let same_ms = member(1, 10, 100, 0);
        assert!(same_ms.win_addr_conflict(&old));
        assert!(!old.win_addr_conflict(&same_ms));

        let renewed = old.renew().unwrap();
        assert!(renewed.win_addr_conflict(&old));
        assert!(!old.win_addr_conflict(&renewed));
        assert!(!old.win_addr_conflict(&old.clone()), "a tie never wins");
    }

    #[test]
    fn renew_bumps_and_keeps_the_instance() {
        let id = member(1, 42, 100, 3);
        let renewed = id.renew().unwrap();
        assert_eq!(renewed.bump, 4);
        assert_eq!(
            MemberId {
                bump: 3,
                ..renewed.clone()
            },
            id
        );
        assert_eq!(renewed.addr(), id.addr);
        assert_eq!(member(1, 42, 100, u32::MAX).renew(), None);
    }
}
