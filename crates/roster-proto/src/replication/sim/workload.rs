//! The simulation's workload: one random step of registrations, group changes, process
//! deaths and scope changes on a random live node.

use std::collections::BTreeSet;

use rand::Rng;

use super::{GROUPS, NAMES, SCOPES, Sim};
use crate::vocab::event::ExitReason;
use crate::vocab::meta::Meta;
use crate::vocab::pid::Pid;

impl Sim {
    pub(super) fn workload_step(&mut self) {
        let alive = self.alive();
        let i = alive[self.rng.random_range(0..alive.len())];
        let choice = self.rng.random_range(0..100);
        let scope_name = SCOPES[self.rng.random_range(0..SCOPES.len())];
        let mut node = self.nodes[i].take().expect("alive");
        let scope = node.stores.get(scope_name);
        match choice {
            0..=9 => {
                let process = node.new_process();
                node.processes.push(process);
            }
            10..=34 => {
                if let (Some(scope), false) = (scope, node.processes.is_empty()) {
                    let p = &node.processes[self.rng.random_range(0..node.processes.len())];
                    let key = NAMES[self.rng.random_range(0..NAMES.len())];
                    let meta = self.rng.random_range(0..3u8);
                    let meta = Meta::encode(&meta).expect("a small number");
                    let held = scope.whereis(key) == Some(p.pid);
                    let fenced = node.stores.fence().current();
                    if fenced.is_some() && !held {
                        self.fenced_steps.registrations += 1;
                    }
                    let registered = scope.register(p, key.into(), meta).is_ok();
                    if registered && !held && fenced.is_some() {
                        self.net.violations.push(format!(
                            "t={} {}: registered {key} while fenced ({fenced:?})",
                            self.elapsed_ms(),
                            node.name
                        ));
                    }
                    if registered {
                        node.expected
                            .entry(p.pid)
                            .or_default()
                            .insert((scope_name.to_owned(), key.into()));
                    }
                }
            }
            35..=44 => {
                if let (Some(scope), false) = (scope, node.processes.is_empty()) {
                    let p = &node.processes[self.rng.random_range(0..node.processes.len())];
                    let key = NAMES[self.rng.random_range(0..NAMES.len())];
                    if scope.unregister(p, &key.into()).is_ok()
                        && let Some(set) = node.expected.get_mut(&p.pid)
                    {
                        set.remove(&(scope_name.to_owned(), key.into()));
                    }
                }
            }
            45..=64 => {
                if let (Some(scope), false) = (scope, node.processes.is_empty()) {
                    let p = &node.processes[self.rng.random_range(0..node.processes.len())];
                    let key = GROUPS[self.rng.random_range(0..GROUPS.len())];
                    let meta =
                        Meta::encode(&self.rng.random_range(0..3u8)).expect("a small number");
                    let _ = scope.join(p, key.into(), meta);
                }
            }
            65..=74 => {
                if let (Some(scope), false) = (scope, node.processes.is_empty()) {
                    let p = &node.processes[self.rng.random_range(0..node.processes.len())];
                    let key = GROUPS[self.rng.random_range(0..GROUPS.len())];
                    let _ = scope.leave(p, &key.into());
                }
            }
            75..=84 => {
                if !node.processes.is_empty() {
                    let p = node
                        .processes
                        .swap_remove(self.rng.random_range(0..node.processes.len()));
                    node.expected.remove(&p.pid);
                    let reason = if self.rng.random_bool(0.5) {
                        ExitReason::Killed
                    } else {
                        ExitReason::Normal
                    };
                    node.stores.exit(&p, reason);
                }
            }
            85..=92 => {
                let name = SCOPES[1 + self.rng.random_range(0..SCOPES.len() - 1)];
                if self.scopes[i].insert(name) {
                    node.stores
                        .connect(name, false)
                        .expect("a replicated scope");
                    node.step(|core, host| core.handle_scope_connected(host, &name.into()));
                }
            }
            _ => {
                let name = SCOPES[1 + self.rng.random_range(0..SCOPES.len() - 1)];
                if self.scopes[i].remove(name) {
                    let store = node.stores.get(name).expect("connected");
                    node.stores.disconnect(&store);
                    for set in node.expected.values_mut() {
                        set.retain(|(s, _)| s != name);
                    }
                    node.step(|core, _| core.handle_scope_disconnected(&name.into()));
                }
            }
        }
        node.step(|core, host| core.handle_local_ops(host));
        // Processes that lost a name in a conflict were ended by the node.
        self.conflict_losers += node.conflict_losers();
        node.processes.retain(|p| p.is_alive());
        let live: BTreeSet<Pid> = node.processes.iter().map(|p| p.pid).collect();
        node.expected.retain(|pid, _| live.contains(pid));
        self.nodes[i] = Some(node);
        self.flush(i);
    }
}
