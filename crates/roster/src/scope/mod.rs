//! Scopes: named, isolated registries; every operation on names and groups lives here,
//! one file per job: [`writes`] (register, join, their removal, `spawn_named`, and the
//! default scope's shims on [`Process`]), [`reads`] (lookups, listings, counts),
//! [`queries`] (select and count with a predicate), [`dispatch`] and [`events`]
//! (subscriptions and watches), and [`extract`] (reads through the `extract_meta`
//! transform).

mod dispatch;
mod events;
mod extract;
mod queries;
mod reads;
mod writes;

use std::sync::Arc;

use serde::Serialize;

use crate::error::RegistryError;
use crate::key::KeyError;
use crate::meta::{Meta, MetaError};
use crate::process::Process;
use crate::runtime::NodeShared;
use crate::store::ScopeStore;

pub use self::dispatch::Dispatched;
pub use self::queries::{Counted, Decoded, Selected};
pub use crate::store::DEFAULT_SCOPE;

/// A handle to a scope this node is connected to.
///
/// A scope is an isolated registry: names and groups of one scope never meet those of
/// another. [`Node::default_scope`](crate::Node::default_scope) is the scope every node is
/// in, [`Node::connect`](crate::Node::connect) gives others. Handles are cheap to clone. Once the node disconnects from the scope,
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
/// let proc = node.new_process();
/// chat.register(&proc, "room-owner/1", &()).unwrap();
/// assert!(chat.lookup("room-owner/1").is_some());
/// assert!(node.default_scope().lookup("room-owner/1").is_none()); // the default scope is separate
/// # }
/// ```
#[derive(Clone)]
pub struct Scope {
    pub(crate) state: Arc<ScopeStore>,
    pub(crate) node: Arc<NodeShared>,
}

impl Scope {
    /// The default scope of `node`.
    pub(crate) fn default_of(node: &Arc<NodeShared>) -> Self {
        Self {
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
    /// assert_eq!(node.default_scope().scope_name(), "default");
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
    /// assert!(node.connect_with("cache", roster::ScopeOptions::new().local_only()).unwrap().is_local_only());
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
    pub(crate) fn checked_entry<M: Serialize + ?Sized>(
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
}

impl std::fmt::Debug for Scope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Scope")
            .field("name", &self.state.name)
            .field("local_only", &self.state.local_only)
            .finish()
    }
}
