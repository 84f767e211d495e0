//! Writes: names and group memberships of a process, added and removed.

use serde::Serialize;

use super::Scope;
use crate::entry::Registration;
use crate::error::RegistryError;
use crate::key::Key;
use crate::meta::Meta;
use crate::pid::Pid;
use crate::process::Process;

impl Scope {
    /// Registers a unique name for `process`.
    ///
    /// - A new name: emits `Registered`.
    /// - The process already holds it with other meta: updates the meta in place and emits
    ///   `Registered` with `previous_meta`.
    /// - Same meta: nothing changes, no event.
    /// - Another live process holds it: [`RegistryError::Taken`] with the owner and its meta.
    ///
    /// A name whose owner has died is free at once, even before the owner's entries are
    /// removed. The returned [`Registration`] carries the fencing token.
    ///
    /// # Errors
    ///
    /// `Taken`, `InvalidKey`, `InvalidMeta`, `ProcessDead`, `ForeignProcess`,
    /// `ScopeNotConnected`; nothing is changed on error.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// use roster::RegistryError;
    /// let node = roster::Node::builder().start().unwrap();
    /// let (a, b) = (node.new_process(), node.new_process());
    /// node.default_scope().register(&a, "leader", &1u8).unwrap();
    /// assert!(matches!(node.default_scope().register(&b, "leader", &2u8), Err(RegistryError::Taken { owner, .. }) if owner == a.pid()));
    /// # }
    /// ```
    pub fn register<M: Serialize + ?Sized>(
        &self,
        process: &Process,
        key: &str,
        meta: &M,
    ) -> Result<Registration, RegistryError> {
        self.check_process(process)?;
        let meta = self.checked_entry(key, meta)?;
        self.register_entry(process, key, meta)
    }

    /// [`Scope::register`] of a checked key and encoded meta (see [`Scope::checked_entry`]).
    pub(crate) fn register_entry(
        &self,
        process: &Process,
        key: &str,
        meta: Meta,
    ) -> Result<Registration, RegistryError> {
        let result = self
            .state
            .register(process.table_entry(), Key::from(key), meta);
        self.node.flush_local();
        result
    }

    /// Unregisters a name held by `process`; emits `Unregistered`.
    ///
    /// # Errors
    ///
    /// [`RegistryError::NotRegistered`] if nobody holds it, [`RegistryError::NotOwner`] if
    /// another process does.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// use roster::RegistryError;
    /// let node = roster::Node::builder().start().unwrap();
    /// let p = node.new_process();
    /// assert!(matches!(node.default_scope().unregister(&p, "k"), Err(RegistryError::NotRegistered { .. })));
    /// # }
    /// ```
    pub fn unregister(&self, process: &Process, key: &str) -> Result<(), RegistryError> {
        self.check_process(process)?;
        self.node.limits.write_key(key)?;
        let result = self
            .state
            .unregister(process.table_entry(), &Key::from(key));
        self.node.flush_local();
        result
    }

    /// Adds `process` to group `key` (emits `Joined`), or updates its meta there (emits
    /// `Joined` with `previous_meta`); joining again with the same meta changes nothing.
    ///
    /// # Errors
    ///
    /// `InvalidKey`, `InvalidMeta`, `ProcessDead`, `ForeignProcess`, `ScopeNotConnected`.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let node = roster::Node::builder().start().unwrap();
    /// let p = node.new_process();
    /// node.default_scope().join(&p, "room/42", &"alice").unwrap();
    /// assert_eq!(node.default_scope().member_count("room/42"), 1);
    /// # }
    /// ```
    pub fn join<M: Serialize + ?Sized>(
        &self,
        process: &Process,
        key: &str,
        meta: &M,
    ) -> Result<(), RegistryError> {
        self.check_process(process)?;
        let meta = self.checked_entry(key, meta)?;
        let result = self.state.join(process.table_entry(), Key::from(key), meta);
        self.node.flush_local();
        result
    }

    /// Removes `process` from group `key`; emits `Left`.
    ///
    /// # Errors
    ///
    /// [`RegistryError::NotInGroup`] if it is not a member.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let node = roster::Node::builder().start().unwrap();
    /// let p = node.new_process();
    /// assert!(node.default_scope().leave(&p, "room/42").is_err());
    /// # }
    /// ```
    pub fn leave(&self, process: &Process, key: &str) -> Result<(), RegistryError> {
        self.check_process(process)?;
        self.node.limits.write_key(key)?;
        let result = self.state.leave(process.table_entry(), &Key::from(key));
        self.node.flush_local();
        result
    }

