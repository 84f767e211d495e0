//! Every store of one node: its scope stores by name, its process table and the outbox of
//! local writes. What a node and the test harnesses share: connecting and disconnecting
//! scopes, ending processes (dead first, then their entries removed), and the outbox the
//! replication core is fed from. No runtime, no IO.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use super::{ApplyOutcome, LocalProcess, Mailbox, ProcessTable};
use super::{ScopeConfig, ScopeStore};
use crate::nodes::{Fence, NodeRegistry};
use crate::vocab::clock::Clock;
use crate::vocab::event::ExitReason;
use crate::vocab::key::ScopeName;
use crate::vocab::op::{Outbox, Outgoing};
use crate::vocab::pid::{Incarnation, Pid};

type ScopeMap = papaya::HashMap<ScopeName, Arc<ScopeStore>, foldhash::fast::RandomState>;

/// Heartbeats kept per node until the node sets another bound: two minutes at one a
/// second.
pub(super) const DEFAULT_HEARTBEAT_RING: usize = 120;

/// The scope name used when none is given; every node is connected to it.
pub const DEFAULT_SCOPE: &str = "default";

/// A scope exists with the other kind (local-only or replicated).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KindMismatch;

/// The stores of one node.
pub struct NodeStores {
    /// The node's local processes.
    pub processes: Arc<ProcessTable>,
    /// Every node this node knows of, with its record and recent heartbeats.
    pub nodes: NodeRegistry,
    next_serial: AtomicU64,
    scopes: ScopeMap,
    default_scope: Arc<ScopeStore>,
    config: ScopeConfig,
    /// A reading every clock of the node is past: the one it was started past (a reading
    /// saved by its previous run) and those of the scopes it disconnected from, so that a
    /// scope connected again does not start its clocks below tokens it showed before.
    clock_floor: AtomicU64,
}

impl NodeStores {
    /// The stores of a node connected to the default scope only. `config` is shared by
    /// every scope store (its process table must be `config.locals`).
    pub fn new(config: ScopeConfig) -> Self {
        let default_scope = ScopeStore::new(DEFAULT_SCOPE.into(), false, config.clone());
        let scopes = ScopeMap::default();
        scopes
            .pin()
            .insert(DEFAULT_SCOPE.into(), default_scope.clone());
        Self {
            processes: config.locals.clone(),
            nodes: NodeRegistry::new(DEFAULT_HEARTBEAT_RING),
            next_serial: AtomicU64::new(1),
            scopes,
            default_scope,
            config,
            clock_floor: AtomicU64::new(0),
        }
    }

    /// Moves every clock of the node past `reading`, those of scopes connected later
    /// too: a reading of [`NodeStores::clock_reading`] saved by the node's previous run,
    /// so that the new incarnation mints no token below one the old one minted or showed.
    pub fn start_clocks_past(&self, reading: u64) {
        self.clock_floor.fetch_max(reading, Ordering::Relaxed);
        for scope in self.all() {
            scope.observe_clock(reading);
        }
    }

    /// The highest reading of the node's clocks: no token the node minted or showed is
    /// above it.
    pub fn clock_reading(&self) -> u64 {
        self.scopes
            .pin()
            .values()
            .map(|scope| scope.clock_reading())
            .fold(self.clock_floor.load(Ordering::Relaxed), u64::max)
    }

    /// How many times a custom conflict resolver panicked on this node (keep-oldest
    /// decided each time).
    pub fn resolver_panics(&self) -> u64 {
        self.config.resolver_panics.load(Ordering::Relaxed)
    }

    /// The default scope's store.
    pub fn default_scope(&self) -> &Arc<ScopeStore> {
        &self.default_scope
    }

    /// A new live local process whose messages go to `mailbox`, in the process table.
    pub fn new_process(&self, mailbox: Box<dyn Mailbox>) -> Arc<LocalProcess> {
        let serial = self.next_serial.fetch_add(1, Ordering::Relaxed);
        let pid = Pid::new(Incarnation::new(self.processes.incarnation), serial);
        let live = &self.processes.live;
        live.insert(serial);
        let process = Arc::new(LocalProcess::new(pid, live.clone(), mailbox));
        self.processes.cells.pin().insert(pid, process.clone());
        process
    }

