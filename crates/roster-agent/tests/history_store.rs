//! The history suite, run against both backends: SQLite in a temporary file and a
//! PostgreSQL server the test starts. Records of every kind are read back with their
//! fields, filters and the cursor work, a fact that several agents recorded is listed
//! once with every recorder (and pages never split it), heartbeats are pruned, refused
//! files are named, and a PostgreSQL outage loses nothing within the bound and counts
//! what it drops beyond.

#[allow(dead_code)]
mod history_support;

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use roster_agent::history::History;
use roster_agent::history::postgres::PostgresStore;
use roster_agent::history::record::{Record, RecordKind};
use roster_agent::history::settings::{Backend, HistorySettings};
use roster_agent::history::sqlite::SqliteStore;
use roster_agent::history::store::{AuditItem, AuditQuery, Store, StoreError, merge_items};
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
    let about_c: Vec<&str> = about_c.iter().map(|r| r.record.kind.tag()).collect();
    assert_eq!(
        about_c,
        [
            "alert",
            "partition_healed",
            "fence_raised",
            "partition_detected",
            "node_down"
        ],
        "the rows that name c"
    );
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
    let mut before_item = None;
    loop {
        let page = read(AuditQuery {
            before_item,
            limit: 4,
            ..AuditQuery::default()
        })
        .await;
        if page.is_empty() {
            break;
        }
        before_item = page.last().map(|r| r.item);
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
            "has schema version 99, newer than the 2 this agent knows",
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

/// A name conflict over `key` won by `<1.1>` over `<2.1>`, by `rule`, with what the
/// recorder knew of the nodes.
fn conflict(
    key: &str,
    rule: &str,
    winner_node: Option<&str>,
    loser_node: Option<&str>,
) -> RecordKind {
    RecordKind::NameConflict {
        scope: "default".into(),
        key: key.into(),
        winner: "<1.1>".into(),
        loser: "<2.1>".into(),
        rule: Some(rule.into()),
        winner_node: winner_node.map(Into::into),
        loser_node: loser_node.map(Into::into),
    }
}

fn alert(id: u64) -> RecordKind {
    RecordKind::Alert {
        id,
        rule: "node_offline".into(),
        subject: "z".into(),
        state: "firing".into(),
        message: format!("alert {id}"),
    }
}

/// An item in a few words: its kind, what it is about, and who recorded it.
fn describe(item: &AuditItem) -> String {
    let about = match &item.record.kind {
        RecordKind::NameConflict {
            key,
            rule,
            winner_node,
            loser_node,
            ..
        } => format!(
            "{key} {} {}>{}",
            rule.as_deref().unwrap_or("-"),
            winner_node.as_deref().unwrap_or("?"),
            loser_node.as_deref().unwrap_or("?")
        ),
        RecordKind::Alert { id, .. } => format!("{id}"),
        other => other.subject().unwrap_or("-").to_owned(),
    };
    format!(
        "{} {about} by {}",
        item.record.kind.tag(),
        item.recorded_by.join(",")
    )
}

/// The items of `query`, merged.
fn items(store: &mut dyn Store, query: &AuditQuery) -> Vec<AuditItem> {
    merge_items(store.audit(query).expect("audit reads"))
}

/// Every item of `query`, page by page of `limit`, the cursor being the last item's id;
/// `between` runs after the first page.
fn paged(
    store: &mut dyn Store,
    query: &AuditQuery,
    limit: usize,
    mut between: impl FnMut(&mut dyn Store),
) -> Vec<AuditItem> {
    let mut all = Vec::new();
    let mut before_item = None;
    loop {
        let page = items(
            store,
            &AuditQuery {
                before_item,
                limit,
                ..query.clone()
            },
        );
        assert!(page.len() <= limit);
        if page.is_empty() {
            return all;
        }
        before_item = page.last().map(|item| item.id);
        if all.is_empty() {
            between(store);
        }
        all.extend(page);
    }
}

fn write(store: &mut dyn Store, at_ms: u64, recorder: &str, kind: RecordKind) {
    store
        .write(&[Record {
            at_ms,
            recorder: recorder.into(),
            kind,
        }])
        .expect("written");
}

/// What agents sharing a database recorded: facts that several of them recorded (the
/// same name conflict: scope, key, winner, loser and rule; the same node leaving) and
/// each one's own. Listed as [`SHARED_FACT_ITEMS`].
fn shared_fact_records() -> Vec<Record> {
    // A node that left on purpose is a fact every node records; one declared dead is
    // each node's own judgement (it may come back as the same incarnation).
    let down = |node: &str, left: bool| RecordKind::NodeDown {
        node: node.into(),
        incarnation: "00000000000000aa".into(),
        left,
        reason: if left {
            "left the cluster"
        } else {
            "declared dead"
        }
        .into(),
    };
    let record = |at_ms, recorder: &str, kind| Record {
        at_ms,
        recorder: recorder.into(),
        kind,
    };
    vec![
        record(1000, "a", conflict("x", "keep_oldest", Some("wa"), None)),
        record(1001, "a", alert(1)),
        record(1002, "b", alert(2)),
        record(1003, "b", conflict("y", "keep_oldest", None, None)),
        record(1004, "b", conflict("x", "keep_oldest", None, Some("lb"))),
        record(1005, "a", alert(3)),
        // Another rule decided: another fact.
        record(1006, "c", conflict("x", "keep_newest", None, None)),
        record(
            1007,
            "a",
            RecordKind::NodeStatus {
                node: "n".into(),
                old: "online".into(),
                new: "degraded".into(),
                reason: "cpu".into(),
            },
        ),
        record(1007, "a", down("n", true)),
        record(1007, "a", down("m", false)),
        record(1007, "b", down("n", true)),
        record(1007, "b", down("m", false)),
    ]
}

/// The items of [`shared_fact_records`], newest first by first row; x merged with both
/// nodes known; n's leave merged.
const SHARED_FACT_ITEMS: [&str; 10] = [
    "node_down m by b",
    "node_down m by a",
    "node_down n by a,b",
    "node_status n by a",
    "name_conflict x keep_newest ?>? by c",
    "alert 3 by a",
    "name_conflict y keep_oldest ?>? by b",
    "alert 2 by b",
    "alert 1 by a",
    "name_conflict x keep_oldest wa>lb by a,b",
];

/// Every audit item of a store.
const EVERYTHING: AuditQuery = AuditQuery {
    since_ms: None,
    until_ms: None,
    kinds: Vec::new(),
    node: None,
    before_item: None,
    limit: 100,
};

/// Agents sharing a database: a fact that several of them recorded is one item with
/// every recorder, at the place of its first row, whatever the page size, the filters,
/// or rows written while paging.
fn shared_facts_are_listed_once_with_every_recorder(store: &mut dyn Store) {
    for record in shared_fact_records() {
        store.write(&[record]).expect("written");
    }
    let everything = EVERYTHING;
    let all = items(store, &everything);
    let described: Vec<String> = all.iter().map(describe).collect();
    assert_eq!(described, SHARED_FACT_ITEMS);
    let x = all.last().unwrap();
    assert_eq!((x.at_ms, x.record.recorder.as_str()), (1000, "a"));
    assert!(all.windows(2).all(|w| w[0].id > w[1].id), "ids decrease");

    // Any page size lists the same items, none split, none twice, none skipped.
    for limit in 1..=11 {
        let pages = paged(store, &everything, limit, |_| {});
        assert_eq!(pages, all, "pages of {limit}");
    }

    // By node: an item is listed if any of its rows names the node, with all its rows.
    for node in ["wa", "lb"] {
        let about = items(
            store,
            &AuditQuery {
                node: Some(node.into()),
                ..everything.clone()
            },
        );
        assert_eq!(
            about.iter().map(describe).collect::<Vec<_>>(),
            ["name_conflict x keep_oldest wa>lb by a,b"],
            "about {node}"
        );
    }
    let by_c = items(
        store,
        &AuditQuery {
            node: Some("c".into()),
            ..everything.clone()
        },
    );
    assert_eq!(
        by_c.iter().map(describe).collect::<Vec<_>>(),
        ["name_conflict x keep_newest ?>? by c"]
    );

    // Rows outside the time window are not part of the item.
    let since = items(
        store,
        &AuditQuery {
            since_ms: Some(1003),
            kinds: vec!["name_conflict".into()],
            ..everything.clone()
        },
    );
    assert_eq!(
        since.iter().map(describe).collect::<Vec<_>>(),
        [
            "name_conflict x keep_newest ?>? by c",
            "name_conflict x keep_oldest ?>lb by b",
            "name_conflict y keep_oldest ?>? by b",
        ]
    );

    // Rows written while paging join their item where it is, and new facts come before
    // the first page: the pages list every item once.
    let pages = paged(store, &everything, 2, |store| {
        write(store, 1008, "d", conflict("y", "keep_oldest", None, None));
        write(store, 1009, "d", conflict("x", "keep_oldest", None, None));
        write(store, 1010, "d", alert(4));
    });
    assert_eq!(
        pages.iter().map(describe).collect::<Vec<_>>(),
        [
            "node_down m by b",
            "node_down m by a",
            "node_down n by a,b",
            "node_status n by a",
            "name_conflict x keep_newest ?>? by c",
            "alert 3 by a",
            "name_conflict y keep_oldest ?>? by b,d",
            "alert 2 by b",
            "alert 1 by a",
            "name_conflict x keep_oldest wa>lb by a,b,d",
        ]
    );
    assert_eq!(
        items(store, &everything).len(),
        all.len() + 1,
        "and alert 4"
    );
}

#[test]
fn sqlite_shared_facts_are_listed_once_with_every_recorder() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = SqliteStore::open(&dir.path().join("history.sqlite3")).unwrap();
    shared_facts_are_listed_once_with_every_recorder(&mut store);
}

