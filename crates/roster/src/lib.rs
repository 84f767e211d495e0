//! Roster: a distributed process registry and process groups for Rust.
//!
//! Roster gives a cluster of Rust services what Erlang clusters get from `syn`, `pg` and
//! `global`: cluster-wide unique names, process groups with metadata, lifecycle events,
//! dispatch and isolated named scopes. This crate is the library; it has no HTTP server,
//! database or CLI parser.
//!
//! - A [`Node`] is one member of a cluster. Its processes and scopes are on it; names and
//!   groups live on a [`Scope`] ([`Node::default_scope`], or [`Node::connect`] for
//!   another); the cluster as it sees it behind [`Node::cluster`], the node registry
//!   (records, health, heartbeats, split brain, node events) behind [`Node::nodes`].
//! - A [`Process`] is an RAII handle with a [`Pid`] and a mailbox: dropping it removes
//!   every name and membership it holds.
//! - Names ([`Scope::register`], [`Scope::lookup`]) have one owner per key; groups
//!   ([`Scope::join`], [`Scope::members`]) many members per key.
//! - [`Process::await_name`] (and [`Scope::await_name`]) waits for a name and takes it when
//!   its holder dies or leaves: a standby, woken by the key's events, that wins once.
//! - [`Scope::subscribe`] streams [`Event`]s in bounded batches; [`Scope::watch`] starts
//!   with the entries that exist, then streams the changes after them (no gap, no duplicate).
//! - [`NodeBuilder::cluster`] with a [`ClusterConfig`] joins a cluster: SWIM membership
//!   (foca), authenticated TCP links (optionally TLS, feature `tls`), replication by
//!   per-origin op streams with delta catch-up, snapshots, anti-entropy digests and
//!   deterministic conflict resolution ([`ConflictRule`]).
//!
//! Reads are lock-free and never hop to a task; writes are serialized per shard. The
//! replication protocol is a sans-IO state machine (no sockets, tasks or clocks inside),
//! driven by tokio in production and by a deterministic simulator in the tests.
//!
//! Features: `tls` (mutual TLS for links), `fault-injection` (links severed and nodes cut
//! off on purpose, for tests and chaos drills: `Cluster::sever_links`,
//! `Cluster::isolate`, `Cluster::isolate_from`), `fuzzing` (entry points for `fuzz/`).
//!
//! Coming from Erlang or Elixir? The guide `docs/coming-from-beam.md` in the repository puts
//! the calls of `syn`, `pg`, `global`, Elixir `Registry`, Phoenix PubSub/Tracker and `gproc`
//! beside Roster's, with what has no equivalent and why.
//!
//! # Examples
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! use roster::Node;
//!
//! let node = Node::builder().name("api-1").start().unwrap();
//! let session = node.new_process();
//! session.register("session/user-123", &"eu-west").unwrap();
//! session.join("room/42", &()).unwrap();
//!
//! assert_eq!(node.default_scope().whereis("session/user-123"), Some(session.pid()));
//! assert_eq!(node.default_scope().members("room/").len(), 1);
//! drop(session);
//! assert_eq!(node.default_scope().name_count(), 0);
//! # }
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs, unreachable_pub, rustdoc::broken_intra_doc_links)]

mod cluster;
#[cfg(feature = "fuzzing")]
pub mod fuzzing;
mod node;
pub mod nodes;
mod process;
mod runtime;
mod scope;
mod standby;

// The protocol: vocabulary, stores, the replication core, the wire format and the link
// lifecycle, with no IO (see the `roster-proto` crate). Imported under their names so
// the shell refers to them as `crate::store`, `crate::replication`, ...
use roster_proto::{
    clock, conflict, entry, envelope, error, event, key, link_table, meta, op, pid, replication,
    store, subscription,
};

pub use clock::Clock;
pub use cluster::{
    ClusterConfig, ClusterStats, FailureDetection, HandshakeError, LinkKind, LinkSession, PeerInfo,
};
#[cfg(feature = "tls")]
pub use cluster::{TlsConfig, TlsError};
pub use conflict::{ConflictRule, DecidedBy, Resolver, Winner};
pub use entry::{Entry, Member, Members, Registration, Table};
pub use envelope::Envelope;
pub use error::{ExitReasonTooLong, RecvError, RegistryError, ScopeError, SendError, TryRecvError};
pub use event::{Event, EventKind, ExitReason, Reason};
pub use key::{Key, KeyError, Pattern, ScopeName};
pub use meta::{Meta, MetaError};
pub use node::{
    Cluster, ClusterGraph, GraphLink, GraphNode, MIN_SCOPE_TTL, Node, NodeBuilder, NodeFilter,
    NodeHealth, NodeInfo, NodeLiveness, NodeWatch, Nodes, RecordError, ScopeOptions, StartError,
    StatusIsForPeers,
};
pub use pid::{Incarnation, Pid, PidParseError};
pub use process::Process;
pub use runtime::log_level::LogLevel;
pub use scope::{Counted, DEFAULT_SCOPE, Decoded, Dispatched, Scope, Selected};
pub use subscription::{Delivery, Subscription, Watch};

/// The code of this crate's README and of the repository's front page, compiled and run as
/// doctests so that they stay true.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
#[doc = include_str!("../../../README.md")]
struct ReadmeDoctests;