    /// A local process that has not finished exiting.
    pub fn process(&self, pid: Pid) -> Option<Arc<LocalProcess>> {
        self.processes.cells.pin().get(&pid).cloned()
    }

    /// Ends a process: marks it dead, then removes its entries scope by scope (one event
    /// batch per subscriber and scope). Does nothing and returns `false` if it had already
    /// exited.
    pub fn exit(&self, process: &LocalProcess, reason: ExitReason) -> bool {
        let Some(mut held) = process.mark_dead(reason.clone()) else {
            return false;
        };
        // By scope name, not address: the order of the removals (the order of their ops on
        // the wire) must not depend on the allocator, or a run could not be replayed. Stores
        // of one name (one disconnected, one connected since) stay apart, in the order the
        // process first held something in each (both sorts are stable).
        let mut stores: Vec<Arc<ScopeStore>> = Vec::new();
        for h in &held {
            if !stores.iter().any(|s| Arc::ptr_eq(s, &h.scope)) {
                stores.push(h.scope.clone());
            }
        }
        stores.sort_by(|a, b| a.name.cmp(&b.name));
        held.sort_by_key(|h| stores.iter().position(|s| Arc::ptr_eq(s, &h.scope)));
        for same_scope in held.chunk_by(|a, b| Arc::ptr_eq(&a.scope, &b.scope)) {
            same_scope[0]
                .scope
                .remove_exited(process.pid, same_scope, &reason);
        }
        self.processes.live.exit_finished();
        // Kept in the table until now so that a writer replacing one of its entries can
        // still read its exit reason.
        self.processes.cells.pin().remove(&process.pid);
        if let Some(log) = self.processes.changes.active() {
            log.exited(process.pid, &reason);
        }
        true
    }

    /// Local processes lost names in conflicts (`outcome.lost`; the names are already
    /// removed): each is ended with [`ExitReason::Conflict`] and its task aborted, or, if
    /// the node keeps conflict losers ([`ScopeConfig::end_conflict_losers`] off), told
    /// through [`LocalProcess::lost_name`]. Processes already gone are skipped. What an
    /// exit removes goes out as local ops.
    pub fn conflicts_lost(&self, outcome: ApplyOutcome) {
        for (loser, key, winner) in outcome.lost {
            let Some(process) = self.process(loser) else {
                continue;
            };
            if !self.config.end_conflict_losers {
                process.lost_name(key, winner);
            } else if self.exit(&process, ExitReason::Conflict { key, winner }) {
                process.abort_task();
            }
        }
    }

    /// A connected scope's store.
    pub fn get(&self, name: &str) -> Option<Arc<ScopeStore>> {
        self.scopes.pin().get(name).cloned()
    }

