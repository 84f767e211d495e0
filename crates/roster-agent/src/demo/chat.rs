//! The demo's workload: chat presence. Users connect to one of the nodes (an HTTP session
//! of that agent), register as `user/NAME`, join `channel/NAME` groups, post messages to
//! channels (a dispatch to the group, from the node the user is on) and read their
//! mailboxes; now and then one logs off and another logs in. One worker thread per node
//! plays that node's users; the counters are shared with the timeline, which can hold the
//! writes ([`Shared::quiet`]) while it measures convergence.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};
use ureq::http::Method;

use crate::cli::client::{Client, encode};

/// The channels users join; every user is in the first.
pub const CHANNELS: [&str; 5] = [
    "channel/general",
    "channel/rust",
    "channel/erlang",
    "channel/ops",
    "channel/random",
];

const FIRST_NAMES: [&str; 12] = [
    "alice", "bruno", "chen", "dara", "emeka", "fatima", "goran", "hana", "ivan", "jun", "kofi",
    "lena",
];

/// A user's session lapses after this without a keepalive...
const SESSION_TTL: &str = "10s";
/// ...and is kept alive this often.
const KEEPALIVE_EVERY: Duration = Duration::from_secs(3);
/// The pause between two rounds of a worker.
const TICK: Duration = Duration::from_millis(25);
/// Mailboxes read per round (round robin over the node's users).
const DRAINS_PER_TICK: usize = 8;
/// The chance, per round at full strength, that a user logs off (another then logs in).
const LOGOFF_CHANCE: f64 = 0.04;
/// The chance, per round, that one of the node's users posts to a channel.
const POST_CHANCE: f64 = 0.6;

/// One node as the workload sees it: its name, its agent (none while it is down; a new
/// incarnation gets a new number) and what its users did.
pub struct Slot {
    /// The node's name.
    pub name: String,
    agent: Mutex<(u64, Option<Client>)>,
    /// Messages its users read from their mailboxes.
    pub delivered: AtomicU64,
    /// Its users online now.
    pub online: AtomicUsize,
}

impl Slot {
    /// The slot of node `name`, served by `client`.
    pub fn new(name: &str, client: Client) -> Self {
        Self {
            name: name.to_owned(),
            agent: Mutex::new((1, Some(client))),
            delivered: AtomicU64::new(0),
            online: AtomicUsize::new(0),
        }
    }

    /// The node is down: its users went with it.
    pub fn down(&self) {
        self.agent.lock().unwrap_or_else(PoisonError::into_inner).1 = None;
    }

    /// The node is up again, a new incarnation served by `client`: its users reconnect.
    pub fn up(&self, client: Client) {
        let mut agent = self.agent.lock().unwrap_or_else(PoisonError::into_inner);
        agent.0 += 1;
        agent.1 = Some(client);
    }

