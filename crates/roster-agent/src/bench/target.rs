//! The agent under load: started in this process on a runtime of its own (so that the
//! load generator's threads are not its workers), rate limit off, sessions unbounded
//! enough for the phases, logs at warn, its data directory (with the history, on as by
//! default) removed when it stops.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::mpsc;
use std::thread::JoinHandle;

use tokio::sync::oneshot;

use crate::agent::Agent;
use crate::config::api::ApiArgs;
use crate::config::{AgentArgs, FileConfig, SecretEnv, Settings};
use crate::logging::LogControl;

/// A running agent; stopped when dropped.
#[derive(Debug)]
pub struct Target {
    /// Its HTTP address.
    pub http: SocketAddr,
    data_dir: PathBuf,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Target {
    /// Starts the agent with `workers` runtime threads and its history (SQLite) on.
    ///
    /// # Errors
    ///
    /// Why it could not start, in words.
    pub fn start(workers: usize) -> Result<Self, String> {
        Self::start_with_history(workers, true)
    }

    /// Starts the agent with `workers` runtime threads, its history on (SQLite) or off.
    ///
    /// # Errors
    ///
    /// Why it could not start, in words.
    pub fn start_with_history(workers: usize, history: bool) -> Result<Self, String> {
        static STARTED: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let data_dir = std::env::temp_dir().join(format!(
            "roster-bench-{}-{}",
            std::process::id(),
            STARTED.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        ));
        let args = AgentArgs {
            history: (!history).then(|| "off".to_owned()),
            name: Some("bench".into()),
            http: Some("127.0.0.1:0".into()),
            listen: Some("127.0.0.1:0".into()),
            data_dir: Some(data_dir.clone()),
            log: Some("warn".into()),
            api: ApiArgs {
                rate_limit: Some(0),
                max_sessions: Some(1_000_000),
                ..ApiArgs::default()
            },
            ..AgentArgs::default()
        };
        let settings = Settings::merge(args, FileConfig::default(), SecretEnv::default())
            .map_err(|e| e.to_string())?;
        let (log, layer) = LogControl::detached("warn").map_err(|e| e.to_string())?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(workers.max(1))
            .thread_name(super::cpu::AGENT_THREADS)
            .enable_all()
            .build()
            .map_err(|e| e.to_string())?;
        let (ready, started) = mpsc::channel();
        let (stop, stopped) = oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let _layer = layer;
            runtime.block_on(async move {
                match Agent::start(settings, log).await {
                    Ok(agent) => {
                        let _ = ready.send(Ok(agent.http_addr()));
                        if let Err(e) = agent
                            .run(async {
                                let _ = stopped.await;
                            })
                            .await
                        {
                            eprintln!("roster bench-agent: the agent failed: {e}");
                        }
                    }
                    Err(e) => {
                        let _ = ready.send(Err(e.to_string()));
                    }
                }
            });
        });
        let http = started
            .recv()
            .map_err(|_| "the agent thread ended before it was ready".to_owned())??;
        Ok(Self {
            http,
            data_dir,
            stop: Some(stop),
            thread: Some(thread),
        })
    }

    /// `http://<addr><path>`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.http)
    }
}

impl Drop for Target {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
        // The agent's data (its history database) is the benchmark's alone.
        let _ = std::fs::remove_dir_all(&self.data_dir);
    }
}
