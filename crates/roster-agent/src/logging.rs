//! The agent's logs: a `tracing` subscriber writing human or JSON lines to stderr, whose
//! filter can be replaced while the agent runs ([`LogControl`]).

use std::io::IsTerminal;
use std::sync::{Arc, Mutex, PoisonError};

use clap::ValueEnum;
use serde::Deserialize;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Registry, reload};

/// How the agent writes its logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// One readable line per event.
    #[default]
    Human,
    /// One JSON object per line.
    Json,
}

/// Changes the log filter of a running agent.
#[derive(Clone)]
pub struct LogControl {
    handle: reload::Handle<EnvFilter, Registry>,
    /// The filter in force, as it was given (an `EnvFilter` does not keep its text).
    current: Arc<Mutex<String>>,
}

impl std::fmt::Debug for LogControl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogControl")
            .field("current", &self.current())
            .finish_non_exhaustive()
    }
}

/// A log filter that does not parse.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct FilterError(String);

impl LogControl {
    /// Installs the process-wide subscriber with `filter` (validated by the caller) and
    /// returns its control. Call once per process.
    ///
    /// # Errors
    ///
    /// [`FilterError`] if `filter` does not parse or a subscriber is already installed.
    pub fn install(filter: &str, format: LogFormat) -> Result<Self, FilterError> {
        let (control, layer) = Self::detached(filter)?;
        let registry = Registry::default().with(layer);
        let result = match format {
            LogFormat::Human => registry
                .with(
                    tracing_subscriber::fmt::layer()
                        .with_ansi(std::io::stderr().is_terminal())
                        .with_writer(std::io::stderr),
                )
                .try_init(),
            LogFormat::Json => registry
                .with(
                    tracing_subscriber::fmt::layer()
                        .json()
                        .with_writer(std::io::stderr),
                )
                .try_init(),
        };
        result.map_err(|e| FilterError(e.to_string()))?;
        Ok(control)
    }

    /// A control and its filter layer, not installed anywhere (what tests of the HTTP
    /// API use, and what [`LogControl::install`] installs).
    ///
    /// # Errors
    ///
    /// [`FilterError`] if `filter` does not parse.
    pub fn detached(
        filter: &str,
    ) -> Result<(Self, reload::Layer<EnvFilter, Registry>), FilterError> {
        let parsed = parse(filter)?;
        let (layer, handle) = reload::Layer::new(parsed);
        let control = Self {
            handle,
            current: Arc::new(Mutex::new(filter.to_owned())),
        };
        Ok((control, layer))
    }

    /// The filter in force.
    pub fn current(&self) -> String {
        self.current
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Replaces the filter.
    ///
    /// # Errors
    ///
    /// [`FilterError`] if `filter` does not parse; the filter in force is kept.
    pub fn set(&self, filter: &str) -> Result<(), FilterError> {
        let parsed = parse(filter)?;
        let mut current = self.current.lock().unwrap_or_else(PoisonError::into_inner);
        self.handle
            .reload(parsed)
            .map_err(|e| FilterError(e.to_string()))?;
        *current = filter.to_owned();
        Ok(())
    }
}

fn parse(filter: &str) -> Result<EnvFilter, FilterError> {
    if filter.trim().is_empty() {
        return Err(FilterError("the filter is empty".to_owned()));
    }
    EnvFilter::try_new(filter).map_err(|e| FilterError(e.to_string()))
}
