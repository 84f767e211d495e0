//! `roster demo`: a three-node cluster of real agents on loopback running a chat-presence
//! workload, with faults part-way through, and a summary of what the cluster did.
//!
//! Users connect to one of the nodes (an HTTP session of its agent), register as
//! `user/NAME`, join `channel/NAME` groups and post messages to their channels, which the
//! members read from their mailboxes on their own nodes. Part-way, one agent is cut off
//! (the split-brain verdict is shown, and a name taken on both sides has one owner after
//! the heal), one is killed (its users and memberships disappear everywhere) and
//! restarted. Then the summary: entries, events, conflicts, convergence times, messages.
//! Without `--duration` the cluster stays up (the chat going on) for the dashboard until
//! Ctrl-C.
//!
//! - [`cluster`]: the agents as child processes of this binary;
//! - [`chat`]: the workload, a worker thread per node;
//! - [`observe`]: what the demo reads back from the agents;
//! - [`timeline`]: the phases, when they come and what each checks;
//! - [`summary`]: the closing tables;
//! - [`say`]: how it prints, under a progress bar.

pub mod chat;
pub mod cluster;
pub mod observe;
pub mod say;
pub mod summary;
pub mod timeline;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Args;

/// How long the workload runs without `--duration`.
const DEFAULT_LENGTH: Duration = Duration::from_secs(60);
/// The shortest workload: the partition lasts 8 s and failure detection about as long.
const SHORTEST: Duration = Duration::from_secs(30);

/// The flags of `roster demo`.
#[derive(Debug, Clone, Args)]
pub struct DemoArgs {
    /// The HTTP port of the first agent, where the dashboard is (0: any free port).
    #[arg(long, default_value_t = 7480)]
    pub port: u16,
    /// Where the agents keep their data (their history databases and logs); a temporary
    /// directory removed at the end otherwise.
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Run the workload this long (at least 30s, e.g. `30s`, `2m`), print the summary and
    /// stop. Without it the workload runs 60s and the cluster then stays up until Ctrl-C.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub duration: Option<Duration>,
    /// Users online at once, shared by the three nodes.
    #[arg(long, default_value_t = 60, value_parser = clap::value_parser!(u16).range(3..=3000))]
    pub users: u16,
}

impl DemoArgs {
    /// How long the workload runs.
    pub fn length(&self) -> Duration {
        self.duration.unwrap_or(DEFAULT_LENGTH)
    }
}

fn parse_duration(text: &str) -> Result<Duration, String> {
    let duration = humantime::parse_duration(text)
        .map_err(|e| format!("{e}: give a duration such as 30s or 2m"))?;
    if duration < SHORTEST {
        return Err(format!(
            "{text} is too short: give at least {}s (the partition lasts 8s, failure detection about as long)",
            SHORTEST.as_secs()
        ));
    }
    Ok(duration)
}

/// Runs the demo: exit code 0 when every check held, 1 when one did not or a phase failed,
/// 130 when interrupted before the summary.
pub fn run(args: &DemoArgs) -> ExitCode {
    match timeline::run(args) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => {
            eprintln!("roster demo: a check did not hold (marked ✗ in the summary)");
            ExitCode::from(1)
        }
        Err(timeline::DemoError::Interrupted) => {
            eprintln!("roster demo: interrupted; the cluster was stopped");
            ExitCode::from(130)
        }
        Err(e) => {
            eprintln!("roster demo: {e}");
            ExitCode::from(1)
        }
    }
}
