//! The harness's errors.

use std::process::ExitStatus;

/// What can go wrong while setting up or driving the cluster.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ChaosError {
    /// A command (`ip`, `nft`, `tc`, `cargo`) could not be started.
    #[error("cannot run {command}: {source}")]
    Spawn {
        /// The command line.
        command: String,
        /// Why.
        source: std::io::Error,
    },
    /// A command ran and failed.
    #[error("{command} failed ({status}): {stderr}")]
    Command {
        /// The command line.
        command: String,
        /// Its exit status.
        status: ExitStatus,
        /// What it printed on stderr.
        stderr: String,
    },
    /// A file or process operation failed.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// Why it failed.
        source: std::io::Error,
    },
    /// An agent did not start, or said something unexpected.
    #[error("agent {name}: {message}")]
    Agent {
        /// The agent's name.
        name: String,
        /// What happened.
        message: String,
    },
    /// A condition did not hold within its deadline.
    #[error("not within {seconds:.1} s: {what}")]
    Deadline {
        /// The condition.
        what: String,
        /// The deadline.
        seconds: f64,
    },
    /// The `roster` binary could not be found or built.
    #[error("roster binary: {0}")]
    Binary(String),
    /// This machine cannot run the harness (no root, no namespaces, no nftables).
    #[error("unsupported here: {0}")]
    Unsupported(String),
}

impl ChaosError {
    /// An [`ChaosError::Io`] for `what`.
    pub fn io(what: impl Into<String>, source: std::io::Error) -> Self {
        Self::Io {
            what: what.into(),
            source,
        }
    }
}
