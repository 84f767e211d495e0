//! `roster-chaos`: the long form of the chaos test, and a cleanup of what a killed run
//! left behind.
//!
//! ```sh
//! cargo build --release -p roster-agent -p roster-chaos
//! sudo target/release/roster-chaos soak --minutes 30
//! ```
#![forbid(unsafe_code)]

use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use roster_chaos::net::Network;
use roster_chaos::soak::{SoakConfig, soak};

/// Chaos runs of real `roster agent` processes in network namespaces (needs root).
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Random faults for a while; prints a table and exits 1 on a violation, a heal that
    /// did not converge, or a rising memory or fd trend.
    Soak {
        /// How long to inject faults, in minutes.
        #[arg(long, default_value_t = 30.0)]
        minutes: f64,
        /// Agents (4 or more).
        #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u16).range(4..=16))]
        nodes: u16,
        /// Seed of the fault choices and the workload.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Seconds between two samples of the agents' RSS and open fds.
        #[arg(long, default_value_t = 5)]
        sample_every: u64,
    },
    /// Removes namespaces and interfaces of runs whose process is gone.
    Cleanup,
}

fn main() -> ExitCode {
    let args = Args::parse();
    match args.command {
        Command::Cleanup => match Network::cleanup_stale() {
            Ok(removed) => {
                println!("removed {} stale namespaces or links", removed.len());
                ExitCode::SUCCESS
            }
            Err(error) => {
                eprintln!("{error}");
                ExitCode::FAILURE
            }
        },
        Command::Soak {
            minutes,
            nodes,
            seed,
            sample_every,
        } => {
            if let Err(error) = Network::probe() {
                eprintln!("cannot run here: {error}");
                return ExitCode::from(2);
            }
            let binary = match roster_chaos::locate::roster_binary() {
                Ok(binary) => binary,
                Err(error) => {
                    eprintln!("{error}");
                    return ExitCode::from(2);
                }
            };
            let config = SoakConfig {
                duration: Duration::from_secs_f64(minutes * 60.0),
                nodes: usize::from(nodes),
                seed,
                sample_every: Duration::from_secs(sample_every.max(1)),
            };
            let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
            let cpus = std::thread::available_parallelism().map_or(0, usize::from);
            println!(
                "soak: {nodes} agents ({}), {minutes} min, seed {seed}; {cpus} CPUs, Linux {}",
                binary.display(),
                kernel.trim()
            );
            println!("again: roster-chaos soak --minutes {minutes} --nodes {nodes} --seed {seed}");
            match soak(binary, &config) {
                Ok(result) => {
                    for v in &result.report.violations {
                        println!("{v}");
                    }
                    println!("\n{}", result.table());
                    if result.failed() {
                        println!("FAILED");
                        ExitCode::FAILURE
                    } else {
                        println!("passed");
                        ExitCode::SUCCESS
                    }
                }
                Err(error) => {
                    eprintln!("soak failed: {error}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}
