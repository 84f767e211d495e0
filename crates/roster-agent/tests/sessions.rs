//! Sessions across three agents (OS processes): a name registered through one agent's
//! session is found through the others, a keepalive extends a session, a lapsed or deleted
//! session's entries disappear on every node and later calls get `session_expired`;
//! messages reach a session's pid from another agent; external nodes are kept by the
//! agent that registered them.

// Each test file uses a part of the shared helpers.
#[allow(dead_code)]
mod session_support;
mod support;

use std::time::Duration;

use serde_json::{Value, json};
use session_support::{SseStream, collect_until};
use support::{AgentProcess, eventually, get, send};
use ureq::http::Method;

/// How long a cluster of three may take to form on a loaded machine.
const FORM_DEADLINE: Duration = Duration::from_secs(30);

/// How long a change may take to reach every node.
const SPREAD_DEADLINE: Duration = Duration::from_secs(15);

fn post(url: &str, body: &Value) -> (u16, Value) {
    send(Method::POST, url, None, Some(&body.to_string()))
}

fn put(url: &str, body: Option<&Value>) -> (u16, Value) {
    let text = body.map(Value::to_string);
    send(Method::PUT, url, None, text.as_deref())
}

fn delete(url: &str) -> (u16, Value) {
    send(Method::DELETE, url, None, None)
}

fn cluster_of_three() -> [AgentProcess; 3] {
    let a = AgentProcess::start("agent-a", &[]);
    let seed = a.cluster.clone();
    let b = AgentProcess::start("agent-b", &["--seed", &seed]);
    let c = AgentProcess::start("agent-c", &["--seed", &seed]);
    for agent in [&a, &b, &c] {
        eventually(
            &format!("{} is linked to two peers", agent.name),
            FORM_DEADLINE,
            || {
                let (_, probe) = get(&agent.url("/readyz"));
                (probe["peers"] == 2).then_some(())
            },
        );
    }
    [a, b, c]
}

fn create_session(agent: &AgentProcess, ttl: &str) -> Value {
    let (status, session) = post(
        &agent.url("/api/sessions"),
        &json!({"ttl": ttl, "name": "test"}),
    );
    assert_eq!(status, 201, "{session}");
    session
}

fn name_on(agent: &AgentProcess, key: &str) -> (u16, Value) {
    get(&agent.url(&format!("/api/registry/{key}")))
}

fn gone_everywhere(agents: &[AgentProcess], key: &str) {
    for agent in agents {
        eventually(
            &format!("{key} is gone on {}", agent.name),
            SPREAD_DEADLINE,
            || (name_on(agent, key).0 == 404).then_some(()),
        );
    }
}

