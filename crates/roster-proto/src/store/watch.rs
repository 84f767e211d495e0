//! The start of a watch: the entries matching its patterns, copied under the same shard
//! locks that writers hold while they change an entry and deliver its event, together with
//! the registration of its subscriber.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::ordered_keys::OrderedKeys;
use super::{ScopeStore, keys_with_prefix};
use crate::subscription::{Subscription, Watch};
use crate::vocab::entry::{MemberList, Registration};
use crate::vocab::error::RegistryError;
use crate::vocab::key::{Key, Pattern};

impl ScopeStore {
    /// The entries matching `patterns` and a subscription, with a queue of `capacity`
    /// events, to every later change of them (see [`Watch`]).
    ///
    /// Every writer changes an entry and delivers its event under the shard lock of its key.
    /// The copy and the subscriber's registration are made under those locks (only the
    /// shards of the keys when every pattern is exact, else all), so each change is on one
    /// side of them. Writers of the locked shards wait for the copy: O(matching entries).
    ///
    /// # Errors
    ///
    /// [`RegistryError::ScopeNotConnected`] after a disconnect.
    pub fn watch(&self, patterns: Vec<Pattern>, capacity: usize) -> Result<Watch, RegistryError> {
        let exact: Option<Vec<&str>> = patterns
            .iter()
            .map(|p| match p {
                Pattern::Exact(key) => Some(key.as_str()),
                Pattern::Prefix(_) | Pattern::All => None,
            })
            .collect();
        // No pattern locks every shard too: `close` must not slip between the check and
        // the registration.
        let _locks = match exact {
            Some(keys) if !keys.is_empty() => self.lock_keys(keys),
            _ => self.lock_every_shard(),
        };
        if !self.is_connected() {
            return Err(RegistryError::ScopeNotConnected {
                scope: self.name.clone(),
            });
        }
        let names = self.names.pin();
        let groups = self.groups.pin();
        let found_names = matching(&self.name_index, &patterns, |k| names.get(k).cloned());
        let found_groups = matching(&self.group_index, &patterns, |k| groups.get(k).cloned());
        let members = found_groups
            .into_iter()
            .flat_map(|(key, list): (Key, MemberList)| {
                list.iter()
                    .map(|m| (key.clone(), m.clone()))
                    .collect::<Vec<_>>()
            })
            .collect();
        let queue = self.subscribers.add(patterns, capacity);
        Ok(Watch {
            names: found_names
                .into_iter()
                .collect::<Vec<(Key, Registration)>>(),
            members,
            events: Subscription::new(queue, Arc::downgrade(&self.subscribers)),
        })
    }
}

/// The entries of one table whose keys match any of `patterns`, by key, each once.
fn matching<V>(
    index: &OrderedKeys,
    patterns: &[Pattern],
    get: impl Fn(&str) -> Option<V>,
) -> BTreeMap<Key, V> {
    let guard = scc::Guard::new();
    let mut found = BTreeMap::new();
    for pattern in patterns {
        let prefix = match pattern {
            Pattern::Exact(key) => {
                if let Some(value) = get(key) {
                    found.insert(key.clone(), value);
                }
                continue;
            }
            Pattern::Prefix(prefix) => prefix.as_str(),
            Pattern::All => "",
        };
        for key in keys_with_prefix(index, prefix, &guard) {
            if !found.contains_key(key.as_str())
                && let Some(value) = get(key.as_str())
            {
                found.insert(key.to_key(), value);
            }
        }
    }
    found
}
