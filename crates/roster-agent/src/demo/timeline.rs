//! The demo's timeline: the cluster starts, the chat runs, and part-way through the faults
//! come, each measured: demo-2 is cut off for 8 s while `user/bob` logs in on both sides
//! (the split-brain verdict, then the heal that leaves one owner), demo-3 is killed (its
//! users and memberships disappear everywhere) and restarted (its users come back). At the
//! end the writes stop, the cluster converges, a last message to every channel must reach
//! every member, and the summary is printed.
//!
//! While the timeline measures a convergence it holds the workload's registry writes
//! ([`Chat::quiet`]): a converged cluster is one whose nodes hold the same entries, which a
//! cluster under constant writes only ever shows by chance.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use ureq::http::Method;

use super::DemoArgs;
use super::chat::{Chat, Slot};
use super::cluster::{self, DemoAgent};
use super::observe::{self, EventCount, Snapshot, text};
use super::say::Narrator;
use super::summary::{NodeLine, Summary};
use crate::cli::client::{Client, ClientError};

/// The nodes of the demo.
const NAMES: [&str; 3] = ["demo-1", "demo-2", "demo-3"];
/// How long demo-2 stays cut off.
const ISOLATION: Duration = Duration::from_secs(8);
/// How long replication or failure detection may take before a phase gives up.
const SETTLE: Duration = Duration::from_secs(30);
/// How often the progress bar and the polls look.
const POLL: Duration = Duration::from_millis(25);

/// Why the demo stopped early.
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    /// The cluster could not start.
    #[error(transparent)]
    Cluster(#[from] cluster::ClusterError),
    /// An agent refused or failed a call.
    #[error("{agent}: {error}")]
    Api {
        /// The agent asked.
        agent: String,
        /// What it answered.
        error: ClientError,
    },
    /// A phase did not reach what it waits for.
    #[error("phase {phase} did not hold within {SETTLE:?}: {what}")]
    Check {
        /// The phase.
        phase: usize,
        /// What it waited for.
        what: String,
    },
    /// The data directory could not be made.
    #[error("cannot make the data directory: {0}")]
    DataDir(std::io::Error),
    /// Ctrl-C (or SIGTERM) before the end.
    #[error("interrupted: the cluster was stopped")]
    Interrupted,
}

/// The demo's agents: their processes (none while killed), clients and event counts.
#[derive(Default)]
struct Agents {
    processes: Vec<Option<DemoAgent>>,
    clients: Vec<Client>,
    events: Vec<Arc<EventCount>>,
}

impl Agents {
    fn add(&mut self, agent: DemoAgent) {
        let client = agent.client();
        let count = Arc::new(EventCount::default());
        observe::count_events(&client, Arc::clone(&count), SETTLE);
        self.events.push(count);
        self.clients.push(client);
        self.processes.push(Some(agent));
    }

    /// Whether every node of `nodes` sees every node of `nodes` online, and the others
    /// offline.
    fn all_online(&self, nodes: &[usize]) -> bool {
        nodes.iter().all(|&i| {
            let statuses = observe::statuses(&self.clients[i]);
            NAMES.iter().enumerate().all(|(j, name)| {
                let want = if nodes.contains(&j) {
                    "online"
                } else {
                    "offline"
                };
                statuses.get(*name).map(String::as_str) == Some(want)
            })
        })
    }

    /// Stops every agent (SIGTERM: each leaves the cluster).
    fn stop(&mut self) {
        for agent in self.processes.iter_mut().flatten() {
            agent.stop(Duration::from_secs(5));
        }
    }
}

/// The running demo: its agents, the workload and the narrator.
struct Demo<'a> {
    narrator: &'a Narrator,
    agents: &'a mut Agents,
    chat: Chat,
    users_per_node: usize,
    started: Instant,
    interrupted: &'a AtomicBool,
}

