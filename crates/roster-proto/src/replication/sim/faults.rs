//! The simulation's faults: one random step of partitions, severs (of all links or of one
//! peer's), crashes and restarts, departures (a leave, then an exit and a restart), clock
//! skew and heals.

use std::time::Duration;

use rand::Rng;

use super::{PendingDeath, Sim, pair};

impl Sim {
    pub(super) fn fault_step(&mut self) {
        let alive = self.alive();
        match self.rng.random_range(0..8) {
            0 => self.drop_random_link(),
            1 if alive.len() >= 2 => {
                // Partition one node from the rest; SWIM may or may not declare it dead.
                let a = alive[self.rng.random_range(0..alive.len())];
                let dead = self.rng.random_bool(0.5);
                self.log
                    .push(format!("t={} partition {a} dead={dead}", self.elapsed_ms()));
                let a_inc = self.nodes[a].as_ref().expect("alive").incarnation;
                for &b in alive.iter().filter(|&&b| b != a) {
                    self.net.cut.insert(pair(a, b));
                    let b_inc = self.nodes[b].as_ref().expect("alive").incarnation;
                    let crossing: Vec<u64> = self
                        .net
                        .conns
                        .iter()
                        .filter(|(_, c)| {
                            let incs = [c.ends[0].incarnation, c.ends[1].incarnation];
                            incs.contains(&a_inc) && incs.contains(&b_inc)
                        })
                        .map(|(id, _)| *id)
                        .collect();
                    for conn in crossing {
                        self.break_conn(conn);
                    }
                    if dead {
                        self.net.declared_dead.entry(a).or_default().insert(b_inc);
                        self.net.declared_dead.entry(b).or_default().insert(a_inc);
                        self.declare_dead(a, b_inc, false);
                        self.declare_dead(b, a_inc, false);
                    }
                }
            }
            2 => {
                self.log.push(format!("t={} heal", self.elapsed_ms()));
                self.heal();
            }
            3 if alive.len() >= 2 => {
                let a = alive[self.rng.random_range(0..alive.len())];
                let detect = Duration::from_millis(self.rng.random_range(100..3000));
                self.end_and_restart(a, "crash", detect, false);
            }
            4 => {
                let a = alive[self.rng.random_range(0..alive.len())];
                let duration = Duration::from_millis(self.rng.random_range(0..500));
                self.log.push(format!(
                    "t={} sever {a} for {}ms",
                    self.elapsed_ms(),
                    duration.as_millis()
                ));
                self.sever(a, duration);
            }
            5 => {
                let a = alive[self.rng.random_range(0..alive.len())];
                self.change_status(a);
            }
            6 if alive.len() >= 2 => {
                let a = alive[self.rng.random_range(0..alive.len())];
                let others: Vec<usize> = alive.iter().copied().filter(|&b| b != a).collect();
                let b = others[self.rng.random_range(0..others.len())];
                let peer = self.nodes[b].as_ref().expect("alive").incarnation;
                let duration = Duration::from_millis(self.rng.random_range(0..800));
                self.log.push(format!(
                    "t={} cut {a} off {b} for {}ms",
                    self.elapsed_ms(),
                    duration.as_millis()
                ));
                self.sever_peer(a, peer, duration);
            }
            7 if alive.len() >= 2 => {
                let a = alive[self.rng.random_range(0..alive.len())];
                self.leave(a);
            }
            _ => {}
        }
    }

    /// Node `a` starts to leave, as `Node::shutdown` does: its core makes no new link
    /// from now on, each other node's membership reports it left after its own delay (the
    /// leave notice's gossip), and its process ends a little later (its links close then)
    /// and restarts as a new incarnation. It keeps running its workload until then.
    fn leave(&mut self, a: usize) {
        let now = self.now;
        let node = self.nodes[a].as_mut().expect("alive");
        let incarnation = node.incarnation;
        node.core.leave(now);
        self.net.leaving.insert(incarnation);
        self.log.push(format!(
            "t={} leave {a} (incarnation {incarnation})",
            self.elapsed_ms()
        ));
        for observer in self.alive().into_iter().filter(|&j| j != a) {
            let at = now + Duration::from_millis(self.rng.random_range(0..100));
            self.pending_deaths.push(PendingDeath {
                at,
                observer: Some(observer),
                incarnation,
                left: true,
            });
        }
        let exit = now + Duration::from_millis(self.rng.random_range(0..300));
        self.pending_exits.push((a, incarnation, exit));
    }

    /// The process of node `a` ends (`why`: a crash, or the exit after a leave): its
    /// connections break, and every live node's membership reports it dead (`left`: as
    /// having left) `detect` later, the nodes that started since included. It restarts at
    /// once as a new incarnation, which membership announces.
    pub(super) fn end_and_restart(&mut self, a: usize, why: &str, detect: Duration, left: bool) {
        let ended = self.nodes[a].take().expect("alive");
        self.conflict_losers += ended.conflict_losers();
        let incarnation = ended.incarnation;
        self.log.push(format!(
            "t={} {why} {a} (incarnation {incarnation})",
            self.elapsed_ms()
        ));
        self.crash_links(a, incarnation);
        self.net.declared_dead.remove(&a);
        self.net.departed.remove(&a);
        self.pending_deaths.push(PendingDeath {
            at: self.now + detect,
            observer: None,
            incarnation,
            left,
        });
        drop(ended);
        let restarted = self.boot(a);
        self.log.push(format!(
            "t={} restart {a} as incarnation {}",
            self.elapsed_ms(),
            restarted.incarnation
        ));
        self.nodes[a] = Some(restarted);
        self.publish_record(a);
        self.announce(a, true);
    }
}
