//! The simulation's event pump: each node's local ops and core outputs handed to the
//! network, membership announced, time advanced with frames and connections delivered,
//! and the run itself: steps of workload and faults, then the heal and the settling.

use std::time::{Duration, Instant};

use rand::Rng;

use super::Sim;
use crate::replication::core::CoreEvent;
use crate::vocab::pid::Incarnation;

/// The most deadlines one [`Sim::advance`] stops at.
const MAX_DEADLINES: usize = 100_000;

impl Sim {
    /// Moves every frame a node's core queued onto its links, and acts on its events.
    pub(super) fn flush(&mut self, from: usize) {
        let Some(node) = self.nodes[from].as_mut() else {
            return;
        };
        let mut outgoing = Vec::new();
        let mut closed_by_core = Vec::new();
        // Catch-up comes a frame at a time, as a socket would drain it.
        loop {
            let peers = node.core.peers_with_transmits();
            let before = outgoing.len();
            for peer in peers {
                let frames = node.core.poll_transmit(peer);
                if !frames.is_empty() {
                    outgoing.push((peer, frames));
                }
            }
            if outgoing.len() == before {
                break;
            }
        }
        // The events, in order, as the driver acts on them.
        while let Some(event) = node.core.poll_event() {
            match event {
                CoreEvent::Overloaded { session, .. } => closed_by_core.push(session),
                CoreEvent::Silent { session, .. } => {
                    self.net.counts.silent += 1;
                    closed_by_core.push(session);
                }
                CoreEvent::Vanished { .. } => self.net.counts.vanished += 1,
                // The workload sends no messages.
                CoreEvent::Deliver(_)
                | CoreEvent::Dispatch(_)
                | CoreEvent::Repaired { .. }
                | CoreEvent::GapDetected { .. }
                | CoreEvent::Skipped { .. }
                | CoreEvent::PeerLimits(_) => {}
            }
        }
        let dials: Vec<_> = std::iter::from_fn(|| node.core.poll_dial()).collect();
        for (peer, frames) in outgoing {
            self.send(from, peer, frames);
        }
        // Closed by the core (overload, silence): the connection goes (the core redials).
        for session in closed_by_core {
            self.close_session(from, session);
        }
        self.start_dials(from, dials);
    }

    /// Membership tells node `i` and every other live node about each other; with
    /// `gossip`, each side perhaps later than the other (a node that joined a running
    /// cluster), else at once (the cluster's start).
    pub(super) fn announce(&mut self, i: usize, gossip: bool) {
        let me = self.nodes[i].as_ref().expect("alive").incarnation;
        for j in self.alive().into_iter().filter(|&j| j != i) {
            let peer = self.nodes[j].as_ref().expect("alive").incarnation;
            if gossip {
                self.member_up_sometime(i, peer);
                self.member_up_sometime(j, me);
            } else {
                self.member_up(i, peer);
                self.member_up(j, me);
            }
        }
    }

    /// Ends the partitions; membership sees every live node again.
    pub(super) fn heal(&mut self) {
        self.net.cut.clear();
        let declared = std::mem::take(&mut self.net.declared_dead);
        for (node, peers) in declared {
            for peer in peers {
                if self.nodes[node].is_some() && self.index_of(peer).is_some() {
                    self.member_up_sometime(node, peer);
                }
            }
        }
    }

    /// Lets `ms` of simulated time pass, as each node's timer would see it: time stops at
    /// every deadline a core reports ([`Core::poll_timeout`](crate::replication::core::Core::poll_timeout))
    /// on the way, so a timer a core does not report never fires (at most
    /// [`MAX_DEADLINES`] stops: a deadline that never moves on fails the run).
    pub(super) fn advance(&mut self, ms: u64) {
        let end = self.now + Duration::from_millis(ms);
        for _ in 0..MAX_DEADLINES {
            let now = self.now;
            let next = self
                .nodes
                .iter()
                .flatten()
                .filter_map(|n| n.core.poll_timeout())
                .filter(|at| *at > now && *at < end)
                .min();
            match next {
                Some(at) => self.step_to(at),
                None => return self.step_to(end),
            }
        }
        panic!("more than {MAX_DEADLINES} deadlines in {ms} ms: a timer that never moves on");
    }

    /// Moves time to `at`: every core is handed it, then what is due on the network.
    fn step_to(&mut self, at: Instant) {
        self.now = at;
        for i in self.alive() {
            let now = self.now;
            let mut node = self.nodes[i].take().expect("alive");
            self.set_clock(&mut node);
            node.step(|core, host| core.handle_timeout(host, now));
            self.nodes[i] = Some(node);
            self.flush(i);
        }
        let news: Vec<(usize, Incarnation)> = self
            .net
            .pending_members
            .iter()
            .filter(|(at, _, _)| *at <= self.now)
            .map(|(_, node, peer)| (*node, *peer))
            .collect();
        self.net.pending_members.retain(|(at, _, _)| *at > self.now);
        for (node, peer) in news {
            self.member_up(node, peer);
        }
        let now = self.now;
        let (due, later) = std::mem::take(&mut self.pending_deaths)
            .into_iter()
            .partition(|death| death.at <= now);
        self.pending_deaths = later;
        for death in due {
            let observers = match death.observer {
                Some(observer) => vec![observer],
                None => self.alive(),
            };
            for j in observers {
                self.declare_dead(j, death.incarnation, death.left);
            }
        }
        let (exits, later): (Vec<_>, _) = std::mem::take(&mut self.pending_exits)
            .into_iter()
            .partition(|(_, _, at)| *at <= now);
        self.pending_exits = later;
        for (a, incarnation, _) in exits {
            // Not if it crashed meanwhile (a new incarnation runs there).
            if self.nodes[a]
                .as_ref()
                .is_some_and(|n| n.incarnation == incarnation)
            {
                let notice = Duration::from_millis(self.rng.random_range(0..100));
                self.end_and_restart(a, "exit after the leave of", notice, true);
            }
        }
        self.node_duties();
        self.run_network();
        let zombies = self.check_links(false);
        self.net.violations.extend(zombies);
    }

    pub(super) fn run(&mut self, steps: usize) {
        for _ in 0..steps {
            if self.rng.random_bool(self.fault_rate) {
                self.fault_step();
            }
            self.workload_step();
            let ms = self.rng.random_range(0..10);
            self.advance(ms);
        }
        // Heal: no more faults; every crashed node's death is noticed; links come up.
        self.log.push(format!("t={} final heal", self.elapsed_ms()));
        self.heal();
        self.advance(5_000);
        for _ in 0..40 {
            self.advance(250);
        }
        self.settle();
    }

    /// Delivers what is in flight, without reaching the next anti-entropy round.
    pub(super) fn settle(&mut self) {
        for _ in 0..200 {
            if self.net.in_flight() == 0 {
                return;
            }
            self.advance(1);
        }
    }
}
