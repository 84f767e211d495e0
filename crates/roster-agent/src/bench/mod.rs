//! `roster bench-agent`: starts one agent in this process and drives it over HTTP
//! keep-alive connections from a local load generator (threads with blocking `ureq`
//! clients), then prints each figure beside its target and what limits it.
//!
//! - [`target`]: the agent under load, on its own runtime;
//! - [`load`]: timed request loops with latency histograms;
//! - [`pipelined`]: lookups with HTTP/1.1 pipelining, to show the agent's own cost;
//! - [`phases`]: lookups, session creation and expiry, keepalives, SSE fan-out;
//! - [`history_cost`]: keepalive latency under session churn, history off against on;
//! - [`report`]: the table.

pub mod history_cost;
pub mod load;
pub mod phases;
pub mod pipelined;
pub mod report;
pub mod target;

use std::process::ExitCode;
use std::time::Duration;

use clap::Args;

/// The flags of `roster bench-agent`.
#[derive(Debug, Clone, Args)]
pub struct BenchArgs {
    /// How long each timed phase runs, e.g. 5s.
    #[arg(long, default_value = "5s", value_parser = humantime::parse_duration)]
    pub duration: Duration,
    /// Load-generator threads (each one keep-alive connection).
    #[arg(long, default_value_t = 4)]
    pub threads: usize,
    /// SSE clients of the fan-out phase.
    #[arg(long, default_value_t = 100)]
    pub sse_clients: usize,
    /// Requests per batch of the pipelined lookups.
    #[arg(long, default_value_t = 32)]
    pub pipeline_depth: usize,
    /// Worker threads of the agent's runtime.
    #[arg(long, default_value_t = 2)]
    pub agent_threads: usize,
    /// Measure instead what the history costs: keepalive latency under session churn
    /// with the history off and on (SQLite), in alternating rounds.
    #[arg(long)]
    pub history_cost: bool,
    /// Rounds of each configuration for `--history-cost`.
    #[arg(long, default_value_t = 3)]
    pub rounds: usize,
}

/// Runs the benchmark and prints the table.
pub fn run(args: &BenchArgs) -> ExitCode {
    if args.history_cost {
        return match history_cost::run(args) {
            Ok(table) => {
                println!("{table}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("roster bench-agent --history-cost: {e}");
                ExitCode::from(1)
            }
        };
    }
    let agent = match target::Target::start(args.agent_threads) {
        Ok(agent) => agent,
        Err(e) => {
            eprintln!("roster bench-agent: cannot start the agent: {e}");
            return ExitCode::from(1);
        }
    };
    match phases::run_all(&agent, args) {
        Ok(rows) => {
            println!("{}", report::table(&rows, args));
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("roster bench-agent: {e}");
            ExitCode::from(1)
        }
    }
}
