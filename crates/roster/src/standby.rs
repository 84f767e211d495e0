//! Standbys: a process waits for a name and takes it as soon as its holder dies or leaves
//! ([`Scope::await_name`], [`Process::await_name`]): the failover of `global`'s and syn's
//! users in one call.
//!
//! # How
//!
//! 1. **Watch, then try.** The standby watches the exact key (list-then-watch: a release
//!    after the watch is among its events, never lost between "taken" and "subscribed"),
//!    then registers. If the name is taken it waits for the key's events: no polling.
//! 2. **Claim as a standby.** Its registration is marked as a standby claim in the store
//!    (`store/standby.rs`): if a process of another node took the freed name at the same
//!    moment and wins the conflict, the claim is removed like any loser's (subscribers see
//!    `Unregistered` with [`crate::Reason::Conflict`]), but the standby's process is
//!    neither ended nor told through [`Process::lost_names`]: it goes back to waiting.
//! 3. **Confirm.** The standby sets a barrier (`replication/barrier.rs`): a round trip to
//!    every linked peer this node replicates the scope to, queued behind its claim (and,
//!    for a peer still catching up, behind the catch-up; the answer likewise).
//!    When every peer has answered, each has applied the claim, and every claim a peer
//!    made before hearing of it has reached this node and been resolved here. If the
//!    standby still holds the name then, it won: the mark is cleared and the call returns
//!    the registration as it is now (with the fencing token it has after the conflicts
//!    it won). If not, it waits again.
//!
//! A local-only scope, or a node without a cluster, has no conflicts: a standby returns
//! as soon as its registration succeeds.

use std::future::poll_fn;
use std::pin::pin;
use std::task::Poll;

use futures_core::Stream;
use serde::Serialize;

use crate::entry::Registration;
use crate::error::RegistryError;
use crate::key::{Key, Pattern};
use crate::meta::Meta;
use crate::process::Process;
use crate::scope::Scope;
use crate::subscription::{Delivery, Subscription};

impl Scope {
    /// Waits until `process` holds the unique name `key` in this scope, taking it as soon
    /// as it is free: at once if nobody holds it, else when its holder unregisters, dies,
    /// or its node goes down. Many standbys may wait for one name, on one node or several;
    /// each is woken by the key's events (no polling), and one of them gets it.
    ///
    /// # Guarantee
    ///
    /// Roster is an AP registry: two nodes can both give a freed name to a standby before
    /// they hear of each other, and replication then keeps one (keep-oldest by default).
    /// So a standby's registration is only final once the conflicts it may be in are
    /// resolved, and this call returns only then, as far as one node can know it:
    ///
    /// - It returns `Ok` once every peer that was linked and connected to the scope when
    ///   the standby registered has answered a round trip sent after the registration
    ///   (or lost its link), and the standby still holds the name.
    ///   Any claim those peers made before they heard of the standby's has then reached
    ///   this node and lost to it, so the standby never returns success for a name it
    ///   then loses to a conflict with them.
    /// - A standby whose claim loses such a conflict is not ended (whatever
    ///   [`crate::NodeBuilder::kill_conflict_losers`] says) and is not told through
    ///   [`Process::lost_names`]: it keeps waiting. Subscribers see its claim come and go.
    /// - What one node cannot know, no call can wait for: a peer partitioned away, or not
    ///   linked yet (its handshake and first exchange not done), may hold a claim that
    ///   reaches this node only later. Then the conflict is resolved when it arrives,
    ///   like any registration's after a partition heals: the name this call returned
    ///   can still be lost, and the process is then ended with [`crate::ExitReason::Conflict`]
    ///   (or told through [`Process::lost_names`]), as for [`Scope::register`].
    ///
    /// Hand the returned registration's fencing token (`token`) to downstream systems: it
    /// is greater than the token of every contender this node resolved, and a name lost
    /// later goes to a holder with a greater token still, so a store that refuses writes
    /// with a token below the highest it has seen refuses a deposed standby's.
    ///
    /// If `process` already holds `key`, this is [`Scope::register`] (the meta is updated).
    ///
    /// # Errors
    ///
    /// - [`RegistryError::ProcessDead`] if `process` exits before it gets the name;
    /// - [`RegistryError::ScopeNotConnected`] if the node disconnects from the scope;
    /// - while the node refuses new names during a partition (it is fenced, see
    ///   [`crate::nodes::SplitBrainAction::Fence`]), a standby does not fail: it keeps
    ///   waiting, and claims the name when the fence is lowered if it is still free;
    /// - `InvalidKey`, `InvalidMeta`, `ForeignProcess` at once, as [`Scope::register`].
    ///
    /// # Cancel safety
    ///
    /// Dropping the future gives up: it leaves no subscription behind, and if it had
    /// registered the name but not confirmed it yet, it unregisters it.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let node = roster::Node::builder().start().unwrap();
    /// let leader = node.new_process();
    /// leader.register("leader", &"a").unwrap();
    ///
    /// let standby = node.new_process();
    /// let mut waiting = std::pin::pin!(node.default_scope().await_name(&standby, "leader", &"b"));
    /// // The name is taken: the standby waits.
    /// assert!(futures_util::FutureExt::now_or_never(waiting.as_mut()).is_none());
    ///
    /// drop(leader); // the holder dies: the standby takes over
    /// let registration = waiting.await.unwrap();
    /// assert_eq!(registration.pid, standby.pid());
    /// assert_eq!(node.default_scope().whereis("leader"), Some(standby.pid()));
    /// # }
    /// ```
    pub async fn await_name<M: Serialize + ?Sized>(
        &self,
        process: &Process,
        key: &str,
        meta: &M,
    ) -> Result<Registration, RegistryError> {
        self.check_process(process)?;
        let meta = self.checked_entry(key, meta)?;
        if self.whereis(key) == Some(process.pid()) {
            return self.register_entry(process, key, meta);
        }
        Standby {
            scope: self,
            process,
            key: Key::from(key),
            meta,
        }
        .run()
        .await
    }
}

