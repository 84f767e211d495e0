//! The Roster agent: one Roster node and an HTTP API over it, run by the `roster` binary
//! (`roster agent`).
//!
//! - [`config`]: the settings (flags, environment, TOML file), validated into
//!   [`config::Settings`];
//! - [`logging`]: the log subscriber and its filter, changeable while running;
//! - [`agent`]: start and graceful shutdown of the node and the HTTP server;
//! - [`dashboard`]: the web dashboard at `/`, its assets embedded;
//! - [`http`]: the API, one module per resource, and its OpenAPI document;
//! - [`history`]: the audit log and heartbeats kept in SQLite or PostgreSQL;
//! - [`alerts`]: alert rules, their state and webhooks;
//! - [`state`]: what the handlers share;
//! - [`demo`]: `roster demo`, a three-node cluster and a narrated, checked tour of it;
//! - [`cli`]: the command-line client of a running agent (`roster nodes`, `roster names`,
//!   `roster events`, ...).
//!
//! HTTP, command-line and TOML crates live here, never in the `roster` library. The
//! endpoints and settings are described in the repository's `docs/agent.md`.
#![forbid(unsafe_code)]

pub mod agent;
pub mod alerts;
pub mod api_config;
pub mod bench;
pub mod cli;
pub mod config;
pub mod dashboard;
pub mod demo;
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

use std::process::ExitCode;

use config::{AgentArgs, Cli, Command, SecretEnv, Settings};

/// Runs the command line: what `main` does.
pub fn run(cli: Cli) -> ExitCode {
    match cli.command {
        Command::Agent(args) => run_agent(*args),
        Command::BenchAgent(args) => bench::run(&args),
        Command::Client(command) => cli::run(&command),
        Command::Demo(args) => demo::run(&args),
        Command::BenchHistory(args) => bench_history(&args),
    }
}

fn bench_history(args: &history::bench::BenchArgs) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("roster bench-history: cannot start the runtime: {e}");
            return ExitCode::from(1);
        }
    };
    match runtime.block_on(history::bench::run(args)) {
        Ok(figures) => {
            println!("{figures}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("roster bench-history: {e}");
            ExitCode::from(2)
        }
    }
}

fn run_agent(args: AgentArgs) -> ExitCode {
    let settings = match Settings::resolve(args, SecretEnv::from_process()) {
        Ok(settings) => settings,
        Err(e) => {
            eprintln!("roster agent: {e}");
            return ExitCode::from(2);
        }
    };
    let log = match logging::LogControl::install(&settings.log, settings.log_format) {
        Ok(log) => log,
        Err(e) => {
            eprintln!("roster agent: --log: {e}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("roster agent: cannot start the runtime: {e}");
            return ExitCode::from(1);
        }
    };
    let result = runtime.block_on(async {
        let agent = agent::Agent::start(settings, log).await?;
        let shutdown = agent::shutdown_signal();
        println!("{}", agent.ready_line());
        agent.run(shutdown).await
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("roster agent: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}
