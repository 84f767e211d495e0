//! Reads: lookups, listings and counts. None of them waits for a task or a lock.

use std::sync::Arc;

use super::Scope;
use crate::entry::{Member, Members, Registration};
use crate::key::{Key, KeyError, Pattern};
use crate::pid::{Incarnation, Pid};
use crate::store::HeldKind;

impl Scope {
    /// The live owner of a name. Never returns a local process that has exited. Its meta
    /// is what the scope's `extract_meta` transform makes of the stored one, if one is
    /// configured (see [`crate::NodeBuilder::extract_meta`]).
    ///
    /// Lock-free: never waits for a task or a lock.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let node = roster::Node::builder().start().unwrap();
    /// let p = node.new_process();
    /// p.register("k", &"m").unwrap();
    /// let reg = node.default_scope().lookup("k").unwrap();
    /// assert_eq!((reg.pid, reg.meta.decode::<String>().unwrap()), (p.pid(), "m".into()));
    /// # }
    /// ```
    #[inline]
    pub fn lookup(&self, key: &str) -> Option<Registration> {
        let found = self.state.lookup(key)?;
        match self.extractor() {
            None => Some(found),
            Some(extract) => Some(self.extracted_registration(&extract, key, found)),
        }
    }

    /// The pid of the live owner of a name, without its meta: the cheapest lookup.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let node = roster::Node::builder().start().unwrap();
    /// let p = node.new_process();
    /// p.register("k", &()).unwrap();
    /// assert_eq!(node.default_scope().whereis("k"), Some(p.pid()));
    /// # }
    /// ```
    #[inline]
    #[doc(alias = "whereis_name")]
    pub fn whereis(&self, key: &str) -> Option<Pid> {
        self.state.whereis(key)
    }

    /// Live names under `prefix` (a key ending in `/`, or `""` for all), in key order, at
    /// most `limit` of them, with their meta as [`Scope::lookup`] returns it.
    ///
    /// # Errors
    ///
    /// [`KeyError::NotAPrefix`] if `prefix` is neither `""` nor ends with `/`.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let node = roster::Node::builder().start().unwrap();
    /// let (a, b) = (node.new_process(), node.new_process());
    /// a.register("user/1", &()).unwrap();
    /// b.register("user/2", &()).unwrap();
    /// let names: Vec<_> = node.default_scope().names("user/", 10).unwrap().into_iter().map(|(k, _)| k).collect();
    /// assert_eq!(names, ["user/1", "user/2"]);
    /// assert_eq!(node.default_scope().names("user/", 1).unwrap().len(), 1);
    /// # }
    /// ```
    #[doc(alias = "registered")]
    pub fn names(&self, prefix: &str, limit: usize) -> Result<Vec<(Key, Registration)>, KeyError> {
        self.check_prefix(prefix)?;
        let mut names = self.state.registered(prefix, limit);
        if let Some(extract) = self.extractor() {
            for (key, registration) in &mut names {
                registration.meta = self.node.extracts.run(&extract, key, &registration.meta);
            }
        }
        Ok(names)
    }

    /// A page of [`Scope::names`]: the names under `prefix` strictly after the key
    /// `after`, in key order, at most `limit`. Pass the last key of a page to get the
    /// next: a page costs what it returns, and a name that existed throughout the paging is
    /// in exactly one page however others come and go.
    ///
    /// # Errors
    ///
    /// [`KeyError::NotAPrefix`] if `prefix` is neither `""` nor ends with `/`.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let node = roster::Node::builder().start().unwrap();
    /// let p = node.new_process();
    /// for i in 1..=5 {
    ///     p.register(&format!("user/{i}"), &()).unwrap();
    /// }
    /// let scope = node.default_scope();
    /// let first = scope.names("user/", 2).unwrap();
    /// let next = scope.names_after("user/", &first[1].0, 2).unwrap();
    /// let keys: Vec<_> = next.iter().map(|(k, _)| k.as_str()).collect();
    /// assert_eq!(keys, ["user/3", "user/4"]);
    /// # }
    /// ```
    pub fn names_after(
        &self,
        prefix: &str,
        after: &str,
        limit: usize,
    ) -> Result<Vec<(Key, Registration)>, KeyError> {
        self.check_prefix(prefix)?;
        let mut names = self.state.registered_after(prefix, Some(after), limit);
        if let Some(extract) = self.extractor() {
            for (key, registration) in &mut names {
                registration.meta = self.node.extracts.run(&extract, key, &registration.meta);
            }
        }
        Ok(names)
    }