    /// The connected replicated (not local-only) scope stores, by name.
    pub fn replicated(&self) -> impl Iterator<Item = Arc<ScopeStore>> + '_ {
        self.all()
            .into_iter()
            .filter(|s| !s.local_only && s.is_connected())
    }

    /// Every connected scope's store, by name.
    pub fn all(&self) -> Vec<Arc<ScopeStore>> {
        let mut scopes: Vec<Arc<ScopeStore>> = self.scopes.pin().values().cloned().collect();
        scopes.sort_by(|a, b| a.name.cmp(&b.name));
        scopes
    }

    /// Connects to `name` (or returns the connected store); `true` if it was created.
    pub fn connect(
        &self,
        name: &str,
        local_only: bool,
    ) -> Result<(Arc<ScopeStore>, bool), KindMismatch> {
        let scopes = self.scopes.pin();
        let mut created = false;
        let store = scopes.get_or_insert_with(name.into(), || {
            created = true;
            ScopeStore::new(name.into(), local_only, self.config.clone())
        });
        if store.local_only != local_only {
            return Err(KindMismatch);
        }
        if created {
            store.observe_clock(self.clock_floor.load(Ordering::Relaxed));
        }
        Ok((store.clone(), created))
    }

    /// Disconnects `store` if it is still the connected store of its scope: closes it (its
    /// subscribers get the final batch) and forgets what local processes held in it.
    /// `false` if it was not connected any more.
    pub fn disconnect(&self, store: &Arc<ScopeStore>) -> bool {
        let scopes = self.scopes.pin();
        let removed = scopes.remove_if(&store.name, |_, current| Arc::ptr_eq(current, store));
        if !matches!(removed, Ok(Some(_))) {
            return false;
        }
        drop(scopes);
        self.clock_floor
            .fetch_max(store.clock_reading(), Ordering::Relaxed);
        for pid in store.close() {
            if let Some(process) = self.process(pid) {
                store.forget_all_holdings(&process);
            }
        }
        true
    }

    /// Takes the ops of local writes not yet handed to the replication core.
    pub fn take_local_ops(&self) -> Vec<Outgoing> {
        self.outbox().map(Outbox::take).unwrap_or_default()
    }

    /// The wall clock of the node's stores.
    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.config.clock
    }

    /// The node's fence (raised on the losing side of a partition when fencing).
    pub fn fence(&self) -> &Arc<Fence> {
        &self.config.fence
    }

    /// The outbox of local writes, when the node replicates.
    pub fn outbox(&self) -> Option<&Outbox> {
        self.config.outbox.as_deref()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use crate::store::test_support::{Discard, replicating_stores};
    use crate::vocab::clock::Clock;
    use crate::vocab::meta::Meta;

    /// A wall clock stopped at the epoch: every reading comes from the clocks' own past.
    struct Epoch;

    impl Clock for Epoch {
        fn now_millis(&self) -> u64 {
            0
        }
    }

    /// A dying process's entries go scope by scope in the order of the scopes' names,
    /// whatever order the stores were created in (so their addresses) and the process
    /// took its entries in: the removals' ops must come out the same in every run.
    #[test]
    fn an_exit_removes_scope_by_scope_in_the_order_of_the_names() {
        use crate::store::test_support::replicating_stores;
        use crate::vocab::event::ExitReason;
        let stores = replicating_stores(2, crate::vocab::clock::wall_clock());
        // Created last name first: addresses tend to grow, so against the names' order.
        let names = ["s7", "s6", "s5", "s4", "s3", "s2", "s1", "s0"];
        for name in names {
            stores.connect(name, false).unwrap();
        }
        let process = stores.new_process(Box::new(Discard));
        for name in ["s3", "s0", "s6", "s1", "s7", "s4", "s2", "s5", "default"] {
            let scope = stores.get(name).unwrap();
            scope.register(&process, "n".into(), Meta::EMPTY).unwrap();
            scope.join(&process, "g".into(), Meta::EMPTY).unwrap();
        }
        stores.take_local_ops();
        assert!(stores.exit(&process, ExitReason::Normal));
        let scopes: Vec<String> = stores
            .take_local_ops()
            .into_iter()
            .map(|(scope, _, _)| scope.to_string())
            .collect();
        let mut expected: Vec<String> = ["default", "s0", "s1", "s2", "s3", "s4", "s5", "s6", "s7"]
            .iter()
            .flat_map(|s| [s.to_string(), s.to_string()])
            .collect();
        expected.sort();
        assert_eq!(scopes, expected);
    }

    /// A node started past a saved reading mints tokens above it, in the scopes it has and
    /// in those it connects later, and a scope connected again after a disconnect starts
    /// past the readings it had.
    #[test]
    fn a_node_started_past_a_reading_mints_no_token_below_it() {
        let stores = replicating_stores(2, Arc::new(Epoch));
        let saved = 1_000_000;
        stores.start_clocks_past(saved);
        assert!(stores.clock_reading() >= saved);
        let process = stores.new_process(Box::new(Discard));
        let first = stores
            .default_scope()
            .register(&process, "k".into(), Meta::EMPTY)
            .unwrap();
        assert!(first.token > saved);
        let (later, created) = stores.connect("later", false).unwrap();
        assert!(created);
        let token = later
            .register(&process, "k".into(), Meta::EMPTY)
            .unwrap()
            .token;
        assert!(token > saved);

        // The scope goes and comes back: its clocks start past what it showed.
        for i in 0..100 {
            later
                .register(&process, format!("k{i}").into(), Meta::EMPTY)
                .unwrap();
        }
        let shown = later.clock_reading();
        assert!(stores.disconnect(&later));
        let (again, created) = stores.connect("later", false).unwrap();
        assert!(created);
        let token = again
            .register(&process, "k".into(), Meta::EMPTY)
            .unwrap()
            .token;
        assert!(token > shown, "{token} after {shown}");
        assert!(stores.clock_reading() >= token);
    }
}
