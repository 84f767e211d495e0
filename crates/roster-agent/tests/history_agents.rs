//! The history of agents run as OS processes: heartbeats, link sessions and the audit log
//! of before a restart are served after it (in SQLite and in PostgreSQL), bad parameters
//! get the usual JSON errors, and
//! a history file the agent must not write makes it exit with code 2 unless `--history
//! off`.

#[allow(dead_code)]
mod history_support;
mod support;

use std::process::Stdio;
use std::time::Duration;

use history_support::{Agent, command};
use serde_json::Value;
use support::{eventually, get};

/// How long a cluster may take to form, or an agent to notice a peer left.
const DEADLINE: Duration = Duration::from_secs(30);

fn now_ms() -> u64 {
    roster_agent::history::now_ms()
}

fn items(page: &Value) -> Vec<Value> {
    page["items"].as_array().cloned().unwrap_or_default()
}

#[test]
fn heartbeats_link_sessions_and_the_audit_log_survive_a_restart_in_sqlite() {
    survive_a_restart(&[]);
}

#[test]
fn heartbeats_link_sessions_and_the_audit_log_survive_a_restart_in_postgres() {
    let server = history_support::Postgres::start();
    survive_a_restart(&["--history", &server.url()]);
}

/// Two agents with the history of `history` (flags; none: each its own SQLite file in
/// its data directory); `a` is restarted after `b` left and serves what it kept.
fn survive_a_restart(history: &[&str]) {
    let dir = tempfile::tempdir().unwrap();
    let data_a = dir.path().join("a");
    let data_b = dir.path().join("b");
    let a = Agent::start("hist-a", &data_a, history);
    let seeded: Vec<&str> = history
        .iter()
        .copied()
        .chain(["--seed", &a.cluster])
        .collect();
    let b = Agent::start("hist-b", &data_b, &seeded);
    eventually("a links to b", DEADLINE, || {
        let (_, sessions) = get(&a.url("/api/link-sessions"));
        sessions
            .as_array()?
            .iter()
            .any(|s| s["peer"] == "hist-b" && s["closed_ms"].is_null())
            .then_some(())
    });
    eventually("a holds heartbeats of b", DEADLINE, || {
        let (_, beats) = get(&a.url("/api/nodes/hist-b/heartbeats?minutes=5"));
        (beats.as_array()?.len() >= 2).then_some(())
    });
    b.stop();
    eventually("a sees b leave", DEADLINE, || {
        let (_, sessions) = get(&a.url("/api/link-sessions?closed=true"));
        sessions
            .as_array()?
            .iter()
            .any(|s| s["peer"] == "hist-b")
            .then_some(())
    });
    a.stop();
    let restarted_at = now_ms();

    let a = Agent::start("hist-a", &data_a, history);
    let (status, ready) = get(&a.url("/readyz"));
    assert_eq!(status, 200, "{ready}");
    assert_eq!(ready["history"]["status"], "ok", "{ready}");

    let (status, beats) = get(&a.url("/api/nodes/hist-a/heartbeats?minutes=5"));
    assert_eq!(status, 200, "{beats}");
    let before: Vec<&Value> = beats
        .as_array()
        .unwrap()
        .iter()
        .filter(|beat| beat["at_ms"].as_u64().unwrap() < restarted_at)
        .collect();
    assert!(
        before.len() >= 2,
        "its own heartbeats of before the restart: {beats}"
    );
    assert!(
        before[0]["mem_total_bytes"].as_u64().unwrap() > 0,
        "{}",
        before[0]
    );
    let (status, beats) = get(&a.url("/api/nodes/hist-b/heartbeats?minutes=5"));
    assert_eq!(status, 200, "b is known from the history only: {beats}");
    assert!(beats.as_array().unwrap().len() >= 2, "{beats}");
    let (status, _) = get(&a.url("/api/nodes/never-seen/heartbeats?minutes=5"));
    assert_eq!(status, 404);

    let (status, sessions) = get(&a.url("/api/link-sessions?closed=true"));
    assert_eq!(status, 200, "{sessions}");
    let closed: Vec<&Value> = sessions
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["peer"] == "hist-b" && s["recorder"] == "hist-a")
        .collect();
    assert_eq!(closed.len(), 1, "{sessions}");
    assert!(closed[0]["closed_ms"].as_u64().unwrap() < restarted_at);
    assert!(closed[0]["closed_reason"].is_string(), "{}", closed[0]);
    assert!(
        closed[0]["established_ms"].as_u64().unwrap() > 0,
        "{}",
        closed[0]
    );
    let (_, live) = get(&a.url("/api/link-sessions?closed=false"));
    assert!(live.as_array().unwrap().is_empty(), "{live}");

    let (status, page) = get(&a.url("/api/audit?node=hist-b"));
    assert_eq!(status, 200, "{page}");
    let kinds: Vec<String> = items(&page)
        .iter()
        .map(|row| row["kind"].as_str().unwrap().to_owned())
        .collect();
    for kind in ["node_up", "node_down", "link_opened", "link_closed"] {
        assert!(kinds.iter().any(|k| k == kind), "{kind} in {kinds:?}");
    }
    // b's leave as a recorded it (in a shared database, b recorded it too: one item).
    let down = items(&page)
        .into_iter()
        .find(|row| {
            row["kind"] == "node_down"
                && row["recorded_by"]
                    .as_array()
                    .is_some_and(|by| by.contains(&Value::from("hist-a")))
        })
        .unwrap_or_else(|| panic!("a recorded b's leave: {page}"));
    assert_eq!(
        (&down["node"], &down["left"]),
        (&Value::from("hist-b"), &Value::from(true)),
        "{down}"
    );

    // Pages: newest first, a stable cursor, every row once.
    let (_, all) = get(&a.url("/api/audit?limit=1000"));
    let all_ids: Vec<i64> = items(&all)
        .iter()
        .map(|r| r["id"].as_i64().unwrap())
        .collect();
    assert!(all_ids.windows(2).all(|w| w[0] > w[1]), "{all_ids:?}");
    let mut paged = Vec::new();
    let mut url = a.url("/api/audit?limit=2");
    loop {
        let (status, page) = get(&url);
        assert_eq!(status, 200, "{page}");
        paged.extend(items(&page).iter().map(|r| r["id"].as_i64().unwrap()));
        match page["next_cursor"].as_str() {
            Some(cursor) => url = a.url(&format!("/api/audit?limit=2&cursor={cursor}")),
            None => break,
        }
    }
    assert!(paged.len() >= all_ids.len());
    assert_eq!(&paged[paged.len() - all_ids.len()..], &all_ids[..]);

    for (query, code) in [
        ("/api/audit?limit=0", "bad_limit"),
        ("/api/audit?kind=weather", "bad_kind"),
        ("/api/audit?since=yesterday", "bad_time"),
        ("/api/audit?cursor=%21%21", "bad_cursor"),
        ("/api/link-sessions?closed=maybe", "bad_closed"),
        ("/api/link-sessions?since=-1", "bad_time"),
    ] {
        let (status, body) = get(&a.url(query));
        assert_eq!(
            (status, body["error"].as_str()),
            (400, Some(code)),
            "{query}: {body}"
        );
    }
    a.stop();
}

