//! What queries return: registrations, group members and selected entries.

use std::sync::Arc;

use crate::vocab::key::Key;
use crate::vocab::live::{ExitMark, LiveSet};
use crate::vocab::meta::Meta;
use crate::vocab::pid::{Incarnation, Pid};

/// The owner of a unique name, as returned by lookups and registrations.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registration {
    /// The owning process.
    pub pid: Pid,
    /// Its meta.
    pub meta: Meta,
    /// Hybrid-logical-clock reading of the original registration (meta updates keep it);
    /// decides keep-oldest and keep-newest conflicts.
    pub registered_at: u64,
    /// Fencing token: grows each time the name changes owner. Hand it to downstream systems
    /// so that they can refuse writes from a previous owner.
    pub token: u64,
}

/// One member of a process group.
#[derive(Clone)]
pub struct Member {
    pid: Pid,
    meta: Meta,
}

impl Member {
    /// A member of a group: `pid` with its `meta`.
    pub fn new(pid: Pid, meta: Meta) -> Self {
        Self { pid, meta }
    }

    /// The member process.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let node = roster::Node::builder().start().unwrap();
    /// let p = node.new_process();
    /// p.join("g", &()).unwrap();
    /// assert_eq!(node.default_scope().members("g").iter().next().unwrap().pid(), p.pid());
    /// # }
    /// ```
    pub fn pid(&self) -> Pid {
        self.pid
    }

    /// The member's meta in this group.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let node = roster::Node::builder().start().unwrap();
    /// let p = node.new_process();
    /// p.join("g", &"admin").unwrap();
    /// let members = node.default_scope().members("g");
    /// assert_eq!(members.iter().next().unwrap().meta().decode::<String>().unwrap(), "admin");
    /// # }
    /// ```
    pub fn meta(&self) -> &Meta {
        &self.meta
    }
}

impl PartialEq for Member {
    fn eq(&self, other: &Self) -> bool {
        self.pid == other.pid && self.meta == other.meta
    }
}

impl Eq for Member {}

impl std::fmt::Debug for Member {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Member")
            .field("pid", &self.pid)
            .field("meta", &self.meta)
            .finish()
    }
}

/// The members of one group as the store holds them: an immutable list that readers share
/// with a reference count (taking it copies no member), in join order.
///
/// Small groups are one flat list, rewritten whole on each change (cheapest to read and to
/// keep, and a copy of at most [`MemberList::FLAT_MAX`] members costs less than a tree's
/// path copy); larger ones are a persistent B-tree ordered by join sequence
/// ([`imbl::OrdMap`]), where a join or leave copies one path, O(log n), and shares the rest
/// with every earlier version.
#[derive(Clone)]
pub enum MemberList {
    /// At most [`MemberList::FLAT_MAX`] members, in join order.
    Flat(Arc<[Member]>),
    /// More members, keyed (and so ordered) by join sequence.
    Tree(imbl::OrdMap<u64, Member>),
}

impl MemberList {
    /// The most members a flat list holds; a join past it makes the group a tree, and a
    /// tree that shrinks to half of it is flattened again. Measured with
    /// `roster-bench --only G1,M2`: flat copies of up to a few hundred members cost less
    /// per change than a path copy of the tree, which also takes more bytes per member.
    pub const FLAT_MAX: usize = 256;

    /// The members, in join order.
    pub fn iter(&self) -> impl Iterator<Item = &Member> {
        let (flat, tree) = match self {
            Self::Flat(list) => (Some(list.iter()), None),
            Self::Tree(tree) => (None, Some(tree.values())),
        };
        flat.into_iter().flatten().chain(tree.into_iter().flatten())
    }

    /// Number of members.
    pub fn len(&self) -> usize {
        match self {
            Self::Flat(list) => list.len(),
            Self::Tree(tree) => tree.len(),
        }
    }

