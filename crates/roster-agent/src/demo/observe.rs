//! What the demo reads back from the agents: every user and channel membership a node
//! holds, the node statuses it gives, its split-brain verdict, and the event streams it
//! serves (counted).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde_json::Value;

use crate::cli::client::{Client, ClientError, encode};

/// A text field of a JSON object (numbers as their text), empty when absent.
pub fn text(value: &Value, field: &str) -> String {
    value
        .get(field)
        .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_owned))
        .unwrap_or_default()
}

/// An entry as a node holds it: the process and its node.
pub type Holder = (String, String);

/// The users and channel members one node holds.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Snapshot {
    /// `user/NAME` to its owner.
    pub users: BTreeMap<String, Holder>,
    /// `channel/NAME` to its members.
    pub channels: BTreeMap<String, BTreeSet<Holder>>,
}

impl Snapshot {
    /// Reads every `user/` name and `channel/` member `client`'s node holds.
    pub fn read(client: &Client) -> Result<Self, ClientError> {
        let mut snapshot = Self::default();
        let mut cursor: Option<String> = None;
        loop {
            let mut path = "/api/registry?prefix=user/&limit=1000".to_owned();
            if let Some(cursor) = &cursor {
                path.push_str(&format!("&cursor={}", encode(cursor, false)));
            }
            let page = client.get(&path)?;
            for item in page["items"].as_array().into_iter().flatten() {
                snapshot
                    .users
                    .insert(text(item, "key"), (text(item, "pid"), text(item, "node")));
            }
            cursor = page["next_cursor"].as_str().map(str::to_owned);
            if cursor.is_none() {
                break;
            }
        }
        let groups = client.get("/api/groups?prefix=channel/&limit=1000")?;
        for group in groups["items"].as_array().into_iter().flatten() {
            let key = text(group, "key");
            let members = client.get(&format!("/api/groups/{}?limit=1000", encode(&key, true)))?;
            let holders = members["members"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|m| (text(m, "pid"), text(m, "node")))
                .collect();
            snapshot.channels.insert(key, holders);
        }
        Ok(snapshot)
    }

    /// Channel memberships, all channels.
    pub fn memberships(&self) -> usize {
        self.channels.values().map(BTreeSet::len).sum()
    }

    /// Users and memberships held by processes of `node`.
    pub fn of_node(&self, node: &str) -> (usize, usize) {
        let users = self.users.values().filter(|(_, n)| n == node).count();
        let members = self
            .channels
            .values()
            .flat_map(|members| members.iter())
            .filter(|(_, n)| n == node)
            .count();
        (users, members)
    }
}

/// The node statuses `client`'s node gives, by name.
pub fn statuses(client: &Client) -> BTreeMap<String, String> {
    client
        .get("/api/nodes")
        .ok()
        .and_then(|v| v.as_array().cloned())
        .unwrap_or_default()
        .iter()
        .map(|n| (text(n, "name"), text(n, "status")))
        .collect()
}

/// Whether `client`'s node suspects a partition, and its verdict.
pub fn partition(client: &Client) -> Option<Value> {
    client.get("/api/partition").ok()
}

/// The owner's node of `key` as `client`'s node sees it.
pub fn owner_node(client: &Client, key: &str) -> Option<String> {
    client
        .get(&format!("/api/registry/{}", encode(key, true)))
        .ok()
        .map(|name| text(&name, "node"))
}

/// Registry events one node served, and the name conflicts it told of.
#[derive(Debug, Default)]
pub struct EventCount {
    /// Every registry event.
    pub events: AtomicU64,
    /// `conflict_resolved` events: each node tells of each conflict it learns of once.
    pub conflicts: AtomicU64,
    /// The rule that decided the last of them (`keep_oldest`, ...).
    pub last_rule: std::sync::Mutex<String>,
}

/// Counts the registry events `client`'s node serves on `/api/events` into `count`, in a
/// thread, until the node goes. Returns once the stream is open (or could not be, within
/// `deadline`).
pub fn count_events(client: &Client, count: Arc<EventCount>, deadline: Duration) {
    let (open_tx, open) = std::sync::mpsc::channel();
    let client = client.clone();
    std::thread::spawn(move || {
        let connected = move || {
            let _ = open_tx.send(());
        };
        // The stream ends with its node; what it counted stays counted.
        let _ = client.events("/api/events", connected, |_, data| {
            count.events.fetch_add(1, Ordering::Relaxed);
            let event: Value = serde_json::from_str(data).unwrap_or(Value::Null);
            if event["kind"] == "conflict_resolved" {
                count.conflicts.fetch_add(1, Ordering::Relaxed);
                *count
                    .last_rule
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner) = text(&event, "rule");
            }
            true
        });
    });
    let _ = open.recv_timeout(deadline);
}
