//! The agent's settings: command-line flags, environment variables and an optional TOML
//! file, merged (flags win over the environment, which wins over the file) and validated
//! into [`Settings`] before anything starts.
//!
//! Every refusal is a [`ConfigError`] that names the setting and says what is allowed; the
//! binary prints it on stderr and exits with code 2.

pub mod api;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use clap::{Args, ValueEnum};
use roster::nodes::{SplitBrainAction, SplitBrainConfig, SplitBrainStrategy};
use serde::Deserialize;

use crate::alerts::rules::{AlertSettings, AlertsConfig};
use crate::history::settings::HistorySettings;
pub use crate::logging::LogFormat;

/// The cluster secret a loopback-only cluster uses when none is given. Development only:
/// an agent whose cluster address is not a loopback address refuses to start without a
/// secret of its own.
pub const DEV_SECRET: &str = "roster-development-secret-loopback-only";

/// The default cluster address.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:7400";

/// The default HTTP API address.
pub const DEFAULT_HTTP: &str = "127.0.0.1:7480";

/// The default data directory.
pub const DEFAULT_DATA_DIR: &str = "./roster-data";

/// The default TLS server name every node certificate carries.
pub const DEFAULT_TLS_SERVER_NAME: &str = "roster";

/// The flags of `roster agent`; each is also read from the environment variable it names.
/// The cluster secret has no flag: it comes from `--secret-file` or `ROSTER_SECRET`.
#[derive(Debug, Default, Args)]
pub struct AgentArgs {
    /// A TOML file of settings (keys as in docs/agent.md); flags and environment win.
    #[arg(long, env = "ROSTER_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// The node's name [default: the host name, else roster-PORT].
    #[arg(long, env = "ROSTER_NAME")]
    pub name: Option<String>,
    /// The cluster address (TCP and UDP) [default: 127.0.0.1:7400].
    #[arg(long, env = "ROSTER_LISTEN", value_name = "ADDR")]
    pub listen: Option<String>,
    /// The HTTP API address [default: 127.0.0.1:7480].
    #[arg(long, env = "ROSTER_HTTP", value_name = "ADDR")]
    pub http: Option<String>,
    /// A seed to announce to (host:port); repeatable, comma-separated in ROSTER_SEEDS.
    #[arg(
        long = "seed",
        env = "ROSTER_SEEDS",
        value_delimiter = ',',
        value_name = "ADDR"
    )]
    pub seeds: Vec<String>,
    /// The cluster's name: links to nodes of another cluster are refused [default: roster].
    #[arg(long, env = "ROSTER_CLUSTER_NAME")]
    pub cluster_name: Option<String>,
    /// A file holding the cluster secret (ROSTER_SECRET holds the secret itself).
    #[arg(long, value_name = "FILE")]
    pub secret_file: Option<PathBuf>,
    /// A file holding the bearer token that writes need (ROSTER_TOKEN holds the token).
    #[arg(long, value_name = "FILE")]
    pub token_file: Option<PathBuf>,
    /// A file holding a bearer token that reads then need (ROSTER_READ_TOKEN holds it).
    #[arg(long, value_name = "FILE")]
    pub read_token_file: Option<PathBuf>,
    /// The node's role in its record (e.g. api, worker).
    #[arg(long, env = "ROSTER_ROLE")]
    pub role: Option<String>,
    /// A label of the node's record, KEY=VALUE; repeatable, comma-separated in ROSTER_LABELS.
    #[arg(
        long = "label",
        env = "ROSTER_LABELS",
        value_delimiter = ',',
        value_name = "KEY=VALUE"
    )]
    pub labels: Vec<String>,
    /// A scope to connect to besides the default one; repeatable, comma-separated in ROSTER_SCOPES.
    #[arg(
        long = "scope",
        env = "ROSTER_SCOPES",
        value_delimiter = ',',
        value_name = "NAME"
    )]
    pub scopes: Vec<String>,
    /// Which side of a partition keeps writing: majority, oldest-node or primary:NAME [default: majority].
    #[arg(long, env = "ROSTER_SPLIT_BRAIN_STRATEGY", value_name = "STRATEGY")]
    pub split_brain_strategy: Option<String>,
    /// What the losing side of a partition does [default: advisory].
    #[arg(long, env = "ROSTER_SPLIT_BRAIN_ACTION", value_enum)]
    pub split_brain_action: Option<SplitBrainActionArg>,
    /// A node the cluster should have; repeatable, comma-separated in ROSTER_EXPECTED_NODES
    /// [default: learnt while healthy].
    #[arg(
        long = "expected-node",
        env = "ROSTER_EXPECTED_NODES",
        value_delimiter = ',',
        value_name = "NAME"
    )]
    pub expected_nodes: Vec<String>,
    /// This node's certificate chain (PEM) for TLS on cluster links.
    #[arg(long, env = "ROSTER_TLS_CERT", value_name = "FILE")]
    pub tls_cert: Option<PathBuf>,
    /// This node's private key (PEM) for TLS on cluster links.
    #[arg(long, env = "ROSTER_TLS_KEY", value_name = "FILE")]
    pub tls_key: Option<PathBuf>,
    /// The cluster's CA certificates (PEM) for TLS on cluster links.
    #[arg(long, env = "ROSTER_TLS_CA", value_name = "FILE")]
    pub tls_ca: Option<PathBuf>,
    /// The DNS name every node certificate carries [default: roster].
    #[arg(long, env = "ROSTER_TLS_SERVER_NAME", value_name = "NAME")]
    pub tls_server_name: Option<String>,
    /// Where the agent keeps its data; created if missing [default: ./roster-data].
    #[arg(long, env = "ROSTER_DATA_DIR", value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// How logs are written [default: human].
    #[arg(long, env = "ROSTER_LOG_FORMAT", value_enum)]
    pub log_format: Option<LogFormat>,
    /// The initial log filter, as RUST_LOG (e.g. info, roster=debug) [default: info].
    #[arg(long, env = "ROSTER_LOG", value_name = "FILTER")]
    pub log: Option<String>,
    /// Lets a write-token holder cut this node off on purpose (`POST /api/faults/...`),
    /// for drills, demos and tests; never on a node that serves.
    #[arg(long, env = "ROSTER_FAULT_INJECTION")]
    pub fault_injection: bool,
    /// Sessions, events and rate limit.
    #[command(flatten)]
    pub api: api::ApiArgs,
    /// Where the history is kept: sqlite (DATA_DIR/history.sqlite3), sqlite:PATH,
    /// postgres://USER@HOST:PORT/DB, or off [default: sqlite].
    #[arg(long, env = "ROSTER_HISTORY", value_name = "BACKEND")]
    pub history: Option<String>,
    /// History records waiting to be written at most; beyond, they are dropped and
    /// counted [default: 65536].
    #[arg(long, env = "ROSTER_HISTORY_QUEUE", value_name = "N")]
    pub history_queue: Option<usize>,
    /// How long heartbeats are kept in the history, e.g. 12h or 7d [default: 7d].
    #[arg(long, env = "ROSTER_HEARTBEAT_RETENTION", value_name = "DURATION")]
    pub heartbeat_retention: Option<String>,
}