#[test]
fn a_session_s_names_reach_every_agent_until_it_lapses_or_is_deleted() {
    let agents = cluster_of_three();
    let [a, b, c] = &agents;

    // Registered through a, found through b and c with its node and meta.
    let session = create_session(a, "3s");
    let id = session["id"].as_str().unwrap().to_owned();
    let pid = session["pid"].as_str().unwrap().to_owned();
    assert_eq!(session["ttl_ms"], 3000);
    assert!(session["expires_at_ms"].as_u64().unwrap() > 0);
    let meta = json!({"region": "eu", "weight": 3});
    let (status, done) = put(
        &a.url(&format!("/api/sessions/{id}/names/user/42")),
        Some(&json!({"meta": meta})),
    );
    assert_eq!(status, 200, "{done}");
    for agent in [b, c] {
        let found = eventually(
            &format!("user/42 is found through {}", agent.name),
            SPREAD_DEADLINE,
            || {
                let (status, name) = name_on(agent, "user/42");
                (status == 200).then_some(name)
            },
        );
        assert_eq!(found["pid"], pid.as_str());
        assert_eq!(found["node"], "agent-a");
        assert_eq!(found["meta"], meta);
    }
    let (status, _) = put(&a.url(&format!("/api/sessions/{id}/groups/room/1")), None);
    assert_eq!(status, 200);
    let (_, held) = get(&a.url(&format!("/api/sessions/{id}")));
    assert_eq!(
        held["names"],
        json!([{"scope": "default", "key": "user/42"}]),
        "{held}"
    );
    assert_eq!(
        held["groups"],
        json!([{"scope": "default", "key": "room/1"}]),
        "{held}"
    );

    // Unique cluster-wide: a session on b is refused with the holder.
    let other = create_session(b, "30s");
    let other_id = other["id"].as_str().unwrap();
    let (status, refused) = put(
        &b.url(&format!("/api/sessions/{other_id}/names/user/42")),
        None,
    );
    assert_eq!(status, 409, "{refused}");
    assert_eq!(refused["error"], "name_taken");
    assert_eq!(refused["holder"]["pid"], pid.as_str());

    // Messages: sent through c, received through a's long poll.
    let (status, sent) = post(
        &c.url("/api/send"),
        &json!({"to": pid, "message": {"hello": "world"}}),
    );
    assert_eq!(status, 200, "{sent}");
    let (status, messages) = get(&a.url(&format!("/api/sessions/{id}/messages?wait=10s")));
    assert_eq!(status, 200);
    assert_eq!(
        messages[0]["message"],
        json!({"hello": "world"}),
        "{messages}"
    );
    let (status, dispatched) = post(
        &c.url("/api/dispatch"),
        &json!({"key": "room/1", "message": 7}),
    );
    assert_eq!(
        (status, &dispatched["reached"]),
        (200, &json!(1)),
        "{dispatched}"
    );
    let (_, messages) = get(&a.url(&format!("/api/sessions/{id}/messages?wait=10s")));
    assert_eq!(messages[0]["message"], 7, "{messages}");

    // Keepalives extend it past its TTL: four of them over about 4 s of a 3 s TTL.
    let first_expiry = held["expires_at_ms"].as_u64().unwrap();
    let watch = SseStream::open(&c.url("/api/events?pattern=user/42"), None).read();
    for _ in 0..4 {
        std::thread::sleep(Duration::from_millis(1000));
        let (status, kept) = put(&a.url(&format!("/api/sessions/{id}/keepalive")), None);
        assert_eq!(status, 200, "{kept}");
    }
    let (_, kept) = get(&a.url(&format!("/api/sessions/{id}")));
    assert!(
        kept["expires_at_ms"].as_u64().unwrap() > first_expiry + 3000,
        "{kept}"
    );
    assert_eq!(
        name_on(c, "user/42").0,
        200,
        "still held after its first TTL"
    );

    // Lapsed: gone everywhere, with the reason, and the keepalive is told so.
    gone_everywhere(&agents, "user/42");
    let events = collect_until(&watch, SPREAD_DEADLINE, |e| e.event == "unregistered");
    let removed = events.last().unwrap();
    assert_eq!(
        removed.data["reason"], "exit:session_expired",
        "{removed:?}"
    );
    assert_eq!(removed.data["node"], "agent-a", "{removed:?}");
    let (status, expired) = put(&a.url(&format!("/api/sessions/{id}/keepalive")), None);
    assert_eq!(
        (status, &expired["error"]),
        (404, &json!("session_expired")),
        "{expired}"
    );
    let (status, expired) = get(&a.url(&format!("/api/sessions/{id}")));
    assert_eq!(
        (status, &expired["error"]),
        (404, &json!("session_expired"))
    );

    // The name is free now: b's session takes it; deleting b's session frees it again.
    let (status, _) = put(
        &b.url(&format!("/api/sessions/{other_id}/names/user/42")),
        None,
    );
    assert_eq!(status, 200);
    let (status, found) = eventually("b's name reaches a", SPREAD_DEADLINE, || {
        let (status, name) = name_on(a, "user/42");
        (status == 200 && name["node"] == "agent-b").then_some((status, name))
    });
    assert_eq!(status, 200, "{found}");
    let (_, listed) = get(&b.url("/api/sessions"));
    assert_eq!(listed.as_array().unwrap().len(), 1, "{listed}");
    assert_eq!(delete(&b.url(&format!("/api/sessions/{other_id}"))).0, 204);
    gone_everywhere(&agents, "user/42");
    let (status, deleted) = put(&b.url(&format!("/api/sessions/{other_id}/keepalive")), None);
    assert_eq!(
        (status, &deleted["error"]),
        (404, &json!("session_expired"))
    );
    let (status, unknown) = put(&b.url("/api/sessions/never/keepalive"), None);
    assert_eq!(
        (status, &unknown["error"]),
        (404, &json!("unknown_session"))
    );
}

