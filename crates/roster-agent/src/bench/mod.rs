//! `roster bench-agent`: starts one agent in this process and drives it over HTTP
//! keep-alive connections from a local load generator, then prints each figure beside its
//! target and what limits it, with where the CPU went.
//!
//! - [`target`]: the agent under load, on its own runtime;
//! - [`connections`]: the lookups' and keepalives' generator: many connections on a tokio
//!   runtime of its own, one request per round trip or pipelined;
//! - [`load`]: timed loops of blocking `ureq` clients (session creations, the SSE
//!   writers), with latency histograms;
//! - [`cpu`]: the CPU of the agent, of the generator and of the rest of the machine;
//! - [`phases`]: lookups, session creation and expiry, keepalives, SSE fan-out;
//! - [`history_cost`]: keepalive latency under session churn, history off against on;
//! - [`report`]: the table.

pub mod connections;
pub mod cpu;
pub mod history_cost;
pub mod load;
pub mod phases;
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
    /// Blocking client threads (each one keep-alive connection) of the session-creation
    /// and SSE phases, and of `--history-cost`.
    #[arg(long, default_value_t = 4)]
    pub threads: usize,
    /// Concurrent keep-alive connections of the lookups, one row each (one request per
    /// round trip on each); the keepalives use the largest.
    #[arg(long, value_delimiter = ',', default_values_t = [1, 16, 64])]
    pub connections: Vec<usize>,
    /// Worker threads of the lookups' and keepalives' load generator (1: one thread
    /// drives every connection).
    #[arg(long, default_value_t = 1)]
    pub load_threads: usize,
    /// Connections of the pipelined phases.
    #[arg(long, default_value_t = 4)]
    pub pipeline_connections: usize,
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
