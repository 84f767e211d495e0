//! The `roster` binary: see the `roster_agent` library.
#![forbid(unsafe_code)]

use clap::Parser;

fn main() -> std::process::ExitCode {
    roster_agent::run(roster_agent::Cli::parse())
}
