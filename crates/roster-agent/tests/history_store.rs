//! The history suite, run against both backends: SQLite in a temporary file and a
//! PostgreSQL server the test starts. Records of every kind are read back with their
//! fields, filters and the cursor work, heartbeats are pruned, refused files are named,
//! and a PostgreSQL outage loses nothing within the bound and counts what it drops beyond.

#[allow(dead_code)]
mod history_support;

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use roster_agent::history::History;
use roster_agent::history::record::RecordKind;
use roster_agent::history::settings::{Backend, HistorySettings};
use roster_agent::history::sqlite::SqliteStore;
use roster_agent::history::store::{AuditQuery, StoreError};
use serde_json::json;

fn settings(backend: Backend, queue: usize) -> HistorySettings {
    HistorySettings {
        backend,
        queue,
        heartbeat_retention: Duration::from_secs(3600),
    }
}

/// One record of every audit kind, about nodes `b` and `c`.
fn every_kind() -> Vec<RecordKind> {
    vec![
        RecordKind::NodeUp {
            node: "b".into(),
            incarnation: "00000000000000bb".into(),
            first_seen: true,
        },
        RecordKind::NodeStatus {
            node: "b".into(),
            old: "online".into(),
            new: "degraded".into(),
            reason: "cpu".into(),
        },
        RecordKind::LinkOpened {
            peer: "b".into(),
            peer_incarnation: "00000000000000bb".into(),
            session: 7,
            link_kind: Some("tcp".into()),
        },
        RecordKind::LinkClosed {
            peer: "b".into(),
            peer_incarnation: "00000000000000bb".into(),
            session: 7,
            reason: "peer closed".into(),
            link_kind: Some("tcp".into()),
            established_ms: Some(1),
            bytes_out: Some(100),
            bytes_in: Some(200),
            frames_out: Some(3),
            frames_in: Some(4),
            rtt_us: Some(90),
        },
        RecordKind::NodeDown {
            node: "c".into(),
            incarnation: "00000000000000cc".into(),
            left: false,
            reason: "declared dead".into(),
        },
        RecordKind::NameConflict {
            scope: "default".into(),
            key: "svc/1".into(),
            winner: "<1.1>".into(),
            loser: "<2.1>".into(),
            rule: Some("keep_oldest".into()),
            winner_node: Some("a".into()),
            loser_node: None,
        },
        RecordKind::PartitionDetected {
            unreachable: vec!["c".into()],
            side: vec!["a".into(), "b".into()],
            strategy: "majority".into(),
            verdict: "majority side".into(),
            fenced: false,
        },
        RecordKind::FenceRaised {
            unreachable: vec!["b".into(), "c".into()],
            verdict: "minority".into(),
        },
        RecordKind::FenceLowered {
            verdict: "healed".into(),
        },
        RecordKind::PartitionHealed {
            side: vec!["a".into(), "b".into(), "c".into()],
            fenced: false,
        },
        RecordKind::SessionExpired {
            session_id: "s-1".into(),
            name: "worker".into(),
            pid: "<1.2>".into(),
            reason: "ttl".into(),
        },
        RecordKind::SessionDeleted {
            session_id: "s-2".into(),
            name: "worker".into(),
            pid: "<1.3>".into(),
            reason: "requested".into(),
        },
        RecordKind::Alert {
            id: 1,
            rule: "node_offline".into(),
            subject: "c".into(),
            state: "firing".into(),
            message: "node c is offline".into(),
        },
    ]
}

async fn open(settings: &HistorySettings) -> History {
    History::open(settings, "a")
        .await
        .expect("history opens")
        .expect("history on")
}

