//! The external nodes this node keeps: workers that are not Roster members and report to
//! it (over HTTP, a websocket, a queue...). This node owns their records as it owns its
//! own: it registers them, takes their heartbeats, marks them offline when the heartbeats
//! stop (after `HealthSettings::external_timeout`) and publishes records and heartbeats
//! to its peers through the replication core. Peers take them from this node only (the
//! record's keeper) and mark them offline when this node goes offline.

use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard};

use super::NodeShared;
use crate::clock::saturating_millis;
use crate::nodes::{ExternalError, ExternalNode, Heartbeat, Keeper, NodeRecord, NodeStatus};
use crate::pid::Incarnation;
use crate::replication::host::ReplicaHost;

/// The records of the external nodes this node keeps, by name.
#[derive(Default)]
pub(crate) struct Externals {
    kept: Mutex<BTreeMap<String, NodeRecord>>,
}

impl Externals {
    fn lock(&self) -> MutexGuard<'_, BTreeMap<String, NodeRecord>> {
        // No critical section leaves the map half-written before a panic could occur.
        self.kept.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl NodeShared {
    /// Registers the external node `name` kept by this node, or updates its description
    /// (bringing it back online if it was offline); returns its record.
    pub(crate) fn ensure_external(
        &self,
        name: &str,
        node: &ExternalNode,
    ) -> Result<NodeRecord, ExternalError> {
        if name.is_empty() {
            return Err(ExternalError::Invalid("the name is empty".to_owned()));
        }
        let mut kept = self.externals.lock();
        let now_ms = self.stores.now_ms();
        let record = match kept.get(name) {
            Some(old) => {
                let mut record = old.clone();
                node.describe(&mut record);
                if record.status == NodeStatus::Offline {
                    set_status(&mut record, NodeStatus::Online, "registered again", now_ms);
                }
                if record == *old {
                    return self.still_ours(&mut kept, record);
                }
                record.revision += 1;
                record
            }
            None => {
                self.name_is_free(name)?;
                let mut record = NodeRecord::new(name, Incarnation::new(rand::random()), now_ms);
                record.status_reason = "registered".to_owned();
                record.keeper = Some(Keeper {
                    name: self.name.clone(),
                    incarnation: Incarnation::new(self.incarnation),
                });
                node.describe(&mut record);
                record
            }
        };
        record.validate().map_err(ExternalError::Invalid)?;
        kept.insert(name.to_owned(), record.clone());
        self.publish_kept(record.clone());
        self.still_ours(&mut kept, record)
    }

    /// A heartbeat of the external node `name`, which this node keeps: published to every
    /// peer; an offline node comes back online with it.
    pub(crate) fn external_heartbeat(
        &self,
        name: &str,
        heartbeat: Heartbeat,
    ) -> Result<(), ExternalError> {
        heartbeat.validate().map_err(ExternalError::Invalid)?;
        let mut kept = self.externals.lock();
        let record = kept
            .get(name)
            .cloned()
            .ok_or_else(|| ExternalError::NotKeptHere(name.to_owned()))?;
        let mut record = self.still_ours(&mut kept, record)?;
        if record.status == NodeStatus::Offline {
            set_status(
                &mut record,
                NodeStatus::Online,
                "heartbeat received",
                self.stores.now_ms(),
            );
            record.revision += 1;
            kept.insert(name.to_owned(), record.clone());
            self.publish_kept(record.clone());
        }
        match self.cluster() {
            Some(cluster) => cluster.with_core(|core, host| {
                core.publish_kept_heartbeat(host, record.incarnation, heartbeat);
            }),
            None => {
                self.stores.nodes.apply_kept_heartbeat(
                    self.incarnation,
                    record.incarnation,
                    heartbeat,
                    self.stores.now_ms(),
                );
            }
        }
        Ok(())
    }

    /// Sets the status of the external node `name`, which this node keeps; `Offline`
    /// means it left on purpose.
    pub(crate) fn set_external_status(
        &self,
        name: &str,
        status: NodeStatus,
        reason: &str,
    ) -> Result<(), ExternalError> {
        if status == NodeStatus::Unreachable {
            return Err(ExternalError::Unsettable(status));
        }
        let mut kept = self.externals.lock();
        let record = kept
            .get(name)
            .cloned()
            .ok_or_else(|| ExternalError::NotKeptHere(name.to_owned()))?;
        let mut record = self.still_ours(&mut kept, record)?;
        if record.status == status && record.status_reason == reason {
            return Ok(());
        }
        set_status(&mut record, status, reason, self.stores.now_ms());
        record.left = status == NodeStatus::Offline;
        record.revision += 1;
        record.validate().map_err(ExternalError::Invalid)?;
        kept.insert(name.to_owned(), record.clone());
        self.publish_kept(record);
        Ok(())
    }

    /// Marks offline the kept nodes silent for the external timeout, and stops keeping
    /// those offline for longer than the retention (run every heartbeat interval).
    pub(crate) fn check_externals(&self) {
        let health = &self.monitor.health;
        let timeout_ms = saturating_millis(health.external_timeout);
        let retention_ms = saturating_millis(health.offline_retention);
        let now_ms = self.stores.now_ms();
        let mut kept = self.externals.lock();
        let mut gone = Vec::new();
        let mut silent = Vec::new();
        for (name, record) in kept.iter() {
            if record.status == NodeStatus::Offline {
                if now_ms.saturating_sub(record.status_changed_ms) >= retention_ms {
                    gone.push(name.clone());
                }
                continue;
            }
            let last_seen = self
                .stores
                .nodes
                .get(name)
                .filter(|e| e.record.incarnation == record.incarnation)
                .map_or(record.status_changed_ms, |e| e.last_seen_ms);
            if now_ms.saturating_sub(last_seen) >= timeout_ms {
                silent.push(name.clone());
            }
        }
        for name in silent {
            let Some(record) = kept.get_mut(&name) else {
                continue;
            };
            let reason = format!("no heartbeat for {:?}", health.external_timeout);
            set_status(record, NodeStatus::Offline, &reason, now_ms);
            record.left = false;
            record.revision += 1;
            if self.logs_info() {
                tracing::info!(node = %name, "external node offline: {reason}");
            }
            self.publish_kept(record.clone());
        }
        for name in gone {
            kept.remove(&name);
            if let Some(cluster) = self.cluster() {
                cluster.with_core(|core, _| core.drop_kept(&name));
            }
        }
    }

    /// Refuses a name a live member or another keeper's live external node holds.
    fn name_is_free(&self, name: &str) -> Result<(), ExternalError> {
        match self.stores.nodes.get(name) {
            Some(entry) if entry.offline.is_none() => Err(match entry.record.keeper {
                None => ExternalError::IsMember(name.to_owned()),
                Some(keeper) => ExternalError::KeptElsewhere {
                    name: name.to_owned(),
                    keeper: keeper.name,
                },
            }),
            _ => Ok(()),
        }
    }

    /// `record`, if the registry still holds it as the node of that name; else it lost the
    /// name (to a member that joined, or to another keeper's older external node of the
    /// same name after a partition healed): this node stops keeping it and says who has
    /// the name.
    fn still_ours(
        &self,
        kept: &mut BTreeMap<String, NodeRecord>,
        record: NodeRecord,
    ) -> Result<NodeRecord, ExternalError> {
        let Some(entry) = self.stores.nodes.get(&record.name) else {
            return Ok(record);
        };
        if entry.record.incarnation == record.incarnation {
            return Ok(record);
        }
        kept.remove(&record.name);
        if let Some(cluster) = self.cluster() {
            cluster.with_core(|core, _| core.drop_kept(&record.name));
        }
        Err(match entry.record.keeper {
            None => ExternalError::IsMember(record.name),
            Some(keeper) => ExternalError::KeptElsewhere {
                name: record.name,
                keeper: keeper.name,
            },
        })
    }

    /// Publishes the record of a kept node: to the peers through the replication core when
    /// clustered, and into this node's registry.
    fn publish_kept(&self, record: NodeRecord) {
        match self.cluster() {
            Some(cluster) => cluster.with_core(|core, host| core.set_kept_record(host, record)),
            None => {
                self.stores.nodes.apply_record(record, self.stores.now_ms());
            }
        }
    }
}

fn set_status(record: &mut NodeRecord, status: NodeStatus, reason: &str, now_ms: u64) {
    record.status = status;
    record.status_reason = reason.to_owned();
    record.status_changed_ms = now_ms;
}
