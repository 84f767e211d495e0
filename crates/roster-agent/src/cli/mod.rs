//! The command-line client: `roster nodes`, `roster names`, `roster events`, ... against a
//! running agent's HTTP API (`--agent`, default `http://127.0.0.1:7480`). Tables for people,
//! `--json` for scripts.
//!
//! - [`args`]: the commands and their flags;
//! - [`client`]: the HTTP client and its errors;
//! - [`table`]: plain-text tables;
//! - [`run`](mod@run): what each command asks and prints.

pub mod args;
pub mod client;
pub mod run;
pub mod table;

pub use args::{ClientArgs, ClientCommand};
pub use run::run;
