//! One `roster agent` process inside a namespace: started with `ip netns exec`, its ready
//! line awaited, killed (SIGKILL), stopped (SIGSTOP), continued, terminated; killed when
//! dropped.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use rustix::process::{Pid, Signal, kill_process};

use crate::error::ChaosError;

/// How long an agent may take to print its ready line.
pub const START_DEADLINE: Duration = Duration::from_secs(30);

/// How to start one agent.
#[derive(Debug, Clone)]
pub struct AgentSpec {
    /// The `roster` binary.
    pub binary: PathBuf,
    /// Its namespace.
    pub namespace: String,
    /// Its node name.
    pub name: String,
    /// Cluster address (`--listen`).
    pub listen: String,
    /// HTTP address (`--http`).
    pub http: String,
    /// `--seed` addresses.
    pub seeds: Vec<String>,
    /// `--expected-node` names.
    pub expected: Vec<String>,
    /// `--data-dir`; kept across restarts (history included).
    pub data_dir: PathBuf,
    /// The cluster secret (`ROSTER_SECRET`).
    pub secret: String,
    /// The write token (`ROSTER_TOKEN`).
    pub token: String,
    /// Its clock skew control, when libfaketime is installed.
    pub skew: Option<crate::clock::Skew>,
}

/// A running agent process.
#[derive(Debug)]
pub struct AgentProcess {
    child: Child,
    pid: u32,
    stopped: bool,
}

impl AgentProcess {
    /// Starts the agent and waits for its ready line. Its stderr (logs) is appended to
    /// `DATA_DIR/../NAME.log`.
    pub fn start(spec: &AgentSpec) -> Result<Self, ChaosError> {
        std::fs::create_dir_all(&spec.data_dir)
            .map_err(|e| ChaosError::io(format!("create {}", spec.data_dir.display()), e))?;
        let log_path = log_path(&spec.data_dir, &spec.name);
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .map_err(|e| ChaosError::io(format!("open {}", log_path.display()), e))?;
        let mut command = Command::new("ip");
        command
            .args(["netns", "exec", &spec.namespace])
            .arg(&spec.binary)
            .args(["agent", "--name", &spec.name])
            .args(["--listen", &spec.listen, "--http", &spec.http])
            .arg("--data-dir")
            .arg(&spec.data_dir)
            .args(["--fault-injection", "--rate-limit", "0", "--log", "info"]);
        for seed in &spec.seeds {
            command.args(["--seed", seed]);
        }
        for node in &spec.expected {
            command.args(["--expected-node", node]);
        }
        command
            .env_remove("ROSTER_SEEDS")
            .env_remove("ROSTER_CONFIG")
            .env_remove("ROSTER_READ_TOKEN")
            .env("ROSTER_SECRET", &spec.secret)
            .env("ROSTER_TOKEN", &spec.token)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log);
        for (name, value) in spec.skew.iter().flat_map(crate::clock::Skew::env) {
            command.env(name, value);
        }
        let mut child = command.spawn().map_err(|source| ChaosError::Spawn {
            command: format!("ip netns exec {} roster agent", spec.namespace),
            source,
        })?;
        let pid = child.id();
        let stdout = child.stdout.take();
        let (lines, line) = mpsc::channel();
        std::thread::spawn(move || {
            if let Some(stdout) = stdout {
                for text in BufReader::new(stdout).lines().map_while(Result::ok) {
                    if lines.send(text).is_err() {
                        break;
                    }
                }
            }
        });
        let mut agent = Self {
            child,
            pid,
            stopped: false,
        };
        let end = Instant::now() + START_DEADLINE;
        loop {
            let left = end.saturating_duration_since(Instant::now());
            match line.recv_timeout(left) {
                Ok(text) if text.starts_with("roster agent ready") => return Ok(agent),
                Ok(_) => {}
                Err(_) => {
                    let status = agent.child.try_wait().ok().flatten();
                    agent.kill();
                    return Err(ChaosError::Agent {
                        name: spec.name.clone(),
                        message: format!(
                            "no ready line within {START_DEADLINE:?} (exit: {status:?}); see {}",
                            log_path.display()
                        ),
                    });
                }
            }
        }
    }

    /// The OS process id.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    fn signal(&self, signal: Signal) {
        if let Some(pid) = Pid::from_raw(self.pid as i32) {
            let _ = kill_process(pid, signal);
        }
    }

    /// SIGKILL and reap.
    pub fn kill(&mut self) {
        if self.stopped {
            self.signal(Signal::CONT);
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGSTOP: the process freezes, its sockets stay open.
    pub fn stop(&mut self) {
        self.signal(Signal::STOP);
        self.stopped = true;
    }

    /// SIGCONT.
    pub fn resume(&mut self) {
        self.signal(Signal::CONT);
        self.stopped = false;
    }

    /// SIGTERM, then waits up to `deadline` for a graceful exit (SIGKILL after it).
    pub fn terminate(&mut self, deadline: Duration) -> Result<(), ChaosError> {
        self.signal(Signal::TERM);
        let end = Instant::now() + deadline;
        while Instant::now() < end {
            if let Ok(Some(_)) = self.child.try_wait() {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        self.kill();
        Err(ChaosError::Deadline {
            what: format!("agent pid {} exits on SIGTERM", self.pid),
            seconds: deadline.as_secs_f64(),
        })
    }

    /// Whether the process has exited.
    pub fn exited(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(Some(_)))
    }
}

impl Drop for AgentProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Where an agent's stderr goes.
pub fn log_path(data_dir: &Path, name: &str) -> PathBuf {
    data_dir
        .parent()
        .unwrap_or(data_dir)
        .join(format!("{name}.log"))
}