#[test]
fn postgres_shared_facts_are_listed_once_with_every_recorder() {
    let server = history_support::Postgres::start();
    let mut store = PostgresStore::new(&server.url()).unwrap();
    store.connect().unwrap();
    shared_facts_are_listed_once_with_every_recorder(&mut store);
}

/// The schema of version 1 as its migration wrote it in SQLite (before the `fact`
/// column), kept here to build the history of an older agent.
const SQLITE_V1: &str = "CREATE TABLE audit (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        at_ms INTEGER NOT NULL,
        recorder TEXT NOT NULL,
        kind TEXT NOT NULL,
        subject TEXT,
        body TEXT NOT NULL
    );
    CREATE INDEX audit_at ON audit (at_ms);
    CREATE INDEX audit_kind ON audit (kind, id);
    CREATE TABLE heartbeats (
        recorder TEXT NOT NULL,
        node TEXT NOT NULL,
        at_ms INTEGER NOT NULL,
        body TEXT NOT NULL
    );
    CREATE INDEX heartbeats_node_at ON heartbeats (node, at_ms);
    CREATE INDEX heartbeats_at ON heartbeats (at_ms);
    PRAGMA application_id = 1380930388;
    PRAGMA user_version = 1;";

/// The schema of version 1 as its migration wrote it in PostgreSQL.
const POSTGRES_V1: &str =
    "CREATE TABLE roster_schema (application TEXT NOT NULL, version BIGINT NOT NULL);
    INSERT INTO roster_schema (application, version) VALUES ('roster-history', 1);
    CREATE TABLE roster_audit (
        id BIGSERIAL PRIMARY KEY,
        at_ms BIGINT NOT NULL,
        recorder TEXT NOT NULL,
        kind TEXT NOT NULL,
        subject TEXT,
        body TEXT NOT NULL
    );
    CREATE INDEX roster_audit_at ON roster_audit (at_ms);
    CREATE INDEX roster_audit_kind ON roster_audit (kind, id);
    CREATE TABLE roster_heartbeats (
        recorder TEXT NOT NULL,
        node TEXT NOT NULL,
        at_ms BIGINT NOT NULL,
        body TEXT NOT NULL
    );
    CREATE INDEX roster_heartbeats_node_at ON roster_heartbeats (node, at_ms);
    CREATE INDEX roster_heartbeats_at ON roster_heartbeats (at_ms);";

