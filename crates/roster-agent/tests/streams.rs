//! The event stream, metrics, the rate limit and bad inputs of the new endpoints, against
//! agents run as OS processes: SSE events arrive in order with increasing ids, a slow
//! client is told it lagged, `Last-Event-ID` resumes (or resets once the ring has moved
//! on), `/metrics` is Prometheus text with the named series, writes over the rate get 429
//! with `Retry-After`, and each bad input gets its 4xx and JSON error.

// Each test file uses a part of the shared helpers.
#[allow(dead_code)]
mod session_support;
mod support;

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::{Value, json};
use session_support::{SseStream, collect_until, raw};
use support::{AgentProcess, eventually, get, send};
use ureq::http::Method;

const STREAM_DEADLINE: Duration = Duration::from_secs(60);

fn post(url: &str, body: &Value) -> (u16, Value) {
    send(Method::POST, url, None, Some(&body.to_string()))
}

fn put(url: &str, body: Option<&Value>) -> (u16, Value) {
    let text = body.map(Value::to_string);
    send(Method::PUT, url, None, text.as_deref())
}

fn new_session(agent: &AgentProcess) -> (String, String) {
    let (status, session) = post(&agent.url("/api/sessions"), &json!({"ttl": "1h"}));
    assert_eq!(status, 201, "{session}");
    (
        session["id"].as_str().unwrap().to_owned(),
        session["pid"].as_str().unwrap().to_owned(),
    )
}

#[test]
fn the_event_stream_is_ordered_reports_lag_and_resumes() {
    let agent = AgentProcess::start("events", &["--event-buffer", "16", "--event-ring", "1000"]);
    let live = SseStream::open(&agent.url("/api/events?pattern=user/"), None).read();
    let (id, pid) = new_session(&agent);
    for key in ["user/1", "user/2", "room/x", "user/3"] {
        let path = if key.starts_with("room") {
            "groups"
        } else {
            "names"
        };
        let (status, _) = put(
            &agent.url(&format!("/api/sessions/{id}/{path}/{key}")),
            Some(&json!({"meta": {"k": key}})),
        );
        assert_eq!(status, 200);
    }
    let registered = collect_until(&live, STREAM_DEADLINE, |e| e.data["key"] == "user/3");
    let keys: Vec<&str> = registered
        .iter()
        .map(|e| e.data["key"].as_str().unwrap())
        .collect();
    assert_eq!(
        keys,
        ["user/1", "user/2", "user/3"],
        "the pattern filters room/x"
    );
    for pair in registered.windows(2) {
        assert!(pair[0].id < pair[1].id, "ids increase: {registered:?}");
    }
    for event in &registered {
        assert_eq!(event.event, "registered");
        assert_eq!(event.data["pid"], pid.as_str());
        assert_eq!(event.data["node"], "events");
        assert_eq!(event.data["reason"], "requested");
        assert_eq!(event.data["meta"]["k"], event.data["key"]);
    }
    assert_eq!(
        send(
            Method::DELETE,
            &agent.url(&format!("/api/sessions/{id}")),
            None,
            None
        )
        .0,
        204
    );
    let ended = collect_until(&live, STREAM_DEADLINE, |e| e.data["key"] == "user/3");
    assert!(
        ended
            .iter()
            .all(|e| e.event == "unregistered" && e.data["reason"] == "exit:session_deleted"),
        "{ended:?}"
    );

    // Resumed after the first registration: the rest is replayed from the ring, in order.
    let first = registered[0].id.unwrap();
    let resumed = SseStream::open(&agent.url("/api/events?pattern=user/"), Some(first)).read();
    let replayed = collect_until(&resumed, STREAM_DEADLINE, |e| {
        e.event == "unregistered" && e.data["key"] == "user/3"
    });
    let replayed_ids: Vec<u64> = replayed.iter().map(|e| e.id.unwrap()).collect();
    let expected: Vec<u64> = registered[1..]
        .iter()
        .chain(&ended)
        .map(|e| e.id.unwrap())
        .collect();
    assert_eq!(replayed_ids, expected);

    // A client that does not read falls behind by more than its buffer (16 events) once
    // the socket buffers are full (2000 events of 8 KiB): it is told how many it missed.
    let slow = SseStream::open(&agent.url("/api/events"), None);
    let (id, _) = new_session(&agent);
    let meta = json!({"meta": "x".repeat(8 * 1024)});
    for n in 0..2000 {
        let (status, _) = put(
            &agent.url(&format!("/api/sessions/{id}/groups/big/{n}")),
            Some(&meta),
        );
        assert_eq!(status, 200);
    }
    let slow = slow.read();
    let lagged = collect_until(&slow, STREAM_DEADLINE, |e| e.event == "lagged");
    let missed = lagged.last().unwrap().data["missed"].as_u64().unwrap();
    assert!(missed > 0, "{:?}", lagged.last());

    // The ring holds the last 1000 events: resuming after the first one is a reset.
    let reset = SseStream::open(&agent.url("/api/events"), Some(1)).read();
    let first = collect_until(&reset, STREAM_DEADLINE, |_| true);
    assert_eq!(first[0].event, "reset", "{:?}", first[0]);
    let (_, _, text) = raw(Method::GET, &agent.url("/metrics"), None, b"");
    let lag = parse_prometheus(&text)["roster_agent_subscriber_lag_total{source=\"client\"}"];
    assert!(lag >= 1.0, "the lag is counted: {lag}");
}

