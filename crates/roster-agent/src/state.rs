//! What every request handler shares: the node, the settings and the log control, behind
//! one `Arc` so that a clone per request costs a reference count. Later resources
//! (sessions, events, metrics, history) add their handles here.

use std::sync::{Arc, OnceLock};

use roster::Node;

use crate::alerts::Alerts;
use crate::config::Settings;
use crate::history::History;
use crate::logging::LogControl;
use crate::services::Services;

/// The state of the HTTP API.
#[derive(Clone, Debug)]
pub struct AppState(Arc<Shared>);

#[derive(Debug)]
struct Shared {
    node: Node,
    settings: Arc<Settings>,
    log: LogControl,
    services: Services,
    history: OnceLock<History>,
    alerts: OnceLock<Alerts>,
}

impl AppState {
    /// The state of an agent running `node` with `settings`, its logs under `log`; starts
    /// the API's services (sessions, event stream), so it must run inside a tokio runtime.
    pub fn new(node: Node, settings: Arc<Settings>, log: LogControl) -> Self {
        let services = Services::start(&node, &settings);
        Self(Arc::new(Shared {
            node,
            settings,
            log,
            services,
            history: OnceLock::new(),
            alerts: OnceLock::new(),
        }))
    }

    /// The agent's node.
    pub fn node(&self) -> &Node {
        &self.0.node
    }

    /// The agent's settings.
    pub fn settings(&self) -> &Settings {
        &self.0.settings
    }

    /// The log control.
    pub fn log(&self) -> &LogControl {
        &self.0.log
    }

    /// The API's services: sessions, events, metrics, rate limit.
    pub fn services(&self) -> &Services {
        &self.0.services
    }

    /// Sets the history (once, at start; later calls are ignored).
    pub fn set_history(&self, history: History) {
        let _ = self.0.history.set(history);
    }

    /// The history; `None` with `--history off`.
    pub fn history(&self) -> Option<&History> {
        self.0.history.get()
    }

    /// Sets the alerts (once, at start; later calls are ignored).
    pub fn set_alerts(&self, alerts: Alerts) {
        let _ = self.0.alerts.set(alerts);
    }

    /// The alerts; `None` until started.
    pub fn alerts(&self) -> Option<&Alerts> {
        self.0.alerts.get()
    }
}
