//! The Roster agent: one Roster node and an HTTP API over it, run by the `roster` binary
//! (`roster agent`).
//!
//! - [`config`]: the settings (flags, environment, TOML file), validated into
//!   [`config::Settings`];
//! - [`logging`]: the log subscriber and its filter, changeable while running;
//! - [`agent`]: start and graceful shutdown of the node and the HTTP server;
//! - [`dashboard`]: the web dashboard at `/`, its assets embedded;
//! - [`http`]: the API, one module per resource, and its OpenAPI document;
//! - [`state`]: what the handlers share;
//! - [`cli`]: the command-line client of a running agent (`roster nodes`, `roster names`,
//!   `roster events`, ...).
//!
//! HTTP, command-line and TOML crates live here, never in the `roster` library. The
//! endpoints and settings are described in the repository's `docs/agent.md`.
#![forbid(unsafe_code)]

pub mod agent;
pub mod cli;
pub mod config;
pub mod dashboard;
pub mod http;
pub mod logging;
pub mod state;

use std::process::ExitCode;

use config::{AgentArgs, Cli, Command, SecretEnv, Settings};

/// Runs the command line: what `main` does.
pub fn run(cli: Cli) -> ExitCode {
    match cli.command {
        Command::Agent(args) => run_agent(*args),
        Command::Client(command) => cli::run(&command),
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
        println!("{}", agent.ready_line());
        agent.run(agent::shutdown_signal()).await
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("roster agent: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}
