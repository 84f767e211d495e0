//! What the agents show, read over HTTP: every name (owner and fencing token) and every
//! group's members of one agent, and the `name_conflict` rows of its audit log.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use crate::http::Client;

/// What one node shows.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct View {
    /// Name -> (owner pid, fencing token).
    pub names: BTreeMap<String, (String, u64)>,
    /// Group -> member pids.
    pub groups: BTreeMap<String, BTreeSet<String>>,
}

/// Reads every page of names and every group's members from node `i`.
pub fn read_view(client: &Client, base: &str) -> Option<View> {
    let mut view = View::default();
    each_page(client, &format!("{base}/api/registry?limit=1000"), |body| {
        for item in body.get("items")?.as_array()? {
            let key = item.get("key")?.as_str()?.to_owned();
            let pid = item.get("pid")?.as_str()?.to_owned();
            let token = item.get("token")?.as_u64()?;
            view.names.insert(key, (pid, token));
        }
        Some(())
    })?;
    let reply = client.get(&format!("{base}/api/groups?limit=1000"));
    let keys: Vec<String> = reply
        .ok()?
        .get("items")?
        .as_array()?
        .iter()
        .filter_map(|g| g.get("key").and_then(Value::as_str).map(str::to_owned))
        .collect();
    for key in keys {
        let reply = client.get(&format!("{base}/api/groups/{key}?limit=10000"));
        match reply.status() {
            Some(404) => continue,
            Some(200) => {}
            _ => return None,
        }
        let members: BTreeSet<String> = reply
            .ok()?
            .get("members")?
            .as_array()?
            .iter()
            .filter_map(|m| m.get("pid").and_then(Value::as_str).map(str::to_owned))
            .collect();
        if !members.is_empty() {
            view.groups.insert(key, members);
        }
    }
    Some(view)
}

/// A name conflict from an audit log.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Conflict {
    /// When, ms since the epoch.
    pub at_ms: u64,
    /// The name.
    pub key: String,
    /// Who kept it.
    pub winner: String,
    /// Who lost it.
    pub loser: String,
}

/// Every `name_conflict` row of node `base`'s audit log.
pub fn read_conflicts(client: &Client, base: &str) -> Vec<Conflict> {
    let mut out = Vec::new();
    // What a failed page leaves out is left out: the conflicts read so far are kept.
    let _ = each_page(
        client,
        &format!("{base}/api/audit?kind=name_conflict&limit=1000"),
        |body| {
            for item in body
                .get("items")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                let text = |k: &str| item.get(k).and_then(Value::as_str).map(str::to_owned);
                if let (Some(at_ms), Some(key), Some(winner), Some(loser)) = (
                    item.get("at_ms").and_then(Value::as_u64),
                    text("key"),
                    text("winner"),
                    text("loser"),
                ) {
                    out.push(Conflict {
                        at_ms,
                        key,
                        winner,
                        loser,
                    });
                }
            }
            Some(())
        },
    );
    out
}

/// Fetches `first` and the pages after it (following `next_cursor`, at most 1,000 pages)
/// and hands each page's body to `page`; `None` as soon as a request fails or `page`
/// gives `None`.
fn each_page(
    client: &Client,
    first: &str,
    mut page: impl FnMut(&Value) -> Option<()>,
) -> Option<()> {
    let mut url = first.to_owned();
    for _ in 0..1000 {
        let reply = client.get(&url);
        let body = reply.ok()?;
        page(body)?;
        let Some(cursor) = body.get("next_cursor").and_then(Value::as_str) else {
            return Some(());
        };
        url = format!("{first}&cursor={cursor}");
    }
    Some(())
}
