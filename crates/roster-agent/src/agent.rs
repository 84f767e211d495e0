//! One running agent: a Roster node and the HTTP server of its API, started from
//! [`Settings`] and stopped gracefully (the server finishes its in-flight requests, then
//! the node leaves the cluster so that peers drop its entries at once).

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use roster::nodes::HealthConfig;
use roster::{ClusterConfig, Node, ScopeError, StartError, TlsConfig};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::TcpListener;

use crate::alerts::Alerts;
use crate::clock_file::{ClockFile, ClockFileError};
use crate::config::{SecretSource, Settings, TlsFiles};
use crate::history::store::StoreError;
use crate::history::{History, feeder};
use crate::http;
use crate::logging::LogControl;
use crate::state::AppState;

/// How long the history may take to write what is queued at shutdown.
const HISTORY_FLUSH: std::time::Duration = std::time::Duration::from_secs(5);

/// The agent could not start or stopped on a fault.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AgentError {
    /// The data directory could not be created.
    #[error("--data-dir: cannot create {path}: {reason}")]
    DataDir {
        /// The directory.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// A TLS file could not be used.
    #[error("{setting}: cannot use {path}: {reason}")]
    TlsFile {
        /// The setting, as its flag.
        setting: &'static str,
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// The TLS settings were refused.
    #[error("--tls-cert: {0}")]
    Tls(#[from] roster::TlsError),
    /// The node refused its settings or could not bind its cluster address.
    #[error("cannot start the node: {0}")]
    Start(#[from] StartError),
    /// A `--scope` could not be connected.
    #[error("--scope: {0}")]
    Scope(#[from] ScopeError),
    /// The HTTP address could not be bound.
    #[error("--http: cannot listen on {addr}: {reason}")]
    BindHttp {
        /// The address.
        addr: SocketAddr,
        /// Why.
        reason: String,
    },
    /// The HTTP server failed.
    #[error("the HTTP server failed: {0}")]
    Serve(std::io::Error),
    /// The history cannot be used (a corrupt, foreign or newer database).
    #[error("{0}")]
    History(#[from] StoreError),
    /// The clock file in the data directory cannot be used.
    #[error("{0}")]
    ClockFile(#[from] ClockFileError),
    /// The alert webhooks could not be started.
    #[error("alerts: cannot start the webhook threads: {0}")]
    Alerts(std::io::Error),
}

impl AgentError {
    /// The exit code of the binary: 2 for a setting that cannot work, 1 otherwise (an
    /// address in use, a server fault).
    pub fn exit_code(&self) -> u8 {
        match self {
            Self::BindHttp { .. }
            | Self::Serve(_)
            | Self::Alerts(_)
            | Self::Start(StartError::Bind { .. }) => 1,
            _ => 2,
        }
    }
}

/// A started agent: its node is running and its HTTP address bound; [`Agent::run`] serves
/// until the shutdown future completes.
#[derive(Debug)]
pub struct Agent {
    state: AppState,
    listener: TcpListener,
    http_addr: SocketAddr,
    cluster_addr: SocketAddr,
    feeder: Option<feeder::Feeder>,
    clock: ClockFile,
    clock_saver: tokio::task::JoinHandle<()>,
}

impl Agent {
    /// Creates the data directory, starts the node (joining the cluster through the
    /// seeds), connects the extra scopes and binds the HTTP address. Must run inside a
    /// tokio runtime.
    ///
    /// # Errors
    ///
    /// [`AgentError`] naming the setting that could not be used.
    pub async fn start(settings: Settings, log: LogControl) -> Result<Self, AgentError> {
        std::fs::create_dir_all(&settings.data_dir).map_err(|e| AgentError::DataDir {
            path: settings.data_dir.clone(),
            reason: e.to_string(),
        })?;
        if settings.secret_source == SecretSource::DevDefault {
            tracing::warn!(
                "no cluster secret given: using the development default, allowed on a loopback cluster address only"
            );
        }
        if settings.write_token.is_none() {
            tracing::warn!(
                "no write token given: writes are open to anyone who reaches the loopback HTTP address"
            );
        }
        let (clock, clock_floor) = ClockFile::open(&settings.data_dir)?;
        let history = History::open(&settings.history, &settings.name).await?;
        let node = start_node(&settings, clock_floor)?;
        for scope in &settings.scopes {
            node.connect(scope)?;
        }
        let cluster_addr = node.cluster().addr().unwrap_or(settings.listen);
        let listener =
            TcpListener::bind(settings.http)
                .await
                .map_err(|e| AgentError::BindHttp {
                    addr: settings.http,
                    reason: e.to_string(),
                })?;
        let http_addr = listener.local_addr().map_err(AgentError::Serve)?;
        let feeder = history
            .as_ref()
            .map(|history| feeder::spawn(&node, history.recorder()));
        let alerts = Alerts::start(
            &node,
            &settings.alerts,
            history.as_ref().map(|h| h.recorder().clone()),
        )
        .map_err(AgentError::Alerts)?;
        let clock_saver = clock.spawn_saver(node.clone());
        let state = AppState::new(node, Arc::new(settings), log);
        if let Some(history) = history {
            state.set_history(history);
        }
        state.set_alerts(alerts);
        Ok(Self {
            state,
            listener,
            http_addr,
            cluster_addr,
            feeder,
            clock,
            clock_saver,
        })
    }

    /// The address the HTTP API listens on.
    pub fn http_addr(&self) -> SocketAddr {
        self.http_addr
    }

    /// The address the cluster layer listens on.
    pub fn cluster_addr(&self) -> SocketAddr {
        self.cluster_addr
    }

    /// The agent's node.
    pub fn node(&self) -> &Node {
        self.state.node()
    }

    /// The line the binary prints on stdout once it serves: tests and scripts parse the
    /// bound addresses from it.
    pub fn ready_line(&self) -> String {
        format!(
            "roster agent ready: http={} cluster={} name={}",
            self.http_addr,
            self.cluster_addr,
            self.state.node().name()
        )
    }

    /// Serves the API until `shutdown` completes, then lets in-flight requests finish and
    /// makes the node leave the cluster.
    ///
    /// # Errors
    ///
    /// [`AgentError::Serve`] if the server fails; the node leaves the cluster anyway.
    pub async fn run(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), AgentError> {
        let router = http::router(self.state.clone());
        tracing::info!(http = %self.http_addr, cluster = %self.cluster_addr, name = self.state.node().name(), "agent ready");
        // The peer address is what the rate limit is keyed by.
        let router = router.into_make_service_with_connect_info::<SocketAddr>();
        // SSE streams end when the shutdown begins, or they would hold it open.
        let state = self.state.clone();
        let shutdown = async move {
            shutdown.await;
            state.services().shutdown.stop();
        };
        // Small answers (pipelined requests, SSE events) go out at once, not after the
        // client's delayed ACK (Nagle).
        let listener = axum::serve::ListenerExt::tap_io(self.listener, |tcp| {
            if let Err(e) = tcp.set_nodelay(true) {
                tracing::debug!(error = %e, "cannot set TCP_NODELAY");
            }
        });
        let served = axum::serve(listener, router)
            .with_graceful_shutdown(shutdown)
            .await;
        tracing::info!("HTTP server stopped; leaving the cluster");
        if let Some(feeder) = &self.feeder {
            feeder.close_links();
        }
        self.state.node().shutdown().await;
        self.clock_saver.abort();
        self.clock.save(self.state.node());
        tracing::info!("node left the cluster");
        if let Some(history) = self.state.history()
            && !history.flush(HISTORY_FLUSH).await
        {
            tracing::warn!("history: records still queued at exit were not written");
        }
        served.map_err(AgentError::Serve)
    }
}

/// Starts the node of `settings`, its clocks past `clock_floor` (see [`ClockFile`]).
fn start_node(settings: &Settings, clock_floor: u64) -> Result<Node, AgentError> {
    let mut cluster = ClusterConfig::new(settings.listen, &settings.secret)
        .seeds(settings.seeds.iter().cloned())
        .split_brain(settings.split_brain.clone());
    if let Some(name) = &settings.cluster_name {
        cluster = cluster.cluster_name(name.clone());
    }
    if let Some(files) = &settings.tls {
        cluster = cluster.tls(load_tls(files)?);
    }
    // A session that loses one name in a conflict after a partition loses that name only:
    // its process (and so its other names, its groups and the session) lives on. Killing
    // the loser would empty a session its client still keeps alive.
    let mut builder = Node::builder()
        .name(settings.name.clone())
        .version(env!("CARGO_PKG_VERSION"))
        .health(HealthConfig::new())
        .kill_conflict_losers(false)
        .clock_floor(clock_floor)
        .cluster(cluster);
    if let Some(role) = &settings.role {
        builder = builder.role(role.clone());
    }
    for (key, value) in &settings.labels {
        builder = builder.label(key.clone(), value.clone());
    }
    Ok(builder.start()?)
}

fn load_tls(files: &TlsFiles) -> Result<TlsConfig, AgentError> {
    let file_error = |setting, path: &PathBuf, reason: String| AgentError::TlsFile {
        setting,
        path: path.clone(),
        reason,
    };
    let chain = CertificateDer::pem_file_iter(&files.cert)
        .and_then(Iterator::collect::<Result<Vec<_>, _>>)
        .map_err(|e| file_error("--tls-cert", &files.cert, e.to_string()))?;
    if chain.is_empty() {
        return Err(file_error(
            "--tls-cert",
            &files.cert,
            "no certificate in the file".to_owned(),
        ));
    }
    let key = PrivateKeyDer::from_pem_file(&files.key)
        .map_err(|e| file_error("--tls-key", &files.key, e.to_string()))?;
    let ca = CertificateDer::pem_file_iter(&files.ca)
        .and_then(Iterator::collect::<Result<Vec<_>, _>>)
        .map_err(|e| file_error("--tls-ca", &files.ca, e.to_string()))?;
    if ca.is_empty() {
        return Err(file_error(
            "--tls-ca",
            &files.ca,
            "no certificate in the file".to_owned(),
        ));
    }
    Ok(TlsConfig::new(chain, key, ca, &files.server_name)?)
}

/// Completes on SIGINT or SIGTERM. Called inside the runtime, the SIGTERM handler is
/// installed at once, not when the future is first polled, so that a SIGTERM sent as soon
/// as the ready line is printed is not lost (it would kill the process); called outside,
/// it is installed when first polled.
pub fn shutdown_signal() -> impl Future<Output = ()> + Send + 'static {
    #[cfg(unix)]
    let early = tokio::runtime::Handle::try_current()
        .ok()
        .map(|_| terminate_signal());
    async move {
        wait_for_signal(
            #[cfg(unix)]
            early.unwrap_or_else(terminate_signal),
        )
        .await
    }
}

#[cfg(unix)]
fn terminate_signal() -> std::io::Result<tokio::signal::unix::Signal> {
    tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
}

async fn wait_for_signal(#[cfg(unix)] terminate: std::io::Result<tokio::signal::unix::Signal>) {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut terminate = match terminate {
            Ok(signal) => signal,
            Err(e) => {
                tracing::warn!(error = %e, "cannot watch SIGTERM; stopping on SIGINT only");
                let _ = interrupt.await;
                return;
            }
        };
        tokio::select! {
            _ = interrupt => tracing::info!("SIGINT: shutting down"),
            _ = terminate.recv() => tracing::info!("SIGTERM: shutting down"),
        }
    }
    #[cfg(not(unix))]
    {
        let _ = interrupt.await;
    }
}