/// What the losing side of a partition does, as a setting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SplitBrainActionArg {
    /// Report only.
    #[default]
    Advisory,
    /// Also refuse new unique registrations until the partition heals.
    Fence,
}

/// The TOML file: the same settings as the flags, under the names in docs/agent.md.
/// Unknown keys are refused, so that a misspelt setting is not silently ignored.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    /// `name`.
    pub name: Option<String>,
    /// `listen`.
    pub listen: Option<String>,
    /// `http`.
    pub http: Option<String>,
    /// `seeds`.
    pub seeds: Option<Vec<String>>,
    /// `cluster_name`.
    pub cluster_name: Option<String>,
    /// `secret_file`.
    pub secret_file: Option<PathBuf>,
    /// `token_file`.
    pub token_file: Option<PathBuf>,
    /// `read_token_file`.
    pub read_token_file: Option<PathBuf>,
    /// `role`.
    pub role: Option<String>,
    /// `labels`, a table of strings.
    pub labels: Option<BTreeMap<String, String>>,
    /// `scopes`.
    pub scopes: Option<Vec<String>>,
    /// `split_brain_strategy`.
    pub split_brain_strategy: Option<String>,
    /// `split_brain_action`.
    pub split_brain_action: Option<SplitBrainActionArg>,
    /// `expected_nodes`.
    pub expected_nodes: Option<Vec<String>>,
    /// `tls_cert`.
    pub tls_cert: Option<PathBuf>,
    /// `tls_key`.
    pub tls_key: Option<PathBuf>,
    /// `tls_ca`.
    pub tls_ca: Option<PathBuf>,
    /// `tls_server_name`.
    pub tls_server_name: Option<String>,
    /// `data_dir`.
    pub data_dir: Option<PathBuf>,
    /// `log_format`.
    pub log_format: Option<LogFormat>,
    /// `log`.
    pub log: Option<String>,
    /// `fault_injection`.
    pub fault_injection: Option<bool>,
    /// The `[api]` table: sessions, events and rate limit.
    pub api: Option<api::ApiFileConfig>,
    /// `history`.
    pub history: Option<String>,
    /// `history_queue`.
    pub history_queue: Option<usize>,
    /// `heartbeat_retention`.
    pub heartbeat_retention: Option<String>,
    /// `[alerts]`: `[[alerts.rules]]` and `[[alerts.webhooks]]`.
    pub alerts: Option<AlertsConfig>,
}

