//! Roster's protocol, with no IO and no runtime: the vocabulary (keys, meta, pids,
//! events, ops, entries), the stores of a node, the sans-IO replication core and its wire
//! format, and the lifecycle of links between nodes. It takes inputs and time and hands
//! every effect back as an output; the `roster` crate is the API and the tokio shell
//! around it, and the deterministic simulation drives it directly.
//!
//! Most users depend on `roster`, which re-exports the vocabulary.
//!
//! ```
//! use roster_proto::key::Pattern;
//!
//! assert_eq!(Pattern::from("room/"), Pattern::Prefix("room/".into()));
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs, rustdoc::broken_intra_doc_links)]

pub mod link_table;
pub mod nodes;
pub mod replication;
pub mod store;
pub mod subscription;
pub mod vocab;

// The vocabulary under its own names too: `roster_proto::key::Key`, as the `roster` crate
// and its users write it.
pub use vocab::{clock, conflict, entry, envelope, error, event, key, live, meta, op, pid};