/// Runs the demo; see the [module docs](self). Returns whether every check held.
pub fn run(args: &DemoArgs) -> Result<bool, DemoError> {
    let (data, _cleanup) =
        cluster::data_dir(args.data_dir.as_deref()).map_err(DemoError::DataDir)?;
    let interrupted = Arc::new(AtomicBool::new(false));
    {
        let interrupted = Arc::clone(&interrupted);
        std::thread::spawn(move || {
            wait_for_ctrl_c();
            interrupted.store(true, Ordering::SeqCst);
        });
    }
    let length = args.length();
    let narrator = Narrator::new(length);
    let mut agents = Agents::default();
    let result =
        start_cluster(args, &data, &narrator, &mut agents, &interrupted).and_then(|seed| {
            let users_per_node = usize::from(args.users) / NAMES.len();
            let slots: Vec<Arc<Slot>> = NAMES
                .iter()
                .zip(&agents.clients)
                .map(|(name, client)| Arc::new(Slot::new(name, client.clone())))
                .collect();
            let mut demo = Demo {
                narrator: &narrator,
                agents: &mut agents,
                chat: Chat::start(slots, users_per_node),
                users_per_node,
                started: Instant::now(),
                interrupted: &interrupted,
            };
            let result = demo.play(args, &data, &seed, length);
            narrator.finish();
            demo.chat.stop();
            result
        });
    narrator.finish();
    agents.stop();
    result
}

/// Phase 1: the three agents, the first seeding the others; returns the seed's address.
fn start_cluster(
    args: &DemoArgs,
    data: &std::path::Path,
    narrator: &Narrator,
    agents: &mut Agents,
    interrupted: &AtomicBool,
) -> Result<String, DemoError> {
    narrator.step(1, "A cluster of three agents on loopback");
    let first = DemoAgent::start(
        NAMES[0],
        cluster::free_or_any(args.port),
        data,
        None,
        &NAMES,
    )?;
    narrator.line(&format!("dashboard: {}/  (open it now)", first.url));
    let seed = first.cluster.clone();
    agents.add(first);
    for name in &NAMES[1..] {
        let agent = DemoAgent::start(name, 0, data, Some(&seed), &NAMES)?;
        agents.add(agent);
    }
    for agent in agents.processes.iter().flatten() {
        narrator.line(&format!(
            "{}  http {}  cluster {}",
            agent.name, agent.url, agent.cluster
        ));
    }
    narrator.line(&format!("their logs and histories: {}", data.display()));
    poll(interrupted, || (), || agents.all_online(&[0, 1, 2]))
        .map_err(|e| e.failed(1, "every agent sees three nodes online"))?;
    narrator.ok("every agent sees demo-1, demo-2 and demo-3 online");
    Ok(seed)
}