/// A setting that cannot work. Each names the setting and what is allowed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The settings file could not be read.
    #[error("config: cannot read {path}: {reason}")]
    ReadFile {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// The settings file is not valid TOML, or has an unknown or mistyped key.
    #[error("config: {path} is not a valid settings file: {reason}")]
    ParseFile {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// A setting has a value that is not allowed.
    #[error("{setting}: {value:?} is not allowed: {allowed}")]
    Invalid {
        /// The setting, as its flag.
        setting: &'static str,
        /// The value refused.
        value: String,
        /// What is allowed.
        allowed: String,
    },
    /// A file a setting names could not be read, or holds nothing.
    #[error("{setting}: cannot use {path}: {reason}")]
    File {
        /// The setting, as its flag.
        setting: &'static str,
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// A setting is required by another one.
    #[error("{setting}: required {because}")]
    Missing {
        /// The setting, as its flag.
        setting: &'static str,
        /// Why it is required.
        because: String,
    },
}

/// Where the cluster secret came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecretSource {
    /// `--secret-file`.
    File,
    /// `ROSTER_SECRET`.
    Env,
    /// The development default ([`DEV_SECRET`]), allowed on loopback only.
    DevDefault,
}

/// TLS files for cluster links.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// This node's certificate chain (PEM).
    pub cert: PathBuf,
    /// This node's private key (PEM).
    pub key: PathBuf,
    /// The cluster's CA certificates (PEM).
    pub ca: PathBuf,
    /// The DNS name every node certificate carries.
    pub server_name: String,
}

/// The validated settings of one agent.
#[derive(Clone)]
pub struct Settings {
    /// The node's name.
    pub name: String,
    /// The cluster address.
    pub listen: SocketAddr,
    /// The HTTP API address.
    pub http: SocketAddr,
    /// Seeds to announce to.
    pub seeds: Vec<String>,
    /// The cluster's name.
    pub cluster_name: Option<String>,
    /// The cluster secret.
    pub secret: Vec<u8>,
    /// Where the secret came from.
    pub secret_source: SecretSource,
    /// The bearer token that writes need; `None`: writes are refused (loopback only).
    pub write_token: Option<String>,
    /// The bearer token that reads need; `None`: reads are open.
    pub read_token: Option<String>,
    /// The node's role.
    pub role: Option<String>,
    /// The node's labels.
    pub labels: BTreeMap<String, String>,
    /// Scopes to connect to besides the default.
    pub scopes: Vec<String>,
    /// The split-brain settings.
    pub split_brain: SplitBrainConfig,
    /// TLS for cluster links.
    pub tls: Option<TlsFiles>,
    /// The data directory.
    pub data_dir: PathBuf,
    /// The log format.
    pub log_format: LogFormat,
    /// Whether the fault-injection endpoints act (`--fault-injection`).
    pub fault_injection: bool,
    /// The initial log filter.
    pub log: String,
    /// Sessions, events and rate limit.
    pub api: api::ApiSettings,
    /// The history settings.
    pub history: HistorySettings,
    /// The alert rules and webhooks.
    pub alerts: AlertSettings,
}

