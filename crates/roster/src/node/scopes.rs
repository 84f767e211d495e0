//! The scopes of a node: connecting one (replicated or local-only, with or without a
//! lease), finding one, listing them, disconnecting.

use std::sync::Arc;
use std::time::Duration;

use super::Node;
use crate::error::ScopeError;
use crate::key::ScopeName;
use crate::meta::Meta;
use crate::runtime::extract::ExtractFn;
use crate::scope::{DEFAULT_SCOPE, Scope};
use crate::store::KindMismatch;

/// The shortest lease [`ScopeOptions::ttl`] takes: a lease is checked once per ttl, so a
/// shorter one would keep a task busy checking.
pub const MIN_SCOPE_TTL: Duration = Duration::from_millis(1);

/// How [`Node::connect_with`] connects a scope: replicated or local-only, with or without
/// a lease, with or without its own [`ScopeOptions::extract_meta`].
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use std::time::Duration;
/// use roster::ScopeOptions;
///
/// let node = roster::Node::builder().start().unwrap();
/// let cache = node
///     .connect_with("cache", ScopeOptions::new().local_only().ttl(Duration::from_secs(30)))
///     .unwrap();
/// assert!(cache.is_local_only());
/// # }
/// ```
#[derive(Clone, Default)]
pub struct ScopeOptions {
    local_only: bool,
    ttl: Option<Duration>,
    extract_meta: Option<ExtractFn>,
}

impl std::fmt::Debug for ScopeOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScopeOptions")
            .field("local_only", &self.local_only)
            .field("ttl", &self.ttl)
            .field("extract_meta", &self.extract_meta.is_some())
            .finish()
    }
}

impl ScopeOptions {
    /// A replicated scope without a lease (what [`Node::connect`] connects).
    pub fn new() -> Self {
        Self::default()
    }

    /// A local-only scope: it never replicates (Elixir `Registry` semantics, with unique
    /// names and duplicate keys as groups, dispatch, select and count).
    #[doc(alias = "connect_local")]
    pub fn local_only(mut self) -> Self {
        self.local_only = true;
        self
    }

    /// A lease: every `ttl`, if this node holds no names, memberships or subscriptions in
    /// the scope, it disconnects; otherwise the lease is extended by another `ttl`. A ttl
    /// too long for the clock never expires; one under [`MIN_SCOPE_TTL`] is refused by
    /// [`Node::connect_with`].
    #[doc(alias = "connect_with_ttl")]
    pub fn ttl(mut self, ttl: Duration) -> Self {
        self.ttl = Some(ttl);
        self
    }

    /// The scope's own transform of the meta its reads return, in place of the node's
    /// ([`NodeBuilder::extract_meta`](crate::NodeBuilder::extract_meta), which says which
    /// reads apply it, why its signature, and what a panic in it does). Given again when
    /// the scope is already connected, it replaces the scope's transform for every handle;
    /// connecting without one leaves the scope's as it is. It lasts until the scope is
    /// disconnected.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// use roster::{Meta, ScopeOptions};
    ///
    /// // Members of "rooms" store (role, joined_at); readers see the role only.
    /// let node = roster::Node::builder().start().unwrap();
    /// let rooms = node
    ///     .connect_with(
    ///         "rooms",
    ///         ScopeOptions::new().extract_meta(|_key, meta| match meta.decode::<(String, u64)>() {
    ///             Ok((role, _joined_at)) => Meta::encode(&role).unwrap(),
    ///             Err(_) => meta.clone(),
    ///         }),
    ///     )
    ///     .unwrap();
    /// let p = node.new_process();
    /// rooms.join(&p, "room/1", &("admin", 1_700_000_000u64)).unwrap();
    /// let members = rooms.members("room/1");
    /// assert_eq!(members.iter().next().unwrap().meta().decode::<String>().unwrap(), "admin");
    /// # }
    /// ```
    pub fn extract_meta<F>(mut self, extract: F) -> Self
    where
        F: Fn(&str, &Meta) -> Meta + Send + Sync + 'static,
    {
        self.extract_meta = Some(Arc::new(extract));
        self
    }
}

impl Node {
    /// Connects this node to a replicated scope without a lease (creating it locally if
    /// needed) and returns a handle; [`Node::connect_with`] takes options. Connecting
    /// again returns the same scope.
    ///
    /// # Errors
    ///
    /// [`ScopeError::InvalidName`], or [`ScopeError::KindMismatch`] if it is connected as
    /// local-only.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let node = roster::Node::builder().start().unwrap();
    /// let chat = node.connect("chat").unwrap();
    /// assert_eq!(node.scope("chat").unwrap().scope_name(), chat.scope_name());
    /// # }
    /// ```
    pub fn connect(&self, scope: &str) -> Result<Scope, ScopeError> {
        self.connect_with(scope, ScopeOptions::new())
    }