/// An audit row as version 1 wrote it: at_ms, recorder, kind, subject, body.
type V1Row = (i64, String, String, Option<String>, String);

fn v1_row(record: &Record) -> V1Row {
    (
        record.at_ms as i64,
        record.recorder.clone(),
        record.kind.tag().to_owned(),
        record.kind.subject().map(str::to_owned),
        serde_json::to_string(&record.kind).unwrap(),
    )
}

/// A version-1 SQLite history at `path` holding `rows`.
fn sqlite_v1(path: &std::path::Path, rows: &[V1Row]) {
    let connection = rusqlite::Connection::open(path).unwrap();
    connection.execute_batch(SQLITE_V1).unwrap();
    for (at_ms, recorder, kind, subject, body) in rows {
        connection
            .execute(
                "INSERT INTO audit (at_ms, recorder, kind, subject, body) VALUES (?1, ?2, ?3, ?4, ?5)",
                rusqlite::params![at_ms, recorder, kind, subject, body],
            )
            .unwrap();
    }
}

/// The schema version of the SQLite history at `path`.
fn sqlite_version(path: &std::path::Path) -> i64 {
    rusqlite::Connection::open(path)
        .unwrap()
        .query_row("PRAGMA user_version", [], |row| row.get(0))
        .unwrap()
}

