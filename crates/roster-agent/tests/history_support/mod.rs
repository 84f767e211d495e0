//! What the history and alert tests need besides `support`: a PostgreSQL server started in
//! a temporary directory (stopped on drop), agents as OS processes with a data directory
//! and a settings file that outlive a restart, and a webhook receiver.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;

/// The bin directory of the newest PostgreSQL under `/usr/lib/postgresql`.
fn postgres_bin() -> PathBuf {
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let version = entry.file_name().to_str()?.parse::<u32>().ok()?;
            let bin = entry.path().join("bin");
            bin.join("initdb").is_file().then_some((version, bin))
        })
        .collect();
    versions.sort();
    match versions.pop() {
        Some((_, bin)) => bin,
        None => panic!(
            "PostgreSQL is not installed: the history tests run against a real server. Install Debian's postgresql package (apt-get install postgresql) so that /usr/lib/postgresql/*/bin/initdb exists"
        ),
    }
}

/// A PostgreSQL server of its own in a temporary directory, on 127.0.0.1 at a free port,
/// with a user `roster` trusted without a password. Stopped on drop.
pub(crate) struct Postgres {
    bin: PathBuf,
    dir: tempfile::TempDir,
    port: u16,
    as_postgres: bool,
}

impl Postgres {
    /// Creates the cluster and starts the server.
    pub(crate) fn start() -> Self {
        let bin = postgres_bin();
        let dir = tempfile::tempdir().expect("temp dir");
        let as_postgres = rustix::process::getuid().is_root();
        if as_postgres {
            // initdb refuses root: the server runs as the postgres system user.
            let status = Command::new("chown")
                .args(["-R", "postgres:"])
                .arg(dir.path())
                .status()
                .expect("chown");
            assert!(
                status.success(),
                "chown the PostgreSQL temp dir to postgres"
            );
        }
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        let server = Self {
            bin,
            dir,
            port,
            as_postgres,
        };
        std::fs::create_dir_all(server.socket_dir()).expect("socket dir");
        if as_postgres {
            Command::new("chown")
                .arg("postgres:")
                .arg(server.socket_dir())
                .status()
                .expect("chown");
        }
        server.run(
            "initdb",
            &[
                "-D",
                server.data().to_str().unwrap(),
                "-A",
                "trust",
                "-U",
                "roster",
                "--no-sync",
                "-E",
                "UTF8",
            ],
        );
        server.start_server();
        server
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn socket_dir(&self) -> PathBuf {
        self.dir.path().join("sock")
    }

    fn run(&self, tool: &str, args: &[&str]) {
        let program = self.bin.join(tool);
        let mut command = if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(&program);
            c
        } else {
            Command::new(&program)
        };
        let output = command
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", program.display()));
        assert!(
            output.status.success(),
            "{tool} {args:?} failed: {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }

    /// Starts the server (again), waiting until it accepts connections.
    pub(crate) fn start_server(&self) {
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off",
            self.port,
            self.socket_dir().display()
        );
        let log = self.dir.path().join("server.log");
        self.run(
            "pg_ctl",
            &[
                "-D",
                self.data().to_str().unwrap(),
                "-o",
                &options,
                "-l",
                log.to_str().unwrap(),
                "-w",
                "-t",
                "60",
                "start",
            ],
        );
    }

    /// Stops the server at once (connections are cut).
    pub(crate) fn stop_server(&self) {
        self.run(
            "pg_ctl",
            &[
                "-D",
                self.data().to_str().unwrap(),
                "-m",
                "fast",
                "-w",
                "-t",
                "60",
                "stop",
            ],
        );
    }

    /// The URL of its `postgres` database.
    pub(crate) fn url(&self) -> String {
        format!("postgres://roster@127.0.0.1:{}/postgres", self.port)
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let program = self.bin.join("pg_ctl");
        let data = self.data();
        let mut command = if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(&program);
            c
        } else {
            Command::new(&program)
        };
        let _ = command
            .arg("-D")
            .arg(&data)
            .args(["-m", "immediate", "-w", "stop"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

/// A running agent whose data directory belongs to the test (it survives a restart);
/// killed on drop.
pub(crate) struct Agent {
    pub(crate) name: String,
    pub(crate) http: String,
    pub(crate) cluster: String,
    child: Option<Child>,
}

/// How long an agent may take to print its ready line.
const START_DEADLINE: Duration = Duration::from_secs(20);

impl Agent {
    /// Starts `roster agent` named `name` on free ports with `data_dir` and `extra` flags.
    pub(crate) fn start(name: &str, data_dir: &Path, extra: &[&str]) -> Self {
        let mut child = command(name, data_dir, extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn roster");
        let stdout = child.stdout.take().expect("stdout");
        let (lines, line) = mpsc::channel();
        std::thread::spawn(move || {
            for text in BufReader::new(stdout).lines().map_while(Result::ok) {
                if lines.send(text).is_err() {
                    break;
                }
            }
        });
        let mut agent = Self {
            name: name.to_owned(),
            http: String::new(),
            cluster: String::new(),
            child: Some(child),
        };
        let ready = line.recv_timeout(START_DEADLINE).unwrap_or_else(|_| {
            panic!("agent {name} printed no ready line within {START_DEADLINE:?}")
        });
        let field = |key: &str| {
            ready
                .split_whitespace()
                .find_map(|part| part.strip_prefix(key))
                .unwrap_or_else(|| panic!("no {key} in {ready:?}"))
                .to_owned()
        };
        agent.http = field("http=");
        agent.cluster = field("cluster=");
        agent
    }

    /// `http://<addr><path>`.
    pub(crate) fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.http)
    }

    /// Sends SIGTERM and waits for a clean exit.
    pub(crate) fn stop(mut self) {
        let mut child = self.child.take().expect("running");
        let pid = rustix::process::Pid::from_child(&child);
        rustix::process::kill_process(pid, rustix::process::Signal::TERM).expect("SIGTERM");
        let end = std::time::Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = child.try_wait().expect("try_wait") {
                assert!(status.success(), "{} exited with {status}", self.name);
                return;
            }
            if std::time::Instant::now() > end {
                let _ = child.kill();
                panic!("{} did not stop within 20 s", self.name);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The process id.
    pub(crate) fn pid(&self) -> rustix::process::Pid {
        rustix::process::Pid::from_child(self.child.as_ref().expect("running"))
    }

    /// Kills the process (SIGKILL): it leaves nothing behind.
    pub(crate) fn kill(mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// The command of an agent named `name` with `data_dir` and `extra` flags.
pub(crate) fn command(name: &str, data_dir: &Path, extra: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_roster"));
    command
        .arg("agent")
        .args([
            "--name",
            name,
            "--http",
            "127.0.0.1:0",
            "--listen",
            "127.0.0.1:0",
        ])
        .arg("--data-dir")
        .arg(data_dir)
        .args(extra)
        .env_remove("ROSTER_TOKEN")
        .env_remove("ROSTER_SECRET")
        .env_remove("ROSTER_SEEDS")
        .env_remove("ROSTER_HISTORY")
        .stdin(Stdio::null());
    command
}

/// A webhook receiver: a thread answering 200 to every POST and keeping the JSON bodies.
pub(crate) struct Webhook {
    pub(crate) url: String,
    received: Arc<Mutex<Vec<Value>>>,
    skip: std::sync::atomic::AtomicUsize,
}

impl Webhook {
    /// Starts listening on a free loopback port.
    pub(crate) fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind webhook");
        let url = format!("http://{}/hook", listener.local_addr().expect("addr"));
        let received = Arc::new(Mutex::new(Vec::new()));
        let kept = Arc::clone(&received);
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
                if let Some(body) = read_request(&mut stream)
                    && let Ok(value) = serde_json::from_slice::<Value>(&body)
                {
                    kept.lock().unwrap().push(value);
                }
                let _ = stream.write_all(
                    b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
                );
            }
        });
        Self {
            url,
            received,
            skip: std::sync::atomic::AtomicUsize::new(0),
        }
    }

    /// How many of the first deliveries the test ignores.
    pub(crate) fn skip(&self) -> usize {
        self.skip.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Ignores the first `n` deliveries from now on.
    pub(crate) fn set_skip(&self, n: usize) {
        self.skip.store(n, std::sync::atomic::Ordering::Relaxed);
    }

    /// The alerts received so far.
    pub(crate) fn received(&self) -> Vec<Value> {
        self.received.lock().unwrap().clone()
    }
}

/// The body of one HTTP/1.1 request with a content-length.
fn read_request(stream: &mut impl Read) -> Option<Vec<u8>> {
    let mut data = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let n = stream.read(&mut buf).ok()?;
        if n == 0 {
            return None;
        }
        data.extend_from_slice(&buf[..n]);
        if let Some(end) = data.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&data[..end]).to_ascii_lowercase();
            let length: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(0);
            while data.len() < end + 4 + length {
                let n = stream.read(&mut buf).ok()?;
                if n == 0 {
                    return None;
                }
                data.extend_from_slice(&buf[..n]);
            }
            return Some(data[end + 4..end + 4 + length].to_vec());
        }
    }
}
