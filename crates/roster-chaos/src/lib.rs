//! Fault evidence with real agents.
//!
//! A [`cluster::Cluster`] runs `roster agent` processes in Linux network namespaces joined
//! by a bridge ([`net::Network`]); [`faults::Fault`] cuts, degrades, kills, stops and
//! restarts them; a [`workload::Workload`] drives sessions, names, groups and dispatch
//! over HTTP and records every operation in a [`history::History`]; after each heal the
//! [`checker`] waits for the nodes to agree and checks the history and the final state.
//! [`soak`] runs random faults for a while and reports the figures.
//!
//! Everything here needs root (namespaces, nftables); [`net::Network::probe`] says whether
//! this machine can do it.
#![forbid(unsafe_code)]

pub mod agent;
pub mod checker;
pub mod clock;
pub mod cluster;
pub mod disk;
pub mod error;
pub mod faults;
pub mod history;
pub mod http;
pub mod locate;
pub mod net;
pub mod resources;
pub mod scenario;
pub mod soak;
pub mod time;
pub mod views;
pub mod workload;

pub use error::ChaosError;