impl std::fmt::Debug for Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Settings")
            .field("name", &self.name)
            .field("listen", &self.listen)
            .field("http", &self.http)
            .field("seeds", &self.seeds)
            .field("cluster_name", &self.cluster_name)
            .field("secret_source", &self.secret_source)
            .field("write_token", &self.write_token.as_ref().map(|_| "<set>"))
            .field("read_token", &self.read_token.as_ref().map(|_| "<set>"))
            .field("role", &self.role)
            .field("labels", &self.labels)
            .field("scopes", &self.scopes)
            .field("split_brain", &self.split_brain)
            .field("tls", &self.tls)
            .field("data_dir", &self.data_dir)
            .field("log_format", &self.log_format)
            .field("fault_injection", &self.fault_injection)
            .field("log", &self.log)
            .field("api", &self.api)
            .field("history", &self.history)
            .field("alerts", &self.alerts)
            .finish()
    }
}

/// The environment variables that hold secrets themselves (no flag: a flag would show in
/// the process list).
#[derive(Debug, Clone, Default)]
pub struct SecretEnv {
    /// `ROSTER_SECRET`.
    pub secret: Option<String>,
    /// `ROSTER_TOKEN`.
    pub token: Option<String>,
    /// `ROSTER_READ_TOKEN`.
    pub read_token: Option<String>,
}

impl SecretEnv {
    /// Reads them from the process environment.
    pub fn from_process() -> Self {
        let var = |name| std::env::var(name).ok().filter(|v: &String| !v.is_empty());
        Self {
            secret: var("ROSTER_SECRET"),
            token: var("ROSTER_TOKEN"),
            read_token: var("ROSTER_READ_TOKEN"),
        }
    }
}

impl Settings {
    /// Merges the flags (with their environment variables) over the TOML file named by
    /// `--config`, and validates the result.
    ///
    /// # Errors
    ///
    /// [`ConfigError`] naming the first setting that cannot work.
    pub fn resolve(args: AgentArgs, env: SecretEnv) -> Result<Self, ConfigError> {
        let file = match &args.config {
            Some(path) => read_file_config(path)?,
            None => FileConfig::default(),
        };
        Self::merge(args, file, env)
    }

    /// Merges `args` over `file` and validates the result.
    ///
    /// # Errors
    ///
    /// [`ConfigError`] naming the first setting that cannot work.
    pub fn merge(args: AgentArgs, file: FileConfig, env: SecretEnv) -> Result<Self, ConfigError> {
        let listen = parse_addr("--listen", args.listen.or(file.listen), DEFAULT_LISTEN)?;
        let http = parse_addr("--http", args.http.or(file.http), DEFAULT_HTTP)?;
        let name = match args.name.or(file.name) {
            Some(name) => check_name(name)?,
            None => default_name(listen.port()),
        };
        let seeds = non_empty_or(args.seeds, file.seeds);
        for seed in &seeds {
            if !seed.contains(':') || seed.ends_with(':') {
                return Err(invalid("--seed", seed, "host:port, e.g. 10.0.0.2:7400"));
            }
        }
        let cluster_name = args.cluster_name.or(file.cluster_name);
        if cluster_name.as_deref().is_some_and(str::is_empty) {
            return Err(invalid("--cluster-name", "", "a non-empty name"));
        }
        let (secret, secret_source) =
            secret(args.secret_file.or(file.secret_file), env.secret, listen)?;
        let write_token = token(
            "--token-file",
            args.token_file.or(file.token_file),
            env.token,
        )?;
        let read_token = token(
            "--read-token-file",
            args.read_token_file.or(file.read_token_file),
            env.read_token,
        )?;
        if !http.ip().is_loopback() && write_token.is_none() {
            return Err(ConfigError::Missing {
                setting: "--token-file",
                because: format!(
                    "because --http {http} is not a loopback address: give a write token with --token-file or ROSTER_TOKEN"
                ),
            });
        }
        let labels = labels(args.labels, file.labels)?;
        let scopes = non_empty_or(args.scopes, file.scopes);
        for scope in &scopes {
            if scope.is_empty() || scope.len() > 255 {
                return Err(invalid("--scope", scope, "a name of 1 to 255 bytes"));
            }
        }
        let split_brain = split_brain(
            args.split_brain_strategy.or(file.split_brain_strategy),
            args.split_brain_action.or(file.split_brain_action),
            non_empty_or(args.expected_nodes, file.expected_nodes),
        )?;
        let tls = tls(
            args.tls_cert.or(file.tls_cert),
            args.tls_key.or(file.tls_key),
            args.tls_ca.or(file.tls_ca),
            args.tls_server_name.or(file.tls_server_name),
        )?;
        let api = api::ApiSettings::merge(args.api, file.api)?;
        let log = args.log.or(file.log).unwrap_or_else(|| "info".to_owned());
        if let Err(e) = tracing_subscriber::EnvFilter::try_new(&log) {
            return Err(invalid(
                "--log",
                &log,
                &format!("a filter such as info or roster=debug,warn ({e})"),
            ));
        }
        let data_dir = args
            .data_dir
            .or(file.data_dir)
            .unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_DIR));
        let history = HistorySettings::parse(
            args.history.or(file.history).as_deref(),
            args.history_queue.or(file.history_queue),
            args.heartbeat_retention
                .or(file.heartbeat_retention)
                .as_deref(),
            &data_dir,
        )
        .map_err(|(setting, value, allowed)| invalid(setting, &value, allowed))?;
        let alerts = AlertSettings::from_config(file.alerts.unwrap_or_default())
            .map_err(|(value, allowed)| invalid("alerts", &value, &allowed))?;
        Ok(Self {
            name,
            listen,
            http,
            seeds,
            cluster_name,
            secret,
            secret_source,
            write_token,
            read_token,
            role: args.role.or(file.role),
            labels,
            scopes,
            split_brain,
            tls,
            data_dir,
            log_format: args.log_format.or(file.log_format).unwrap_or_default(),
            fault_injection: args.fault_injection || file.fault_injection.unwrap_or(false),
            log,
            api,
            history,
            alerts,
        })
    }

    /// Whether the agent runs alone by configuration (no seed): ready without a peer.
    pub fn alone_by_configuration(&self) -> bool {
        self.seeds.is_empty()
    }
}

