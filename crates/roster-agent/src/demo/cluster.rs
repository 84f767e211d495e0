//! The demo's agents: child processes of this binary (`roster agent`), on loopback, each
//! with its own data directory and its log in `<data>/<name>.log`, the first one seeding
//! the others. Dropping a [`DemoAgent`] kills its process.

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use crate::cli::client::Client;

/// How long an agent may take to say it is ready.
const READY_DEADLINE: Duration = Duration::from_secs(30);

/// Why the demo's cluster could not start.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    /// This program's own path is unknown (it starts itself as the agents).
    #[error("cannot find this program to start the agents: {0}")]
    NoExecutable(String),
    /// An agent could not be spawned.
    #[error("cannot start agent {name}: {reason}")]
    Spawn {
        /// The agent.
        name: String,
        /// Why.
        reason: String,
    },
    /// An agent did not say it was ready in time.
    #[error(
        "agent {name} did not start within {READY_DEADLINE:?} (is port {port} taken? try `roster demo --port 0`)"
    )]
    NotReady {
        /// The agent.
        name: String,
        /// Its HTTP port.
        port: u16,
    },
}

/// One agent of the demo.
pub struct DemoAgent {
    /// Its node's name.
    pub name: String,
    /// Its HTTP API, e.g. `http://127.0.0.1:7480`.
    pub url: String,
    /// Its cluster address.
    pub cluster: String,
    child: Child,
}

impl DemoAgent {
    /// Starts agent `name` with its HTTP API on `port` (0: any) and data under `data`,
    /// joining the cluster through `seed` if given; waits until it is ready.
    pub fn start(
        name: &str,
        port: u16,
        data: &Path,
        seed: Option<&str>,
        expected: &[&str],
    ) -> Result<Self, ClusterError> {
        let exe = std::env::current_exe().map_err(|e| ClusterError::NoExecutable(e.to_string()))?;
        let mut command = Command::new(exe);
        command
            .arg("agent")
            .args(["--name", name])
            .args(["--http", &format!("127.0.0.1:{port}")])
            .args(["--listen", "127.0.0.1:0"])
            .arg("--data-dir")
            .arg(data.join(name))
            .args(["--log", "info"])
            // The tour cuts one agent off on purpose (POST /api/faults/isolate).
            .arg("--fault-injection");
        for node in expected {
            command.args(["--expected-node", node]);
        }
        if let Some(seed) = seed {
            command.args(["--seed", seed]);
        }
        let log = std::fs::create_dir_all(data)
            .and_then(|()| std::fs::File::create(data.join(format!("{name}.log"))))
            .map_err(|e| ClusterError::Spawn {
                name: name.to_owned(),
                reason: format!("cannot create its log file: {e}"),
            })?;
        let mut child = command
            .env_remove("ROSTER_SEEDS")
            .env_remove("ROSTER_TOKEN")
            .env_remove("ROSTER_CONFIG")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .map_err(|e| ClusterError::Spawn {
                name: name.to_owned(),
                reason: e.to_string(),
            })?;
        let Some(stdout) = child.stdout.take() else {
            let _ = child.kill();
            return Err(ClusterError::NotReady {
                name: name.to_owned(),
                port,
            });
        };
        let (lines, ready) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if lines.send(line).is_err() {
                    return;
                }
            }
        });
        let not_ready = || ClusterError::NotReady {
            name: name.to_owned(),
            port,
        };
        let line = match ready.recv_timeout(READY_DEADLINE) {
            Ok(line) => line,
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(not_ready());
            }
        };
        let field = |key: &str| {
            line.split_whitespace()
                .find_map(|part| part.strip_prefix(key))
                .map(str::to_owned)
        };
        match (field("http="), field("cluster=")) {
            (Some(http), Some(cluster)) => Ok(Self {
                name: name.to_owned(),
                url: format!("http://{http}"),
                cluster,
                child,
            }),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                Err(not_ready())
            }
        }
    }

    /// A client of its API.
    pub fn client(&self) -> Client {
        Client::new(&self.url, None)
    }

    /// Kills it at once (SIGKILL): no leave, its peers find out by failure detection.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Asks it to stop (SIGTERM: it leaves the cluster, its peers drop its entries at
    /// once) and waits for it to exit, at most `deadline`; kills it after that.
    pub fn stop(&mut self, deadline: Duration) {
        if let Some(pid) = i32::try_from(self.child.id())
            .ok()
            .and_then(rustix::process::Pid::from_raw)
        {
            // Gone already if this fails (a Ctrl-C from the terminal reached it too).
            let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
        }
        self.wait(deadline);
    }

    /// Waits for it to exit on its own, at most `deadline`; kills it after that.
    fn wait(&mut self, deadline: Duration) {
        let end = std::time::Instant::now() + deadline;
        while std::time::Instant::now() < end {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        self.kill();
    }
}

impl Drop for DemoAgent {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            self.kill();
        }
    }
}

/// The port for the first agent: `wanted` if it is free, else any free one (0).
pub fn free_or_any(wanted: u16) -> u16 {
    if wanted == 0 || TcpListener::bind(("127.0.0.1", wanted)).is_ok() {
        wanted
    } else {
        0
    }
}

/// The demo's data directory: the one given, or a new temporary one (removed with the
/// returned guard).
pub fn data_dir(given: Option<&Path>) -> std::io::Result<(PathBuf, Option<TempDir>)> {
    match given {
        Some(dir) => {
            std::fs::create_dir_all(dir)?;
            Ok((dir.to_owned(), None))
        }
        None => {
            let dir = std::env::temp_dir().join(format!("roster-demo-{}", std::process::id()));
            std::fs::create_dir_all(&dir)?;
            Ok((dir.clone(), Some(TempDir(dir))))
        }
    }
}

/// A temporary directory removed on drop.
pub struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
