//! The vocabulary every layer above speaks, with nothing of them: keys and patterns, meta,
//! pids and incarnations, entries, events and exit reasons, ops, envelopes, conflict
//! rules, clocks, the liveness bitset and the errors of the registry's calls. Nothing
//! here imports the stores, the node registry, subscriptions or replication.

pub mod clock;
pub mod conflict;
pub mod entry;
pub mod envelope;
pub mod error;
pub mod event;
pub mod key;
pub mod live;
pub mod meta;
pub mod op;
pub mod pid;