fn invalid(setting: &'static str, value: &str, allowed: &str) -> ConfigError {
    ConfigError::Invalid {
        setting,
        value: value.to_owned(),
        allowed: allowed.to_owned(),
    }
}

fn read_file_config(path: &Path) -> Result<FileConfig, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|e| ConfigError::ReadFile {
        path: path.to_owned(),
        reason: e.to_string(),
    })?;
    toml::from_str(&text).map_err(|e| ConfigError::ParseFile {
        path: path.to_owned(),
        reason: e.to_string(),
    })
}

fn non_empty_or(flags: Vec<String>, file: Option<Vec<String>>) -> Vec<String> {
    if flags.is_empty() {
        file.unwrap_or_default()
    } else {
        flags
    }
}

fn parse_addr(
    setting: &'static str,
    value: Option<String>,
    default: &str,
) -> Result<SocketAddr, ConfigError> {
    let value = value.unwrap_or_else(|| default.to_owned());
    value.parse().map_err(|_| {
        invalid(
            setting,
            &value,
            "an IP address and port, e.g. 127.0.0.1:7400 (port 0 picks a free one)",
        )
    })
}

fn check_name(name: String) -> Result<String, ConfigError> {
    if name.is_empty() || name.len() > 255 || name.ends_with('/') {
        return Err(invalid(
            "--name",
            &name,
            "a name of 1 to 255 bytes that does not end with '/'",
        ));
    }
    Ok(name)
}

/// The host name (letters, digits, `-`, `.` and `_` kept), else `roster-<port>`.
fn default_name(port: u16) -> String {
    let uname = rustix::system::uname();
    let host: String = uname
        .nodename()
        .to_string_lossy()
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_'))
        .take(200)
        .collect();
    if host.is_empty() {
        format!("roster-{port}")
    } else {
        host
    }
}

fn read_secret_file(setting: &'static str, path: &Path) -> Result<String, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|e| ConfigError::File {
        setting,
        path: path.to_owned(),
        reason: e.to_string(),
    })?;
    let text = text.trim();
    if text.is_empty() {
        return Err(ConfigError::File {
            setting,
            path: path.to_owned(),
            reason: "the file is empty".to_owned(),
        });
    }
    Ok(text.to_owned())
}

fn secret(
    file: Option<PathBuf>,
    env: Option<String>,
    listen: SocketAddr,
) -> Result<(Vec<u8>, SecretSource), ConfigError> {
    if let Some(path) = file {
        let secret = read_secret_file("--secret-file", &path)?;
        return Ok((secret.into_bytes(), SecretSource::File));
    }
    if let Some(secret) = env {
        return Ok((secret.into_bytes(), SecretSource::Env));
    }
    if listen.ip().is_loopback() {
        return Ok((DEV_SECRET.as_bytes().to_vec(), SecretSource::DevDefault));
    }
    Err(ConfigError::Missing {
        setting: "--secret-file",
        because: format!(
            "because --listen {listen} is not a loopback address: give the cluster secret with --secret-file or ROSTER_SECRET"
        ),
    })
}