    /// Whether the list has no member (the store never keeps an empty group).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl std::fmt::Debug for MemberList {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

/// The members of a group (or of every group under a prefix).
///
/// A snapshot that shares the store's immutable member lists: taking it costs a reference
/// count per group, not a copy per member. It borrows the scope it came from. Iteration
/// skips local members whose process has died since, even before their removal completes.
///
/// # Examples
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let node = roster::Node::builder().start().unwrap();
/// let (a, b) = (node.new_process(), node.new_process());
/// a.join("room/1", &()).unwrap();
/// b.join("room/2", &()).unwrap();
/// assert_eq!(node.default_scope().members("room/1").len(), 1);
/// assert_eq!(node.default_scope().members("room/").len(), 2);
/// # }
/// ```
#[derive(Clone)]
pub struct Members<'a> {
    groups: Vec<MemberList>,
    limit: Option<usize>,
    /// This node's incarnation and live processes, to skip local members that died.
    local: u64,
    live: &'a LiveSet,
    /// The live set's exits finished before the lists were read: while no process dies,
    /// counting the members needs no walk.
    mark: ExitMark,
}

impl<'a> Members<'a> {
    /// A view of the members of `groups`, at most `limit`, counting those of node `local` as local;
    /// `mark` is `live.exits_finished()` read before the lists were.
    pub fn new(
        groups: Vec<MemberList>,
        limit: Option<usize>,
        local: u64,
        live: &'a LiveSet,
        mark: ExitMark,
    ) -> Self {
        Members {
            groups,
            limit,
            local,
            live,
            mark,
        }
    }

    /// The live members, in group-key order and join order within a group.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let node = roster::Node::builder().start().unwrap();
    /// let p = node.new_process();
    /// p.join("g", &()).unwrap();
    /// let pids: Vec<_> = node.default_scope().members("g").iter().map(|m| m.pid()).collect();
    /// assert_eq!(pids, [p.pid()]);
    /// # }
    /// ```
    pub fn iter(&self) -> impl Iterator<Item = &Member> {
        self.groups
            .iter()
            .flat_map(|group| group.iter())
            .filter(|m| {
                m.pid.incarnation() != Incarnation::new(self.local)
                    || self.live.contains(m.pid.serial())
            })
            .take(self.limit.unwrap_or(usize::MAX))
    }

    /// Number of live members.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let node = roster::Node::builder().start().unwrap();
    /// assert_eq!(node.default_scope().members("nobody").len(), 0);
    /// # }
    /// ```
    pub fn len(&self) -> usize {
        if self.live.settled_since(self.mark) {
            // No local process died since the lists were read: they hold live members
            // only, and each knows its length (O(1) per group, however large).
            let listed: usize = self.groups.iter().map(MemberList::len).sum();
            return listed.min(self.limit.unwrap_or(usize::MAX));
        }
        self.iter().count()
    }

    /// Whether there are no live members.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let node = roster::Node::builder().start().unwrap();
    /// assert!(node.default_scope().members("nobody").is_empty());
    /// # }
    /// ```
    pub fn is_empty(&self) -> bool {
        self.iter().next().is_none()
    }

    /// The pids of the live members.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let node = roster::Node::builder().start().unwrap();
    /// let p = node.new_process();
    /// p.join("g", &()).unwrap();
    /// assert_eq!(node.default_scope().members("g").pids(), [p.pid()]);
    /// # }
    /// ```
    pub fn pids(&self) -> Vec<Pid> {
        self.iter().map(Member::pid).collect()
    }

    /// The live members as an owned list.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let node = roster::Node::builder().start().unwrap();
    /// assert!(node.default_scope().members("g").to_vec().is_empty());
    /// # }
    /// ```
    pub fn to_vec(&self) -> Vec<Member> {
        self.iter().cloned().collect()
    }
}

impl<'a> IntoIterator for &'a Members<'_> {
    type Item = &'a Member;
    type IntoIter = Box<dyn Iterator<Item = &'a Member> + 'a>;

    fn into_iter(self) -> Self::IntoIter {
        Box::new(self.iter())
    }
}

impl std::fmt::Debug for Members<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

/// Which table a `roster::Scope::select` reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Table {
    /// Unique names.
    Names,
    /// Group memberships (one entry per member per group).
    Groups,
}

/// An entry as seen by a `roster::Scope::select` predicate and returned by it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The name or group key.
    pub key: Key,
    /// The owning or member process.
    pub pid: Pid,
    /// The meta.
    pub meta: Meta,
}