#[test]
fn a_history_file_the_agent_must_not_write_exits_2_unless_history_is_off() {
    let dir = tempfile::tempdir().unwrap();
    type Make = fn(&std::path::Path);
    let cases: [(&str, Make, &str); 3] = [
        (
            "corrupt",
            |path| std::fs::write(path, vec![0x5a; 8192]).unwrap(),
            "is corrupt or not a SQLite database",
        ),
        (
            "foreign",
            |path| {
                rusqlite::Connection::open(path)
                    .unwrap()
                    .execute_batch("CREATE TABLE invoices (id INTEGER)")
                    .unwrap();
            },
            "belongs to another application",
        ),
        (
            "newer",
            |path| {
                rusqlite::Connection::open(path)
                    .unwrap()
                    .execute_batch(
                        "PRAGMA application_id = 1380930388; PRAGMA user_version = 7; CREATE TABLE audit (id INTEGER)",
                    )
                    .unwrap();
            },
            "has schema version 7, newer than the 2 this agent knows",
        ),
    ];
    for (name, make, expected) in cases {
        let data = dir.path().join(name);
        std::fs::create_dir_all(&data).unwrap();
        let file = data.join("history.sqlite3");
        make(&file);
        let output = command(name, &data, &[])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{name}: {stderr}");
        assert!(stderr.contains(expected), "{name}: {stderr}");
        assert!(stderr.contains(file.to_str().unwrap()), "{name}: {stderr}");
        assert!(stderr.contains("--history off"), "{name}: {stderr}");
        let agent = Agent::start(name, &data, &["--history", "off"]);
        let (status, body) = get(&agent.url("/api/audit"));
        assert_eq!(
            (status, body["error"].as_str()),
            (404, Some("history_off")),
            "{body}"
        );
        let (_, ready) = get(&agent.url("/readyz"));
        assert!(ready.get("history").is_none(), "{ready}");
        agent.kill();
    }
}

