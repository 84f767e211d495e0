//! The agents' HTTP API as the regression tests call it: one client, each agent's base URL.
#![allow(dead_code, reason = "each test file uses the part it needs")]

use std::time::Duration;

use roster_chaos::cluster::{Cluster, TOKEN};
use roster_chaos::http::Client;
use serde_json::json;

/// A client of every agent of a cluster.
pub(crate) struct Api {
    /// The client (the write token, the timeout given).
    pub(crate) client: Client,
    bases: Vec<String>,
}

impl Api {
    /// A client of `cluster`'s agents whose requests time out after `timeout`.
    pub(crate) fn new(cluster: &Cluster, timeout: Duration) -> Self {
        Self {
            client: Client::new(TOKEN, timeout),
            bases: (0..cluster.len()).map(|i| cluster.url(i, "")).collect(),
        }
    }

    /// The URL of `path` on agent `node`.
    pub(crate) fn url(&self, node: usize, path: &str) -> String {
        format!("{}{path}", self.bases[node])
    }

    /// A new session (TTL 300 s) on agent `node`; its id.
    pub(crate) fn session(&self, node: usize) -> String {
        let reply = self
            .client
            .post(&self.url(node, "/api/sessions"), &json!({"ttl": "300s"}));
        let body = reply.ok().expect("session created");
        body["id"].as_str().expect("id").to_owned()
    }

    /// `PUT path` on agent `node`, which must answer 2xx.
    pub(crate) fn put_ok(&self, node: usize, path: &str) {
        let reply = self.client.put(&self.url(node, path), None);
        assert!(reply.ok().is_some(), "PUT {path}: {}", reply.summary());
    }

    /// The owner of name `key` as agent `node` shows it, with its fencing token.
    pub(crate) fn holder(&self, node: usize, key: &str) -> Option<(String, u64)> {
        let reply = self
            .client
            .get(&self.url(node, &format!("/api/registry/{key}")));
        let body = reply.ok()?;
        Some((body["pid"].as_str()?.to_owned(), body["token"].as_u64()?))
    }
}
