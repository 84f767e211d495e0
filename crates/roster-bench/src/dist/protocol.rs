//! The control channel between the driver and its node agents: one JSON request per line
//! on the agent's stdin, one JSON reply per line on its stdout (stderr is left for logs).
//!
//! Every reply is an object with `"ok": true` and the request's results, or `"ok": false`
//! and an `"error"`. Timestamps crossing processes are wall-clock nanoseconds since the
//! Unix epoch ([`now_ns`]): every agent runs on the same machine and reads the same clock.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Wall-clock nanoseconds since the Unix epoch (`SystemTime`, i.e. `CLOCK_REALTIME`).
pub(super) fn now_ns() -> u64 {
    to_ns(SystemTime::now())
}

/// A wall-clock time as nanoseconds since the Unix epoch.
pub(super) fn to_ns(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

/// Nanoseconds since the Unix epoch as a wall-clock time.
pub(super) fn from_ns(ns: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_nanos(ns)
}

/// What a watcher waits for on its node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub(super) enum Cond {
    /// `registry_count() == count`, every key of `present` registered and none of `absent`.
    Registry {
        /// Names expected in the scope (all nodes).
        count: usize,
        /// Keys that must be registered.
        #[serde(default)]
        present: Vec<String>,
        /// Keys that must not be registered.
        #[serde(default)]
        absent: Vec<String>,
    },
    /// `member_count(group) == count`.
    Members {
        /// The group.
        group: String,
        /// Members expected.
        count: usize,
    },
    /// `whereis(key)` finds a process.
    Whereis {
        /// The key.
        key: String,
    },
}

impl Cond {
    /// `registry_count() == count`.
    pub(super) fn registry(count: usize) -> Self {
        Self::Registry {
            count,
            present: Vec::new(),
            absent: Vec::new(),
        }
    }

    /// `member_count(group) == count`.
    pub(super) fn members(group: &str, count: usize) -> Self {
        Self::Members {
            group: group.into(),
            count,
        }
    }
}

