//! The hub: one sequence of ids, a ring of the most recent events and a broadcast channel
//! to the SSE clients, all updated under one lock so that a client that subscribes and
//! reads the ring in the same critical section sees every event once.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::broadcast;

/// One event of the stream, its JSON written once for every client.
#[derive(Debug)]
pub struct StreamEvent {
    /// Its id in the agent's sequence.
    pub id: u64,
    /// The SSE event name (`registered`, `node_up`, `lagged`, ...).
    pub kind: &'static str,
    /// The scope of a registry event; `None` for a node event.
    pub scope: Option<String>,
    /// The key of a registry event (the node's name for a node event); empty for a
    /// notice that concerns every subscriber of its scope.
    pub key: String,
    /// The JSON `data`.
    pub data: String,
}

impl StreamEvent {
    /// Whether a client of `scope`, `pattern` and `nodes` gets it.
    pub fn wanted(&self, scope: &str, pattern: &roster::Pattern, nodes: bool) -> bool {
        match &self.scope {
            None => nodes,
            Some(own) => own == scope && (self.key.is_empty() || pattern.matches(&self.key)),
        }
    }
}

/// What a resuming client is sent before the live events.
#[derive(Debug)]
pub enum Replay {
    /// Nothing asked.
    Fresh,
    /// The events after the id it gave, still held.
    Events(Vec<Arc<StreamEvent>>),
    /// The id it gave is no longer held (or was never given by this agent): it must
    /// re-list.
    Reset {
        /// The oldest id still held, if any.
        oldest: Option<u64>,
    },
}

struct Ring {
    next_id: u64,
    events: VecDeque<Arc<StreamEvent>>,
}

struct Inner {
    ring: Mutex<Ring>,
    capacity: usize,
    sender: broadcast::Sender<Arc<StreamEvent>>,
    published: AtomicU64,
    client_lag: AtomicU64,
}

/// The hub; cloning shares it.
#[derive(Clone)]
pub struct EventHub(Arc<Inner>);

impl std::fmt::Debug for EventHub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventHub")
            .field("capacity", &self.0.capacity)
            .finish()
    }
}

impl EventHub {
    /// A hub keeping the last `ring` events; a client may fall `buffer` events behind.
    pub fn new(ring: usize, buffer: usize) -> Self {
        let (sender, _) = broadcast::channel(buffer.max(1));
        Self(Arc::new(Inner {
            ring: Mutex::new(Ring {
                next_id: 1,
                events: VecDeque::with_capacity(ring.min(1024)),
            }),
            capacity: ring.max(1),
            sender,
            published: AtomicU64::new(0),
            client_lag: AtomicU64::new(0),
        }))
    }

    fn ring(&self) -> MutexGuard<'_, Ring> {
        // Each critical section pushes or reads whole events.
        self.0.ring.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Numbers an event, keeps it in the ring and sends it to the clients.
    pub fn publish(&self, kind: &'static str, scope: Option<String>, key: String, data: String) {
        let mut ring = self.ring();
        let event = Arc::new(StreamEvent {
            id: ring.next_id,
            kind,
            scope,
            key,
            data,
        });
        ring.next_id += 1;
        if ring.events.len() >= self.0.capacity {
            ring.events.pop_front();
        }
        ring.events.push_back(event.clone());
        // No client listening is not an error.
        let _ = self.0.sender.send(event);
        drop(ring);
        self.0.published.fetch_add(1, Ordering::Relaxed);
    }

    /// A live receiver, and what precedes it for a client resuming after `last_id`.
    pub fn subscribe(
        &self,
        last_id: Option<u64>,
    ) -> (Replay, broadcast::Receiver<Arc<StreamEvent>>) {
        let ring = self.ring();
        let receiver = self.0.sender.subscribe();
        let Some(last_id) = last_id else {
            return (Replay::Fresh, receiver);
        };
        let newest = ring.next_id - 1;
        let oldest = ring.events.front().map(|e| e.id);
        let replay = if last_id > newest {
            Replay::Reset { oldest }
        } else if last_id == newest {
            Replay::Events(Vec::new())
        } else {
            match oldest {
                Some(oldest) if oldest <= last_id + 1 => Replay::Events(
                    ring.events
                        .iter()
                        .filter(|e| e.id > last_id)
                        .cloned()
                        .collect(),
                ),
                _ => Replay::Reset { oldest },
            }
        };
        (replay, receiver)
    }

    /// Events published since the agent started.
    pub fn published(&self) -> u64 {
        self.0.published.load(Ordering::Relaxed)
    }

    /// Counts events a slow client missed.
    pub fn record_client_lag(&self, missed: u64) {
        self.0.client_lag.fetch_add(missed, Ordering::Relaxed);
    }

    /// Events slow clients missed since the agent started.
    pub fn client_lag(&self) -> u64 {
        self.0.client_lag.load(Ordering::Relaxed)
    }

    /// Connected SSE clients.
    pub fn clients(&self) -> usize {
        self.0.sender.receiver_count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(replay: &Replay) -> Vec<u64> {
        match replay {
            Replay::Events(events) => events.iter().map(|e| e.id).collect(),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn resumption_replays_what_is_held_and_resets_otherwise() {
        let hub = EventHub::new(3, 8);
        for key in ["a", "b", "c", "d"] {
            hub.publish(
                "registered",
                Some("default".into()),
                key.into(),
                "{}".into(),
            );
        }
        assert_eq!(ids(&hub.subscribe(Some(2)).0), [3, 4]);
        assert_eq!(ids(&hub.subscribe(Some(4)).0), Vec::<u64>::new());
        assert!(matches!(
            hub.subscribe(Some(0)).0,
            Replay::Reset { oldest: Some(2) }
        ));
        assert!(matches!(hub.subscribe(Some(99)).0, Replay::Reset { .. }));
    }
}
