//! Barriers: a round trip to every peer after our latest ops, to learn that each has
//! applied them and that everything it sent before that has reached us.
//!
//! [`Core::barrier`](super::core::Core::barrier) pings each peer that is linked and that
//! we replicate the scope to. The ping is queued behind every op of ours due to that peer:
//! the ops of local writes are taken first in every core call, and a peer still catching
//! up with one of our streams gets the ping after its catch-up. A peer answers a barrier
//! ping the same way, behind every op of its own due to us. Links are FIFO, so when the
//! pong arrives the peer has applied every op we wrote before the ping, and every op the
//! peer wrote before applying ours has been applied here. That is what a standby needs to
//! know that no concurrent claim of a linked peer is still on its way
//! (`Process::await_name` in the `roster` crate).
//!
//! A barrier stops waiting for a peer whose link closes or is replaced (the peer's claims,
//! if any, are resolved when it links again, like any partition's); a peer that links or
//! joins the scope after the barrier was set is not waited for.
//! Barrier pings carry ids with the high bit set, so they never touch the round-trip time
//! measured by the periodic pings.

use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::task::{Context, Poll, Waker};

use crate::vocab::pid::Incarnation;

/// The high bit marks the ids of barrier pings.
const BARRIER_PING: u64 = 1 << 63;

/// Whether a ping's id is a barrier's.
pub(super) fn is_barrier_ping(id: u64) -> bool {
    id & BARRIER_PING != 0
}

/// The peers a barrier still waits for, and who to wake.
#[derive(Default)]
struct BarrierState {
    /// `(peer, ping id)` not answered yet.
    waiting: Vec<(Incarnation, u64)>,
    waker: Option<Waker>,
}

/// The barriers of a core that are still waited for.
#[derive(Default)]
pub(super) struct Barriers {
    next_id: u64,
    open: Vec<Weak<Mutex<BarrierState>>>,
}

/// A round trip to every peer in sync in a scope, set by [`super::core::Core::barrier`]: reached once
/// each has answered, or stopped being linked. Dropping it stops the waiting (late
/// answers are ignored).
pub struct Barrier {
    state: Arc<Mutex<BarrierState>>,
}

fn lock(state: &Mutex<BarrierState>) -> MutexGuard<'_, BarrierState> {
    // Every critical section leaves the state consistent.
    state.lock().unwrap_or_else(|e| e.into_inner())
}

impl Barrier {
    /// Whether every peer answered or went away.
    pub fn is_reached(&self) -> bool {
        lock(&self.state).waiting.is_empty()
    }

    /// The peers not heard from yet (incarnations).
    pub fn waiting_for(&self) -> Vec<Incarnation> {
        lock(&self.state).waiting.iter().map(|(p, _)| *p).collect()
    }

    /// Ready once the barrier is reached; otherwise wakes `cx` when it is.
    pub fn poll_reached(&self, cx: &mut Context<'_>) -> Poll<()> {
        let mut state = lock(&self.state);
        if state.waiting.is_empty() {
            return Poll::Ready(());
        }
        match &mut state.waker {
            Some(waker) => waker.clone_from(cx.waker()),
            None => state.waker = Some(cx.waker().clone()),
        }
        Poll::Pending
    }

    /// Waits until the barrier is reached.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: it only reads the barrier.
    pub async fn reached(&self) {
        std::future::poll_fn(|cx| self.poll_reached(cx)).await
    }
}

impl std::fmt::Debug for Barrier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Barrier")
            .field("waiting_for", &self.waiting_for())
            .finish()
    }
}

impl Barriers {
    /// A new barrier waiting for `peers`; returns it with the id of the ping to send each.
    pub(super) fn set(&mut self, peers: Vec<Incarnation>) -> (Barrier, Vec<(Incarnation, u64)>) {
        let waiting: Vec<(Incarnation, u64)> = peers
            .into_iter()
            .map(|peer| {
                self.next_id += 1;
                (peer, BARRIER_PING | self.next_id)
            })
            .collect();
        let state = Arc::new(Mutex::new(BarrierState {
            waiting: waiting.clone(),
            waker: None,
        }));
        if !waiting.is_empty() {
            self.open.push(Arc::downgrade(&state));
        }
        (Barrier { state }, waiting)
    }

    /// A pong from `peer`: answers the barrier ping of that id, if it is one.
    pub(super) fn pong(&mut self, peer: Incarnation, id: u64) {
        if is_barrier_ping(id) {
            self.settle(|p, ping| p == peer && ping == id);
        }
    }

    /// The link to `peer` closed or was replaced: barriers stop waiting for it.
    pub(super) fn link_gone(&mut self, peer: Incarnation) {
        if !self.open.is_empty() {
            self.settle(|p, _| p == peer);
        }
    }

    /// Removes the peers `done` picks from every open barrier, waking those it completes,
    /// and forgets barriers that are complete or dropped.
    fn settle(&mut self, mut done: impl FnMut(Incarnation, u64) -> bool) {
        self.open.retain(|weak| {
            let Some(state) = weak.upgrade() else {
                return false;
            };
            let mut state = lock(&state);
            state.waiting.retain(|&(peer, id)| !done(peer, id));
            if !state.waiting.is_empty() {
                return true;
            }
            if let Some(waker) = state.waker.take() {
                waker.wake();
            }
            false
        });
    }
}