    pub(super) fn check_prefix(&self, prefix: &str) -> Result<(), KeyError> {
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
    /// let p = node.new_process();
    /// p.register("k", &()).unwrap();
    /// assert_eq!(node.default_scope().name_count(), 1);
    /// # }
    /// ```
    #[doc(alias = "registry_count")]
    pub fn name_count(&self) -> usize {
        self.state.registry_count(false)
    }

    /// Number of names owned by processes of this node.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let node = roster::Node::builder().start().unwrap();
    /// assert_eq!(node.default_scope().local_name_count(), 0);
    /// # }
    /// ```
    #[doc(alias = "local_registry_count")]
    pub fn local_name_count(&self) -> usize {
        self.state.registry_count(true)
    }

    /// Members of group `key`, or of every group under a prefix when `key` ends with `/`.
    ///
    /// Lock-free; the result shares the store's member lists (no copy per member). With
    /// an `extract_meta` transform (see [`crate::NodeBuilder::extract_meta`]) it is a new
    /// list instead, each member's meta transformed. An invalid key has no members.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let node = roster::Node::builder().start().unwrap();
    /// let p = node.new_process();
    /// p.join("room/1", &()).unwrap();
    /// assert_eq!(node.default_scope().members("room/1").pids(), [p.pid()]);
    /// assert_eq!(node.default_scope().members("room/").len(), 1);
    /// # }
    /// ```
    #[inline]
    #[doc(alias = "get_members")]
    pub fn members(&self, key: &str) -> Members<'_> {
        match self.extractor() {
            None => self.state.members(key, None),
            Some(extract) => self.extracted_members(&extract, key, None),
        }
    }

