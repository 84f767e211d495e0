//! `roster demo`: a three-node cluster of real agents on loopback, and a narrated tour of
//! what Roster does on it, each step checked: unique names found from any node, a name
//! conflict refused, a group across three nodes and a message dispatched to it, events as
//! they happen, a process death and a node loss cleaned up everywhere, a session lease that
//! lapses, a partition (one agent cut off through its fault-injection endpoint) in which
//! both sides take one name and the heal that leaves it one owner, a restart, and the
//! history. Then the cluster keeps running for the dashboard until Ctrl-C (or stops with
//! `--exit`).
//!
//! - [`cluster`]: the agents as child processes of this binary;
//! - [`tour`]: the steps, each a call to the agents' HTTP API and a check of the answer;
//! - [`say`]: how the tour prints.

pub mod cluster;
pub mod say;
pub mod tour;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

/// The flags of `roster demo`.
#[derive(Debug, Clone, Args)]
pub struct DemoArgs {
    /// The HTTP port of the first agent, where the dashboard is (0: any free port).
    #[arg(long, default_value_t = 7480)]
    pub port: u16,
    /// Where the agents keep their data (their history databases); a temporary directory
    /// removed at the end otherwise.
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Stop the cluster when the tour ends instead of keeping it up for the dashboard.
    #[arg(long)]
    pub exit: bool,
}

/// Runs the demo; exit code 0 when every step held.
pub fn run(args: &DemoArgs) -> ExitCode {
    match tour::run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("roster demo: {e}");
            ExitCode::from(1)
        }
    }
}
