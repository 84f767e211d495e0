//! The cluster layer's long-running tasks besides links: membership events, the core's
//! timer and the flusher of bursts of local writes.

use std::sync::Weak;
use std::sync::atomic::Ordering;
use std::time::Instant;

use tokio::sync::mpsc;

use super::{Cluster, lock};
use crate::cluster::membership::MembershipEvent;
use crate::pid::Incarnation;

pub(super) async fn membership_loop(
    cluster: Weak<Cluster>,
    mut events: mpsc::UnboundedReceiver<MembershipEvent>,
) {
    while let Some(event) = events.recv().await {
        let Some(cluster) = cluster.upgrade() else {
            return;
        };
        match event {
            MembershipEvent::Up(member) => {
                node_info!(cluster, peer = %member.name, incarnation = member.incarnation, "member up");
                cluster.member_up(&member);
            }
            MembershipEvent::Down(member) => {
                node_info!(cluster, peer = %member.name, incarnation = member.incarnation, "member down");
                cluster.peer_dead(Incarnation::new(member.incarnation), false);
            }
            MembershipEvent::Left(member) => {
                node_info!(cluster, peer = %member.name, incarnation = member.incarnation, "member left");
                cluster.peer_dead(Incarnation::new(member.incarnation), true);
            }
            // Already down: as a member that left, its record is marked so and a link from
            // it refused; a link or entries it got back since its down are dropped.
            MembershipEvent::LeftEarlier(incarnation) => {
                cluster.peer_dead(Incarnation::new(incarnation), true);
            }
        }
        // Who is reachable changed: the split-brain verdict may have too.
        cluster.node.members_changed();
    }
}

/// The core's timer: sleeps until [`Core::poll_timeout`](crate::replication::core::Core::poll_timeout)
/// and hands the core the time then, with no other wake-up: a core call that brings the
/// deadline forward (or sets the first) re-arms it through `timer_rearm` (see
/// `Cluster::core_step`), so a wrong `None` would stop the timer, not be hidden by a poll.
pub(super) async fn timer_loop(cluster: Weak<Cluster>) {
    loop {
        let (deadline, rearm) = {
            let Some(cluster) = cluster.upgrade() else {
                return;
            };
            let next = lock(&cluster.core).poll_timeout();
            (
                next.map(tokio::time::Instant::from_std),
                cluster.timer_rearm.clone(),
            )
        };
        match deadline {
            Some(at) => {
                tokio::select! {
                    () = tokio::time::sleep_until(at) => {}
                    () = rearm.notified() => continue,
                }
            }
            None => {
                rearm.notified().await;
                continue;
            }
        }
        let Some(cluster) = cluster.upgrade() else {
            return;
        };
        let now = tokio::time::Instant::now().into_std();
        cluster.with_core(|core, node| core.handle_timeout(node, now));
    }
}

/// How many times the flusher yields its CPU, after a flush that moved ops, for another
/// write to arrive before it parks, when busy polling is off (`ClusterConfig::busy_poll`
/// zero; with a window, it polls until the window ends). A write that finds the flusher parked pays a futex
/// wake-up (a system call and, on another CPU, an inter-processor interrupt: about a fifth
/// of a process death's cost on the project's machine); one that finds it awake pays an
/// atomic swap. A burst of writes (processes dropped in a loop, a `kill` of many) thus
/// wakes the flusher once, not once per write. Not a timer: the flusher stops yielding as
/// soon as a write arrives or after this many yields, and only after a flush that found
/// work, so an idle node never spins. Chosen by measurement: two rounds of 50K
/// registrations then 50K deaths in a loop, with a peer linked, made 16.5K futex calls
/// before and 200-1,200 with 8; a lone write costs the flusher at most eight
/// `sched_yield` calls (a few microseconds) after it is sent.
const LINGER_YIELDS: u32 = 8;

/// The flusher thread: hands the ops of local writes to the core and sends them each
/// time a write wakes it (see `on_local_ops`), inside the node's runtime (acting on the
/// core's events may spawn tasks). Ends when the cluster layer stops or is gone.
pub(super) fn flusher_loop(cluster: &Weak<Cluster>, runtime: &tokio::runtime::Handle) {
    let _runtime = runtime.enter();
    loop {
        // An unpark that came before the park is kept, so no wake-up is lost; a spurious
        // one only costs an empty flush.
        std::thread::park();
        let Some(cluster) = cluster.upgrade() else {
            return;
        };
        if cluster.stopped.load(Ordering::Acquire) {
            return;
        }
        if cluster.flush() {
            // Linger while writes keep coming: a write in the meantime finds us awake.
            while linger(&cluster) {
                cluster.flush();
            }
        }
    }
}

/// After a flush that moved ops, waits awake for the next write: `true` as soon as one
/// is pending, `false` once the flusher should park. With a busy-poll window, polls until
/// it ends (yielding the CPU between polls); without one, yields at most
/// [`LINGER_YIELDS`] times.
fn linger(cluster: &Cluster) -> bool {
    let pending = || cluster.flush_pending.load(Ordering::Acquire);
    if cluster.busy_poll.is_zero() {
        for _ in 0..LINGER_YIELDS {
            if pending() {
                return true;
            }
            std::thread::yield_now();
        }
        return false;
    }
    let deadline = Instant::now() + cluster.busy_poll;
    loop {
        if pending() {
            return true;
        }
        if cluster.stopped.load(Ordering::Acquire) || Instant::now() >= deadline {
            return false;
        }
        std::thread::yield_now();
    }
}
