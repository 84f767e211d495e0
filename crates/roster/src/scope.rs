//! Scopes: named, isolated registries; every operation on names and groups lives here.

use std::sync::Arc;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::entry::{Entry, Member, Members, Registration, Table};
use crate::envelope::Envelope;
use crate::error::{RegistryError, SendError};
use crate::key::{Key, KeyError, Pattern, is_prefix};
use crate::meta::{Meta, MetaError};
use crate::pid::Pid;
use crate::process::Process;
use crate::runtime::NodeShared;
use crate::store::HeldKind;
use crate::store::ScopeStore;
use crate::subscription::{Subscription, Watch};

/// Where a dispatch went, as far as this node can tell at once.
///
/// Local recipients are counted one by one. Remote recipients are not counted at all: a
/// dispatch sends one frame per other node that hosts recipients (as this node sees the key
/// when dispatching), and that node delivers it to its own owner and members of the key
/// when the frame arrives, without reporting back. So `remote_nodes` says how many nodes
/// the frame was handed to, not how many processes got the message, nor whether the frame
/// arrived (a link that breaks before sending it loses it, as a message to a remote process
/// would be lost).
///
/// Every other node hosting recipients is counted in exactly one of `remote_nodes`,
/// `remote_too_large` and `remote_unreachable`.
///
/// # Examples
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let node = roster::Node::builder().start().unwrap();
/// let p = node.process();
/// p.join("room/1", &()).unwrap();
/// let sent = node.dispatch("room/1", &"hi").unwrap();
/// assert_eq!((sent.local, sent.remote_nodes), (1, 0));
/// # }
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Dispatched {
    /// Local processes the message was queued for.
    pub local: usize,
    /// Local recipients whose mailbox was full (by count or by bytes): they did not get the
    /// message.
    pub mailbox_full: usize,
    /// Other nodes the dispatch frame was handed to: queued on this node's link to each,
    /// one frame per node whatever its number of recipients. Each delivers the message to
    /// its own recipients, which are not counted here.
    pub remote_nodes: usize,
    /// Other nodes with recipients that did not get the message because it is larger than
    /// their `max_message_bytes`.
    pub remote_too_large: usize,
    /// Other nodes with recipients that this node has no live link to (the link is down or
    /// not established yet): nothing was sent to them.
    pub remote_unreachable: usize,
}

/// What [`Scope::select_as`] found: the entries whose meta decoded as `T` and matched,
/// and how many entries it skipped because their meta did not decode as `T`.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use roster::Table;
/// let node = roster::Node::builder().start().unwrap();
/// let (a, b) = (node.process(), node.process());
/// a.register("user/1", &30u8).unwrap();
/// b.register("user/2", &"not a number").unwrap();
/// let found = node.select_as::<u8, _>(Table::Names, Some("user/"), 10, |_, age| *age > 18).unwrap();
/// assert_eq!((found.items.len(), found.undecodable), (1, 1));
/// # }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selected<T> {
    /// Matching entries, in key order under a prefix (table order without one).
    pub items: Vec<Decoded<T>>,
    /// Entries visited whose meta is not a `T`: skipped, never given to the predicate.
    pub undecodable: usize,
}

/// An entry whose meta was decoded as `T` (an item of [`Selected`]).
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use roster::Table;
/// let node = roster::Node::builder().start().unwrap();
/// let p = node.process();
/// p.register("user/1", &7u32).unwrap();
/// let found = node.select_as::<u32, _>(Table::Names, None, 1, |_, _| true).unwrap();
/// assert_eq!((found.items[0].pid, found.items[0].meta), (p.pid(), 7));
/// # }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decoded<T> {
    /// The name or group key.
    pub key: Key,
    /// The owning or member process.
    pub pid: Pid,
    /// The decoded meta.
    pub meta: T,
}

/// What [`Scope::count_match_as`] counted.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use roster::Table;
/// let node = roster::Node::builder().start().unwrap();
/// let p = node.process();
/// p.join("room/1", &"admin").unwrap();
/// let counted = node.count_match_as::<String, _>(Table::Groups, None, |_, role| role == "admin").unwrap();
/// assert_eq!((counted.matched, counted.undecodable), (1, 0));
/// # }
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Counted {
    /// Entries whose meta decoded as `T` and matched.
    pub matched: usize,
    /// Entries whose meta is not a `T`: skipped, never given to the predicate.
    pub undecodable: usize,
}