impl Demo<'_> {
    fn play(
        &mut self,
        args: &DemoArgs,
        data: &std::path::Path,
        seed: &str,
        length: Duration,
    ) -> Result<bool, DemoError> {
        let users_per_node = self.users_per_node;
        let mut summary = Summary::default();
        self.narrator.step(
            2,
            &format!(
                "Chat: {} users log in, {users_per_node} on each node",
                users_per_node * NAMES.len()
            ),
        );
        self.narrator.line(
            "each user is a session of its node's agent: it registers user/NAME, joins\n\
             channel/general and maybe channel/rust, erlang, ops, random, posts to its\n\
             channels (a dispatch to the group) and reads its mailbox; now and then one\n\
             logs off (its session deleted) and another logs in",
        );
        self.started = Instant::now();
        self.narrator.start();
        let everyone = users_per_node * NAMES.len();
        self.settle(2, "every user is online", |d| {
            d.chat().shared.online.load(Ordering::SeqCst) >= everyone
        })?;
        self.narrator.ok(&format!(
            "{everyone} users online after {:.1} s",
            self.started.elapsed().as_secs_f64()
        ));

        self.wait_until(self.at(length, 0.2))?;
        self.partition(&mut summary)?;

        self.wait_until(self.at(length, 0.5))?;
        self.kill(&mut summary)?;

        self.wait_until(self.at(length, 0.7))?;
        self.restart(data, seed, &mut summary)?;

        self.wait_until(self.at(length, 1.0))?;
        self.end(&mut summary)?;

        self.narrator.finish();
        self.narrator.raw(&format!(
            "\nSummary: {:.0} s of chat on three nodes\n\n{}",
            self.started.elapsed().as_secs_f64(),
            summary.render()
        ));
        let held = summary.all_held();
        if args.duration.is_some() {
            self.narrator.raw("Done: stopping the cluster.");
        } else {
            self.chat().quiet(false);
            self.narrator.raw(&format!(
                "The cluster keeps running and the chat goes on: open {}/ for the dashboard, or try\n  \
                 cargo run --release -p roster-agent -- nodes --addr {}\n  \
                 cargo run --release -p roster-agent -- watch channel/ --addr {}\n\
                 Ctrl-C stops it.",
                self.url(0),
                self.url(0),
                self.url(1)
            ));
            while !self.interrupted.load(Ordering::SeqCst) {
                std::thread::sleep(Duration::from_millis(100));
            }
        }
        Ok(held)
    }

    /// Phase 3: demo-2 cut off, `user/bob` taken on both sides, the verdict, the heal.
    fn partition(&mut self, summary: &mut Summary) -> Result<(), DemoError> {
        self.narrator.step(
            3,
            "A partition: demo-2 cut off for 8 s, and user/bob logs in on both sides",
        );
        let bob_1 = self.session(0, "bob-on-demo-1")?;
        let bob_2 = self.session(1, "bob-on-demo-2")?;
        self.call(
            1,
            Method::POST,
            "/api/faults/isolate",
            Some(json!({ "for": "8s" })),
        )?;
        let heal_at = Instant::now() + ISOLATION;
        self.narrator.line(
            "POST demo-2 /api/faults/isolate {\"for\": \"8s\"}   (the agents run with --fault-injection)",
        );
        for (i, session) in [(0, &bob_1), (1, &bob_2)] {
            self.call(
                i,
                Method::PUT,
                &format!("/api/sessions/{session}/names/user/bob"),
                Some(json!({ "meta": { "side": NAMES[i] } })),
            )?;
        }
        self.narrator
            .ok("user/bob registered on demo-1 and, cut off, on demo-2: each side took it");
        let mut verdict = Value::Null;
        self.settle(3, "demo-2 suspects a partition", |d| {
            verdict = observe::partition(&d.agents.clients[1]).unwrap_or(Value::Null);
            verdict["partition_suspected"] == true
        })?;
        let told = format!(
            "{} (keeps writing: {})",
            text(&verdict, "reason"),
            text(&verdict, "keeps_writing")
        );
        self.narrator
            .line(&format!("split-brain check on demo-2: {told}"));
        summary.figure("verdict on demo-2, cut off", told);

        self.wait_until(heal_at - Duration::from_millis(200))?;
        self.chat().quiet(true);
        self.wait_until(heal_at)?;
        let converged = self.settle(
            3,
            "after the heal every node holds the same users and members, no partition suspected",
            |d| {
                d.converged(&[0, 1, 2]).is_some()
                    && (0..3).all(|i| {
                        observe::partition(&d.agents.clients[i])
                            .is_some_and(|p| p["partition_suspected"] == false)
                    })
            },
        )?;
        let owners: Vec<Option<String>> = (0..3)
            .map(|i| observe::owner_node(&self.agents.clients[i], "user/bob"))
            .collect();
        let one_owner = owners.iter().all(|o| o.is_some() && *o == owners[0]);
        let winner = owners[0].clone().unwrap_or_default();
        self.narrator.ok(&format!(
            "healed: every node holds the same users and channels {} after the heal",
            millis(converged)
        ));
        self.narrator.ok(&format!(
            "user/bob has one owner on every node, the registration on {winner} (the older one: the default conflict rule keeps the oldest)"
        ));
        summary.check(
            "converged after the partition healed",
            millis(converged),
            true,
        );
        summary.check(
            "user/bob taken on both sides, one owner after the heal",
            format!("kept on {winner} on every node"),
            one_owner,
        );
        for (i, session) in [(0, &bob_1), (1, &bob_2)] {
            self.call(i, Method::DELETE, &format!("/api/sessions/{session}"), None)?;
        }
        self.chat().quiet(false);
        Ok(())
    }

    /// Phase 4: demo-3 killed; its users and memberships gone everywhere.
    fn kill(&mut self, summary: &mut Summary) -> Result<(), DemoError> {
        self.narrator.step(
            4,
            "A node dies (kill -9): the others drop its users and memberships",
        );
        self.chat().quiet(true);
        let mut before = Snapshot::default();
        self.settle(4, "the three nodes converge before the kill", |d| {
            d.converged(&[0, 1, 2]).map(|s| before = s).is_some()
        })?;
        let (users, memberships) = before.of_node(NAMES[2]);
        self.chat().slots[2].down();
        if let Some(agent) = self.agents.processes[2].as_mut() {
            agent.kill();
        }
        let killed = Instant::now();
        self.narrator.line(&format!(
            "demo-3 held {users} users and {memberships} channel memberships; killed, it sends no leave"
        ));
        self.settle(
            4,
            "demo-1 and demo-2 see demo-3 offline and hold none of its entries",
            |d| {
                d.all_online(&[0, 1]) && {
                    d.converged(&[0, 1])
                        .is_some_and(|s| s.of_node(NAMES[2]) == (0, 0))
                }
            },
        )?;
        let gone = killed.elapsed();
        self.narrator.ok(&format!(
            "demo-3 is offline on demo-1 and demo-2, and its {users} users and {memberships} memberships are gone from both, {} after the kill (failure detection)",
            millis(gone)
        ));
        summary.check(
            "demo-3 killed: its entries gone everywhere",
            format!(
                "{users} users, {memberships} memberships, gone {} after the kill",
                millis(gone)
            ),
            true,
        );
        self.chat().quiet(false);
        Ok(())
    }

    /// Phase 5: demo-3 restarts; the cluster is whole again and its users come back.
    fn restart(
        &mut self,
        data: &std::path::Path,
        seed: &str,
        summary: &mut Summary,
    ) -> Result<(), DemoError> {
        self.narrator.step(
            5,
            "demo-3 restarts: a new incarnation joins, its users come back",
        );
        self.chat().quiet(true);
        let restarted = Instant::now();
        let agent = DemoAgent::start(NAMES[2], 0, data, Some(seed), &NAMES)?;
        let client = agent.client();
        observe::count_events(&client, Arc::clone(&self.agents.events[2]), SETTLE);
        self.agents.clients[2] = client.clone();
        self.agents.processes[2] = Some(agent);
        self.settle(
            5,
            "every agent sees three nodes online and holds the same entries",
            |d| d.all_online(&[0, 1, 2]) && d.converged(&[0, 1, 2]).is_some(),
        )?;
        let whole = restarted.elapsed();
        self.narrator.ok(&format!(
            "demo-1, demo-2 and demo-3 online everywhere and in agreement {} after the restart began",
            millis(whole)
        ));
        summary.check(
            "demo-3 restarted: whole again",
            format!("{} from the restart to agreement", millis(whole)),
            true,
        );
        self.chat().slots[2].up(client);
        self.chat().quiet(false);
        let target = self.users_per_node;
        let back = self.settle(5, "demo-3's users log in again", |d| {
            d.chat().slots[2].online.load(Ordering::SeqCst) >= target
        })?;
        self.narrator.ok(&format!(
            "its {target} users logged in again on demo-3 within {}",
            millis(back)
        ));
        Ok(())
    }

    /// Phase 6: the writes stop, the cluster converges, a last message reaches everyone.
    fn end(&mut self, summary: &mut Summary) -> Result<(), DemoError> {
        self.narrator.step(
            6,
            "The end: log-ins and log-offs stop, the cluster converges",
        );
        self.chat().quiet(true);
        let stopped = Instant::now();
        let mut last = Snapshot::default();
        self.settle(6, "every node holds the same users and members", |d| {
            d.converged(&[0, 1, 2]).map(|s| last = s).is_some()
        })?;
        let converged = stopped.elapsed();
        self.narrator.ok(&format!(
            "{} users and {} channel memberships, the same on every node, {} after the last write",
            last.users.len(),
            last.memberships(),
            millis(converged)
        ));
        summary.check(
            "converged at the end",
            format!(
                "{} users, {} memberships on every node, {} after the last write",
                last.users.len(),
                last.memberships(),
                millis(converged)
            ),
            true,
        );
        let no_stale = last.users.values().all(|(_, node)| !node.is_empty())
            && last.users.len() == self.chat().shared.online.load(Ordering::SeqCst);
        summary.check(
            "no entry without a live user",
            format!(
                "{} names for {} users online",
                last.users.len(),
                self.chat().shared.online.load(Ordering::SeqCst)
            ),
            no_stale,
        );

        let owed = self
            .chat()
            .final_round(&self.agents.clients[0], 1)
            .map_err(|what| DemoError::Check { phase: 6, what })?;
        self.narrator.line(&format!(
            "POST demo-1 /api/dispatch: one last message to each channel, {owed} copies owed"
        ));
        let reached_all = self
            .settle(6, "every member reads the last message", |d| {
                d.chat().final_received() >= owed
            })
            .is_ok();
        let reached = self.chat().final_received();
        if reached_all {
            self.narrator
                .ok(&format!("all {owed} members read it, on their own nodes"));
        }
        summary.check(
            "last message to every channel",
            format!("{reached} of {owed} members read it"),
            reached == owed,
        );

        let shared = &self.chat().shared;
        summary.figure(
            "log-ins, log-offs",
            format!(
                "{} logged in, {} logged off, {} lost with demo-3",
                shared.logins.load(Ordering::Relaxed),
                shared.logoffs.load(Ordering::Relaxed),
                shared.lost_with_node.load(Ordering::Relaxed)
            ),
        );
        summary.figure(
            "messages",
            format!(
                "{} posted to channels, {} delivered to members' mailboxes",
                shared.posted.load(Ordering::Relaxed),
                shared.delivered.load(Ordering::Relaxed)
            ),
        );
        let told: Vec<String> = NAMES
            .iter()
            .zip(&self.agents.events)
            .map(|(name, count)| {
                let rule = count
                    .last_rule
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .clone();
                let n = count.conflicts.load(Ordering::Relaxed);
                if n == 0 {
                    format!("{name} 0")
                } else {
                    format!("{name} {n} ({rule})")
                }
            })
            .collect();
        // The nodes of the two claims must tell of it; a third node tells of it only if
        // the losing claim reached it before it lost.
        let both_sides_told = self.agents.events[..2]
            .iter()
            .all(|count| count.conflicts.load(Ordering::Relaxed) >= 1);
        summary.check(
            "demo-1 and demo-2 told of user/bob's conflict (conflict_resolved)",
            told.join(", "),
            both_sides_told,
        );
        summary.figure(
            "calls refused or unanswered",
            shared.failed_calls.load(Ordering::Relaxed).to_string(),
        );
        summary.nodes = NAMES
            .iter()
            .enumerate()
            .map(|(i, name)| {
                let (users, memberships) = last.of_node(name);
                NodeLine {
                    name: (*name).to_owned(),
                    users,
                    memberships,
                    events: self.agents.events[i].events.load(Ordering::Relaxed),
                    delivered: self.chat().slots[i].delivered.load(Ordering::Relaxed),
                }
            })
            .collect();
        Ok(())
    }

    fn chat(&self) -> &Chat {
        &self.chat
    }

    fn client(&self, node: usize) -> &Client {
        &self.agents.clients[node]
    }

    /// The HTTP address of `node`'s agent.
    fn url(&self, node: usize) -> String {
        self.agents.processes[node]
            .as_ref()
            .map(|agent| agent.url.clone())
            .unwrap_or_default()
    }

    /// The instant `fraction` of the way through the workload.
    fn at(&self, length: Duration, fraction: f64) -> Instant {
        self.started + length.mul_f64(fraction)
    }

    fn call(
        &self,
        node: usize,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value, DemoError> {
        self.agents.clients[node]
            .send(method, path, body.as_ref())
            .map_err(|error| DemoError::Api {
                agent: NAMES[node].to_owned(),
                error,
            })
    }

    /// A new session of a minute on `node`, named `name`; returns its id.
    fn session(&self, node: usize, name: &str) -> Result<String, DemoError> {
        let session = self.call(
            node,
            Method::POST,
            "/api/sessions",
            Some(json!({ "ttl": "60s", "name": name })),
        )?;
        Ok(text(&session, "id"))
    }

    fn all_online(&self, nodes: &[usize]) -> bool {
        self.agents.all_online(nodes)
    }

    /// What the nodes of `nodes` hold, if they all hold the same.
    fn converged(&self, nodes: &[usize]) -> Option<Snapshot> {
        let mut snapshots = nodes.iter().map(|&i| Snapshot::read(self.client(i)).ok());
        let first = snapshots.next()??;
        for other in snapshots {
            if other? != first {
                return None;
            }
        }
        Some(first)
    }

    /// Polls `check` (and moves the progress bar) until it holds; returns how long that
    /// took, or fails phase `phase` saying `what` after [`SETTLE`].
    fn settle(
        &self,
        phase: usize,
        what: &str,
        mut check: impl FnMut(&Self) -> bool,
    ) -> Result<Duration, DemoError> {
        poll(self.interrupted, || self.progress(), || check(self))
            .map_err(|e| e.failed(phase, what))
    }

    /// Lets the chat run until `at`, moving the progress bar.
    fn wait_until(&self, at: Instant) -> Result<(), DemoError> {
        while Instant::now() < at {
            if self.interrupted.load(Ordering::SeqCst) {
                return Err(DemoError::Interrupted);
            }
            self.progress();
            std::thread::sleep(POLL.min(at.saturating_duration_since(Instant::now())));
        }
        Ok(())
    }

    fn progress(&self) {
        let shared = &self.chat.shared;
        let events: u64 = self
            .agents
            .events
            .iter()
            .map(|e| e.events.load(Ordering::Relaxed))
            .sum();
        self.narrator.progress(
            self.started.elapsed(),
            format!(
                "{} users online · {} posted · {} delivered · {events} events",
                shared.online.load(Ordering::Relaxed),
                shared.posted.load(Ordering::Relaxed),
                shared.delivered.load(Ordering::Relaxed),
            ),
        );
    }
}

