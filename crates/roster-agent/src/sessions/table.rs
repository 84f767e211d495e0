//! The session table: the one owner of every session's state (its process, TTL and
//! expiry) behind one lock, with one reaper task that ends sessions in expiry order (a
//! `BTreeMap` keyed by deadline; no task per session).

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use roster::Node;
use tokio::sync::Notify;

use super::ended::{EndReason, EndedSessions};
use super::{Session, SessionError};
use crate::history::record::RecordKind;
use crate::history::recorder::Recorder;

/// What the API shows of a session.
#[derive(Debug, Clone)]
pub struct SessionInfo {
    /// The session.
    pub session: Arc<Session>,
    /// When it expires unless kept alive, in milliseconds since the Unix epoch.
    pub expires_at_ms: u64,
}

/// Counts of sessions since the agent started.
#[derive(Debug, Default)]
pub struct SessionCounts {
    /// Sessions created.
    pub created: AtomicU64,
    /// Sessions whose TTL lapsed.
    pub expired: AtomicU64,
    /// Sessions deleted.
    pub deleted: AtomicU64,
}

struct Live {
    session: Arc<Session>,
    deadline: Instant,
    expires_at_ms: u64,
}

#[derive(Default)]
struct Table {
    live: HashMap<String, Live>,
    by_deadline: BTreeMap<(Instant, String), ()>,
    ended: EndedSessions,
}

struct Inner {
    node: Node,
    max: usize,
    table: Mutex<Table>,
    /// Wakes the reaper when a deadline earlier than the ones it waits for may exist.
    reaper: Arc<Notify>,
    counts: SessionCounts,
    /// Where expiries and deletions are recorded (the agent's history, when on).
    recorder: OnceLock<Recorder>,
}

/// The agent's sessions. Cloning shares the table.
#[derive(Clone)]
pub struct Sessions(Arc<Inner>);

impl std::fmt::Debug for Sessions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sessions")
            .field("max", &self.0.max)
            .field("open", &self.open())
            .finish()
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

