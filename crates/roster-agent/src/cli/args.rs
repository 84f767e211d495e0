//! The client's commands and flags.

use std::path::PathBuf;

use clap::{Args, Subcommand};

/// Flags every client command takes.
#[derive(Debug, Clone, Args)]
pub struct ClientArgs {
    /// The agent's HTTP API.
    #[arg(
        long,
        env = "ROSTER_AGENT",
        default_value = "http://127.0.0.1:7480",
        value_name = "URL"
    )]
    pub agent: String,
    /// A file holding the bearer token (the agent's write or read token); `ROSTER_TOKEN`
    /// otherwise.
    #[arg(long, value_name = "FILE")]
    pub token_file: Option<PathBuf>,
    /// Print the agent's JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// The client's commands (each a subcommand of `roster`).
#[derive(Debug, Clone, Subcommand)]
pub enum ClientCommand {
    /// Lists the nodes the agent knows, with their status as it judges them.
    Nodes {
        /// Which agent, and how to print.
        #[command(flatten)]
        on: ClientArgs,
        /// Only nodes with this status (online, degraded, draining, offline, unreachable).
        #[arg(long)]
        status: Option<String>,
        /// Only nodes with this role.
        #[arg(long)]
        role: Option<String>,
        /// Only nodes with this label (`KEY=VALUE`).
        #[arg(long, value_name = "KEY=VALUE")]
        label: Option<String>,
    },
    /// Shows one node: its record, health and last heartbeat.
    Node {
        /// Which agent, and how to print.
        #[command(flatten)]
        on: ClientArgs,
        /// The node's name.
        name: String,
    },
    /// Forgets an offline node (it leaves the expected cluster of the split-brain check).
    Forget {
        /// Which agent, and how to print.
        #[command(flatten)]
        on: ClientArgs,
        /// The node's name.
        name: String,
    },
    /// Shows the cluster graph: nodes and the links between them.
    Graph {
        /// Which agent, and how to print.
        #[command(flatten)]
        on: ClientArgs,
    },
    /// Shows the split-brain check's verdict and the fence.
    Partition {
        /// Which agent, and how to print.
        #[command(flatten)]
        on: ClientArgs,
    },
    /// Lists the scopes the agent is connected to.
    Scopes {
        /// Which agent, and how to print.
        #[command(flatten)]
        on: ClientArgs,
    },
    /// Lists names under a prefix (all without one), a page at a time.
    Names {
        /// Which agent, and how to print.
        #[command(flatten)]
        on: ClientArgs,
        /// A prefix ending with `/`.
        #[arg(default_value = "")]
        prefix: String,
        /// The scope (the default scope otherwise).
        #[arg(long)]
        scope: Option<String>,
        /// Names per page.
        #[arg(long, default_value_t = 100)]
        limit: u32,
        /// Follow the pages to the end.
        #[arg(long)]
        all: bool,
    },
    /// Looks a name up: its owner, node and meta.
    Lookup {
        /// Which agent, and how to print.
        #[command(flatten)]
        on: ClientArgs,
        /// The key (may contain `/`).
        key: String,
        /// The scope (the default scope otherwise).
        #[arg(long)]
        scope: Option<String>,
    },
    /// Lists groups under a prefix with their member counts.
    Groups {
        /// Which agent, and how to print.
        #[command(flatten)]
        on: ClientArgs,
        /// A prefix ending with `/`.
        #[arg(default_value = "")]
        prefix: String,
        /// The scope (the default scope otherwise).
        #[arg(long)]
        scope: Option<String>,
        /// Groups per page.
        #[arg(long, default_value_t = 100)]
        limit: u32,
    },
    /// Lists the members of a group.
    Members {
        /// Which agent, and how to print.
        #[command(flatten)]
        on: ClientArgs,
        /// The group's key.
        key: String,
        /// The scope (the default scope otherwise).
        #[arg(long)]
        scope: Option<String>,
        /// Most members shown.
        #[arg(long, default_value_t = 100)]
        limit: u32,
    },
    /// Follows live events (registry events of a scope, node events with `--nodes`) until
    /// interrupted.
    Events {
        /// Which agent, and how to print.
        #[command(flatten)]
        on: ClientArgs,
        /// Keys to follow: a prefix ending with `/`, an exact key, or all without one.
        #[arg(default_value = "")]
        pattern: String,
        /// The scope (the default scope otherwise).
        #[arg(long)]
        scope: Option<String>,
        /// Node events too.
        #[arg(long)]
        nodes: bool,
        /// Stop after this many events.
        #[arg(long)]
        count: Option<u64>,
    },
    /// Shows the agent's log level, or sets it (`info`, `debug`, `roster=trace,warn`, ...).
    LogLevel {
        /// Which agent, and how to print.
        #[command(flatten)]
        on: ClientArgs,
        /// The new level; shows the current one without.
        level: Option<String>,
    },
}

impl ClientCommand {
    /// Which agent the command asks, and how it prints.
    pub fn on(&self) -> &ClientArgs {
        match self {
            Self::Nodes { on, .. }
            | Self::Node { on, .. }
            | Self::Forget { on, .. }
            | Self::Graph { on }
            | Self::Partition { on }
            | Self::Scopes { on }
            | Self::Names { on, .. }
            | Self::Lookup { on, .. }
            | Self::Groups { on, .. }
            | Self::Members { on, .. }
            | Self::Events { on, .. }
            | Self::LogLevel { on, .. } => on,
        }
    }
}