impl Process {
    /// Waits until this process holds `key` in the default scope; see
    /// [`Scope::await_name`] for the guarantee, errors and cancel safety.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let node = roster::Node::builder().start().unwrap();
    /// let holder = node.new_process();
    /// holder.register("scheduler", &()).unwrap();
    /// let standby = node.new_process();
    /// // Polled first, the standby finds the name taken and waits; the release wakes it.
    /// let (taken, _) = tokio::join!(
    ///     standby.await_name("scheduler", &()),
    ///     async { holder.unregister("scheduler").unwrap() },
    /// );
    /// assert_eq!(taken.unwrap().pid, standby.pid());
    /// # }
    /// ```
    pub async fn await_name<M: Serialize + ?Sized>(
        &self,
        key: &str,
        meta: &M,
    ) -> Result<Registration, RegistryError> {
        Scope::default_of(self.node_shared())
            .await_name(self, key, meta)
            .await
    }
}

/// One standby's wait for one name.
struct Standby<'a> {
    scope: &'a Scope,
    process: &'a Process,
    key: Key,
    meta: Meta,
}

/// What woke a waiting standby.
enum Woken {
    /// The key changed (or the subscription lagged): look again.
    Changed,
    /// The process exited.
    Exited,
    /// The scope was disconnected (the subscription ended).
    Disconnected,
    /// The claim's barrier was reached.
    Confirmed,
}

/// A standby claim not confirmed yet: dropping it (the future was dropped, or the claim
/// was lost or refused) clears the store's mark, and unregisters the name if the process
/// still holds it under that claim.
struct Claim<'a> {
    standby: &'a Standby<'a>,
    /// Whether the registration succeeded (then an unconfirmed drop unregisters it).
    registered: bool,
    confirmed: bool,
}

impl Drop for Claim<'_> {
    fn drop(&mut self) {
        let Standby {
            scope,
            process,
            key,
            ..
        } = self.standby;
        scope.state.clear_standby_claim(key, process.pid());
        if self.registered && !self.confirmed && scope.whereis(key) == Some(process.pid()) {
            // Given up before confirmation: leave no claim behind.
            let _ = scope.unregister(process, key);
        }
    }
}

