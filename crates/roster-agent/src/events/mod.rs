//! The agent's event stream: registry events of every scope it is connected to and node
//! events, numbered by one per-agent sequence, kept in a bounded ring for resumption and
//! fanned out to SSE clients.
//!
//! - [`hub`]: the sequence, the ring and the fan-out;
//! - [`pump`]: the tasks that read the library's subscriptions into the hub;
//! - [`view`]: the JSON of each event.

pub mod hub;
pub mod pump;
pub mod view;

pub use hub::{EventHub, Replay, StreamEvent};