    fn current(&self) -> (u64, Option<Client>) {
        self.agent
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

/// What the workers share with the timeline.
#[derive(Default)]
pub struct Shared {
    /// The workers end.
    pub stop: AtomicBool,
    /// No registry writes (no log-ins, no log-offs) while set; messages go on.
    pub quiet: AtomicBool,
    /// Users logged in, all nodes.
    pub logins: AtomicU64,
    /// Users logged off (their session deleted), all nodes.
    pub logoffs: AtomicU64,
    /// Users lost with their node (killed).
    pub lost_with_node: AtomicU64,
    /// Messages posted to channels.
    pub posted: AtomicU64,
    /// Messages read from mailboxes, all nodes.
    pub delivered: AtomicU64,
    /// Calls an agent refused or did not answer; not those that were in flight to a node
    /// when it went down (the demo kills one on purpose: they went with its users).
    pub failed_calls: AtomicU64,
    /// Users online now.
    pub online: AtomicUsize,
    /// Channel memberships of the users online now.
    pub memberships: AtomicUsize,
    /// The current final round (see [`Chat::final_round`]) and the copies of it read.
    final_round: AtomicU64,
    final_received: AtomicUsize,
    next_user: AtomicU64,
}

/// The running workload.
pub struct Chat {
    /// The counters.
    pub shared: Arc<Shared>,
    /// The nodes, in order.
    pub slots: Vec<Arc<Slot>>,
    workers: Vec<JoinHandle<()>>,
}

impl Chat {
    /// Starts one worker per slot, each keeping `users_per_node` users online.
    pub fn start(slots: Vec<Arc<Slot>>, users_per_node: usize) -> Self {
        let shared = Arc::new(Shared::default());
        let workers = slots
            .iter()
            .enumerate()
            .map(|(i, slot)| {
                let mut worker = Worker {
                    slot: Arc::clone(slot),
                    shared: Arc::clone(&shared),
                    target: users_per_node,
                    rng: StdRng::seed_from_u64(0x5eed + i as u64),
                    users: Vec::new(),
                    incarnation: 0,
                    next_drain: 0,
                };
                std::thread::spawn(move || worker.run())
            })
            .collect();
        Self {
            shared,
            slots,
            workers,
        }
    }

    /// Holds (`true`) or resumes the registry writes.
    pub fn quiet(&self, quiet: bool) {
        self.shared.quiet.store(quiet, Ordering::SeqCst);
    }

    /// Posts one message marked as round `round` to every channel through `client`, and
    /// returns how many copies are owed: one per membership of the users online (call it
    /// while [quiet](Self::quiet), after the cluster converged).
    pub fn final_round(&self, client: &Client, round: u64) -> Result<usize, String> {
        self.shared.final_received.store(0, Ordering::SeqCst);
        self.shared.final_round.store(round, Ordering::SeqCst);
        for channel in CHANNELS {
            client
                .send(
                    Method::POST,
                    "/api/dispatch",
                    Some(&json!({ "key": channel, "message": { "final": round } })),
                )
                .map_err(|e| format!("dispatch to {channel}: {e}"))?;
        }
        Ok(self.shared.memberships.load(Ordering::SeqCst))
    }

    /// Copies of the current final round read so far.
    pub fn final_received(&self) -> usize {
        self.shared.final_received.load(Ordering::SeqCst)
    }

    /// Stops the workers and waits for them.
    pub fn stop(self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        for worker in self.workers {
            // A worker that panicked only stops counting.
            let _ = worker.join();
        }
    }
}

/// A user online: its session, name and channels.
struct User {
    session: String,
    channels: Vec<&'static str>,
    kept_alive: Instant,
}

/// The users of one node.
struct Worker {
    slot: Arc<Slot>,
    shared: Arc<Shared>,
    target: usize,
    rng: StdRng,
    users: Vec<User>,
    incarnation: u64,
    next_drain: usize,
}

impl Worker {
    /// Counts a call that failed, unless the node went down (or restarted) since this
    /// round began: such a call failed with the node, not on its own.
    fn call_failed(&self) {
        let (incarnation, client) = self.slot.current();
        if incarnation == self.incarnation && client.is_some() {
            self.shared.failed_calls.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn run(&mut self) {
        while !self.shared.stop.load(Ordering::SeqCst) {
            let (incarnation, client) = self.slot.current();
            if incarnation != self.incarnation || client.is_none() {
                // The node died (or restarted): its sessions, and so its users, died with it.
                self.lose_users();
                self.incarnation = incarnation;
            }
            if let Some(client) = client {
                self.round(&client);
            }
            std::thread::sleep(TICK);
        }
    }

    fn round(&mut self, client: &Client) {
        if !self.shared.quiet.load(Ordering::SeqCst) {
            if self.users.len() < self.target {
                self.log_in(client);
            } else if self.rng.random_bool(LOGOFF_CHANCE) {
                let leaving = self.rng.random_range(0..self.users.len());
                self.log_off(client, leaving);
            }
        }
        if !self.users.is_empty() && self.rng.random_bool(POST_CHANCE) {
            self.post(client);
        }
        self.drain(client);
        self.keep_alive(client);
    }

    fn call(&self, client: &Client, method: Method, path: &str, body: Option<Value>) -> bool {
        match client.send(method, path, body.as_ref()) {
            Ok(_) => true,
            Err(_) => {
                self.call_failed();
                false
            }
        }
    }

    fn log_in(&mut self, client: &Client) {
        let n = self.shared.next_user.fetch_add(1, Ordering::Relaxed);
        let name = format!("{}-{n}", FIRST_NAMES[n as usize % FIRST_NAMES.len()]);
        let Ok(session) = client.send(
            Method::POST,
            "/api/sessions",
            Some(&json!({ "ttl": SESSION_TTL, "name": name })),
        ) else {
            self.call_failed();
            return;
        };
        let Some(session) = session.get("id").and_then(Value::as_str).map(str::to_owned) else {
            return;
        };
        let meta = json!({ "meta": { "node": self.slot.name } });
        if !self.call(
            client,
            Method::PUT,
            &format!(
                "/api/sessions/{session}/names/user/{}",
                encode(&name, false)
            ),
            Some(meta.clone()),
        ) {
            self.call(
                client,
                Method::DELETE,
                &format!("/api/sessions/{session}"),
                None,
            );
            return;
        }
        let mut channels = vec![CHANNELS[0]];
        for channel in &CHANNELS[1..] {
            if self.rng.random_bool(0.4) {
                channels.push(channel);
            }
        }
        channels.retain(|channel| {
            self.call(
                client,
                Method::PUT,
                &format!("/api/sessions/{session}/groups/{channel}"),
                Some(meta.clone()),
            )
        });
        self.shared.logins.fetch_add(1, Ordering::Relaxed);
        self.shared.online.fetch_add(1, Ordering::SeqCst);
        self.slot.online.fetch_add(1, Ordering::SeqCst);
        self.shared
            .memberships
            .fetch_add(channels.len(), Ordering::SeqCst);
        self.users.push(User {
            session,
            channels,
            kept_alive: Instant::now(),
        });
    }

    fn log_off(&mut self, client: &Client, index: usize) {
        let user = self.users.swap_remove(index);
        self.read_mailbox(client, &user.session);
        self.call(
            client,
            Method::DELETE,
            &format!("/api/sessions/{}", user.session),
            None,
        );
        self.forget(&user);
        self.shared.logoffs.fetch_add(1, Ordering::Relaxed);
    }

    fn lose_users(&mut self) {
        for user in std::mem::take(&mut self.users) {
            self.forget(&user);
            self.shared.lost_with_node.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn forget(&self, user: &User) {
        self.shared.online.fetch_sub(1, Ordering::SeqCst);
        self.slot.online.fetch_sub(1, Ordering::SeqCst);
        self.shared
            .memberships
            .fetch_sub(user.channels.len(), Ordering::SeqCst);
    }

    fn post(&mut self, client: &Client) {
        let user = &self.users[self.rng.random_range(0..self.users.len())];
        let channel = user.channels[self.rng.random_range(0..user.channels.len())];
        let n = self.shared.posted.load(Ordering::Relaxed);
        let body = json!({ "key": channel, "message": { "channel": channel, "text": format!("message {n}") } });
        if self.call(client, Method::POST, "/api/dispatch", Some(body)) {
            self.shared.posted.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn drain(&mut self, client: &Client) {
        for _ in 0..DRAINS_PER_TICK.min(self.users.len()) {
            self.next_drain = (self.next_drain + 1) % self.users.len();
            let session = self.users[self.next_drain].session.clone();
            self.read_mailbox(client, &session);
        }
    }

    /// Reads what is in `session`'s mailbox now, counting it.
    fn read_mailbox(&self, client: &Client, session: &str) {
        let Ok(messages) = client.get(&format!("/api/sessions/{session}/messages")) else {
            self.call_failed();
            return;
        };
        let messages = messages.as_array().map_or(&[][..], Vec::as_slice);
        let round = self.shared.final_round.load(Ordering::SeqCst);
        let finals = messages
            .iter()
            .filter(|m| round != 0 && m["message"]["final"] == round)
            .count();
        self.shared
            .final_received
            .fetch_add(finals, Ordering::SeqCst);
        let read = messages.len() as u64;
        self.shared.delivered.fetch_add(read, Ordering::Relaxed);
        self.slot.delivered.fetch_add(read, Ordering::Relaxed);
    }

    fn keep_alive(&mut self, client: &Client) {
        let now = Instant::now();
        for i in 0..self.users.len() {
            if now.duration_since(self.users[i].kept_alive) >= KEEPALIVE_EVERY {
                let path = format!("/api/sessions/{}/keepalive", self.users[i].session);
                self.call(client, Method::PUT, &path, None);
                self.users[i].kept_alive = now;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A worker of a node served by `client`, in that node's first incarnation.
    fn worker(client: Client) -> Worker {
        Worker {
            slot: Arc::new(Slot::new("n", client)),
            shared: Arc::new(Shared::default()),
            target: 1,
            rng: StdRng::seed_from_u64(1),
            users: Vec::new(),
            incarnation: 1,
            next_drain: 0,
        }
    }

    /// A call that fails is counted while its node is up, not once the node went down
    /// (or restarted) during the round: that call went with the node.
    #[test]
    fn a_call_failed_with_its_node_down_is_not_counted() {
        // Nothing listens there: every call fails at once.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let client = Client::new(&format!("http://127.0.0.1:{port}"), None);
        let worker = worker(client.clone());
        worker.read_mailbox(&client, "s");
        assert_eq!(worker.shared.failed_calls.load(Ordering::Relaxed), 1);
        worker.slot.down();
        worker.read_mailbox(&client, "s");
        assert_eq!(worker.shared.failed_calls.load(Ordering::Relaxed), 1);
        worker.slot.up(client.clone());
        worker.read_mailbox(&client, "s");
        assert_eq!(
            worker.shared.failed_calls.load(Ordering::Relaxed),
            1,
            "a round begun before the restart"
        );
    }
}
