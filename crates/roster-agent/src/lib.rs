//! The Roster agent: one Roster node and an HTTP API over it, run by the `roster` binary
//! (`roster agent`).
//!
//! - [`config`]: the settings (flags, environment, TOML file), validated into
//!   [`config::Settings`];
//! - [`logging`]: the log subscriber and its filter, changeable while running;
//! - [`agent`]: start and graceful shutdown of the node and the HTTP server;
//! - [`clock_file`]: the node's clock reading kept in the data directory across restarts;
//! - [`dashboard`]: the web dashboard at `/`, its assets embedded;
//! - [`http`]: the API, one module per resource, and its OpenAPI document;
//! - [`history`]: the audit log and heartbeats kept in SQLite or PostgreSQL;
//! - [`alerts`]: alert rules, their state and webhooks;
//! - [`state`]: what the handlers share;
//! - [`demo`]: `roster demo`, a three-node cluster and a narrated, checked tour of it;
//! - [`cli`]: the command-line client of a running agent (`roster nodes`, `roster registry`,
//!   `roster watch`, `roster session ...`);
//! - [`command`]: the subcommands of the binary, at the top.
//!
//! HTTP, command-line and TOML crates live here, never in the `roster` library. The
//! endpoints and settings are described in the repository's `docs/agent.md`.
#![forbid(unsafe_code)]

pub mod agent;
pub mod alerts;
pub mod bench;
pub mod cli;
pub mod clock_file;
pub mod command;
pub mod config;
pub mod dashboard;
pub mod demo;
pub mod errors;
pub mod events;
pub mod history;
pub mod http;
pub mod logging;
pub mod rate_limit;
pub mod services;
pub mod sessions;
pub mod shutdown;
pub mod state;
pub mod telemetry;
pub mod views;

pub use command::{Cli, run};