/// A handle to a scope this node is connected to.
///
/// A scope is an isolated registry: names and groups of one scope never meet those of
/// another. [`crate::Node`] dereferences to its default scope, so `node.lookup(..)` reads
/// the default scope. Handles are cheap to clone. Once the node disconnects from the scope,
/// writes through an old handle fail with [`RegistryError::ScopeNotConnected`] and reads see
/// an empty scope.
///
/// # Examples
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let node = roster::Node::builder().start().unwrap();
/// let chat = node.connect("chat").unwrap();
/// let proc = node.process();
/// chat.register(&proc, "room-owner/1", &()).unwrap();
/// assert!(chat.lookup("room-owner/1").is_some());
/// assert!(node.lookup("room-owner/1").is_none()); // the default scope is separate
/// # }
/// ```
#[derive(Clone)]
pub struct Scope {
    pub(crate) state: Arc<ScopeStore>,
    pub(crate) node: Arc<NodeShared>,
}

impl Scope {
    /// The default scope of `node`.
    pub(crate) fn default_of(node: &Arc<NodeShared>) -> Scope {
        Scope {
            state: node.stores.default_scope().clone(),
            node: node.clone(),
        }
    }

    /// The scope's name.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let node = roster::Node::builder().start().unwrap();
    /// assert_eq!(node.scope_name(), "default");
    /// # }
    /// ```
    pub fn scope_name(&self) -> &str {
        &self.state.name
    }

    /// Whether this is a local-only scope (never replicated).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let node = roster::Node::builder().start().unwrap();
    /// assert!(node.connect_local("cache").unwrap().is_local_only());
    /// # }
    /// ```
    pub fn is_local_only(&self) -> bool {
        self.state.local_only
    }

    /// Whether the node is still connected to this scope.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let node = roster::Node::builder().start().unwrap();
    /// let s = node.connect("s").unwrap();
    /// node.disconnect("s").unwrap();
    /// assert!(!s.is_connected());
    /// # }
    /// ```
    pub fn is_connected(&self) -> bool {
        self.state.is_connected()
    }

    pub(crate) fn check_process(&self, process: &Process) -> Result<(), RegistryError> {
        if !Arc::ptr_eq(&self.node, process.node_shared()) {
            return Err(RegistryError::ForeignProcess { pid: process.pid() });
        }
        Ok(())
    }

    /// Checks the key and encodes the meta of a new entry: within this node's limits and,
    /// in a replicated scope, within those of every linked peer (which could not hold it
    /// otherwise).
    pub(crate) fn entry<M: Serialize + ?Sized>(
        &self,
        key: &str,
        meta: &M,
    ) -> Result<Meta, RegistryError> {
        self.node.limits.write_key(key)?;
        let meta = Meta::encode(meta)?;
        let len = meta.encoded_len();
        let max = self.node.limits.max_meta_bytes;
        if len > max {
            return Err(MetaError::TooLarge { len, max }.into());
        }
        if !self.state.local_only
            && let Some(peers) = self.node.peer_limits()
        {
            if key.len() > peers.max_key_bytes {
                let max = peers.max_key_bytes;
                return Err(KeyError::TooLongForPeer {
                    len: key.len(),
                    max,
                }
                .into());
            }
            if len > peers.max_meta_bytes {
                let max = peers.max_meta_bytes;
                return Err(MetaError::TooLargeForPeer { len, max }.into());
            }
        }
        Ok(meta)
    }

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
    /// let (a, b) = (node.process(), node.process());
    /// node.register(&a, "leader", &1u8).unwrap();
    /// assert!(matches!(node.register(&b, "leader", &2u8), Err(RegistryError::Taken { owner, .. }) if owner == a.pid()));
    /// # }
    /// ```
    pub fn register<M: Serialize + ?Sized>(
        &self,
        process: &Process,
        key: &str,
        meta: &M,
    ) -> Result<Registration, RegistryError> {
        self.check_process(process)?;
        let meta = self.entry(key, meta)?;
        self.register_entry(process, key, meta)
    }

