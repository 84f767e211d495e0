//! The client's commands and flags.

use std::path::PathBuf;

use clap::{Args, Subcommand};

/// Exit codes of the client commands, shown by `--help`.
pub const EXIT_CODES: &str = "Exit codes: 0 ok, 1 not found or refused by the agent, 2 usage, \
3 agent unreachable, 4 unauthorised (no token, or a wrong one).";

/// Flags every client command takes.
#[derive(Debug, Clone, Args)]
pub struct ClientArgs {
    /// The agent's HTTP API: `host:port` or a URL.
    #[arg(
        long,
        env = "ROSTER_ADDR",
        default_value = "127.0.0.1:7480",
        value_name = "ADDR"
    )]
    pub addr: String,
    /// A file holding the bearer token (the agent's write or read token); `ROSTER_TOKEN`
    /// otherwise.
    #[arg(long, value_name = "FILE")]
    pub token_file: Option<PathBuf>,
    /// Print the agent's JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

impl ClientArgs {
    /// The agent's base URL: `--addr` with `http://` in front unless it has a scheme.
    pub fn base_url(&self) -> String {
        if self.addr.contains("://") {
            self.addr.clone()
        } else {
            format!("http://{}", self.addr)
        }
    }
}

/// The client's commands (each a subcommand of `roster`).
#[derive(Debug, Clone, Subcommand)]
pub enum ClientCommand {
    /// Lists the nodes the agent knows, with their status as it judges them.
    #[command(after_help = EXIT_CODES)]
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
    #[command(after_help = EXIT_CODES)]
    Node {
        /// Which agent, and how to print.
        #[command(flatten)]
        on: ClientArgs,
        /// The node's name.
        name: String,
    },
    /// Forgets an offline node (it leaves the expected cluster of the split-brain check).
    #[command(after_help = EXIT_CODES)]
    Forget {
        /// Which agent, and how to print.
        #[command(flatten)]
        on: ClientArgs,
        /// The node's name.
        name: String,
    },
    /// Shows the cluster graph: nodes and the links between them.
    #[command(after_help = EXIT_CODES)]
    Graph {
        /// Which agent, and how to print.
        #[command(flatten)]
        on: ClientArgs,
    },
    /// Shows the split-brain check's verdict and the fence.
    #[command(after_help = EXIT_CODES)]
    Partition {
        /// Which agent, and how to print.
        #[command(flatten)]
        on: ClientArgs,
    },
    /// Lists the scopes the agent is connected to.
    #[command(after_help = EXIT_CODES)]
    Scopes {
        /// Which agent, and how to print.
        #[command(flatten)]
        on: ClientArgs,
    },
    /// Lists names under a prefix (all without one), a page at a time.
    #[command(alias = "names", after_help = EXIT_CODES)]
    Registry {
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
    #[command(after_help = EXIT_CODES)]
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
    #[command(after_help = EXIT_CODES)]
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
    /// Lists the members of a group, or of every group under a prefix (ending with `/`).
    #[command(after_help = EXIT_CODES)]
    Members {
        /// Which agent, and how to print.
        #[command(flatten)]
        on: ClientArgs,
        /// The group's key, or a prefix ending with `/`.
        key_or_prefix: String,
        /// The scope (the default scope otherwise).
        #[arg(long)]
        scope: Option<String>,
        /// Most members shown per group.
        #[arg(long, default_value_t = 100)]
        limit: u32,
    },
    /// Follows live events (registry events of a scope, node events with `--nodes`) until
    /// interrupted.
    #[command(alias = "events", after_help = EXIT_CODES)]
    Watch {
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
    /// Lists the agent's audit log (its history), newest first.
    #[command(after_help = EXIT_CODES)]
    Audit {
        /// Which agent, and how to print.
        #[command(flatten)]
        on: ClientArgs,
        /// Only these kinds (comma-separated: node_down, link_closed, session_expired, ...).
        #[arg(long)]
        kind: Option<String>,
        /// Only rows about this node, or recorded by it.
        #[arg(long)]
        node: Option<String>,
        /// Most rows.
        #[arg(long, default_value_t = 50)]
        limit: u32,
    },
    /// Lists the alerts firing now and the recently resolved ones.
    #[command(after_help = EXIT_CODES)]
    Alerts {
        /// Which agent, and how to print.
        #[command(flatten)]
        on: ClientArgs,
    },
    /// Sessions: a TTL lease owning names and memberships on the agent's node.
    #[command(subcommand)]
    Session(SessionCommand),
    /// Shows the agent's log level, or sets it (`info`, `debug`, `roster=trace,warn`, ...).
    #[command(after_help = EXIT_CODES)]
    LogLevel {
        /// Which agent, and how to print.
        #[command(flatten)]
        on: ClientArgs,
        /// The new level; shows the current one without.
        level: Option<String>,
    },
}

/// `roster session ...`.
#[derive(Debug, Clone, Subcommand)]
pub enum SessionCommand {
    /// Creates a session; prints its id (with `--json`: id, pid and expiry).
    #[command(after_help = EXIT_CODES)]
    Create {
        /// Which agent, and how to print.
        #[command(flatten)]
        on: ClientArgs,
        /// How long it lives without a keepalive (`10s`, `2m`; 1 s to 1 h).
        #[arg(long, default_value = "30s")]
        ttl: String,
        /// A name for it, shown in listings and the audit log.
        #[arg(long)]
        name: Option<String>,
    },
    /// Registers a unique name for the session.
    #[command(after_help = EXIT_CODES)]
    Register {
        /// Which agent, and how to print.
        #[command(flatten)]
        on: ClientArgs,
        /// The session's id.
        id: String,
        /// The name.
        key: String,
        /// Its meta, as JSON.
        #[arg(long)]
        meta: Option<String>,
        /// The scope (the default scope otherwise).
        #[arg(long)]
        scope: Option<String>,
    },
    /// Joins the session to a group.
    #[command(after_help = EXIT_CODES)]
    Join {
        /// Which agent, and how to print.
        #[command(flatten)]
        on: ClientArgs,
        /// The session's id.
        id: String,
        /// The group's key.
        key: String,
        /// Its meta, as JSON.
        #[arg(long)]
        meta: Option<String>,
        /// The scope (the default scope otherwise).
        #[arg(long)]
        scope: Option<String>,
    },
    /// Renews the session's TTL from now.
    #[command(after_help = EXIT_CODES)]
    Keepalive {
        /// Which agent, and how to print.
        #[command(flatten)]
        on: ClientArgs,
        /// The session's id.
        id: String,
    },
    /// Ends the session: everything it holds goes, on every node.
    #[command(after_help = EXIT_CODES)]
    Delete {
        /// Which agent, and how to print.
        #[command(flatten)]
        on: ClientArgs,
        /// The session's id.
        id: String,
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
            | Self::Registry { on, .. }
            | Self::Lookup { on, .. }
            | Self::Groups { on, .. }
            | Self::Members { on, .. }
            | Self::Watch { on, .. }
            | Self::Audit { on, .. }
            | Self::Alerts { on }
            | Self::LogLevel { on, .. } => on,
            Self::Session(session) => match session {
                SessionCommand::Create { on, .. }
                | SessionCommand::Register { on, .. }
                | SessionCommand::Join { on, .. }
                | SessionCommand::Keepalive { on, .. }
                | SessionCommand::Delete { on, .. } => on,
            },
        }
    }
}