    /// Connects this node to a scope with `options` (local-only, a lease, both) and
    /// returns a handle. Connecting again returns the same scope. The lease rule: a lease
    /// given again replaces the scope's lease (its ttl, counted from now); connecting again
    /// without one (or with [`Node::connect`]) keeps the lease the scope has.
    ///
    /// # Errors
    ///
    /// [`ScopeError::InvalidName`]; [`ScopeError::KindMismatch`] if the scope is already
    /// connected as the other kind (replicated or local-only); with a lease,
    /// [`ScopeError::DefaultScope`] for the default scope, which can never be disconnected,
    /// and [`ScopeError::TtlTooShort`] for a ttl under [`MIN_SCOPE_TTL`].
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// use std::time::Duration;
    /// use roster::ScopeOptions;
    ///
    /// let node = roster::Node::builder().start().unwrap();
    /// node.connect_with("jobs", ScopeOptions::new().ttl(Duration::from_secs(5))).unwrap();
    /// tokio::time::sleep(Duration::from_secs(6)).await;
    /// assert!(node.scope("jobs").is_err());
    /// # }
    /// ```
    pub fn connect_with(&self, scope: &str, options: ScopeOptions) -> Result<Scope, ScopeError> {
        if let Some(ttl) = options.ttl {
            if scope == DEFAULT_SCOPE {
                return Err(ScopeError::DefaultScope);
            }
            if ttl < MIN_SCOPE_TTL {
                return Err(ScopeError::TtlTooShort {
                    ttl,
                    min: MIN_SCOPE_TTL,
                });
            }
        }
        self.shared
            .limits
            .write_key(scope)
            .map_err(ScopeError::InvalidName)?;
        let (state, created) = self
            .shared
            .stores
            .connect(scope, options.local_only)
            .map_err(|KindMismatch| ScopeError::KindMismatch(scope.into()))?;
        if created
            && !options.local_only
            && let Some(cluster) = self.shared.cluster()
        {
            cluster.on_scope_connected(&state.name);
        }
        if let Some(ttl) = options.ttl {
            state.set_lease(ttl, tokio::time::Instant::now().into_std());
            self.shared.lease_timer();
        }
        match options.extract_meta {
            Some(extract) => self.shared.extracts.set_scope(&state, extract),
            None => self.shared.extracts.adopt(&state),
        }
        Ok(Scope {
            state,
            node: self.shared.clone(),
        })
    }

    /// # Errors
    ///
    /// [`ScopeError::NotConnected`] if this node is not connected to it.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let node = roster::Node::builder().start().unwrap();
    /// assert!(node.scope("nope").is_err());
    /// assert!(node.scope("default").is_ok());
    /// # }
    /// ```
    pub fn scope(&self, scope: &str) -> Result<Scope, ScopeError> {
        let state = self
            .shared
            .stores
            .get(scope)
            .ok_or_else(|| ScopeError::NotConnected(scope.into()))?;
        Ok(Scope {
            state,
            node: self.shared.clone(),
        })
    }

    /// The scopes this node is connected to, sorted.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let node = roster::Node::builder().start().unwrap();
    /// node.connect("b").unwrap();
    /// assert_eq!(node.scopes(), ["b", "default"]);
    /// # }
    /// ```
    pub fn scopes(&self) -> Vec<ScopeName> {
        let mut names: Vec<ScopeName> = self
            .shared
            .stores
            .all()
            .iter()
            .map(|s| s.name.clone())
            .collect();
        names.sort_unstable();
        names
    }

    /// Disconnects from a scope: drops the local view of it, emitting `Unregistered`/`Left`
    /// with reason [`crate::Reason::ScopeDisconnected`] as one final batch per subscription,
    /// and ends its subscriptions. Later writes through old handles fail with
    /// [`crate::RegistryError::ScopeNotConnected`].
    ///
    /// # Errors
    ///
    /// [`ScopeError::NotConnected`], or [`ScopeError::DefaultScope`] for the default scope.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let node = roster::Node::builder().start().unwrap();
    /// let chat = node.connect("chat").unwrap();
    /// let p = node.new_process();
    /// chat.register(&p, "k", &()).unwrap();
    /// node.disconnect("chat").unwrap();
    /// assert!(chat.lookup("k").is_none());
    /// assert!(chat.register(&p, "k", &()).is_err());
    /// # }
    /// ```
    pub fn disconnect(&self, scope: &str) -> Result<(), ScopeError> {
        if scope == DEFAULT_SCOPE {
            return Err(ScopeError::DefaultScope);
        }
        let state = self.scope(scope)?.state;
        self.shared.disconnect_state(&state);
        Ok(())
    }

    /// How many times an `extract_meta` transform panicked in a read on this node (each
    /// such read returned the stored meta of that entry; the first panic is logged).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let node = roster::Node::builder().start().unwrap();
    /// assert_eq!(node.extract_meta_panics(), 0);
    /// # }
    /// ```
    pub fn extract_meta_panics(&self) -> u64 {
        self.shared.extracts.panics()
    }
}