/// Why a [`poll`] ended without its check holding.
enum PollEnd {
    TimedOut,
    Interrupted,
}

impl PollEnd {
    fn failed(self, phase: usize, what: &str) -> DemoError {
        match self {
            Self::TimedOut => DemoError::Check {
                phase,
                what: what.to_owned(),
            },
            Self::Interrupted => DemoError::Interrupted,
        }
    }
}

/// Polls `check` every [`POLL`], calling `tick` in between, until it holds (returns how
/// long that took), [`SETTLE`] passes, or the demo is interrupted.
fn poll(
    interrupted: &AtomicBool,
    tick: impl Fn(),
    mut check: impl FnMut() -> bool,
) -> Result<Duration, PollEnd> {
    let began = Instant::now();
    while !check() {
        if interrupted.load(Ordering::SeqCst) {
            return Err(PollEnd::Interrupted);
        }
        if began.elapsed() >= SETTLE {
            return Err(PollEnd::TimedOut);
        }
        tick();
        std::thread::sleep(POLL);
    }
    Ok(began.elapsed())
}

fn millis(duration: Duration) -> String {
    if duration < Duration::from_secs(10) {
        format!("{} ms", duration.as_millis())
    } else {
        format!("{:.1} s", duration.as_secs_f64())
    }
}

/// Blocks until SIGINT or SIGTERM.
fn wait_for_ctrl_c() {
    let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    else {
        return;
    };
    runtime.block_on(crate::agent::shutdown_signal());
}