    /// Like [`Scope::members`], with at most `limit` members in all (across groups for a
    /// prefix).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let node = roster::Node::builder().start().unwrap();
    /// let (a, b) = (node.new_process(), node.new_process());
    /// a.join("room/1", &()).unwrap();
    /// b.join("room/2", &()).unwrap();
    /// assert_eq!(node.default_scope().members_limited("room/", 1).len(), 1);
    /// # }
    /// ```
    pub fn members_limited(&self, key: &str, limit: usize) -> Members<'_> {
        match self.extractor() {
            None => self.state.members(key, Some(limit)),
            Some(extract) => self.extracted_members(&extract, key, Some(limit)),
        }
    }

    /// Members of `key` (or prefix) that live on this node, with their meta as
    /// [`Scope::members`] returns it.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let node = roster::Node::builder().start().unwrap();
    /// let p = node.new_process();
    /// p.join("g", &()).unwrap();
    /// assert_eq!(node.default_scope().local_members("g").len(), 1);
    /// # }
    /// ```
    #[doc(alias = "get_local_members")]
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
    /// let (a, b) = (node.new_process(), node.new_process());
    /// a.join("room/1", &()).unwrap();
    /// b.join("room/2", &()).unwrap();
    /// assert_eq!(node.default_scope().local_members_limited("room/", 1).len(), 1);
    /// assert_eq!(node.default_scope().local_members_limited("room/", 5).len(), 2);
    /// # }
    /// ```
    pub fn local_members_limited(&self, key: &str, limit: usize) -> Vec<Member> {
        let local = self.node.incarnation;
        self.members(key)
            .iter()
            .filter(|m| m.pid().incarnation() == Incarnation::new(local))
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
    /// assert_eq!(node.default_scope().member_count("g"), 0);
    /// # }
    /// ```
    pub fn member_count(&self, key: &str) -> usize {
        self.state.members(key, None).len()
    }

    /// Number of live members of `key` (or prefix) on this node.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let node = roster::Node::builder().start().unwrap();
    /// let p = node.new_process();
    /// p.join("g", &()).unwrap();
    /// assert_eq!(node.default_scope().local_member_count("g"), 1);
    /// # }
    /// ```
    pub fn local_member_count(&self, key: &str) -> usize {
        let local = self.node.incarnation;
        self.state
            .members(key, None)
            .iter()
            .filter(|m| m.pid().incarnation() == Incarnation::new(local))
            .count()
    }

    /// Total memberships in the scope (all groups, all nodes).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let node = roster::Node::builder().start().unwrap();
    /// let p = node.new_process();
    /// p.join("a", &()).unwrap();
    /// p.join("b", &()).unwrap();
    /// assert_eq!(node.default_scope().membership_count(), 2);
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
    /// let p = node.new_process();
    /// p.join("room/2", &()).unwrap();
    /// p.join("room/1", &()).unwrap();
    /// assert_eq!(node.default_scope().groups("room/", 10).unwrap(), ["room/1", "room/2"]);
    /// # }
    /// ```
    #[doc(alias = "which_groups")]
    pub fn groups(&self, prefix: &str, limit: usize) -> Result<Vec<Key>, KeyError> {
        self.check_prefix(prefix)?;
        Ok(self.state.group_keys(prefix, limit))
    }

    /// A page of [`Scope::groups`]: the group keys under `prefix` strictly after `after`,
    /// in key order, at most `limit` (see [`Scope::names_after`]).
    ///
    /// # Errors
    ///
    /// [`KeyError::NotAPrefix`] if `prefix` is neither `""` nor ends with `/`.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let node = roster::Node::builder().start().unwrap();
    /// let p = node.new_process();
    /// for room in ["room/1", "room/2", "room/3"] {
    ///     p.join(room, &()).unwrap();
    /// }
    /// assert_eq!(node.default_scope().groups_after("room/", "room/1", 10).unwrap(), ["room/2", "room/3"]);
    /// # }
    /// ```
    pub fn groups_after(
        &self,
        prefix: &str,
        after: &str,
        limit: usize,
    ) -> Result<Vec<Key>, KeyError> {
        self.check_prefix(prefix)?;
        Ok(self.state.group_keys_after(prefix, Some(after), limit))
    }

    /// Checks `key` as this node checks every key a write or a read takes: not empty, not
    /// ending with `/` (that is a prefix), at most the node's
    /// [`max_key_bytes`](crate::NodeBuilder::max_key_bytes). For callers that take keys
    /// from outside (an HTTP API) and want to refuse a bad one before acting.
    ///
    /// # Errors
    ///
    /// The [`KeyError`] a write of `key` would return.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let node = roster::Node::builder().max_key_bytes(8).start().unwrap();
    /// let scope = node.default_scope();
    /// assert!(scope.check_key("user/1").is_ok());
    /// assert!(scope.check_key("").is_err() && scope.check_key("user/").is_err());
    /// assert!(scope.check_key("user/123456").is_err());
    /// # }
    /// ```
    pub fn check_key(&self, key: &str) -> Result<(), KeyError> {
        self.node.limits.write_key(key)
    }

    /// Groups of this scope that `pid` is a member of, in key order: a local process, or a
    /// process of another node whose memberships this node holds (replicated from its
    /// node). Empty once the process has exited (for a remote one: once its node's removal
    /// has arrived, or the node is gone).
    ///
    /// For a local process this reads the process's own list. For a remote one, the first
    /// such call in a scope builds an index of the scope's remote entries: a scan of the
    /// scope, shard by shard, during which a write waits at most for one shard's share. The
    /// index then costs a few tens of bytes per remote entry and is kept up to date by every
    /// write until the scope is disconnected; a scope never asked about a remote process
    /// pays nothing. Later calls take each shard lock briefly, one at a time. The figures
    /// are in the repository's `docs/performance.md`.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let node = roster::Node::builder().start().unwrap();
    /// let p = node.new_process();
    /// p.join("b", &()).unwrap();
    /// p.join("a", &()).unwrap();
    /// assert_eq!(node.default_scope().groups_of(p.pid()), ["a", "b"]);
    /// # }
    /// ```
    #[doc(alias = "keys_of")]
    pub fn groups_of(&self, pid: Pid) -> Vec<Key> {
        self.holdings_of(pid, HeldKind::Member)
    }

    /// Names of this scope that `pid` owns, in key order: a local process, or a process of
    /// another node (see [`Scope::groups_of`] for what that costs). A remote process that lost
    /// a name in a conflict does not own it, even while its node has not removed it yet.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let node = roster::Node::builder().start().unwrap();
    /// let p = node.new_process();
    /// p.register("n", &()).unwrap();
    /// assert_eq!(node.default_scope().names_of(p.pid()), ["n"]);
    /// # }
    /// ```
    pub fn names_of(&self, pid: Pid) -> Vec<Key> {
        self.holdings_of(pid, HeldKind::Name)
    }

    fn holdings_of(&self, pid: Pid, kind: HeldKind) -> Vec<Key> {
        if pid.incarnation() != Incarnation::new(self.node.incarnation) {
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
}
