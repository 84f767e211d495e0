//! One session: the process it owns and the end signal its readers wait on.

use std::future::{Future, poll_fn};
use std::pin::pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use roster::{Envelope, Pid, Process};
use tokio::sync::watch;

/// A live session's process. Its TTL and expiry belong to the [`super::Sessions`] table.
#[derive(Debug)]
pub struct Session {
    id: String,
    name: Option<String>,
    pid: Pid,
    ttl: Duration,
    created_at_ms: u64,
    /// The process. Never locked across an await: reading its mailbox polls a fresh
    /// receive future under the lock each time (receiving is cancel safe).
    process: Mutex<Process>,
    /// One mailbox reader at a time (a second waits for the first).
    reader: Arc<tokio::sync::Mutex<()>>,
    ended: watch::Sender<bool>,
}

impl Session {
    pub(super) fn new(
        id: String,
        name: Option<String>,
        process: Process,
        ttl: Duration,
        created_at_ms: u64,
    ) -> Self {
        Self {
            id,
            name,
            pid: process.pid(),
            ttl,
            created_at_ms,
            process: Mutex::new(process),
            reader: Arc::new(tokio::sync::Mutex::new(())),
            ended: watch::Sender::new(false),
        }
    }

    /// The session's id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The name the client gave it.
    pub fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }

    /// The pid of its process.
    pub fn pid(&self) -> Pid {
        self.pid
    }

    /// Its TTL.
    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// When it was created, in milliseconds since the Unix epoch.
    pub fn created_at_ms(&self) -> u64 {
        self.created_at_ms
    }

    /// The process, to register, join, leave or unregister with it.
    pub fn process(&self) -> MutexGuard<'_, Process> {
        self.process.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Tells readers the session ended.
    pub(super) fn end(&self) {
        self.ended.send_replace(true);
    }

    /// Completes once the session has ended.
    pub fn ended(&self) -> impl Future<Output = ()> + Send + 'static + use<> {
        let mut ended = self.ended.subscribe();
        async move {
            let _ = ended.wait_for(|ended| *ended).await;
        }
    }

    /// The messages queued for the process: waits up to `wait` for the first, then takes
    /// what else is queued, at most `max` in all. Empty if none came, or the session ended.
    pub async fn messages(&self, wait: Duration, max: usize) -> Vec<Envelope> {
        let _reader = self.reader().await;
        let mut taken = Vec::new();
        let first = tokio::select! {
            envelope = self.next_message() => envelope,
            () = tokio::time::sleep(wait) => None,
            () = self.ended() => None,
        };
        let Some(first) = first else {
            return taken;
        };
        taken.push(first);
        while taken.len() < max {
            match self.try_message() {
                Some(envelope) => taken.push(envelope),
                None => break,
            }
        }
        taken
    }

    /// Waits until no other reader reads the mailbox; the mailbox is this caller's while
    /// it holds the guard.
    pub async fn reader(&self) -> tokio::sync::OwnedMutexGuard<()> {
        self.reader.clone().lock_owned().await
    }

    /// The next message; `None` once the process has exited. The caller holds
    /// [`Session::reader`].
    pub async fn next_message(&self) -> Option<Envelope> {
        poll_fn(|cx| {
            let mut process = self.process();
            let receive = pin!(process.recv_envelope());
            receive.poll(cx).map(Result::ok)
        })
        .await
    }

    fn try_message(&self) -> Option<Envelope> {
        let mut process = self.process();
        let receive = pin!(process.recv_envelope());
        let waker = std::task::Waker::noop();
        match receive.poll(&mut std::task::Context::from_waker(waker)) {
            std::task::Poll::Ready(Ok(envelope)) => Some(envelope),
            _ => None,
        }
    }
}
