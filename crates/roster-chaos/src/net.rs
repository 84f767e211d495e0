//! Network namespaces joined by a bridge, and the packet filters that cut them apart.
//!
//! Layout for network `K` of process `P` with `N` nodes (`T` = `PkK`):
//!
//! - a bridge `rcbT` in the root namespace with `10.77.S.254/24` (the harness's own
//!   address: its HTTP client talks to the agents from there; no route leaves the
//!   machine, the agents' namespaces have only the connected `/24`);
//! - namespaces `rchT-I` (I = 0..N), each with `lo` and `eth0` = `10.77.S.(I+1)/24`, the
//!   other end `rvTnI` attached to the bridge;
//! - in each namespace an nftables table `inet chaos` with an `input` chain: the faults
//!   add rules there (drop what comes from a peer, drop a share of the peers' packets).
//!   Drops happen on input, so a sender sees silence, as on a real partition, and the
//!   harness's own address is never dropped: the HTTP API stays reachable.
//!
//! [`Network::cleanup_stale`] removes what an earlier run (a dead process) left behind;
//! `Drop` removes everything of this run, panics included.

use std::collections::BTreeSet;
use std::net::Ipv4Addr;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

use crate::error::ChaosError;

/// The prefix of every namespace and interface name the harness creates.
const PREFIX_NS: &str = "rch";
const PREFIX_BRIDGE: &str = "rcb";
const PREFIX_VETH: &str = "rv";

/// Runs `program args`, failing with its stderr.
pub fn run(program: &str, args: &[&str]) -> Result<String, ChaosError> {
    let command = format!("{program} {}", args.join(" "));
    let output = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|source| ChaosError::Spawn {
            command: command.clone(),
            source,
        })?;
    if !output.status.success() {
        return Err(ChaosError::Command {
            command,
            status: output.status,
            stderr: String::from_utf8_lossy(&output.stderr).trim().to_owned(),
        });
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

/// Runs `nft -f -` with `script` on stdin, inside namespace `ns`.
fn nft(ns: &str, script: &str) -> Result<(), ChaosError> {
    use std::io::Write;
    let command = format!("ip netns exec {ns} nft -f - <<< {script:?}");
    let mut child = Command::new("ip")
        .args(["netns", "exec", ns, "nft", "-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|source| ChaosError::Spawn {
            command: command.clone(),
            source,
        })?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(script.as_bytes())
            .map_err(|e| ChaosError::io("nft stdin", e))?;
    }
    let output = child
        .wait_with_output()
        .map_err(|e| ChaosError::io("nft", e))?;
    if !output.status.success() {
        return Err(ChaosError::Command {
            command,
            status: output.status,
            stderr: String::from_utf8_lossy(&output.stderr).trim().to_owned(),
        });
    }
    Ok(())
}

/// What one node's filter drops now.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Filter {
    /// Peers whose packets are dropped on input.
    blocked: BTreeSet<usize>,
    /// Percentage of the peers' packets dropped on input.
    loss_percent: u8,
}

/// The namespaces and bridge of one run; removed on drop.
#[derive(Debug)]
pub struct Network {
    /// `<pid>k<n>`: the process and its how-manieth network (several may exist at once).
    tag: String,
    subnet: u8,
    nodes: usize,
    filters: Vec<Filter>,
    netem: Vec<bool>,
}

impl Network {
    /// Whether this machine can create namespaces, a bridge and nftables rules: `Err`
    /// names what is missing.
    pub fn probe() -> Result<(), ChaosError> {
        if !rustix::process::geteuid().is_root() {
            return Err(ChaosError::Unsupported("not running as root".into()));
        }
        for (program, flag, package) in [("ip", "-V", "iproute2"), ("nft", "--version", "nftables")]
        {
            run(program, &[flag]).map_err(|e| {
                ChaosError::Unsupported(format!("{program} ({package}) is missing: {e}"))
            })?;
        }
        // Tests of one process probe at once: each probe gets a name of its own.
        static PROBES: AtomicU32 = AtomicU32::new(0);
        let name = format!(
            "{PREFIX_NS}{}-probe{}",
            std::process::id(),
            PROBES.fetch_add(1, Ordering::Relaxed)
        );
        run("ip", &["netns", "add", &name])
            .map_err(|e| ChaosError::Unsupported(format!("cannot create a namespace: {e}")))?;
        let table = nft(&name, "add table inet chaos_probe\n");
        let _ = run("ip", &["netns", "del", &name]);
        table.map_err(|e| ChaosError::Unsupported(format!("nftables does not work: {e}")))
    }

