//! Events: subscriptions and watches of a scope's changes.

use super::Scope;
use crate::error::RegistryError;
use crate::key::{KeyError, Pattern};
use crate::subscription::{Subscription, Watch};

impl Scope {
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
    /// let _all = node.default_scope().subscribe(roster::Pattern::All).unwrap();
    /// assert!(node.default_scope().subscribe("bad").is_ok());
    /// assert!(node.default_scope().subscribe(roster::Pattern::Prefix("no-slash".into())).is_err());
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
    /// let mut events = node.default_scope().subscribe_many([Pattern::from("user/"), Pattern::from("user/1")]).unwrap();
    /// node.new_process().register("user/1", &()).unwrap();
    /// assert_eq!(events.recv().await.unwrap().into_events().unwrap().len(), 1);
    /// # }
    /// ```
    pub fn subscribe_many(
        &self,
        patterns: impl IntoIterator<Item = Pattern>,
    ) -> Result<Subscription, RegistryError> {
        let patterns = self.valid_patterns(patterns)?;
        self.state
            .subscribe(patterns, self.node.subscription_capacity)
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
    /// The initial entries, like the events after them, carry the stored meta, whatever
    /// the scope's `extract_meta` transform: the two are one view of the changes, and the
    /// events are shared by every subscriber. [`Scope::extract_meta`] gives what reads
    /// show (the same holds for [`Scope::subscribe`]).
    ///
    /// # Errors
    ///
    /// `InvalidKey` for an invalid pattern, `ScopeNotConnected` after a disconnect.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let node = roster::Node::builder().start().unwrap();
    /// let p = node.new_process();
    /// p.join("room/1", &"alice").unwrap();
    /// let mut watch = node.default_scope().watch("room/1").unwrap();
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
    /// let p = node.new_process();
    /// p.register("user/1", &()).unwrap();
    /// p.register("admin", &()).unwrap();
    /// let watch = node.default_scope().watch_many([Pattern::from("user/"), Pattern::from("user/1"), Pattern::from("admin")]).unwrap();
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
}