    /// [`Scope::register`] of a checked key and encoded meta (see [`Scope::entry`]).
    pub(crate) fn register_entry(
        &self,
        process: &Process,
        key: &str,
        meta: Meta,
    ) -> Result<Registration, RegistryError> {
        let result = self.state.register(process.cell(), Key::from(key), meta);
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
    /// let p = node.process();
    /// assert!(matches!(node.unregister(&p, "k"), Err(RegistryError::NotRegistered { .. })));
    /// # }
    /// ```
    pub fn unregister(&self, process: &Process, key: &str) -> Result<(), RegistryError> {
        self.check_process(process)?;
        self.node.limits.write_key(key)?;
        let result = self.state.unregister(process.cell(), &Key::from(key));
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
    /// let p = node.process();
    /// node.join(&p, "room/42", &"alice").unwrap();
    /// assert_eq!(node.member_count("room/42"), 1);
    /// # }
    /// ```
    pub fn join<M: Serialize + ?Sized>(
        &self,
        process: &Process,
        key: &str,
        meta: &M,
    ) -> Result<(), RegistryError> {
        self.check_process(process)?;
        let meta = self.entry(key, meta)?;
        let result = self.state.join(process.cell(), Key::from(key), meta);
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
    /// let p = node.process();
    /// assert!(node.leave(&p, "room/42").is_err());
    /// # }
    /// ```
    pub fn leave(&self, process: &Process, key: &str) -> Result<(), RegistryError> {
        self.check_process(process)?;
        self.node.limits.write_key(key)?;
        let result = self.state.leave(process.cell(), &Key::from(key));
        self.node.flush_local();
        result
    }

    /// The live owner of a name. Never returns a local process that has exited.
    ///
    /// Lock-free: never waits for a task or a lock.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let node = roster::Node::builder().start().unwrap();
    /// let p = node.process();
    /// p.register("k", &"m").unwrap();
    /// let reg = node.lookup("k").unwrap();
    /// assert_eq!((reg.pid, reg.meta.decode::<String>().unwrap()), (p.pid(), "m".into()));
    /// # }
    /// ```
    #[inline]
    pub fn lookup(&self, key: &str) -> Option<Registration> {
        self.state.lookup(key)
    }

    /// The pid of the live owner of a name, without its meta: the cheapest lookup.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let node = roster::Node::builder().start().unwrap();
    /// let p = node.process();
    /// p.register("k", &()).unwrap();
    /// assert_eq!(node.whereis("k"), Some(p.pid()));
    /// # }
    /// ```
    #[inline]
    pub fn whereis(&self, key: &str) -> Option<Pid> {
        self.state.whereis(key)
    }

    /// Live names under `prefix` (a key ending in `/`, or `""` for all), in key order, at
    /// most `limit` of them.
    ///
    /// # Errors
    ///
    /// [`KeyError::NotAPrefix`] if `prefix` is neither `""` nor ends with `/`.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let node = roster::Node::builder().start().unwrap();
    /// let (a, b) = (node.process(), node.process());
    /// a.register("user/1", &()).unwrap();
    /// b.register("user/2", &()).unwrap();
    /// let names: Vec<_> = node.registered("user/", 10).unwrap().into_iter().map(|(k, _)| k).collect();
    /// assert_eq!(names, ["user/1", "user/2"]);
    /// assert_eq!(node.registered("user/", 1).unwrap().len(), 1);
    /// # }
    /// ```
    pub fn registered(
        &self,
        prefix: &str,
        limit: usize,
    ) -> Result<Vec<(Key, Registration)>, KeyError> {
        self.check_prefix(prefix)?;
        Ok(self.state.registered(prefix, limit))
    }

    fn check_prefix(&self, prefix: &str) -> Result<(), KeyError> {
        if prefix.is_empty() {
            return Ok(());
        }
        Pattern::Prefix(prefix.into()).validate(&self.node.limits)
    }

    /// Number of names in the scope (owners on any node).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let node = roster::Node::builder().start().unwrap();
    /// let p = node.process();
    /// p.register("k", &()).unwrap();
    /// assert_eq!(node.registry_count(), 1);
    /// # }
    /// ```
    pub fn registry_count(&self) -> usize {
        self.state.registry_count(false)
    }

    /// Number of names owned by processes of this node.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let node = roster::Node::builder().start().unwrap();
    /// assert_eq!(node.local_registry_count(), 0);
    /// # }
    /// ```
    pub fn local_registry_count(&self) -> usize {
        self.state.registry_count(true)
    }

    /// Members of group `key`, or of every group under a prefix when `key` ends with `/`.
    ///
    /// Lock-free; the result shares the store's member lists (no copy per member).
    /// An invalid key has no members.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let node = roster::Node::builder().start().unwrap();
    /// let p = node.process();
    /// p.join("room/1", &()).unwrap();
    /// assert_eq!(node.members("room/1").pids(), [p.pid()]);
    /// assert_eq!(node.members("room/").len(), 1);
    /// # }
    /// ```
    #[inline]
    pub fn members(&self, key: &str) -> Members<'_> {
        self.state.members(key, None)
    }

    /// Like [`Scope::members`], with at most `limit` members in all (across groups for a
    /// prefix).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let node = roster::Node::builder().start().unwrap();
    /// let (a, b) = (node.process(), node.process());
    /// a.join("room/1", &()).unwrap();
    /// b.join("room/2", &()).unwrap();
    /// assert_eq!(node.members_limited("room/", 1).len(), 1);
    /// # }
    /// ```
    pub fn members_limited(&self, key: &str, limit: usize) -> Members<'_> {
        self.state.members(key, Some(limit))
    }

    /// Members of `key` (or prefix) that live on this node.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let node = roster::Node::builder().start().unwrap();
    /// let p = node.process();
    /// p.join("g", &()).unwrap();
    /// assert_eq!(node.local_members("g").len(), 1);
    /// # }
    /// ```
    pub fn local_members(&self, key: &str) -> Vec<Member> {
        self.local_members_limited(key, usize::MAX)
    }

    /// Like [`Scope::local_members`], with at most `limit` members in all (across groups
    /// for a prefix), as [`Scope::members_limited`] does for all members.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let node = roster::Node::builder().start().unwrap();
    /// let (a, b) = (node.process(), node.process());
    /// a.join("room/1", &()).unwrap();
    /// b.join("room/2", &()).unwrap();
    /// assert_eq!(node.local_members_limited("room/", 1).len(), 1);
    /// assert_eq!(node.local_members_limited("room/", 5).len(), 2);
    /// # }
    /// ```
    pub fn local_members_limited(&self, key: &str, limit: usize) -> Vec<Member> {
        let local = self.node.incarnation;
        self.members(key)
            .iter()
            .filter(|m| m.pid().incarnation() == local)
            .take(limit)
            .cloned()
            .collect()
    }

    /// Number of live members of `key` (or prefix).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let node = roster::Node::builder().start().unwrap();
    /// assert_eq!(node.member_count("g"), 0);
    /// # }
    /// ```
    pub fn member_count(&self, key: &str) -> usize {
        self.members(key).len()
    }

    /// Number of live members of `key` (or prefix) on this node.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let node = roster::Node::builder().start().unwrap();
    /// let p = node.process();
    /// p.join("g", &()).unwrap();
    /// assert_eq!(node.local_member_count("g"), 1);
    /// # }
    /// ```
    pub fn local_member_count(&self, key: &str) -> usize {
        let local = self.node.incarnation;
        self.members(key)
            .iter()
            .filter(|m| m.pid().incarnation() == local)
            .count()
    }

    /// Total memberships in the scope (all groups, all nodes).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let node = roster::Node::builder().start().unwrap();
    /// let p = node.process();
    /// p.join("a", &()).unwrap();
    /// p.join("b", &()).unwrap();
    /// assert_eq!(node.membership_count(), 2);
    /// # }
    /// ```
    pub fn membership_count(&self) -> usize {
        self.state.membership_count(false)
    }

    /// Group keys under `prefix` (`""`: all) that have members, in key order.
    ///
    /// # Errors
    ///
    /// [`KeyError::NotAPrefix`] if `prefix` is neither `""` nor ends with `/`.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let node = roster::Node::builder().start().unwrap();
    /// let p = node.process();
    /// p.join("room/2", &()).unwrap();
    /// p.join("room/1", &()).unwrap();
    /// assert_eq!(node.groups("room/", 10).unwrap(), ["room/1", "room/2"]);
    /// # }
    /// ```
    pub fn groups(&self, prefix: &str, limit: usize) -> Result<Vec<Key>, KeyError> {
        self.check_prefix(prefix)?;
        Ok(self.state.group_keys(prefix, limit))
    }

    /// Groups of this scope that `pid` is a member of, in key order: a local process, or a
    /// process of another node whose memberships this node holds (replicated from its
    /// node). Empty once the process has exited (for a remote one: once its node's removal
    /// has arrived, or the node is gone).
    ///
    /// For a local process this reads the process's own list. For a remote one, the first
    /// such call in a scope builds an index of the scope's remote entries (a scan: about
    /// 0.6 s with 1 M remote names on the project's machine, during which a write waits at
    /// most for one shard's share, under 15 ms), which then costs about 50 bytes per remote
    /// entry and is kept up to date by every write until the scope is disconnected. A scope
    /// never asked about a remote process pays nothing. Later calls take each shard lock
    /// briefly, one at a time (about 5 µs in all).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let node = roster::Node::builder().start().unwrap();
    /// let p = node.process();
    /// p.join("b", &()).unwrap();
    /// p.join("a", &()).unwrap();
    /// assert_eq!(node.keys_of(p.pid()), ["a", "b"]);
    /// # }
    /// ```
    pub fn keys_of(&self, pid: Pid) -> Vec<Key> {
        self.holdings_of(pid, HeldKind::Member)
    }

    /// Names of this scope that `pid` owns, in key order: a local process, or a process of
    /// another node (see [`Scope::keys_of`] for what that costs). A remote process that lost
    /// a name in a conflict does not own it, even while its node has not removed it yet.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let node = roster::Node::builder().start().unwrap();
    /// let p = node.process();
    /// p.register("n", &()).unwrap();
    /// assert_eq!(node.names_of(p.pid()), ["n"]);
    /// # }
    /// ```
    pub fn names_of(&self, pid: Pid) -> Vec<Key> {
        self.holdings_of(pid, HeldKind::Name)
    }

    fn holdings_of(&self, pid: Pid, kind: HeldKind) -> Vec<Key> {
        if pid.incarnation() != self.node.incarnation {
            return self.state.remote_holdings(pid, kind);
        }
        let Some(cell) = self.node.stores.process(pid) else {
            return Vec::new();
        };
        let mut keys: Vec<Key> = cell
            .holdings()
            .iter()
            .filter(|h| h.kind() == kind && Arc::ptr_eq(&h.scope, &self.state))
            .map(|h| h.key.to_key())
            .collect();
        keys.sort_unstable();
        keys
    }

    /// Entries of `table` for which `predicate(entry)` holds, under `prefix` if given.
    ///
    /// With a prefix the cost is proportional to the entries under it, not the table;
    /// without one the whole table is scanned. The answer to Elixir's `Registry.select`.
    ///
    /// # Errors
    ///
    /// [`KeyError::NotAPrefix`] if `prefix` does not end with `/`.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// use roster::Table;
    /// let node = roster::Node::builder().start().unwrap();
    /// let (a, b) = (node.process(), node.process());
    /// a.register("user/1", &20u8).unwrap();
    /// b.register("user/2", &40u8).unwrap();
    /// let old = node.select(Table::Names, Some("user/"), |e| e.meta.decode::<u8>().unwrap() > 30).unwrap();
    /// assert_eq!(old.len(), 1);
    /// assert_eq!(old[0].pid, b.pid());
    /// # }
    /// ```
    pub fn select(
        &self,
        table: Table,
        prefix: Option<&str>,
        mut predicate: impl FnMut(&Entry) -> bool,
    ) -> Result<Vec<Entry>, KeyError> {
        let mut found = Vec::new();
        self.visit(table, prefix, |entry| {
            if predicate(&entry) {
                found.push(entry);
            }
            true
        })?;
        Ok(found)
    }

    /// Number of entries of `table` for which `predicate(entry)` holds, under `prefix` if
    /// given (Elixir's `Registry.count_match`).
    ///
    /// # Errors
    ///
    /// [`KeyError::NotAPrefix`] if `prefix` does not end with `/`.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// use roster::Table;
    /// let node = roster::Node::builder().start().unwrap();
    /// let p = node.process();
    /// p.join("room/1", &"admin").unwrap();
    /// p.join("room/2", &"guest").unwrap();
    /// let admins = node.count_match(Table::Groups, Some("room/"), |e| e.meta.decode::<String>().unwrap() == "admin");
    /// assert_eq!(admins.unwrap(), 1);
    /// # }
    /// ```
    pub fn count_match(
        &self,
        table: Table,
        prefix: Option<&str>,
        mut predicate: impl FnMut(&Entry) -> bool,
    ) -> Result<usize, KeyError> {
        let mut count = 0;
        self.visit(table, prefix, |entry| {
            count += usize::from(predicate(&entry));
            true
        })?;
        Ok(count)
    }

    /// Like [`Scope::select`], with each entry's meta decoded as `T` once, before the
    /// predicate sees it; at most `limit` items (the scan stops there). Entries whose meta
    /// is not a `T` are skipped and counted in [`Selected::undecodable`] (those visited
    /// before the scan stopped).
    ///
    /// A predicate that panics unwinds out of this call and leaves nothing behind: the
    /// scan holds no lock, so the scope and its readers and writers are unaffected (the
    /// same holds for [`Scope::select`] and [`Scope::count_match`]).
    ///
    /// # Errors
    ///
    /// [`KeyError::NotAPrefix`] if `prefix` does not end with `/`.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// use roster::Table;
    /// #[derive(serde::Serialize, serde::Deserialize)]
    /// struct Session { region: String }
    /// let node = roster::Node::builder().start().unwrap();
    /// let (a, b) = (node.process(), node.process());
    /// a.register("session/1", &Session { region: "eu".into() }).unwrap();
    /// b.register("session/2", &Session { region: "us".into() }).unwrap();
    /// let eu = node
    ///     .select_as::<Session, _>(Table::Names, Some("session/"), 100, |_, s| s.region == "eu")
    ///     .unwrap();
    /// assert_eq!(eu.items.len(), 1);
    /// assert_eq!(eu.items[0].key, "session/1");
    /// # }
    /// ```
    pub fn select_as<T, F>(
        &self,
        table: Table,
        prefix: Option<&str>,
        limit: usize,
        mut predicate: F,
    ) -> Result<Selected<T>, KeyError>
    where
        T: DeserializeOwned,
        F: FnMut(&Key, &T) -> bool,
    {
        let mut selected = Selected {
            items: Vec::new(),
            undecodable: 0,
        };
        self.visit(table, prefix, |entry| {
            if selected.items.len() >= limit {
                return false;
            }
            match entry.meta.decode::<T>() {
                Ok(meta) if predicate(&entry.key, &meta) => selected.items.push(Decoded {
                    key: entry.key,
                    pid: entry.pid,
                    meta,
                }),
                Ok(_) => {}
                Err(_) => selected.undecodable += 1,
            }
            true
        })?;
        Ok(selected)
    }

    /// Like [`Scope::count_match`], with each entry's meta decoded as `T` once, before the
    /// predicate sees it; entries whose meta is not a `T` are counted apart. A panicking
    /// predicate leaves nothing behind (see [`Scope::select_as`]).
    ///
    /// # Errors
    ///
    /// [`KeyError::NotAPrefix`] if `prefix` does not end with `/`.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// use roster::Table;
    /// let node = roster::Node::builder().start().unwrap();
    /// let p = node.process();
    /// p.join("room/1", &3u8).unwrap();
    /// p.join("room/2", &9u8).unwrap();
    /// p.join("room/3", &"three").unwrap();
    /// let big = node.count_match_as::<u8, _>(Table::Groups, Some("room/"), |_, n| *n > 5).unwrap();
    /// assert_eq!((big.matched, big.undecodable), (1, 1));
    /// # }
    /// ```
    pub fn count_match_as<T, F>(
        &self,
        table: Table,
        prefix: Option<&str>,
        mut predicate: F,
    ) -> Result<Counted, KeyError>
    where
        T: DeserializeOwned,
        F: FnMut(&Key, &T) -> bool,
    {
        let mut counted = Counted::default();
        self.visit(table, prefix, |entry| {
            match entry.meta.decode::<T>() {
                Ok(meta) => counted.matched += usize::from(predicate(&entry.key, &meta)),
                Err(_) => counted.undecodable += 1,
            }
            true
        })?;
        Ok(counted)
    }

    fn visit(
        &self,
        table: Table,
        prefix: Option<&str>,
        visit: impl FnMut(Entry) -> bool,
    ) -> Result<(), KeyError> {
        if let Some(prefix) = prefix {
            self.check_prefix(prefix)?;
        }
        // `""` selects every key, as in `registered` and `groups`.
        let prefix = prefix.filter(|p| !p.is_empty());
        match table {
            Table::Names => self.state.visit_names(prefix, visit),
            Table::Groups => self.state.visit_members(prefix, visit),
        }
        Ok(())
    }

    /// Sends `message` to the owner of name `key` and to every member of group `key` (each
    /// process once), encoding it once for all of them. Never waits: a full mailbox is
    /// counted in [`Dispatched::mailbox_full`] and skipped. Only the exact key is reached:
    /// a key ending in `/` is not a prefix query here and reaches nobody.
    ///
    /// # Errors
    ///
    /// [`SendError::Encode`] if the message cannot be encoded.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let node = roster::Node::builder().start().unwrap();
    /// let (mut a, mut b) = (node.process(), node.process());
    /// a.join("room/1", &()).unwrap();
    /// b.join("room/1", &()).unwrap();
    /// assert_eq!(node.dispatch("room/1", &"hello").unwrap().local, 2);
    /// assert_eq!(a.recv::<String>().await.unwrap(), "hello");
    /// assert_eq!(b.recv::<String>().await.unwrap(), "hello");
    /// # }
    /// ```
    pub fn dispatch<T: Serialize + ?Sized>(
        &self,
        key: &str,
        message: &T,
    ) -> Result<Dispatched, SendError> {
        let payload = self.node.encode_message(message)?;
        let envelope = Envelope::new(None, payload.clone());
        // A prefix is not a dispatch target: only the exact key is.
        let targets = if is_prefix(key) {
            Vec::new()
        } else {
            self.state.targets(key)
        };
        let peers = self
            .node
            .dispatch_to_peers(&self.state.name, key, &targets, &payload);
        let mut result = Dispatched {
            remote_nodes: peers.sent,
            remote_too_large: peers.too_large,
            remote_unreachable: peers.unreachable,
            ..Dispatched::default()
        };
        let local = self.node.incarnation;
        for pid in targets.into_iter().filter(|p| p.incarnation() == local) {
            match self.node.deliver(pid, envelope.clone()) {
                Ok(()) => result.local += 1,
                Err(SendError::MailboxFull(_)) => result.mailbox_full += 1,
                Err(_) => {}
            }
        }
        Ok(result)
    }

    /// Subscribes to changes of keys matching `pattern` in this scope.
    ///
    /// # Errors
    ///
    /// `InvalidKey` for an invalid pattern, `ScopeNotConnected` after a disconnect.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let node = roster::Node::builder().start().unwrap();
    /// let _all = node.subscribe(roster::Pattern::All).unwrap();
    /// assert!(node.subscribe("bad").is_ok());
    /// assert!(node.subscribe(roster::Pattern::Prefix("no-slash".into())).is_err());
    /// # }
    /// ```
    pub fn subscribe(&self, pattern: impl Into<Pattern>) -> Result<Subscription, RegistryError> {
        self.subscribe_many([pattern.into()])
    }

    /// Subscribes to several patterns at once; a change matching several of them is
    /// delivered once.
    ///
    /// # Errors
    ///
    /// As [`Scope::subscribe`].
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// use roster::Pattern;
    /// let node = roster::Node::builder().start().unwrap();
    /// let mut events = node.subscribe_many([Pattern::from("user/"), Pattern::from("user/1")]).unwrap();
    /// node.process().register("user/1", &()).unwrap();
    /// assert_eq!(events.recv().await.unwrap().into_events().unwrap().len(), 1);
    /// # }
    /// ```
    pub fn subscribe_many(
        &self,
        patterns: impl IntoIterator<Item = Pattern>,
    ) -> Result<Subscription, RegistryError> {
        let patterns = self.valid_patterns(patterns)?;
        let queue = self
            .state
            .subscribe(patterns, self.node.subscription_capacity)?;
        Ok(Subscription::new(
            queue,
            Arc::downgrade(&self.state.subscribers),
        ))
    }

    fn valid_patterns(
        &self,
        patterns: impl IntoIterator<Item = Pattern>,
    ) -> Result<Vec<Pattern>, KeyError> {
        let patterns: Vec<Pattern> = patterns.into_iter().collect();
        for pattern in &patterns {
            pattern.validate(&self.node.limits)?;
        }
        Ok(patterns)
    }

    /// The names and group memberships matching `pattern` now, and a subscription to every
    /// change after them, with no gap and no duplicate between the two (list-then-watch;
    /// see [`Watch`]). Use it instead of [`Scope::subscribe`] whenever the current entries
    /// matter: right after `connect`, entries still arriving from the first sync with the
    /// cluster are either in the initial entries or arrive as events.
    ///
    /// The copy is made under the scope's shard locks (only the key's shard for an exact
    /// pattern): writers of the scope wait for it, in proportion to the matching entries.
    ///
    /// # Errors
    ///
    /// `InvalidKey` for an invalid pattern, `ScopeNotConnected` after a disconnect.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let node = roster::Node::builder().start().unwrap();
    /// let p = node.process();
    /// p.join("room/1", &"alice").unwrap();
    /// let mut watch = node.watch("room/1").unwrap();
    /// assert_eq!(watch.members[0].1.pid(), p.pid());
    /// p.leave("room/1").unwrap();
    /// let left = watch.events.recv().await.unwrap().into_events().unwrap();
    /// assert_eq!(left[0].kind, roster::EventKind::Left);
    /// # }
    /// ```
    pub fn watch(&self, pattern: impl Into<Pattern>) -> Result<Watch, RegistryError> {
        self.watch_many([pattern.into()])
    }

    /// [`Scope::watch`] of several patterns at once: an entry or change matching several
    /// of them is there once.
    ///
    /// # Errors
    ///
    /// As [`Scope::watch`].
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// use roster::Pattern;
    /// let node = roster::Node::builder().start().unwrap();
    /// let p = node.process();
    /// p.register("user/1", &()).unwrap();
    /// p.register("admin", &()).unwrap();
    /// let watch = node.watch_many([Pattern::from("user/"), Pattern::from("user/1"), Pattern::from("admin")]).unwrap();
    /// let keys: Vec<_> = watch.names.iter().map(|(k, _)| k.as_str()).collect();
    /// assert_eq!(keys, ["admin", "user/1"]);
    /// # }
    /// ```
    pub fn watch_many(
        &self,
        patterns: impl IntoIterator<Item = Pattern>,
    ) -> Result<Watch, RegistryError> {
        let patterns = self.valid_patterns(patterns)?;
        self.state.watch(patterns, self.node.subscription_capacity)
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
    /// let pid = node.spawn_named("worker/1", &(), |mut proc| async move {
    ///     let _ = proc.recv::<()>().await;
    /// }).unwrap();
    /// assert_eq!(node.whereis("worker/1"), Some(pid));
    /// assert!(node.spawn_named("worker/1", &(), |_| async {}).is_err());
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
}

impl std::fmt::Debug for Scope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Scope")
            .field("name", &self.state.name)
            .field("local_only", &self.state.local_only)
            .finish()
    }
}

pub use crate::store::DEFAULT_SCOPE;

/// The default scope's operations on a process (see [`Scope`] for the others).
impl Process {
    /// Registers a unique name in the default scope; see [`crate::Scope::register`].
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let node = roster::Node::builder().start().unwrap();
    /// let proc = node.process();
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
    /// let proc = node.process();
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
    /// node.process().join("room/42", &()).unwrap();
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
    /// let proc = node.process();
    /// proc.join("room/42", &()).unwrap();
    /// proc.leave("room/42").unwrap();
    /// # }
    /// ```
    pub fn leave(&self, key: &str) -> Result<(), RegistryError> {
        Scope::default_of(self.node_shared()).leave(self, key)
    }
}