    /// Removes namespaces, bridges and veths of earlier runs whose process is gone (and
    /// the processes still running in those namespaces).
    pub fn cleanup_stale() -> Result<Vec<String>, ChaosError> {
        let alive = |pid: &str| std::path::Path::new(&format!("/proc/{pid}")).exists();
        let owner = |name: &str, prefix: &str| -> Option<String> {
            let rest = name.strip_prefix(prefix)?;
            let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
            (!digits.is_empty()).then_some(digits)
        };
        let mut removed = Vec::new();
        let namespaces = run("ip", &["netns", "list"])?;
        for line in namespaces.lines() {
            let Some(name) = line.split_whitespace().next() else {
                continue;
            };
            let Some(pid) = owner(name, PREFIX_NS) else {
                continue;
            };
            if alive(&pid) {
                continue;
            }
            if let Ok(pids) = run("ip", &["netns", "pids", name]) {
                for pid in pids.split_whitespace() {
                    let _ = run("kill", &["-9", pid]);
                }
            }
            let _ = run("ip", &["netns", "del", name]);
            removed.push(name.to_owned());
        }
        let links = run("ip", &["-o", "link", "show"])?;
        for line in links.lines() {
            let Some(name) = line.split(':').nth(1).map(str::trim) else {
                continue;
            };
            let name = name.split('@').next().unwrap_or(name);
            let pid = owner(name, PREFIX_BRIDGE).or_else(|| owner(name, PREFIX_VETH));
            let Some(pid) = pid else { continue };
            if alive(&pid) {
                continue;
            }
            let _ = run("ip", &["link", "del", name]);
            removed.push(name.to_owned());
        }
        Ok(removed)
    }

    /// Creates the bridge and `nodes` namespaces (after removing stale ones).
    pub fn create(nodes: usize) -> Result<Self, ChaosError> {
        static NETWORKS: AtomicU32 = AtomicU32::new(0);
        Self::cleanup_stale()?;
        let pid = std::process::id();
        let tag = format!("{pid}k{}", NETWORKS.fetch_add(1, Ordering::Relaxed));
        // Tests of one process create networks at once: the subnet is picked and taken
        // (the bridge's address added) under one lock, or two would pick the same one and
        // the harness would reach the other network's agents.
        static PICKING: std::sync::Mutex<()> = std::sync::Mutex::new(());
        let picking = PICKING
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let used = run("ip", &["-4", "-o", "addr", "show"])?;
        let first = 20 + (pid % 200) as u8;
        let subnet = (0..200u8)
            .map(|i| 20 + (first - 20 + i) % 200)
            .find(|s| !used.contains(&format!("10.77.{s}.")))
            .ok_or_else(|| ChaosError::Unsupported("no free 10.77.x.0/24 subnet".into()))?;
        let network = Self {
            tag,
            subnet,
            nodes,
            filters: vec![Filter::default(); nodes],
            netem: vec![false; nodes],
        };
        let bridge = network.bridge();
        run("ip", &["link", "add", &bridge, "type", "bridge"])?;
        run(
            "ip",
            &[
                "addr",
                "add",
                &format!("{}/24", network.client_ip()),
                "dev",
                &bridge,
            ],
        )?;
        drop(picking);
        run("ip", &["link", "set", &bridge, "up"])?;
        for i in 0..nodes {
            let ns = network.namespace(i);
            let veth = network.veth(i);
            run("ip", &["netns", "add", &ns])?;
            run(
                "ip",
                &[
                    "link", "add", &veth, "type", "veth", "peer", "name", "eth0", "netns", &ns,
                ],
            )?;
            run("ip", &["link", "set", &veth, "master", &bridge, "up"])?;
            run("ip", &["-n", &ns, "link", "set", "lo", "up"])?;
            let addr = format!("{}/24", network.ip(i));
            run("ip", &["-n", &ns, "addr", "add", &addr, "dev", "eth0"])?;
            run("ip", &["-n", &ns, "link", "set", "eth0", "up"])?;
            network.apply_filter(i)?;
        }
        Ok(network)
    }

    /// The number of node namespaces.
    pub fn nodes(&self) -> usize {
        self.nodes
    }

    /// Node `i`'s namespace.
    pub fn namespace(&self, i: usize) -> String {
        format!("{PREFIX_NS}{}-{i}", self.tag)
    }

    fn bridge(&self) -> String {
        format!("{PREFIX_BRIDGE}{}", self.tag)
    }

