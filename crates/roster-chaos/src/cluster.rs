//! N agents in N namespaces: start, wait until they see each other, kill, restart, stop,
//! continue, terminate. Every node event goes into the history.

use std::path::PathBuf;
use std::time::Duration;

use serde_json::Value;

use crate::agent::{AgentProcess, AgentSpec};
use crate::clock::Skew;
use crate::disk::DataFs;
use crate::error::ChaosError;
use crate::history::{NodeEventKind, Recorder};
use crate::http::Client;
use crate::net::Network;
use crate::time::poll;

/// The cluster port of every agent (each has its own address).
pub const CLUSTER_PORT: u16 = 7400;
/// The HTTP port of every agent.
pub const HTTP_PORT: u16 = 7480;
/// The write token every agent takes.
pub const TOKEN: &str = "roster-chaos-write-token-0123456789";
const SECRET: &str = "roster-chaos-cluster-secret-0123456789abcdef";

/// The agents of one run and their network.
pub struct Cluster {
    // Agents are declared before the network: they are killed before the namespaces go.
    agents: Vec<Option<AgentProcess>>,
    stopped: Vec<bool>,
    specs: Vec<AgentSpec>,
    /// The namespaces and their filters.
    pub net: Network,
    client: Client,
    recorder: Recorder,
    /// Each agent's data filesystem (unmounted before `dir` goes).
    data_fs: Vec<DataFs>,
    /// Per agent, the history records it had dropped when its disk was last filled.
    dropped_before_full: Vec<Option<u64>>,
    dir: tempfile::TempDir,
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for agent in self.agents.iter_mut().flatten() {
            agent.kill();
        }
        if std::env::var_os("ROSTER_CHAOS_KEEP").is_some() {
            self.data_fs.iter_mut().for_each(DataFs::keep);
            let kept =
                std::mem::replace(&mut self.dir, tempfile::TempDir::new().expect("temp dir"));
            eprintln!("agents' data and logs kept in {}", kept.keep().display());
        }
    }
}

impl Cluster {
    /// Creates the network and starts `nodes` agents (`n0`, `n1`, ...), each seeded with
    /// every other one and expecting all of them, then waits until every node sees every
    /// other one online.
    pub fn start(binary: PathBuf, nodes: usize, recorder: Recorder) -> Result<Self, ChaosError> {
        let net = Network::create(nodes)?;
        let dir = tempfile::Builder::new()
            .prefix("roster-chaos-")
            .tempdir()
            .map_err(|e| ChaosError::io("temp dir", e))?;
        let names: Vec<String> = (0..nodes).map(|i| format!("n{i}")).collect();
        crate::disk::cleanup_stale()?;
        let data_fs = names
            .iter()
            .map(|name| DataFs::mount(&dir.path().join(name).join("data")))
            .collect::<Result<Vec<_>, _>>()?;
        let library = crate::clock::libfaketime();
        let skews = names
            .iter()
            .map(|name| {
                library
                    .clone()
                    .map(|library| Skew::new(library, &dir.path().join(name)))
                    .transpose()
            })
            .collect::<Result<Vec<_>, _>>()?;
        let specs = (0..nodes)
            .map(|i| AgentSpec {
                binary: binary.clone(),
                namespace: net.namespace(i),
                name: names[i].clone(),
                listen: format!("{}:{CLUSTER_PORT}", net.ip(i)),
                http: format!("{}:{HTTP_PORT}", net.ip(i)),
                seeds: (0..nodes)
                    .filter(|j| *j != i)
                    .map(|j| format!("{}:{CLUSTER_PORT}", net.ip(j)))
                    .collect(),
                expected: names.clone(),
                data_dir: dir.path().join(&names[i]).join("data"),
                secret: SECRET.to_owned(),
                token: TOKEN.to_owned(),
                skew: skews[i].clone(),
            })
            .collect();
        let mut cluster = Self {
            agents: (0..nodes).map(|_| None).collect(),
            stopped: vec![false; nodes],
            specs,
            net,
            client: Client::new(TOKEN, Duration::from_secs(2)),
            recorder,
            data_fs,
            dropped_before_full: vec![None; nodes],
            dir,
        };
        for i in 0..nodes {
            cluster.restart(i)?;
        }
        cluster.wait_formed(Duration::from_secs(60))?;
        Ok(cluster)
    }

    /// Fills node `i`'s data filesystem (its history's disk); returns the bytes it took.
    pub fn fill_disk(&mut self, i: usize) -> Result<u64, ChaosError> {
        self.dropped_before_full[i] = self.history_probe(i).map(|(_, dropped)| dropped);
        self.data_fs[i].fill()
    }

    /// How many history records node `i` had dropped when its disk was last filled.
    pub fn dropped_before_full(&self, i: usize) -> Option<u64> {
        self.dropped_before_full[i]
    }

    /// Makes room on node `i`'s data filesystem again.
    pub fn free_disk(&self, i: usize) -> Result<(), ChaosError> {
        self.data_fs[i].free()
    }

    /// Sets node `i`'s wall clock `seconds` off the host's; `false` when libfaketime is
    /// not installed (nothing is done).
    pub fn skew_clock(&self, i: usize, seconds: i64) -> Result<bool, ChaosError> {
        match &self.specs[i].skew {
            Some(skew) => skew.set(seconds).map(|()| true),
            None => Ok(false),
        }
    }

