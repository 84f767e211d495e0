//! The command line of the `roster` binary: its subcommands, each with the flags of the
//! module that runs it. The top of the crate: it may use every other module.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::config::AgentArgs;

/// The command line of the `roster` binary.
#[derive(Debug, Parser)]
#[command(
    name = "roster",
    version,
    about = "Roster: a distributed process registry"
)]
pub struct Cli {
    /// What to run.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands of `roster`.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Runs one Roster node and its HTTP API until SIGINT or SIGTERM.
    Agent(Box<AgentArgs>),
    /// Starts one agent in this process and measures it over HTTP from a local load
    /// generator: lookups, session creation and expiry, keepalives, SSE fan-out.
    BenchAgent(bench::BenchArgs),
    /// Measures how many history records per second a backend takes.
    BenchHistory(history::bench::BenchArgs),
    /// Starts three agents on loopback and tours what Roster does on them (then keeps
    /// them running for the dashboard until Ctrl-C).
    Demo(demo::DemoArgs),
    /// Prints a shell completion script (`roster completions bash > /etc/bash_completion.d/roster`).
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
    /// The client commands, against a running agent.
    #[command(flatten)]
    Client(cli::ClientCommand),
}

use crate::config::{SecretEnv, Settings};
use crate::{agent, bench, cli, demo, history, logging};

/// Runs the command line: what `main` does.
pub fn run(cli: Cli) -> ExitCode {
    match cli.command {
        Command::Agent(args) => run_agent(*args),
        Command::BenchAgent(args) => bench::run(&args),
        Command::Client(command) => cli::run(&command),
        Command::Completions { shell } => {
            let mut command = <Cli as clap::CommandFactory>::command();
            clap_complete::generate(shell, &mut command, "roster", &mut std::io::stdout());
            ExitCode::SUCCESS
        }
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
    match runtime.block_on(history::bench::run(
        args,
        crate::http::pagination::DEFAULT_LIMIT,
    )) {
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