fn ms(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

impl Sessions {
    /// An empty table of at most `max` sessions on `node`, and its reaper task (which
    /// stops when the last clone of the table is dropped). Must run inside a tokio runtime.
    pub fn start(node: Node, max: usize) -> Self {
        let sessions = Self(Arc::new(Inner {
            node,
            max,
            table: Mutex::new(Table::default()),
            reaper: Arc::new(Notify::new()),
            counts: SessionCounts::default(),
            recorder: OnceLock::new(),
        }));
        tokio::spawn(reap(Arc::downgrade(&sessions.0), sessions.0.reaper.clone()));
        sessions
    }

    /// Records every expiry and deletion from now on with `recorder` (set once, when the
    /// agent's history is open; later calls are ignored).
    pub fn record_to(&self, recorder: Recorder) {
        let _ = self.0.recorder.set(recorder);
    }

    /// Records that `session` ended for `reason`, if a recorder is set.
    /// Ends `session`'s process with `reason` (both reasons are far below the limit).
    fn end_process(&self, session: &Session, reason: &str) {
        if let Err(e) = self.0.node.kill_with(session.pid(), reason) {
            tracing::error!(error = %e, "cannot end a session's process with its reason");
            self.0.node.kill(session.pid());
        }
    }

    fn record_end(&self, session: &Session, end: EndReason, why: &str) {
        let Some(recorder) = self.0.recorder.get() else {
            return;
        };
        let (session_id, name, pid) = (
            session.id().to_owned(),
            session.name().unwrap_or_default().to_owned(),
            session.pid().to_string(),
        );
        let reason = why.to_owned();
        recorder.record(match end {
            EndReason::Expired => RecordKind::SessionExpired {
                session_id,
                name,
                pid,
                reason,
            },
            EndReason::Deleted => RecordKind::SessionDeleted {
                session_id,
                name,
                pid,
                reason,
            },
        });
    }

    fn table(&self) -> MutexGuard<'_, Table> {
        // Every critical section leaves the maps consistent (inserts and removes in pairs).
        self.0.table.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Creates a session with a new process of the node.
    ///
    /// # Errors
    ///
    /// [`SessionError::Full`] when the agent holds its maximum.
    pub fn create(&self, ttl: Duration, name: Option<String>) -> Result<SessionInfo, SessionError> {
        let id = format!("{:032x}", rand::random::<u128>());
        let now = Instant::now();
        let mut table = self.table();
        if table.live.len() >= self.0.max {
            return Err(SessionError::Full { max: self.0.max });
        }
        let session = Arc::new(Session::new(
            id.clone(),
            name,
            self.0.node.new_process(),
            ttl,
            now_ms(),
        ));
        let live = Live {
            session: session.clone(),
            deadline: now + ttl,
            expires_at_ms: now_ms().saturating_add(ms(ttl)),
        };
        let info = SessionInfo {
            session,
            expires_at_ms: live.expires_at_ms,
        };
        table.by_deadline.insert((live.deadline, id.clone()), ());
        table.live.insert(id, live);
        drop(table);
        self.0.counts.created.fetch_add(1, Ordering::Relaxed);
        self.0.reaper.notify_one();
        Ok(info)
    }

    /// A live session.
    ///
    /// # Errors
    ///
    /// [`SessionError::Ended`] for a session that ended recently, else
    /// [`SessionError::Unknown`].
    pub fn get(&self, id: &str) -> Result<SessionInfo, SessionError> {
        let table = self.table();
        match table.live.get(id) {
            Some(live) => Ok(SessionInfo {
                session: live.session.clone(),
                expires_at_ms: live.expires_at_ms,
            }),
            None => Err(missing(&table, id)),
        }
    }

    /// Renews a session's TTL from now.
    ///
    /// # Errors
    ///
    /// As [`Sessions::get`].
    pub fn keepalive(&self, id: &str) -> Result<SessionInfo, SessionError> {
        let now = Instant::now();
        let mut table = self.table();
        let Some(live) = table.live.get_mut(id) else {
            return Err(missing(&table, id));
        };
        let old = live.deadline;
        live.deadline = now + live.session.ttl();
        live.expires_at_ms = now_ms().saturating_add(ms(live.session.ttl()));
        let (deadline, info) = (
            live.deadline,
            SessionInfo {
                session: live.session.clone(),
                expires_at_ms: live.expires_at_ms,
            },
        );
        table.by_deadline.remove(&(old, id.to_owned()));
        table.by_deadline.insert((deadline, id.to_owned()), ());
        Ok(info)
    }

    /// Deletes a session: its process ends and what it held is removed.
    ///
    /// # Errors
    ///
    /// As [`Sessions::get`].
    pub fn delete(&self, id: &str) -> Result<(), SessionError> {
        let session = {
            let mut table = self.table();
            match end_in(&mut table, id, EndReason::Deleted, Instant::now()) {
                Some(session) => session,
                None => return Err(missing(&table, id)),
            }
        };
        self.0.counts.deleted.fetch_add(1, Ordering::Relaxed);
        self.record_end(&session, EndReason::Deleted, "deleted through the API");
        // Its entries go at once, on every node, with reason `session_deleted`, whoever
        // still holds the handle (a reader woken by `end` lets go after).
        self.end_process(&session, SESSION_DELETED);
        session.end();
        Ok(())
    }

    /// Every live session, by id.
    pub fn list(&self) -> Vec<SessionInfo> {
        let table = self.table();
        let mut all: Vec<SessionInfo> = table
            .live
            .values()
            .map(|live| SessionInfo {
                session: live.session.clone(),
                expires_at_ms: live.expires_at_ms,
            })
            .collect();
        all.sort_by(|a, b| a.session.id().cmp(b.session.id()));
        all
    }

    /// How many sessions are live.
    pub fn open(&self) -> usize {
        self.table().live.len()
    }

    /// The counts since the agent started.
    pub fn counts(&self) -> &SessionCounts {
        &self.0.counts
    }

    /// Ends the sessions whose deadline is at or before `now`; returns the next deadline.
    fn reap_due(&self, now: Instant) -> Option<Instant> {
        let mut due = Vec::new();
        let next = {
            let mut table = self.table();
            loop {
                let Some(((deadline, id), ())) = table.by_deadline.first_key_value() else {
                    break None;
                };
                if *deadline > now {
                    break Some(*deadline);
                }
                let id = id.clone();
                if let Some(session) = end_in(&mut table, &id, EndReason::Expired, now) {
                    due.push(session);
                }
            }
        };
        for session in due {
            self.0.counts.expired.fetch_add(1, Ordering::Relaxed);
            self.record_end(
                &session,
                EndReason::Expired,
                &format!("no keepalive within its TTL of {:?}", session.ttl()),
            );
            // Its entries go at once, on every node, with reason `session_expired`, whoever
            // still holds the handle.
            self.end_process(&session, SESSION_EXPIRED);
            session.end();
        }
        next
    }
}

/// The exit reason of a session's process when its TTL lapsed.
pub const SESSION_EXPIRED: &str = "session_expired";
/// The exit reason of a session's process when it was deleted.
pub const SESSION_DELETED: &str = "session_deleted";

/// Removes `id` from the live maps and remembers it ended.
fn end_in(table: &mut Table, id: &str, reason: EndReason, now: Instant) -> Option<Arc<Session>> {
    let live = table.live.remove(id)?;
    table.by_deadline.remove(&(live.deadline, id.to_owned()));
    table.ended.remember(id.to_owned(), reason, now);
    Some(live.session)
}

fn missing(table: &Table, id: &str) -> SessionError {
    match table.ended.reason(id) {
        Some(reason) => SessionError::Ended {
            id: id.to_owned(),
            reason,
        },
        None => SessionError::Unknown(id.to_owned()),
    }
}

/// The reaper: sleeps until the earliest deadline (or a wake-up), ends what is due. It
/// holds the table only while it reaps, so that dropping the last clone stops it.
async fn reap(inner: std::sync::Weak<Inner>, wake: Arc<Notify>) {
    loop {
        let Some(strong) = inner.upgrade() else {
            return;
        };
        let next = Sessions(strong).reap_due(Instant::now());
        // A long idle wait still notices a dropped table within a second.
        let limit = Instant::now() + Duration::from_secs(1);
        let until = next.map_or(limit, |next| next.min(limit));
        tokio::select! {
            () = wake.notified() => {}
            () = tokio::time::sleep_until(until.into()) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_lapsed_session_ends_and_is_remembered() {
        let node = Node::builder().name("t").start().unwrap();
        let sessions = Sessions::start(node.clone(), 2);
        let info = sessions.create(Duration::from_secs(1), None).unwrap();
        let id = info.session.id().to_owned();
        info.session.process().register("k", &()).unwrap();
        drop(info);
        sessions.create(Duration::from_secs(60), None).unwrap();
        assert_eq!(
            sessions.create(Duration::from_secs(60), None).unwrap_err(),
            SessionError::Full { max: 2 }
        );
        tokio::time::sleep(Duration::from_millis(600)).await;
        sessions.keepalive(&id).unwrap();
        tokio::time::sleep(Duration::from_millis(600)).await;
        assert!(sessions.get(&id).is_ok(), "the keepalive extended it");
        let deadline = Instant::now() + Duration::from_secs(10);
        while sessions.get(&id).is_ok() {
            assert!(Instant::now() < deadline, "the session did not lapse");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(matches!(
            sessions.get(&id),
            Err(SessionError::Ended {
                reason: EndReason::Expired,
                ..
            })
        ));
        assert!(node.default_scope().lookup("k").is_none());
        assert!(matches!(
            sessions.get("nope"),
            Err(SessionError::Unknown(_))
        ));
        assert_eq!(sessions.counts().expired.load(Ordering::Relaxed), 1);
    }
}