    /// Starts a process already registered under `key` in this scope, or fails with
    /// [`RegistryError::Taken`] without starting it: the via-name pattern, safe against
    /// restart races (a name freed by a dying process is free as soon as it is dead).
    ///
    /// # Errors
    ///
    /// As [`Scope::register`].
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let node = roster::Node::builder().start().unwrap();
    /// let pid = node.default_scope().spawn_named("worker/1", &(), |mut proc| async move {
    ///     let _ = proc.recv::<()>().await;
    /// }).unwrap();
    /// assert_eq!(node.default_scope().whereis("worker/1"), Some(pid));
    /// assert!(node.default_scope().spawn_named("worker/1", &(), |_| async {}).is_err());
    /// # }
    /// ```
    pub fn spawn_named<M, F, Fut>(&self, key: &str, meta: &M, f: F) -> Result<Pid, RegistryError>
    where
        M: Serialize + ?Sized,
        F: FnOnce(Process) -> Fut,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let process = Process::start(&self.node);
        self.register(&process, key, meta)?;
        Ok(process.spawn(f))
    }

    /// Waits until every peer linked now has seen this node's writes to this scope made
    /// before the call, and this node has seen theirs made before they answered: after a
    /// [`Scope::register`], the name is then either still the process's, or lost to a
    /// concurrent registration on a peer (the conflict is resolved on both sides by then).
    /// Returns at once for a local-only scope or a node without a cluster; a peer whose
    /// link closes meanwhile is no longer waited for. It takes a round trip to each
    /// linked peer; what a peer not linked now (cut off, or not joined yet) holds, no call
    /// can wait for.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let node = roster::Node::builder().start().unwrap();
    /// let p = node.new_process();
    /// let scope = node.default_scope();
    /// scope.register(&p, "leader", &()).unwrap();
    /// scope.settled().await;
    /// assert_eq!(scope.whereis("leader"), Some(p.pid()));
    /// # }
    /// ```
    pub async fn settled(&self) {
        if let Some(barrier) = self.barrier() {
            std::future::poll_fn(|cx| barrier.poll_reached(cx)).await;
        }
    }

    /// A barrier behind this node's writes to this scope so far, reached once every linked
    /// peer answered behind them (see [`Scope::settled`]); `None` for a local-only scope or
    /// a node without a cluster.
    pub(crate) fn barrier(&self) -> Option<crate::replication::Barrier> {
        match self.node.cluster() {
            Some(cluster) if !self.is_local_only() => {
                let scope = self.scope_name();
                Some(cluster.with_core(|core, host| core.barrier(host, scope)))
            }
            _ => None,
        }
    }
}

/// The default scope's operations on a process (see [`Scope`] for the others).
impl Process {
    /// Registers a unique name in the default scope; see [`crate::Scope::register`].
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let node = roster::Node::builder().start().unwrap();
    /// let proc = node.new_process();
    /// proc.register("leader/shard-7", &()).unwrap();
    /// # }
    /// ```
    pub fn register<M: Serialize + ?Sized>(
        &self,
        key: &str,
        meta: &M,
    ) -> Result<Registration, RegistryError> {
        Scope::default_of(self.node_shared()).register(self, key, meta)
    }

    /// Unregisters a name of this process in the default scope; see [`crate::Scope::unregister`].
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let node = roster::Node::builder().start().unwrap();
    /// let proc = node.new_process();
    /// proc.register("k", &()).unwrap();
    /// proc.unregister("k").unwrap();
    /// # }
    /// ```
    pub fn unregister(&self, key: &str) -> Result<(), RegistryError> {
        Scope::default_of(self.node_shared()).unregister(self, key)
    }

    /// Joins a group in the default scope; see [`crate::Scope::join`].
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let node = roster::Node::builder().start().unwrap();
    /// node.new_process().join("room/42", &()).unwrap();
    /// # }
    /// ```
    pub fn join<M: Serialize + ?Sized>(&self, key: &str, meta: &M) -> Result<(), RegistryError> {
        Scope::default_of(self.node_shared()).join(self, key, meta)
    }

    /// Leaves a group in the default scope; see [`crate::Scope::leave`].
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let node = roster::Node::builder().start().unwrap();
    /// let proc = node.new_process();
    /// proc.join("room/42", &()).unwrap();
    /// proc.leave("room/42").unwrap();
    /// # }
    /// ```
    pub fn leave(&self, key: &str) -> Result<(), RegistryError> {
        Scope::default_of(self.node_shared()).leave(self, key)
    }
}