    fn veth(&self, i: usize) -> String {
        format!("{PREFIX_VETH}{}n{i}", self.tag)
    }

    /// Node `i`'s address.
    pub fn ip(&self, i: usize) -> Ipv4Addr {
        Ipv4Addr::new(10, 77, self.subnet, u8::try_from(i + 1).unwrap_or(250))
    }

    /// The harness's address on the bridge (never filtered).
    pub fn client_ip(&self) -> Ipv4Addr {
        Ipv4Addr::new(10, 77, self.subnet, 254)
    }

    /// Rewrites node `i`'s input chain from its [`Filter`].
    fn apply_filter(&self, i: usize) -> Result<(), ChaosError> {
        let filter = &self.filters[i];
        let mut script = String::from(
            "table inet chaos {}\nflush table inet chaos\ntable inet chaos {\n chain input {\n  type filter hook input priority 0; policy accept;\n",
        );
        for peer in &filter.blocked {
            script.push_str(&format!("  ip saddr {} drop\n", self.ip(*peer)));
        }
        if filter.loss_percent > 0 {
            script.push_str(&format!(
                "  ip saddr 10.77.{}.0/24 ip saddr != {} numgen random mod 100 < {} drop\n",
                self.subnet,
                self.client_ip(),
                filter.loss_percent
            ));
        }
        script.push_str(" }\n}\n");
        nft(&self.namespace(i), &script)
    }

    /// Node `to` drops every packet from node `from` (one direction).
    pub fn block(&mut self, from: usize, to: usize) -> Result<(), ChaosError> {
        self.filters[to].blocked.insert(from);
        self.apply_filter(to)
    }

    /// Cuts `a` and `b` apart in both directions.
    pub fn cut(&mut self, a: usize, b: usize) -> Result<(), ChaosError> {
        self.block(a, b)?;
        self.block(b, a)
    }

    /// Cuts every node of `left` from every node of `right`.
    pub fn split(&mut self, left: &[usize], right: &[usize]) -> Result<(), ChaosError> {
        for &a in left {
            for &b in right {
                self.filters[a].blocked.insert(b);
                self.filters[b].blocked.insert(a);
            }
        }
        for i in left.iter().chain(right) {
            self.apply_filter(*i)?;
        }
        Ok(())
    }

    /// Node `i` drops `percent` of its peers' packets.
    pub fn loss(&mut self, i: usize, percent: u8) -> Result<(), ChaosError> {
        self.filters[i].loss_percent = percent.min(100);
        self.apply_filter(i)
    }

    /// Delay (and reordering) on node `i`'s `eth0` with `tc netem`; `Ok(false)` when the
    /// kernel has no netem (`CONFIG_NET_SCH_NETEM`), in which case nothing changed.
    pub fn netem(&mut self, i: usize, delay_ms: u32, jitter_ms: u32) -> Result<bool, ChaosError> {
        let ns = self.namespace(i);
        let delay = format!("{delay_ms}ms");
        let jitter = format!("{jitter_ms}ms");
        let args = [
            "-n", &ns, "qdisc", "replace", "dev", "eth0", "root", "netem", "delay", &delay,
            &jitter, "reorder", "25%", "50%",
        ];
        match run("tc", &args) {
            Ok(_) => {
                self.netem[i] = true;
                Ok(true)
            }
            Err(ChaosError::Command { stderr, .. })
                if stderr.contains("unknown") || stderr.contains("Unknown") =>
            {
                Ok(false)
            }
            Err(error) => Err(error),
        }
    }

    /// Removes every filter and netem qdisc: the network is whole again.
    pub fn heal(&mut self) -> Result<(), ChaosError> {
        for i in 0..self.nodes {
            if self.filters[i] != Filter::default() {
                self.filters[i] = Filter::default();
                self.apply_filter(i)?;
            }
            if self.netem[i] {
                let ns = self.namespace(i);
                run("tc", &["-n", &ns, "qdisc", "del", "dev", "eth0", "root"])?;
                self.netem[i] = false;
            }
        }
        Ok(())
    }
}

impl Drop for Network {
    fn drop(&mut self) {
        for i in 0..self.nodes {
            let ns = self.namespace(i);
            if let Ok(pids) = run("ip", &["netns", "pids", &ns]) {
                for pid in pids.split_whitespace() {
                    let _ = run("kill", &["-9", pid]);
                }
            }
            let _ = run("ip", &["netns", "del", &ns]);
            let _ = run("ip", &["link", "del", &self.veth(i)]);
        }
        let _ = run("ip", &["link", "del", &self.bridge()]);
    }
}