/// A command from the driver to a node agent.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "cmd", rename_all = "snake_case")]
pub(super) enum Request {
    /// Starts the node in cluster mode on `listen` (default `127.0.0.1:0`), seeded with
    /// `seeds`. A watcher for `watch` (if any) is armed as soon as the node is up. Replies
    /// `start_ns` (taken just before the node is started), `addr`, `incarnation`, and the
    /// allocated bytes just before and just after the start (`alloc_before`,
    /// `alloc_after`). The optional fields keep Roster's defaults when absent.
    Start {
        /// The node's name.
        name: String,
        /// Cluster addresses of running nodes.
        seeds: Vec<String>,
        /// What to watch for from the node's start (see [`Request::WatchResult`]).
        watch: Option<Cond>,
        /// The address to listen on (TCP and UDP); `None`: `127.0.0.1:0`.
        #[serde(default)]
        listen: Option<String>,
        /// [`roster::FailureDetection::Fast`] instead of the default (`Lan`).
        #[serde(default)]
        fast_failure_detection: bool,
        /// Seed re-announce interval (which also re-merges a healed partition), ms.
        #[serde(default)]
        announce_ms: Option<u64>,
        /// Anti-entropy digest interval, ms.
        #[serde(default)]
        anti_entropy_ms: Option<u64>,
        /// [`roster::ClusterConfig::busy_poll`], microseconds.
        #[serde(default)]
        busy_poll_us: Option<u64>,
        /// [`roster::ClusterConfig::read_poll`], microseconds.
        #[serde(default)]
        read_poll_us: Option<u64>,
    },
    /// Waits until the node is linked to `peers` other nodes; replies `t_ns`.
    WaitPeers {
        /// Peers to wait for.
        peers: usize,
    },
    /// `count` new processes register `{prefix}1..={prefix}{count}` one after the other
    /// and are kept alive; replies the time it took (`elapsed_ns`) and the p50 and p99 of
    /// the register calls (`call_p50_ns`, `call_p99_ns`).
    Register {
        /// Key prefix.
        prefix: String,
        /// Processes and keys.
        count: usize,
    },
    /// The first `count` live processes whose key starts with `prefix` unregister it (and
    /// stay alive); replies the time the loop took (`elapsed_ns`).
    Unregister {
        /// Key prefix.
        prefix: String,
        /// Keys to unregister.
        count: usize,
    },
    /// `count` new processes join `group` and are kept alive; replies `start_ns` (before the
    /// first join) and the time the joins took (`elapsed_ns`).
    Join {
        /// The group.
        group: String,
        /// Processes.
        count: usize,
    },
    /// Reads of `group` on this node: the median time to take its member list
    /// (`members_p50_ns`, over `calls` calls), the time to walk that list once
    /// (`iterate_ns`, `members` walked) and to dispatch a unit message to the group once
    /// (`dispatch_ns`, `dispatched` local recipients).
    GroupReads {
        /// The group.
        group: String,
        /// Times the list is taken.
        calls: usize,
    },
    /// Creates `count` processes that will register `{prefix}1..={prefix}{count}` at once
    /// on [`Request::Fire`] (creation not timed).
    Prepare {
        /// Key prefix.
        prefix: String,
        /// Processes and keys.
        count: usize,
    },
    /// Releases the prepared registrations as tasks started together, not before the
    /// wall-clock time `at_ns`; replies `released_ns` and `done_ns` (last completion).
    Fire {
        /// Wall-clock release time.
        at_ns: u64,
    },
    /// A fresh process registers `key`: replies `start_ns` (taken just before the call)
    /// and `call_ns` (the call's duration). The process is kept alive.
    RegisterOne {
        /// The key.
        key: String,
        /// Registers in a local-only scope instead: a write no peer is told about.
        #[serde(default)]
        local: bool,
    },
    /// Measures what waking a parked thread costs the waker: `iterations` times, a thread
    /// parks and, once it surely sleeps, is unparked; replies `unpark_ns_p50`.
    WakeCost {
        /// How many wake-ups to time.
        iterations: usize,
    },
    /// The CPU time the agent's live threads have used so far (`cpu_ns`, from
    /// `/proc/self/task/*/schedstat`; 0 where there is none).
    Cpu,
    /// Starts (`every_us` > 0) or stops (0) a background writer: one process that
    /// registers, then unregisters, the key `traffic` in the default scope, again and
    /// again, sleeping `every_us` between writes. Replies `writes` (on stop).
    Traffic {
        /// Microseconds between two writes; 0 stops the writer.
        every_us: u64,
    },
    /// Drops every process of the agent (each removes its names and memberships), then
    /// polls until `then` holds on this node; replies `start_ns`, `dropped_ns` (all
    /// dropped) and `seen_ns` (`then` held).
    KillAll {
        /// What the node must see after the kills.
        then: Cond,
    },
    /// Arms a watcher thread that polls `cond` on the node (spinning, yielding to other
    /// threads between polls) and records when it first holds.
    Watch {
        /// The condition.
        cond: Cond,
    },
    /// Waits for the armed watcher; replies `seen_ns` and `polls`.
    WatchResult,
    /// Counts of the node: `names`, `memberships`, `peers`.
    Counts,
    /// Bytes currently allocated by the agent process (`allocated`).
    Memory,
    /// Link statistics of the node (`bytes_sent`, `bytes_received`, ...).
    Stats,
    /// Closes every link of the node and refuses new ones for `ms` milliseconds.
    Sever {
        /// How long the links stay down.
        ms: u64,
    },
    /// Listens for a plain TCP connection on `127.0.0.1:0`; replies `addr`.
    RawListen,
    /// Connects to a [`Request::RawListen`]er (and waits until it accepted).
    RawConnect {
        /// The listener's address.
        addr: String,
    },
    /// Arms a thread spinning on the accepted connection for one 8-byte timestamp.
    RawArm {
        /// The thread blocks in the read instead (asleep in the kernel until the bytes
        /// arrive), as a reader parked in `epoll_wait` does.
        #[serde(default)]
        parked: bool,
    },
    /// Writes the current wall-clock time (8 bytes) on the connection; replies `start_ns`.
    RawSend {
        /// Hands the timestamp to a writer thread parked on a channel, which writes it: the
        /// hand-off of a write to another thread that Roster's flusher makes.
        #[serde(default)]
        handoff: bool,
    },
    /// Waits for the armed reader; replies `sent_ns` (the timestamp read) and `seen_ns`.
    RawResult,
    /// A fresh process registers `key` (if any) and joins every group of `groups`; it is
    /// kept alive. Replies its `pid` (as [`roster::Pid`] displays it: `<incarnation in
    /// hex.serial>`).
    Spawn {
        /// The name to register.
        #[serde(default)]
        key: Option<String>,
        /// The groups to join.
        #[serde(default)]
        groups: Vec<String>,
    },
    /// Where `key` is registered on this node: `pid` (or null), `registered_at`, `token`.
    Lookup {
        /// The key.
        key: String,
    },
    /// Whether process `pid` is alive on this node (`alive`) and, for a process the agent
    /// holds (`held`), why it exited (`exit_reason`: null while alive, else an object with
    /// `kind` ("normal", "panicked", "killed", "conflict", "node_down") and, for a
    /// conflict, `key` and `winner`).
    Status {
        /// The pid, as it displays.
        pid: String,
    },
    /// The node's whole view: `incarnation`, `peers` (`name`, `incarnation`, `addr`),
    /// `names` (key to pid), `groups` (group to its sorted member pids), `registry_count`
    /// and `membership_count`.
    State,
    /// Leaves the cluster and exits.
    Shutdown,
}

/// Reads a non-negative integer field of a reply.
pub(super) fn field(reply: &Value, name: &str) -> Result<u64, String> {
    reply
        .get(name)
        .and_then(Value::as_u64)
        .ok_or_else(|| format!("reply has no integer {name:?}: {reply}"))
}

/// Reads a string field of a reply.
pub(super) fn text_field(reply: &Value, name: &str) -> Result<String, String> {
    reply
        .get(name)
        .and_then(Value::as_str)
        .map(str::to_string)
        .ok_or_else(|| format!("reply has no string {name:?}: {reply}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_one_json_object_each() {
        let request = Request::Watch {
            cond: Cond::registry(3),
        };
        let line = serde_json::to_string(&request).unwrap();
        assert_eq!(
            line,
            r#"{"cmd":"watch","cond":{"kind":"registry","count":3,"present":[],"absent":[]}}"#
        );
        let back: Request =
            serde_json::from_str(r#"{"cmd":"watch","cond":{"kind":"registry","count":3}}"#)
                .unwrap();
        assert!(matches!(back, Request::Watch { cond } if cond == Cond::registry(3)));
    }

    #[test]
    fn a_start_without_the_optional_settings_keeps_the_defaults() {
        let start: Request =
            serde_json::from_str(r#"{"cmd":"start","name":"a","seeds":[],"watch":null}"#).unwrap();
        assert!(matches!(
            start,
            Request::Start {
                listen: None,
                fast_failure_detection: false,
                announce_ms: None,
                anti_entropy_ms: None,
                busy_poll_us: None,
                read_poll_us: None,
                ..
            }
        ));
    }

    #[test]
    fn wall_clock_round_trips() {
        let t = now_ns();
        assert_eq!(to_ns(from_ns(t)), t);
    }
}
