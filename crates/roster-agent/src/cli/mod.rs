//! The command-line client: `roster nodes`, `roster registry`, `roster watch`, `roster
//! session ...` against a running agent's HTTP API (`--addr` or `ROSTER_ADDR`, default
//! `127.0.0.1:7480`). Tables for people (the status in colour on a terminal), `--json` for
//! scripts; exit codes in [`args::EXIT_CODES`].
//!
//! - [`args`]: the commands and their flags;
//! - [`client`]: the HTTP client and its errors;
//! - [`show`]: how answers print;
//! - [`table`]: plain-text tables;
//! - [`run`](mod@run): what each command asks.

pub mod args;
pub mod client;
pub mod run;
pub mod show;
pub mod table;

pub use args::{ClientArgs, ClientCommand, SessionCommand};
pub use run::run;
