//! Library values as the agent shows them in JSON, shared by the HTTP API, the history and
//! the event stream: meta decoded from MessagePack, pids as text, heartbeats.

pub mod heartbeat;
pub mod meta;