async fn records_are_read_back(backend: Backend) {
    let history = open(&settings(backend, 1024)).await;
    let recorder = history.recorder();
    let kinds = every_kind();
    for (i, kind) in kinds.iter().enumerate() {
        recorder.record_at(1_000 + i as u64, kind.clone());
    }
    let now = roster_agent::history::now_ms();
    for (i, node) in ["b", "b", "c"].iter().enumerate() {
        recorder.record_at(
            now - 10_000 + i as u64,
            RecordKind::Heartbeat {
                node: (*node).into(),
                heartbeat: json!({"at_ms": now - 10_000 + i as u64, "cpu_load": 0.5}),
            },
        );
    }
    recorder.record_at(
        now - 7_200_000,
        RecordKind::Heartbeat {
            node: "b".into(),
            heartbeat: json!({"at_ms": now - 7_200_000}),
        },
    );
    assert!(history.flush(Duration::from_secs(20)).await, "written");
    let stats = history.stats();
    assert_eq!(
        stats.written.load(Ordering::Relaxed),
        kinds.len() as u64 + 4
    );
    assert_eq!(stats.dropped.load(Ordering::Relaxed), 0);

    let read = |query: AuditQuery| {
        let reader = history.reader().clone();
        async move { reader.read(move |store| store.audit(&query)).await.unwrap() }
    };
    let all = read(AuditQuery {
        limit: 100,
        ..AuditQuery::default()
    })
    .await;
    assert_eq!(all.len(), kinds.len(), "every audit kind, no heartbeat");
    let newest_first: Vec<RecordKind> = all.iter().map(|r| r.record.kind.clone()).collect();
    let mut expected = kinds.clone();
    expected.reverse();
    assert_eq!(newest_first, expected, "fields read back, newest first");
    assert!(all.iter().all(|r| r.record.recorder == "a"));
    assert_eq!(all[0].record.at_ms, 1_000 + kinds.len() as u64 - 1);

    let about_c = read(AuditQuery {
        node: Some("c".into()),
        limit: 100,
        ..AuditQuery::default()
    })
    .await;
    assert_eq!(about_c.len(), 2, "node_down and the alert about c");
    let links = read(AuditQuery {
        kinds: vec!["link_opened".into(), "link_closed".into()],
        limit: 100,
        ..AuditQuery::default()
    })
    .await;
    assert_eq!(links.len(), 2);
    let window = read(AuditQuery {
        since_ms: Some(1_002),
        until_ms: Some(1_004),
        limit: 100,
        ..AuditQuery::default()
    })
    .await;
    assert_eq!(window.len(), 2);

    // Pages by cursor: no row twice, none skipped.
    let mut seen = Vec::new();
    let mut before_id = None;
    loop {
        let page = read(AuditQuery {
            before_id,
            limit: 4,
            ..AuditQuery::default()
        })
        .await;
        if page.is_empty() {
            break;
        }
        before_id = page.last().map(|r| r.id);
        seen.extend(page.into_iter().map(|r| r.id));
    }
    let ids: Vec<i64> = all.iter().map(|r| r.id).collect();
    assert_eq!(seen, ids);

    let reader = history.reader().clone();
    let beats = reader
        .read(move |store| store.heartbeats("b", now - 60_000, now))
        .await
        .unwrap();
    assert_eq!(beats.len(), 2);
    assert_eq!(beats[0].heartbeat["cpu_load"], 0.5);
    assert!(beats[0].at_ms < beats[1].at_ms);
    // The writer prunes in the background (at start, then every minute): whether it or
    // this explicit call got to it first, the two-hour-old heartbeat is gone.
    let (pruned, left) = reader
        .read(move |store| {
            let pruned = store.prune_heartbeats(now - 3_600_000)?;
            Ok((pruned, store.heartbeats("b", 0, now)?.len()))
        })
        .await
        .unwrap();
    assert!(pruned <= 1);
    assert_eq!(left, 2, "the two-hour-old heartbeat is pruned");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_records_are_read_back() {
    let dir = tempfile::tempdir().unwrap();
    records_are_read_back(Backend::Sqlite(dir.path().join("history.sqlite3"))).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_records_are_read_back() {
    let server = tokio::task::spawn_blocking(history_support::Postgres::start)
        .await
        .unwrap();
    records_are_read_back(Backend::Postgres(server.url())).await;
    tokio::task::spawn_blocking(move || drop(server))
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_files_of_others_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let corrupt = dir.path().join("corrupt.sqlite3");
    std::fs::write(&corrupt, vec![0x5a; 8192]).unwrap();
    let foreign = dir.path().join("foreign.sqlite3");
    rusqlite::Connection::open(&foreign)
        .unwrap()
        .execute_batch("CREATE TABLE invoices (id INTEGER)")
        .unwrap();
    let other_app = dir.path().join("other-app.sqlite3");
    rusqlite::Connection::open(&other_app)
        .unwrap()
        .execute_batch("PRAGMA application_id = 42")
        .unwrap();
    let newer = dir.path().join("newer.sqlite3");
    drop(SqliteStore::open(&newer).unwrap());
    rusqlite::Connection::open(&newer)
        .unwrap()
        .execute_batch("PRAGMA user_version = 99")
        .unwrap();
    for (path, expected) in [
        (&corrupt, "is corrupt or not a SQLite database"),
        (&foreign, "belongs to another application (1 tables"),
        (
            &other_app,
            "belongs to another application (application_id 0x2a)",
        ),
        (
            &newer,
            "has schema version 99, newer than the 1 this agent knows",
        ),
    ] {
        let error = History::open(&settings(Backend::Sqlite(path.clone()), 16), "a")
            .await
            .unwrap_err();
        assert!(error.is_refusal(), "{error}");
        let message = error.to_string();
        assert!(message.contains(expected), "{message}");
        assert!(message.contains(path.to_str().unwrap()), "{message}");
        assert!(message.contains("--history off"), "{message}");
    }
    let fresh = dir.path().join("fresh.sqlite3");
    drop(SqliteStore::open(&fresh).unwrap());
    drop(SqliteStore::open(&fresh).expect("reopened: same application, same version"));
}

/// Waits until `check` holds, at most `deadline`.
async fn until(what: &str, deadline: Duration, mut check: impl FnMut() -> bool) {
    let end = Instant::now() + deadline;
    while !check() {
        assert!(Instant::now() < end, "not within {deadline:?}: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_postgres_outage_loses_nothing_within_the_bound_and_counts_the_rest() {
    const BOUND: usize = 50;
    let server = std::sync::Arc::new(
        tokio::task::spawn_blocking(history_support::Postgres::start)
            .await
            .unwrap(),
    );
    let history = open(&settings(Backend::Postgres(server.url()), BOUND)).await;
    let recorder = history.recorder().clone();
    let stats = history.stats().clone();
    let alert = |id: u64| RecordKind::Alert {
        id,
        rule: "split_brain".into(),
        subject: "a".into(),
        state: "firing".into(),
        message: format!("alert {id}"),
    };
    recorder.record(alert(0));
    assert!(history.flush(Duration::from_secs(20)).await);

    // Within the bound: everything recorded during the outage is written after it.
    let pg = server.clone();
    tokio::task::spawn_blocking(move || pg.stop_server())
        .await
        .unwrap();
    for id in 1..=30 {
        recorder.record(alert(id));
    }
    until("the outage is noticed", Duration::from_secs(20), || {
        stats.degraded()
    })
    .await;
    let pg = server.clone();
    tokio::task::spawn_blocking(move || pg.start_server())
        .await
        .unwrap();
    assert!(
        history.flush(Duration::from_secs(60)).await,
        "written after the outage"
    );
    assert!(!stats.degraded());
    assert_eq!(stats.dropped.load(Ordering::Relaxed), 0);
    assert_eq!(stats.written.load(Ordering::Relaxed), 31);

    // Beyond the bound: what does not fit is dropped and counted, the rest written.
    let pg = server.clone();
    tokio::task::spawn_blocking(move || pg.stop_server())
        .await
        .unwrap();
    recorder.record(alert(1000));
    until("the outage is noticed", Duration::from_secs(20), || {
        stats.degraded()
    })
    .await;
    for id in 1001..1500 {
        recorder.record(alert(id));
    }
    let pg = server.clone();
    tokio::task::spawn_blocking(move || pg.start_server())
        .await
        .unwrap();
    assert!(history.flush(Duration::from_secs(60)).await);
    let written = stats.written.load(Ordering::Relaxed) - 31;
    let dropped = stats.dropped.load(Ordering::Relaxed);
    assert_eq!(
        written + dropped,
        500,
        "every record is written or counted as dropped"
    );
    assert!(dropped >= 500 - 2 * BOUND as u64, "dropped {dropped}");
    assert!(
        written >= BOUND as u64,
        "the bound's worth is kept: {written}"
    );
    let rows = history
        .reader()
        .read(|store| {
            store.audit(&AuditQuery {
                kinds: vec!["alert".into()],
                limit: 1000,
                ..AuditQuery::default()
            })
        })
        .await
        .unwrap();
    assert_eq!(
        rows.len() as u64,
        31 + written,
        "the database holds what was counted written"
    );
    drop(history);
    tokio::task::spawn_blocking(move || drop(server))
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_newer_postgres_schema_is_refused() {
    let server = tokio::task::spawn_blocking(history_support::Postgres::start)
        .await
        .unwrap();
    let url = server.url();
    drop(open(&settings(Backend::Postgres(url.clone()), 16)).await);
    let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    client
        .batch_execute("UPDATE roster_schema SET version = 99")
        .await
        .unwrap();
    let error = History::open(&settings(Backend::Postgres(url), 16), "a")
        .await
        .unwrap_err();
    assert!(
        matches!(error, StoreError::Newer { found: 99, .. }),
        "{error}"
    );
    assert!(!error.to_string().contains("s3cret"));
    tokio::task::spawn_blocking(move || drop(server))
        .await
        .unwrap();
}