fn token(
    setting: &'static str,
    file: Option<PathBuf>,
    env: Option<String>,
) -> Result<Option<String>, ConfigError> {
    let token = match file {
        Some(path) => Some(read_secret_file(setting, &path)?),
        None => env.map(|t| t.trim().to_owned()),
    };
    match token {
        Some(t) if t.len() < 16 || t.chars().any(|c| c.is_whitespace() || c.is_control()) => {
            Err(invalid(
                setting,
                "<the token>",
                "a token of at least 16 characters without spaces",
            ))
        }
        other => Ok(other),
    }
}

fn labels(
    flags: Vec<String>,
    file: Option<BTreeMap<String, String>>,
) -> Result<BTreeMap<String, String>, ConfigError> {
    if flags.is_empty() {
        return Ok(file.unwrap_or_default());
    }
    let mut labels = BTreeMap::new();
    for label in flags {
        match label.split_once('=') {
            Some((key, value)) if !key.is_empty() => {
                labels.insert(key.to_owned(), value.to_owned());
            }
            _ => return Err(invalid("--label", &label, "KEY=VALUE with a non-empty KEY")),
        }
    }
    Ok(labels)
}

fn split_brain(
    strategy: Option<String>,
    action: Option<SplitBrainActionArg>,
    expected: Vec<String>,
) -> Result<SplitBrainConfig, ConfigError> {
    let strategy = match strategy.as_deref() {
        None | Some("majority") => SplitBrainStrategy::Majority,
        Some("oldest-node") => SplitBrainStrategy::OldestNode,
        Some(other) => match other.strip_prefix("primary:") {
            Some(primary) if !primary.is_empty() => {
                SplitBrainStrategy::ConfiguredPrimary(primary.to_owned())
            }
            _ => {
                return Err(invalid(
                    "--split-brain-strategy",
                    other,
                    "majority, oldest-node or primary:NAME",
                ));
            }
        },
    };
    let action = match action.unwrap_or_default() {
        SplitBrainActionArg::Advisory => SplitBrainAction::Advisory,
        SplitBrainActionArg::Fence => SplitBrainAction::Fence,
    };
    let mut config = SplitBrainConfig::new().strategy(strategy).action(action);
    if !expected.is_empty() {
        config = config.expected(expected);
    }
    config.validate().map_err(|e| ConfigError::Invalid {
        setting: "--split-brain-strategy",
        value: format!("{config:?}"),
        allowed: e.to_string(),
    })?;
    Ok(config)
}

