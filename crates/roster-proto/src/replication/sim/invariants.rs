//! The simulation's invariants, checked once the cluster has settled (see [`Sim::check`]),
//! and the digest of a run's final state that a replay must reproduce.

use std::collections::{BTreeMap, BTreeSet};

use super::{SCOPES, Sim, SimNode};
use crate::store::ScopeStore;
use crate::vocab::event::ExitReason;
use crate::vocab::key::Key;
use crate::vocab::pid::Pid;

impl Sim {
    /// Checks the invariants after a heal (every node holds the same view, nothing of a
    /// dead process or node survives, every unique name has one owner, no live process
    /// lost a name it did not lose by a conflict; see `docs/architecture.md`, "Testing");
    /// returns what is wrong.
    pub(super) fn check(&self) -> Vec<String> {
        let mut problems = Vec::new();
        problems.extend(self.net.violations.iter().cloned());
        problems.extend(self.check_links(true));
        problems.extend(self.check_nodes());
        let in_flight = self.net.in_flight();
        if in_flight > 0 {
            problems.push(format!(
                "{in_flight} frames still in flight after the heal budget"
            ));
        }
        // Processes the harness did not end can only have died by losing a conflict.
        for node in self.nodes.iter().flatten() {
            for p in node.processes.iter().filter(|p| !p.is_alive()) {
                if !matches!(p.exit_reason(), Some(ExitReason::Conflict { .. })) {
                    problems.push(format!(
                        "{}: {} died of {:?}",
                        node.name,
                        p.pid,
                        p.exit_reason()
                    ));
                }
            }
        }
        let live_pids: BTreeSet<Pid> = self
            .nodes
            .iter()
            .flatten()
            .flat_map(|n| n.processes.iter().filter(|p| p.is_alive()).map(|p| p.pid))
            .collect();
        for scope in SCOPES {
            let members: Vec<&SimNode> = self
                .nodes
                .iter()
                .flatten()
                .filter(|n| n.stores.get(scope).is_some())
                .collect();
            let views: Vec<(String, View)> = members
                .iter()
                .map(|n| {
                    (
                        n.name.clone(),
                        view(&n.stores.get(scope).expect("connected")),
                    )
                })
                .collect();
            for (name, v) in &views {
                for (key, pid) in v.names.iter().map(|(k, (p, _))| (k, p)) {
                    if !live_pids.contains(pid) {
                        problems.push(format!("{name}/{scope}: name {key} held by dead {pid}"));
                    }
                }
                for (key, pid, _) in &v.members {
                    if !live_pids.contains(pid) {
                        problems.push(format!("{name}/{scope}: group {key} has dead {pid}"));
                    }
                }
                if v != &views[0].1 {
                    problems.push(format!(
                        "{scope}: view of {name} differs from {}:\n  {:?}\n  {:?}",
                        views[0].0, v, views[0].1
                    ));
                }
            }
            // Digests cover shadowed contenders too: every node must hold the same entries
            // of every origin, and none of an origin that is gone.
            let origins: BTreeSet<u64> = self.live_origins().into_iter().collect();
            for n in &members {
                let state = n.stores.get(scope).expect("connected");
                for origin in state.remote_origins() {
                    if !origins.contains(&origin) {
                        problems.push(format!(
                            "{}/{scope}: holds entries of gone incarnation {origin}",
                            n.name
                        ));
                    }
                }
                for &origin in &origins {
                    let first = members[0]
                        .stores
                        .get(scope)
                        .expect("connected")
                        .digest(origin);
                    if state.digest(origin) != first {
                        problems.push(format!(
                            "{}/{scope}: digest of origin {origin} differs from {}'s",
                            n.name, members[0].name
                        ));
                    }
                }
            }
        }
        for node in self.nodes.iter().flatten() {
            for (pid, expected) in node
                .expected
                .iter()
                .filter(|(pid, _)| live_pids.contains(pid))
            {
                for (scope, key) in expected {
                    let owner = node.stores.get(scope).and_then(|s| s.whereis(key));
                    if owner != Some(*pid) {
                        problems.push(format!(
                            "{}: live {pid} lost {scope}/{key} (owner now {owner:?}) without a conflict",
                            node.name
                        ));
                    }
                }
            }
        }
        problems
    }
}

#[derive(Debug, PartialEq, Eq)]
pub(super) struct View {
    pub(super) names: BTreeMap<Key, (Pid, Vec<u8>)>,
    pub(super) members: BTreeSet<(Key, Pid, Vec<u8>)>,
}

pub(super) fn view(scope: &ScopeStore) -> View {
    let names = scope
        .registered("", usize::MAX)
        .into_iter()
        .map(|(k, r)| (k, (r.pid, r.meta.as_bytes().to_vec())))
        .collect();
    let mut members = BTreeSet::new();
    for key in scope.group_keys("", usize::MAX) {
        for m in scope.members(&key, None).iter() {
            members.insert((key.clone(), m.pid(), m.meta().as_bytes().to_vec()));
        }
    }
    View { names, members }
}

impl Sim {
    /// A digest of what every live node holds: its identity, and per scope its view and
    /// the digest of every origin's entries. Two runs of a seed must end with the same.
    pub(super) fn state_digest(&self) -> u64 {
        let origins = self.live_origins();
        let mut state = String::new();
        for node in self.nodes.iter().flatten() {
            state.push_str(&format!("{}#{}:", node.name, node.incarnation));
            for scope in SCOPES {
                if let Some(store) = node.stores.get(scope) {
                    state.push_str(&format!("{scope}={:?}", view(&store)));
                    for origin in &origins {
                        state.push_str(&format!(",{origin}:{:x}", store.digest(*origin)));
                    }
                }
            }
        }
        state.bytes().fold(0xcbf2_9ce4_8422_2325, |hash, b| {
            (hash ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
        })
    }
}