    /// How far node `i`'s wall clock is off the harness's, in milliseconds, as its latest
    /// heartbeat seen by another live node says (the heartbeat's time is its clock's
    /// reading; a heartbeat is a second old at most). `None` when no other node shows one.
    pub fn clock_offset_ms(&self, i: usize) -> Option<i64> {
        let observer = self.live().into_iter().find(|j| *j != i)?;
        let path = format!("/api/nodes/{}/heartbeats?minutes=5", self.name(i));
        let reply = self.client.get(&self.url(observer, &path));
        let last = reply.ok()?.as_array()?.last()?["at_ms"].as_i64()?;
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .ok()?
            .as_millis();
        Some(last - i64::try_from(now).ok()?)
    }

    /// Node `i`'s history status from `/readyz` (`ok`, `degraded`) and how many records it
    /// dropped since it started, if it answers.
    pub fn history_probe(&self, i: usize) -> Option<(String, u64)> {
        // Unready (503) answers carry the same body.
        match self.client.get(&self.url(i, "/readyz")) {
            crate::http::Reply::Answered(_, body) => {
                let history = &body["history"];
                Some((
                    history["status"].as_str()?.to_owned(),
                    history["dropped"].as_u64()?,
                ))
            }
            _ => None,
        }
    }

    /// The number of nodes (running or not).
    pub fn len(&self) -> usize {
        self.specs.len()
    }

    /// Whether the cluster has no nodes.
    pub fn is_empty(&self) -> bool {
        self.specs.is_empty()
    }

    /// Node `i`'s name.
    pub fn name(&self, i: usize) -> &str {
        &self.specs[i].name
    }

    /// `http://<node i's HTTP address><path>` (the same across restarts).
    pub fn url(&self, i: usize, path: &str) -> String {
        format!("http://{}{path}", self.specs[i].http)
    }

    /// Node `i`'s data directory (kept across its restarts).
    pub fn data_dir(&self, i: usize) -> &std::path::Path {
        &self.specs[i].data_dir
    }

    /// The directory of the agents' data and logs.
    pub fn dir(&self) -> &std::path::Path {
        self.dir.path()
    }

    /// The HTTP client the harness uses for its own reads.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Nodes whose process runs and is not stopped.
    pub fn live(&self) -> Vec<usize> {
        (0..self.len())
            .filter(|i| self.agents[*i].is_some() && !self.stopped[*i])
            .collect()
    }

    /// OS pids of the running agents, by node.
    pub fn pids(&self) -> Vec<Option<u32>> {
        self.agents
            .iter()
            .map(|a| a.as_ref().map(AgentProcess::pid))
            .collect()
    }

    /// SIGKILL node `i`.
    pub fn kill(&mut self, i: usize) {
        if let Some(mut agent) = self.agents[i].take() {
            agent.kill();
            self.stopped[i] = false;
            self.recorder.node_event(i, NodeEventKind::Killed);
        }
    }

    /// SIGTERM node `i` and wait for its exit.
    pub fn terminate(&mut self, i: usize) -> Result<(), ChaosError> {
        if let Some(mut agent) = self.agents[i].take() {
            let done = agent.terminate(Duration::from_secs(20));
            self.recorder.node_event(i, NodeEventKind::Terminated);
            done?;
        }
        Ok(())
    }

    /// (Re)starts node `i` with its data directory (a new incarnation).
    pub fn restart(&mut self, i: usize) -> Result<(), ChaosError> {
        self.kill(i);
        let agent = AgentProcess::start(&self.specs[i])?;
        self.agents[i] = Some(agent);
        self.stopped[i] = false;
        self.recorder.node_event(i, NodeEventKind::Started);
        Ok(())
    }

    /// SIGSTOP node `i`.
    pub fn stop(&mut self, i: usize) {
        if let Some(agent) = self.agents[i].as_mut() {
            agent.stop();
            self.stopped[i] = true;
            self.recorder.node_event(i, NodeEventKind::Stopped);
        }
    }

    /// SIGCONT node `i`.
    pub fn resume(&mut self, i: usize) {
        if let Some(agent) = self.agents[i].as_mut() {
            agent.resume();
            self.stopped[i] = false;
            self.recorder.node_event(i, NodeEventKind::Continued);
        }
    }

    /// The names of the nodes `i` shows reachable (`online`, `degraded` or `draining`: a
    /// loaded machine makes nodes degraded), or `None` if it does not answer.
    pub fn online_seen_by(&self, i: usize) -> Option<Vec<String>> {
        let reply = self.client.get(&self.url(i, "/api/nodes"));
        let nodes = reply.ok()?.as_array()?.clone();
        let mut online: Vec<String> = nodes
            .iter()
            .filter(|n| {
                matches!(
                    n.get("status").and_then(Value::as_str),
                    Some("online" | "degraded" | "draining")
                )
            })
            .filter_map(|n| n.get("name").and_then(Value::as_str).map(str::to_owned))
            .collect();
        online.sort();
        Some(online)
    }

    /// Waits until every live node shows exactly the live nodes online and says no
    /// partition is suspected.
    pub fn wait_formed(&self, deadline: Duration) -> Result<(), ChaosError> {
        let live = self.live();
        let mut expected: Vec<String> = live.iter().map(|i| self.name(*i).to_owned()).collect();
        expected.sort();
        poll(
            &format!("every node sees {expected:?} reachable and no partition"),
            deadline,
            Duration::from_millis(200),
            || {
                live.iter()
                    .all(|i| {
                        self.online_seen_by(*i).as_ref() == Some(&expected)
                            && self.partition_suspected(*i) == Some(live.len() < self.len())
                    })
                    .then_some(())
            },
        )
    }

    /// Whether node `i` suspects a partition, or `None` if it does not answer.
    pub fn partition_suspected(&self, i: usize) -> Option<bool> {
        let reply = self.client.get(&self.url(i, "/api/partition"));
        reply.ok()?.get("partition_suspected")?.as_bool()
    }
}
