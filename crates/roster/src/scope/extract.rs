//! Reads through the scope's `extract_meta` transform: the meta that lookups, listings,
//! member lists and selections return (see `NodeBuilder::extract_meta`).

use std::sync::Arc;

use super::Scope;
use crate::entry::{Entry, Member, MemberList, Members, Registration};
use crate::key::is_prefix;
use crate::meta::Meta;
use crate::runtime::extract::ExtractFn;

impl Scope {
    /// The meta a read of this scope returns for an entry of `key` stored with `meta`: the
    /// scope's `extract_meta` transform applied (its own, else the node's), or `meta`
    /// itself without one. Subscriptions and watches carry the stored meta; this gives
    /// their consumers what reads show. A panicking transform gives `meta` back (see
    /// [`crate::NodeBuilder::extract_meta`]).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// use roster::{Meta, ScopeOptions};
    /// let node = roster::Node::builder().start().unwrap();
    /// let scope = node
    ///     .connect_with("s", ScopeOptions::new().extract_meta(|_, _| Meta::EMPTY))
    ///     .unwrap();
    /// let stored = Meta::encode(&"internal").unwrap();
    /// assert!(scope.extract_meta("k", &stored).is_empty());
    /// assert_eq!(node.default_scope().extract_meta("k", &stored), stored);
    /// # }
    /// ```
    pub fn extract_meta(&self, key: &str, meta: &Meta) -> Meta {
        match self.extractor() {
            None => meta.clone(),
            Some(extract) => self.node.extracts.run(&extract, key, meta),
        }
    }

    /// The transform of this scope's reads, if any (one relaxed load when none is set
    /// on the node).
    #[inline]
    pub(super) fn extractor(&self) -> Option<ExtractFn> {
        self.node.extracts.of(&self.state)
    }

    /// `registration` of `key` as reads return it.
    #[cold]
    pub(super) fn extracted_registration(
        &self,
        extract: &ExtractFn,
        key: &str,
        mut registration: Registration,
    ) -> Registration {
        registration.meta = self.node.extracts.run(extract, key, &registration.meta);
        registration
    }

    /// `entry` as a selection returns it (and its predicate sees it).
    #[inline(never)]
    pub(super) fn extracted_entry(&self, extract: &ExtractFn, mut entry: Entry) -> Entry {
        entry.meta = self.node.extracts.run(extract, &entry.key, &entry.meta);
        entry
    }

    /// [`Scope::members`] through `extract`: one new list of the live members (at most
    /// `limit`), each with its meta transformed with its own group's key.
    #[cold]
    pub(super) fn extracted_members(
        &self,
        extract: &ExtractFn,
        key: &str,
        limit: Option<usize>,
    ) -> Members<'_> {
        let live = &self.node.stores.processes.live;
        // Before the lists are read, as the store does (see `Members::new`).
        let mark = live.exits_finished();
        let limit = limit.unwrap_or(usize::MAX);
        let mut found = Vec::new();
        let extract_group = |group: &str, found: &mut Vec<Member>| {
            for member in self.state.members(group, None).iter() {
                if found.len() >= limit {
                    return;
                }
                let meta = self.node.extracts.run(extract, group, member.meta());
                found.push(Member::new(member.pid(), meta));
            }
        };
        if is_prefix(key) {
            for group in self.state.group_keys(key, usize::MAX) {
                if found.len() >= limit {
                    break;
                }
                extract_group(&group, &mut found);
            }
        } else {
            extract_group(key, &mut found);
        }
        let list = MemberList::Flat(Arc::from(found));
        Members::new(vec![list], None, self.node.incarnation, live, mark)
    }
}