/// Runs `work` with a client of the PostgreSQL database at `url`, on a runtime of its own.
fn with_postgres<T>(url: &str, work: impl AsyncFnOnce(&tokio_postgres::Client) -> T) -> T {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
            .await
            .unwrap();
        tokio::spawn(connection);
        work(&client).await
    })
}

/// A version-1 history in the PostgreSQL database at `url` holding `rows`.
fn postgres_v1(url: &str, rows: &[V1Row]) {
    with_postgres(url, async |client| {
        client.batch_execute(POSTGRES_V1).await.unwrap();
        for (at_ms, recorder, kind, subject, body) in rows {
            client
                .execute(
                    "INSERT INTO roster_audit (at_ms, recorder, kind, subject, body) VALUES ($1, $2, $3, $4, $5)",
                    &[at_ms, recorder, kind, subject, body],
                )
                .await
                .unwrap();
        }
    });
}

/// The schema version of the PostgreSQL history at `url`.
fn postgres_version(url: &str) -> i64 {
    with_postgres(url, async |client| {
        client
            .query_one("SELECT version FROM roster_schema", &[])
            .await
            .unwrap()
            .get(0)
    })
}

/// A history written by version 1 (no fact key in its rows), once migrated, lists its
/// items as version 1 did, and rows written after the migration join the facts of the
/// rows written before it.
fn a_version_1_history_reads_the_same_once_migrated(store: &mut dyn Store) {
    let all = items(store, &EVERYTHING);
    assert_eq!(
        all.iter().map(describe).collect::<Vec<_>>(),
        SHARED_FACT_ITEMS
    );
    for limit in 1..=11 {
        assert_eq!(
            paged(store, &EVERYTHING, limit, |_| {}),
            all,
            "pages of {limit}"
        );
    }
    let about_lb = items(
        store,
        &AuditQuery {
            node: Some("lb".into()),
            ..EVERYTHING
        },
    );
    assert_eq!(
        about_lb.iter().map(describe).collect::<Vec<_>>(),
        ["name_conflict x keep_oldest wa>lb by a,b"]
    );
    write(store, 1008, "d", conflict("y", "keep_oldest", None, None));
    write(
        store,
        1008,
        "c",
        RecordKind::NodeDown {
            node: "n".into(),
            incarnation: "00000000000000aa".into(),
            left: true,
            reason: "left the cluster".into(),
        },
    );
    let after = items(store, &EVERYTHING);
    assert_eq!(
        after.iter().map(describe).collect::<Vec<_>>(),
        [
            "node_down m by b",
            "node_down m by a",
            "node_down n by a,b,c",
            "node_status n by a",
            "name_conflict x keep_newest ?>? by c",
            "alert 3 by a",
            "name_conflict y keep_oldest ?>? by b,d",
            "alert 2 by b",
            "alert 1 by a",
            "name_conflict x keep_oldest wa>lb by a,b",
        ],
        "the new rows joined the migrated facts"
    );
}