/// Parses Prometheus text into series (name with labels) and values.
fn parse_prometheus(text: &str) -> BTreeMap<String, f64> {
    let mut series = BTreeMap::new();
    for line in text.lines() {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (name, value) = line
            .rsplit_once(' ')
            .unwrap_or_else(|| panic!("bad line {line:?}"));
        let value: f64 = value
            .parse()
            .unwrap_or_else(|_| panic!("bad value in {line:?}"));
        let bare = name.split('{').next().unwrap();
        assert!(
            bare.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':'),
            "bad name in {line:?}"
        );
        series.insert(name.to_owned(), value);
    }
    series
}

/// A peer that joins an agent holding names gets them in a snapshot: both agents count the
/// resync's bytes in `/metrics`, the same on both sides.
#[test]
fn resync_bytes_show_in_metrics_after_a_peer_joins_with_entries() {
    let a = AgentProcess::start("resync-a", &[]);
    let (id, _) = new_session(&a);
    for n in 0..50 {
        let url = a.url(&format!("/api/sessions/{id}/names/user/{n}"));
        assert_eq!(put(&url, None).0, 200);
    }
    let b = AgentProcess::start("resync-b", &["--seed", &a.cluster]);
    let names = "roster_registry_names{scope=\"default\"}";
    eventually("b holds a's 50 names", STREAM_DEADLINE, || {
        let (_, _, text) = raw(Method::GET, &b.url("/metrics"), None, b"");
        (parse_prometheus(&text).get(names) == Some(&50.0)).then_some(())
    });
    let (sent, received) = eventually(
        "b has read every resync byte a sent",
        STREAM_DEADLINE,
        || {
            let (_, _, a_text) = raw(Method::GET, &a.url("/metrics"), None, b"");
            let (_, _, b_text) = raw(Method::GET, &b.url("/metrics"), None, b"");
            let sent = parse_prometheus(&a_text)["roster_resync_bytes_sent_total"];
            let received = parse_prometheus(&b_text)["roster_resync_bytes_received_total"];
            (sent > 0.0 && sent == received).then_some((sent, received))
        },
    );
    // 50 names of at least "user/0" and a pid each.
    assert!(sent > 50.0 * 8.0, "a snapshot of 50 names in {sent} bytes");
    assert_eq!(sent, received);
}

