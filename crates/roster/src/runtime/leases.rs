//! The one timer of the node's scope leases: it sleeps until the earliest lease is due,
//! lets each due lease renew or expire (the store decides), and disconnects the scopes
//! whose lease expired.

use std::sync::{Arc, Weak};

use tokio::sync::Notify;

use super::NodeShared;

impl NodeShared {
    /// Starts the lease timer if needed, and wakes it: a lease was taken or replaced.
    pub(crate) fn lease_timer(self: &Arc<Self>) {
        let wake = self.lease_timer.get_or_init(|| {
            let wake = Arc::new(Notify::new());
            self.runtime
                .spawn(lease_loop(Arc::downgrade(self), wake.clone()));
            wake
        });
        wake.notify_one();
    }
}

async fn lease_loop(node: Weak<NodeShared>, wake: Arc<Notify>) {
    loop {
        let next = {
            let Some(node) = node.upgrade() else { return };
            node.stores
                .all()
                .iter()
                .filter(|s| s.is_connected())
                .filter_map(|s| s.lease_due())
                .min()
        };
        match next {
            Some(due) => {
                tokio::select! {
                    () = tokio::time::sleep_until(due.into()) => {}
                    () = wake.notified() => continue,
                }
            }
            None => wake.notified().await,
        }
        let Some(node) = node.upgrade() else { return };
        let now = tokio::time::Instant::now().into_std();
        let expired: Vec<_> = node
            .stores
            .all()
            .into_iter()
            .filter(|s| s.is_connected() && s.lease_expired(now))
            .collect();
        for scope in expired {
            node.disconnect_state(&scope);
        }
    }
}