#[test]
fn a_version_1_sqlite_history_reads_the_same_once_migrated() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("history.sqlite3");
    let rows: Vec<V1Row> = shared_fact_records().iter().map(v1_row).collect();
    sqlite_v1(&path, &rows);
    let mut store = SqliteStore::open(&path).expect("migrated");
    assert_eq!(sqlite_version(&path), 2);
    a_version_1_history_reads_the_same_once_migrated(&mut store);
}

#[test]
fn a_version_1_postgres_history_reads_the_same_once_migrated() {
    let server = history_support::Postgres::start();
    let rows: Vec<V1Row> = shared_fact_records().iter().map(v1_row).collect();
    postgres_v1(&server.url(), &rows);
    let mut store = PostgresStore::new(&server.url()).unwrap();
    store.connect().expect("migrated");
    assert_eq!(postgres_version(&server.url()), 2);
    a_version_1_history_reads_the_same_once_migrated(&mut store);
}

/// Version-1 rows of which the second has a body no agent wrote.
fn v1_rows_with_a_bad_body() -> Vec<V1Row> {
    let mut rows: Vec<V1Row> = shared_fact_records()[..2].iter().map(v1_row).collect();
    rows[1].2 = "name_conflict".into();
    rows[1].4 = r#"{"kind":"name_conflict","scope":"#.into();
    rows
}

/// The error of a migration over a bad body names the row and what to do.
fn assert_names_the_bad_row(error: &StoreError) {
    assert!(matches!(error, StoreError::Query { .. }), "{error:?}");
    let message = error.to_string();
    assert!(
        message.contains("migrating to schema version 2: audit row 2 is not a record"),
        "{message}"
    );
    assert!(message.contains("--history off"), "{message}");
}

#[test]
fn a_bad_body_stops_the_sqlite_migration_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("history.sqlite3");
    sqlite_v1(&path, &v1_rows_with_a_bad_body());
    assert_names_the_bad_row(&SqliteStore::open(&path).unwrap_err());
    assert_eq!(sqlite_version(&path), 1, "rolled back");
    rusqlite::Connection::open(&path)
        .unwrap()
        .execute("DELETE FROM audit WHERE id = 2", [])
        .unwrap();
    let mut store = SqliteStore::open(&path).expect("migrated once the row is gone");
    assert_eq!(items(&mut store, &EVERYTHING).len(), 1);
}

#[test]
fn a_bad_body_stops_the_postgres_migration_and_changes_nothing() {
    let server = history_support::Postgres::start();
    postgres_v1(&server.url(), &v1_rows_with_a_bad_body());
    let mut store = PostgresStore::new(&server.url()).unwrap();
    assert_names_the_bad_row(&store.connect().unwrap_err());
    assert_eq!(postgres_version(&server.url()), 1, "rolled back");
    with_postgres(&server.url(), async |client| {
        client
            .batch_execute("DELETE FROM roster_audit WHERE id = 2")
            .await
            .unwrap();
    });
    store.connect().expect("migrated once the row is gone");
    assert_eq!(items(&mut store, &EVERYTHING).len(), 1);
}