#[test]
fn metrics_are_prometheus_text_with_the_named_series() {
    let agent = AgentProcess::start("metrics", &[]);
    let (id, _) = new_session(&agent);
    assert_eq!(
        put(&agent.url(&format!("/api/sessions/{id}/names/a")), None).0,
        200
    );
    assert_eq!(
        put(&agent.url(&format!("/api/sessions/{id}/groups/g")), None).0,
        200
    );
    assert_eq!(
        put(&agent.url(&format!("/api/sessions/{id}/keepalive")), None).0,
        200
    );
    let (status, headers, text) = raw(Method::GET, &agent.url("/metrics"), None, b"");
    assert_eq!(status, 200);
    assert!(
        headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    let series = parse_prometheus(&text);
    let expect = [
        ("roster_registry_names{scope=\"default\"}", Some(1.0)),
        ("roster_group_memberships{scope=\"default\"}", Some(1.0)),
        ("roster_agent_writes_total{kind=\"register\"}", Some(1.0)),
        ("roster_agent_writes_total{kind=\"join\"}", Some(1.0)),
        ("roster_agent_writes_total{kind=\"keepalive\"}", Some(1.0)),
        ("roster_agent_sessions_open", Some(1.0)),
        ("roster_agent_sessions_created_total", Some(1.0)),
        ("roster_agent_sessions_expired_total", Some(0.0)),
        ("roster_nodes{status=\"online\"}", Some(1.0)),
        ("roster_links", Some(0.0)),
        ("roster_digest_repairs_total", None),
        ("roster_conflicts_total", Some(0.0)),
        ("roster_resyncs_total", Some(0.0)),
        ("roster_agent_subscriber_lag_total{source=\"client\"}", None),
        ("roster_cluster_bytes_sent_total", None),
        ("roster_resync_bytes_sent_total", Some(0.0)),
        ("roster_resync_bytes_received_total", Some(0.0)),
        (
            "roster_agent_history_records_total{outcome=\"written\"}",
            None,
        ),
        ("roster_agent_history_degraded", Some(0.0)),
        ("roster_partition_suspected", Some(0.0)),
        ("roster_fenced", Some(0.0)),
    ];
    // Every series the shipped Prometheus alerting rules read is exposed.
    let rules = include_str!("../../../docs/prometheus-alerts.yml");
    for word in rules.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')) {
        if word.starts_with("roster_") {
            assert!(
                series
                    .keys()
                    .any(|s| s == word || s.starts_with(&format!("{word}{{"))),
                "docs/prometheus-alerts.yml reads {word}, which /metrics lacks:\n{text}"
            );
        }
    }
    for (name, value) in expect {
        let found = series
            .get(name)
            .unwrap_or_else(|| panic!("no {name} in\n{text}"));
        if let Some(value) = value {
            assert_eq!(*found, value, "{name}");
        }
    }
    assert!(
        series
            .keys()
            .any(|k| k.starts_with("roster_agent_http_requests_total")
                && k.contains("route=\"/api/sessions\"")
                && k.contains("status=\"201\"")),
        "{text}"
    );
}

#[test]
fn writes_over_the_rate_get_429_with_retry_after() {
    let agent = AgentProcess::start("limited", &["--rate-limit", "1", "--rate-burst", "2"]);
    let body = json!({"ttl": "10s"}).to_string();
    let url = agent.url("/api/sessions");
    for _ in 0..2 {
        let (status, _, _) = raw(
            Method::POST,
            &url,
            Some("application/json"),
            body.as_bytes(),
        );
        assert_eq!(status, 201);
    }
    let (status, headers, text) = raw(
        Method::POST,
        &url,
        Some("application/json"),
        body.as_bytes(),
    );
    assert_eq!(status, 429, "{text}");
    let retry: u64 = headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!(retry >= 1, "{retry}");
    let error: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(error["error"], "rate_limited");
    assert_eq!(
        get(&agent.url("/api/sessions")).0,
        200,
        "reads are not limited"
    );
}