fn tls(
    cert: Option<PathBuf>,
    key: Option<PathBuf>,
    ca: Option<PathBuf>,
    server_name: Option<String>,
) -> Result<Option<TlsFiles>, ConfigError> {
    match (cert, key, ca) {
        (None, None, None) => {
            if let Some(name) = server_name {
                return Err(ConfigError::Missing {
                    setting: "--tls-cert",
                    because: format!(
                        "because --tls-server-name {name} is set: give --tls-cert, --tls-key and --tls-ca"
                    ),
                });
            }
            Ok(None)
        }
        (Some(cert), Some(key), Some(ca)) => Ok(Some(TlsFiles {
            cert,
            key,
            ca,
            server_name: server_name.unwrap_or_else(|| DEFAULT_TLS_SERVER_NAME.to_owned()),
        })),
        (cert, key, _) => {
            let setting = if cert.is_none() {
                "--tls-cert"
            } else if key.is_none() {
                "--tls-key"
            } else {
                "--tls-ca"
            };
            Err(ConfigError::Missing {
                setting,
                because: "because TLS is configured: give all of --tls-cert, --tls-key and --tls-ca, or none".to_owned(),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    fn args() -> AgentArgs {
        AgentArgs::default()
    }

    #[test]
    fn flags_win_over_the_file_and_defaults_fill_the_rest() {
        let file: FileConfig = toml::from_str(
            "name = \"from-file\"\nrole = \"worker\"\nseeds = [\"10.0.0.1:7400\"]\n[labels]\ndomain = \"eu\"\n",
        )
        .unwrap();
        let mut flags = args();
        flags.name = Some("from-flag".into());
        let settings = Settings::merge(flags, file, SecretEnv::default()).unwrap();
        assert_eq!(settings.name, "from-flag");
        assert_eq!(settings.role.as_deref(), Some("worker"));
        assert_eq!(settings.seeds, ["10.0.0.1:7400"]);
        assert_eq!(settings.labels["domain"], "eu");
        assert_eq!(settings.listen, DEFAULT_LISTEN.parse().unwrap());
        assert_eq!(settings.secret_source, SecretSource::DevDefault);
    }

    #[test]
    fn a_config_file_is_read_and_flags_win_over_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("roster.toml");
        std::fs::write(&path, "name = \"from-file\"\nlog_format = \"json\"\n").unwrap();
        /// `roster agent`'s flags alone.
        #[derive(Parser)]
        struct Agent {
            #[command(flatten)]
            args: AgentArgs,
        }
        let cli = Agent::try_parse_from([
            "roster agent",
            "--config",
            path.to_str().unwrap(),
            "--role",
            "api",
        ])
        .unwrap();
        let settings = Settings::resolve(cli.args, SecretEnv::default()).unwrap();
        assert_eq!(settings.name, "from-file");
        assert_eq!(settings.role.as_deref(), Some("api"));
        assert_eq!(settings.log_format, LogFormat::Json);
        let missing = dir.path().join("missing.toml");
        let args = AgentArgs {
            config: Some(missing),
            ..AgentArgs::default()
        };
        let err = Settings::resolve(args, SecretEnv::default()).unwrap_err();
        assert!(err.to_string().starts_with("config: cannot read"), "{err}");
    }

    #[test]
    fn an_unknown_file_key_is_refused() {
        assert!(toml::from_str::<FileConfig>("nmae = \"x\"").is_err());
    }

    #[test]
    fn a_public_cluster_address_without_a_secret_is_refused() {
        let mut flags = args();
        flags.listen = Some("0.0.0.0:7400".into());
        let err = Settings::merge(flags, FileConfig::default(), SecretEnv::default()).unwrap_err();
        assert!(
            err.to_string().starts_with("--secret-file: required"),
            "{err}"
        );
        let mut flags = args();
        flags.listen = Some("0.0.0.0:7400".into());
        let env = SecretEnv {
            secret: Some("s3cret".into()),
            ..SecretEnv::default()
        };
        let settings = Settings::merge(flags, FileConfig::default(), env).unwrap();
        assert_eq!(settings.secret, b"s3cret");
    }

    #[test]
    fn a_public_http_address_without_a_write_token_is_refused() {
        let mut flags = args();
        flags.http = Some("0.0.0.0:7480".into());
        let err = Settings::merge(flags, FileConfig::default(), SecretEnv::default()).unwrap_err();
        assert!(
            err.to_string().starts_with("--token-file: required"),
            "{err}"
        );
    }

    #[test]
    fn bad_values_name_their_setting() {
        type Set = fn(&mut AgentArgs);
        let cases: [(Set, &str); 6] = [
            (|a| a.listen = Some("nowhere".into()), "--listen"),
            (|a| a.labels = vec!["novalue".into()], "--label"),
            (
                |a| a.split_brain_strategy = Some("loudest".into()),
                "--split-brain-strategy",
            ),
            (|a| a.tls_cert = Some("cert.pem".into()), "--tls-key"),
            (|a| a.log = Some("info,[".into()), "--log"),
            (|a| a.seeds = vec!["10.0.0.1".into()], "--seed"),
        ];
        for (set, setting) in cases {
            let mut flags = args();
            set(&mut flags);
            let err =
                Settings::merge(flags, FileConfig::default(), SecretEnv::default()).unwrap_err();
            assert!(err.to_string().starts_with(setting), "{setting}: {err}");
        }
    }

    #[test]
    fn a_primary_outside_the_expected_nodes_is_refused() {
        let mut flags = args();
        flags.split_brain_strategy = Some("primary:z".into());
        flags.expected_nodes = vec!["a".into(), "b".into()];
        let err = Settings::merge(flags, FileConfig::default(), SecretEnv::default()).unwrap_err();
        assert!(
            err.to_string().contains("not in the expected nodes"),
            "{err}"
        );
    }
}
