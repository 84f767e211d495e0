//! The cluster layer's long-running tasks besides links: membership events, the core's
//! timer, the flusher of bursts of local writes, and the reaper of silent links and
//! vanished peers.

use std::sync::Weak;
use std::time::Duration;

use tokio::sync::mpsc;

use super::{Cluster, lock};
use crate::cluster::membership::MembershipEvent;

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
                tracing::info!(peer = %member.name, incarnation = member.incarnation, "member up");
                cluster.maybe_dial(member);
            }
            MembershipEvent::Down(member) => {
                tracing::info!(peer = %member.name, incarnation = member.incarnation, "member down");
                cluster.peer_dead(member.incarnation);
            }
        }
    }
}

pub(super) async fn timer_loop(cluster: Weak<Cluster>) {
    loop {
        let deadline = {
            let Some(cluster) = cluster.upgrade() else {
                return;
            };
            let next = lock(&cluster.core).poll_timeout();
            next.map(tokio::time::Instant::from_std)
        };
        match deadline {
            Some(at) => tokio::time::sleep_until(at).await,
            None => tokio::time::sleep(Duration::from_millis(200)).await,
        }
        let Some(cluster) = cluster.upgrade() else {
            return;
        };
        let now = tokio::time::Instant::now().into_std();
        cluster.with_core(|core, node| core.handle_timeout(node, now));
    }
}

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
        if cluster.stopped.load(std::sync::atomic::Ordering::Acquire) {
            return;
        }
        cluster.flush();
    }
}

/// Closes silent links, and purges peers that stayed unlinked past the grace period while
/// membership does not list them alive.
pub(super) async fn reaper_loop(cluster: Weak<Cluster>) {
    loop {
        tokio::time::sleep(Duration::from_millis(250)).await;
        let Some(cluster) = cluster.upgrade() else {
            return;
        };
        cluster.close_silent_links();
        let alive: Vec<u64> = cluster
            .members()
            .into_iter()
            .map(|m| m.incarnation)
            .collect();
        cluster.purge_vanished(&alive);
    }
}