#[test]
fn external_nodes_are_kept_by_the_agent_that_registered_them() {
    let agents = cluster_of_three();
    let [a, b, _] = &agents;
    let (status, node) = put(
        &a.url("/api/external-nodes/worker-7"),
        Some(
            &json!({"role": "worker", "labels": {"lang": "go"}, "version": "1.2", "addrs": ["10.0.0.7:80"]}),
        ),
    );
    assert_eq!(status, 200, "{node}");
    let (status, beat) = post(
        &a.url("/api/external-nodes/worker-7/heartbeat"),
        &json!({"cpu_load": 0.5, "mem_used_bytes": 10, "mem_total_bytes": 100, "app": {"queue": 3.0}}),
    );
    assert_eq!((status, &beat["status"]), (200, &json!("online")), "{beat}");
    let seen = eventually("b sees worker-7", SPREAD_DEADLINE, || {
        let (status, node) = get(&b.url("/api/nodes/worker-7"));
        (status == 200).then_some(node)
    });
    assert_eq!(seen["role"], "worker", "{seen}");
    let (status, set) = put(
        &a.url("/api/external-nodes/worker-7/status"),
        Some(&json!({"status": "draining", "reason": "deploy"})),
    );
    assert_eq!((status, &set["status"]), (200, &json!("draining")), "{set}");

    let refusals = [
        (
            b.url("/api/external-nodes/worker-7/heartbeat"),
            Method::POST,
            None,
            404,
            "not_kept_here",
        ),
        (
            a.url("/api/external-nodes/agent-b"),
            Method::PUT,
            None,
            409,
            "is_member",
        ),
        (
            a.url("/api/external-nodes/worker-7/status"),
            Method::PUT,
            Some(json!({"status": "unreachable"})),
            400,
            "unsettable_status",
        ),
    ];
    for (url, method, body, code, error) in refusals {
        let text = body.map(|b| b.to_string());
        let (status, refused) = send(method, &url, None, text.as_deref());
        assert_eq!(
            (status, refused["error"].as_str().unwrap()),
            (code, error),
            "{url}: {refused}"
        );
    }
}

/// An agent of the fenced cluster: three expected nodes, majority, fence.
fn fencing_agent(name: &str, seed: Option<&str>) -> AgentProcess {
    let mut flags = vec![
        "--expected-node",
        "fence-a,fence-b,fence-c",
        "--split-brain-strategy",
        "majority",
        "--split-brain-action",
        "fence",
    ];
    if let Some(seed) = seed {
        flags.extend(["--seed", seed]);
    }
    AgentProcess::start(name, &flags)
}

#[test]
fn a_fenced_minority_is_not_ready() {
    let a = fencing_agent("fence-a", None);
    let b = fencing_agent("fence-b", Some(&a.cluster));
    let c = fencing_agent("fence-c", Some(&a.cluster));
    for agent in [&a, &b, &c] {
        eventually(&format!("{} is ready", agent.name), FORM_DEADLINE, || {
            let (status, probe) = get(&agent.url("/readyz"));
            (status == 200 && probe["peers"] == 2).then_some(())
        });
    }
    // kill -9 two of them: the survivor is a minority of the expected three.
    drop(b);
    drop(c);
    let probe = eventually("the survivor is fenced", Duration::from_secs(60), || {
        let (status, probe) = get(&a.url("/readyz"));
        (status == 503
            && probe["reason"]
                .as_str()
                .unwrap_or_default()
                .contains("fenced"))
        .then_some(probe)
    });
    assert_eq!(probe["status"], "not_ready", "{probe}");
    let (status, partition) = get(&a.url("/api/partition"));
    assert_eq!(status, 200);
    assert_eq!(partition["fenced"], true, "{partition}");
    assert_eq!(partition["keeps_writing"], false, "{partition}");
    let session = create_session(&a, "30s");
    let id = session["id"].as_str().unwrap();
    let (status, refused) = put(&a.url(&format!("/api/sessions/{id}/names/leader")), None);
    assert_eq!(
        (status, &refused["error"]),
        (503, &json!("fenced")),
        "{refused}"
    );
}

#[test]
fn expired_and_deleted_sessions_are_in_the_audit_log() {
    let agent = AgentProcess::start("agent-audit", &[]);
    let lapsing = create_session(&agent, "1s");
    let deleted = create_session(&agent, "30s");
    let id = |s: &Value| s["id"].as_str().expect("id").to_owned();
    assert_eq!(
        delete(&agent.url(&format!("/api/sessions/{}", id(&deleted)))).0,
        204
    );
    let audited = |kind: &str, session: &Value| {
        let (status, page) = get(&agent.url(&format!("/api/audit?kind={kind}")));
        (status == 200)
            .then(|| page["items"].as_array().cloned().unwrap_or_default())
            .and_then(|items| {
                items
                    .into_iter()
                    .find(|row| row["session_id"] == session["id"])
            })
    };
    let row = eventually("the deletion is audited", SPREAD_DEADLINE, || {
        audited("session_deleted", &deleted)
    });
    assert_eq!(row["name"], "test", "{row}");
    assert_eq!(row["pid"], deleted["pid"], "{row}");
    let row = eventually("the expiry is audited", SPREAD_DEADLINE, || {
        audited("session_expired", &lapsing)
    });
    assert_eq!(row["recorder"], "agent-audit", "{row}");
    assert!(
        row["reason"].as_str().is_some_and(|r| r.contains("TTL")),
        "{row}"
    );
}