/// A request (method, path, content type, body) and the status and code it gets.
type Case<'a> = (Method, String, Option<&'a str>, String, u16, &'a str);

#[test]
fn each_bad_input_of_the_new_endpoints_gets_its_4xx_and_json_error() {
    let agent = AgentProcess::start("inputs", &["--max-sessions", "1"]);
    let (id, pid) = new_session(&agent);
    let (incarnation, _) = pid.split_once('.').unwrap();
    let stranger = format!("{incarnation}.999999>");
    let long_key = "k".repeat(2000);
    let big = format!("{{\"ttl\": \"{}\"}}", "x".repeat(70 * 1024));
    let json = Some("application/json");
    let cases: Vec<Case<'_>> = vec![
        (
            Method::POST,
            "/api/sessions".into(),
            json,
            r#"{"ttl": "ten"}"#.into(),
            400,
            "bad_ttl",
        ),
        (
            Method::POST,
            "/api/sessions".into(),
            json,
            r#"{"ttl": "500ms"}"#.into(),
            400,
            "bad_ttl",
        ),
        (
            Method::POST,
            "/api/sessions".into(),
            json,
            r#"{"ttl": "2h"}"#.into(),
            400,
            "bad_ttl",
        ),
        (
            Method::POST,
            "/api/sessions".into(),
            json,
            r#"{"ttl": "#.into(),
            400,
            "malformed_json",
        ),
        (
            Method::POST,
            "/api/sessions".into(),
            json,
            r#"{"ttl": 5}"#.into(),
            422,
            "invalid_body",
        ),
        (
            Method::POST,
            "/api/sessions".into(),
            None,
            r#"{"ttl": "5s"}"#.into(),
            415,
            "wrong_content_type",
        ),
        (
            Method::POST,
            "/api/sessions".into(),
            json,
            big,
            413,
            "body_too_large",
        ),
        (
            Method::POST,
            "/api/sessions".into(),
            json,
            r#"{"ttl": "5s"}"#.into(),
            503,
            "too_many_sessions",
        ),
        (
            Method::PUT,
            format!("/api/sessions/{id}/names/a"),
            Some("text/plain"),
            r#"{"meta": 1}"#.into(),
            415,
            "wrong_content_type",
        ),
        (
            Method::PUT,
            "/api/sessions/nope/keepalive".into(),
            None,
            String::new(),
            404,
            "unknown_session",
        ),
        (
            Method::GET,
            "/api/sessions/nope".into(),
            None,
            String::new(),
            404,
            "unknown_session",
        ),
        (
            Method::DELETE,
            "/api/sessions/nope".into(),
            None,
            String::new(),
            404,
            "unknown_session",
        ),
        (
            Method::PUT,
            "/api/sessions/nope/names/a".into(),
            None,
            String::new(),
            404,
            "unknown_session",
        ),
        (
            Method::PUT,
            format!("/api/sessions/{id}/names/a/"),
            None,
            String::new(),
            400,
            "bad_key",
        ),
        (
            Method::PUT,
            format!("/api/sessions/{id}/names/{long_key}"),
            None,
            String::new(),
            400,
            "bad_key",
        ),
        (
            Method::PUT,
            format!("/api/sessions/{id}/names/a"),
            json,
            r#"{"meta": "#.into(),
            400,
            "malformed_json",
        ),
        (
            Method::PUT,
            format!("/api/sessions/{id}/names/a"),
            json,
            r#"{"meta": 1, "x": 2}"#.into(),
            422,
            "invalid_body",
        ),
        (
            Method::PUT,
            format!("/api/sessions/{id}/names/a?scope=nope"),
            None,
            String::new(),
            404,
            "unknown_scope",
        ),
        (
            Method::DELETE,
            format!("/api/sessions/{id}/names/never"),
            None,
            String::new(),
            404,
            "unknown_name",
        ),
        (
            Method::DELETE,
            format!("/api/sessions/{id}/groups/never"),
            None,
            String::new(),
            404,
            "not_a_member",
        ),
        (
            Method::GET,
            format!("/api/sessions/{id}/messages?wait=forever"),
            None,
            String::new(),
            400,
            "bad_wait",
        ),
        (
            Method::GET,
            format!("/api/sessions/{id}/messages?wait=2m"),
            None,
            String::new(),
            400,
            "bad_wait",
        ),
        (
            Method::POST,
            "/api/send".into(),
            json,
            r#"{"to": "12", "message": 1}"#.into(),
            400,
            "bad_pid",
        ),
        (
            Method::POST,
            "/api/send".into(),
            json,
            format!(r#"{{"to": "{stranger}", "message": 1}}"#),
            404,
            "unknown_process",
        ),
        (
            // A pid of a node that is not in the cluster: gone for good, not unreachable.
            Method::POST,
            "/api/send".into(),
            json,
            r#"{"to": "<5f0c2a9e3b1d7c44.17>", "message": 1}"#.into(),
            404,
            "unknown_process",
        ),
        (
            Method::POST,
            "/api/send".into(),
            json,
            r#"{"message": 1}"#.into(),
            422,
            "invalid_body",
        ),
        (
            Method::POST,
            "/api/dispatch".into(),
            json,
            r#"{"key": "", "message": 1}"#.into(),
            400,
            "bad_key",
        ),
        (
            Method::POST,
            "/api/dispatch".into(),
            json,
            r#"{"key": "k", "scope": "nope", "message": 1}"#.into(),
            404,
            "unknown_scope",
        ),
        (
            Method::GET,
            "/api/events?nodes=maybe".into(),
            None,
            String::new(),
            400,
            "bad_query",
        ),
        (
            Method::GET,
            format!("/api/events?pattern={long_key}/"),
            None,
            String::new(),
            400,
            "bad_prefix",
        ),
        (
            Method::GET,
            "/api/events?scope=nope".into(),
            None,
            String::new(),
            404,
            "unknown_scope",
        ),
        (
            Method::PUT,
            "/api/external-nodes/w/status".into(),
            json,
            r#"{"status": "sideways"}"#.into(),
            422,
            "invalid_body",
        ),
        (
            Method::POST,
            "/api/external-nodes/w/heartbeat".into(),
            json,
            r#"{"cpu_load": "high"}"#.into(),
            422,
            "invalid_body",
        ),
        (
            Method::POST,
            "/api/external-nodes/w/heartbeat".into(),
            None,
            String::new(),
            404,
            "not_kept_here",
        ),
    ];
    for (method, path, content_type, body, status, code) in cases {
        let (got, _, text) = raw(
            method.clone(),
            &agent.url(&path),
            content_type,
            body.as_bytes(),
        );
        let error: Value = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("{method} {path}: not JSON ({e}): {text}"));
        assert_eq!(
            (got, error["error"].as_str().unwrap_or_default()),
            (status, code),
            "{method} {path}: {text}"
        );
        assert!(error["message"].is_string(), "{method} {path}: {text}");
    }
}

#[test]
fn sigterm_ends_open_event_streams_and_the_agent_exits() {
    let mut agent = AgentProcess::start("stopping", &[]);
    let events = SseStream::open(&agent.url("/api/events?nodes=true"), None).read();
    let (id, _) = new_session(&agent);
    let messages = SseStream::open(&agent.url(&format!("/api/sessions/{id}/messages")), None);
    agent.terminate();
    let status = agent.wait_exit(Duration::from_secs(20));
    assert!(status.success(), "{status}");
    drop(messages);
    // The stream ended: the channel closes once the reader thread sees the end.
    let end = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        match events.recv_timeout(end.saturating_duration_since(std::time::Instant::now())) {
            Ok(_) => {}
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => break,
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => panic!("the stream did not end"),
        }
    }
}