impl Standby<'_> {
    async fn run(&self) -> Result<Registration, RegistryError> {
        let pid = self.process.pid();
        // Watch first: a release from now on is among the events.
        let mut events = self.scope.watch(Pattern::Exact(self.key.clone()))?.events;
        loop {
            match self.try_claim(&mut events).await {
                Ok(Some(registration)) => return Ok(registration),
                Ok(None) => {}
                // The node refuses new names for now: wait for the fence to lower, then
                // try again (the name may have been taken meanwhile).
                Err(RegistryError::Fenced { .. }) => {
                    self.until_unfenced(&mut events).await?;
                    continue;
                }
                Err(e) => return Err(e),
            }
            // Taken (or lost): wait until the name looks free. A name held by a registration
            // this node keeps back until its node re-stamps it looks free and is not: then
            // wait for the key's next event (that registration shown, or gone), which the
            // watch, older than the refusal, cannot miss.
            let mut looks_free_yet_taken = self.scope.whereis(&self.key).is_none();
            while std::mem::take(&mut looks_free_yet_taken)
                || self
                    .scope
                    .whereis(&self.key)
                    .is_some_and(|owner| owner != pid)
            {
                match self.wake(&mut events, None).await {
                    Woken::Changed | Woken::Confirmed => {}
                    Woken::Exited => return Err(RegistryError::ProcessDead { pid }),
                    Woken::Disconnected => return Err(self.disconnected()),
                }
            }
        }
    }

    /// Registers as a standby claim and confirms it: `Some` once won, `None` if the name
    /// was taken or the claim lost a conflict.
    async fn try_claim(
        &self,
        events: &mut Subscription,
    ) -> Result<Option<Registration>, RegistryError> {
        let pid = self.process.pid();
        self.scope.state.mark_standby_claim(&self.key, pid);
        let mut claim = Claim {
            standby: self,
            registered: false,
            confirmed: false,
        };
        match self
            .scope
            .register_entry(self.process, &self.key, self.meta.clone())
        {
            Ok(_) => claim.registered = true,
            Err(RegistryError::Taken { .. }) => return Ok(None),
            Err(e) => return Err(e),
        }
        let barrier = self.scope.barrier();
        if let Some(barrier) = &barrier {
            loop {
                match self.wake(events, Some(barrier)).await {
                    Woken::Confirmed => break,
                    Woken::Changed if self.scope.whereis(&self.key) != Some(pid) => break,
                    Woken::Changed => {}
                    Woken::Exited => return Err(RegistryError::ProcessDead { pid }),
                    Woken::Disconnected => return Err(self.disconnected()),
                }
            }
        }
        match self.scope.lookup(&self.key) {
            Some(registration) if registration.pid == pid => {
                claim.confirmed = true;
                Ok(Some(registration))
            }
            // Lost a conflict (the claim is already gone) or exited.
            _ if !self.process.is_alive() => Err(RegistryError::ProcessDead { pid }),
            _ => Ok(None),
        }
    }

    /// Waits for the next change of the key, the process's exit, or `barrier`.
    async fn wake(
        &self,
        events: &mut Subscription,
        barrier: Option<&crate::replication::Barrier>,
    ) -> Woken {
        let mut exited = pin!(self.process.exited());
        poll_fn(|cx| {
            if exited.as_mut().poll(cx).is_ready() {
                return Poll::Ready(Woken::Exited);
            }
            if barrier.is_some_and(|b| b.poll_reached(cx).is_ready()) {
                return Poll::Ready(Woken::Confirmed);
            }
            match std::pin::Pin::new(&mut *events).poll_next(cx) {
                Poll::Ready(Some(Delivery::Events(_) | Delivery::Lagged { .. })) => {
                    Poll::Ready(Woken::Changed)
                }
                Poll::Ready(None) => Poll::Ready(Woken::Disconnected),
                Poll::Pending => Poll::Pending,
            }
        })
        .await
    }

    /// Waits until this node's fence is lowered (at once if it is not raised). Woken by
    /// this node's partition events, which the split-brain check publishes whenever it
    /// raises or lowers the fence: subscribed before the fence is read, so no lowering
    /// is missed, and nothing polls.
    async fn until_unfenced(&self, events: &mut Subscription) -> Result<(), RegistryError> {
        let pid = self.process.pid();
        let node = &self.scope.node;
        let (_, mut partitions) =
            node.stores
                .nodes
                .subscribe(vec![Pattern::Exact(node.name.as_str().into())], 16, false);
        let mut exited = pin!(self.process.exited());
        while node.stores.fence().current().is_some() {
            let woken = poll_fn(|cx| {
                if exited.as_mut().poll(cx).is_ready() {
                    return Poll::Ready(Err(RegistryError::ProcessDead { pid }));
                }
                // The key's events only matter for a disconnect here.
                while let Poll::Ready(item) = std::pin::Pin::new(&mut *events).poll_next(cx) {
                    if item.is_none() {
                        return Poll::Ready(Err(self.disconnected()));
                    }
                }
                match std::pin::Pin::new(&mut partitions).poll_next(cx) {
                    Poll::Ready(_) => Poll::Ready(Ok(())),
                    Poll::Pending => Poll::Pending,
                }
            })
            .await;
            woken?;
        }
        Ok(())
    }

    fn disconnected(&self) -> RegistryError {
        RegistryError::ScopeNotConnected {
            scope: self.scope.scope_name().into(),
        }
    }
}