#[test]
fn two_agents_share_a_postgres_history_and_their_sessions_are_merged() {
    let server = history_support::Postgres::start();
    let url = server.url();
    let dir = tempfile::tempdir().unwrap();
    let a = Agent::start("pg-a", &dir.path().join("a"), &["--history", &url]);
    let b = Agent::start(
        "pg-b",
        &dir.path().join("b"),
        &["--history", &url, "--seed", &a.cluster],
    );
    eventually("a links to b", DEADLINE, || {
        let (_, sessions) = get(&a.url("/api/link-sessions?closed=false"));
        (sessions.as_array()?.len() == 1).then_some(())
    });
    let (_, ready) = get(&a.url("/readyz"));
    assert_eq!(ready["history"]["status"], "ok", "{ready}");
    // Each recorded the other up (in its own time: membership may tell it after the
    // link) before b stops.
    eventually("both agents recorded the other up", DEADLINE, || {
        let (_, page) = get(&a.url("/api/audit?kind=node_up&limit=1000"));
        let recorders: Vec<String> = items(&page)
            .iter()
            .map(|r| r["recorder"].as_str().unwrap_or_default().to_owned())
            .collect();
        (recorders.iter().any(|r| r == "pg-a") && recorders.iter().any(|r| r == "pg-b"))
            .then_some(())
    });
    b.stop();
    // a recorded its side of the link, b its own before it stopped: one row per
    // recorder, both under the pair (pg-a, pg-b).
    let sessions = eventually("both sides of the link are listed", DEADLINE, || {
        let (_, sessions) = get(&a.url("/api/link-sessions?closed=true"));
        let sessions = sessions.as_array()?.clone();
        let recorders: Vec<&str> = sessions
            .iter()
            .map(|s| s["recorder"].as_str().unwrap_or_default())
            .collect();
        (recorders.contains(&"pg-a") && recorders.contains(&"pg-b")).then_some(sessions)
    });
    for session in &sessions {
        let ends = [&session["recorder"], &session["peer"]];
        assert!(
            ends.contains(&&Value::from("pg-a")) && ends.contains(&&Value::from("pg-b")),
            "{session}"
        );
    }
    // Heartbeats that both agents kept are shown once per sample.
    let (_, beats) = get(&a.url("/api/nodes/pg-a/heartbeats?minutes=5"));
    let times: Vec<u64> = beats
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["at_ms"].as_u64().unwrap())
        .collect();
    assert!(times.windows(2).all(|w| w[0] < w[1]), "{times:?}");
    // An outage: the agent stays ready, and says the history is degraded.
    server.stop_server();
    let ready = eventually("/readyz reports the outage", DEADLINE, || {
        let (status, ready) = get(&a.url("/readyz"));
        (status == 200 && ready["history"]["status"] == "degraded").then_some(ready)
    });
    assert!(
        ready["history"]["error"]
            .as_str()
            .unwrap()
            .contains("postgres://roster@127.0.0.1"),
        "{ready}"
    );
    server.start_server();
    eventually("the history recovers", DEADLINE, || {
        let (_, ready) = get(&a.url("/readyz"));
        (ready["history"]["status"] == "ok").then_some(())
    });
    a.stop();
}
