//! The HTTP API in process, without a port (tower's `oneshot` on the router): listings,
//! pagination under concurrent writes, meta as JSON, one JSON error per bad input, and an
//! OpenAPI document that matches the routes.

use std::collections::{BTreeMap, BTreeSet};

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use roster::{Node, Process};
use roster_agent::config::{AgentArgs, FileConfig, SecretEnv, Settings};
use roster_agent::http::{self, limits};
use roster_agent::logging::LogControl;
use roster_agent::state::AppState;
use serde_json::{Value, json};
use tower::ServiceExt;

const TOKEN: &str = "write-token-0123456789";

/// A node with an agent's router over it; the log layer is kept alive for the log-level
/// endpoint.
struct Api {
    node: Node,
    router: Router,
    _log_layer: Box<dyn std::any::Any + Send>,
}

impl Api {
    fn new() -> Self {
        let node = Node::builder().name("api-test").start().unwrap();
        node.connect("other").unwrap();
        let args = AgentArgs {
            name: Some("api-test".into()),
            ..AgentArgs::default()
        };
        let env = SecretEnv {
            token: Some(TOKEN.into()),
            ..SecretEnv::default()
        };
        let settings = Settings::merge(args, FileConfig::default(), env).unwrap();
        let (log, layer) = LogControl::detached("info").unwrap();
        let state = AppState::new(node.clone(), settings.into(), log);
        Self {
            node,
            router: http::router(state),
            _log_layer: Box::new(layer),
        }
    }

    async fn call(&self, request: Request<Body>) -> (StatusCode, Value) {
        let response = self.router.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap();
        let value = if bytes.is_empty() {
            Value::Null
        } else if response_is_text(&bytes) {
            Value::String(String::from_utf8_lossy(&bytes).into_owned())
        } else {
            serde_json::from_slice(&bytes)
                .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&bytes)))
        };
        (status, value)
    }

    async fn get(&self, uri: &str) -> (StatusCode, Value) {
        self.call(Request::get(uri).body(Body::empty()).unwrap())
            .await
    }
}

#[derive(serde::Serialize)]
struct Session {
    region: String,
    weight: u32,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_name_shows_its_owner_node_and_its_meta_as_json() {
    let api = Api::new();
    let p = api.node.new_process();
    let meta = Session {
        region: "eu".into(),
        weight: 3,
    };
    p.register("user/1", &meta).unwrap();
    p.register("room/a b", &()).unwrap();
    let (status, name) = api.get("/api/registry/user/1").await;
    assert_eq!(status, StatusCode::OK, "{name}");
    assert_eq!(name["key"], "user/1");
    assert_eq!(name["node"], "api-test");
    assert_eq!(name["pid"], p.pid().to_string());
    assert_eq!(name["meta"], json!({"region": "eu", "weight": 3}));
    let (status, name) = api.get("/api/registry/room%2Fa%20b").await;
    assert_eq!((status, &name["key"]), (StatusCode::OK, &json!("room/a b")));
    assert_eq!(name["meta"], Value::Null);
    let (status, page) = api.get("/api/registry?prefix=user/").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(page["items"].as_array().unwrap().len(), 1);
    assert_eq!(page["next_cursor"], Value::Null);
    let other = api.node.scope("other").unwrap();
    other.register(&p, "only/here", &1u8).unwrap();
    let (status, name) = api.get("/api/registry/only/here?scope=other").await;
    assert_eq!((status, &name["meta"]), (StatusCode::OK, &json!(1)));
    let (status, _) = api.get("/api/registry/only/here").await;
    assert_eq!(
        status,
        StatusCode::NOT_FOUND,
        "the default scope does not have it"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn groups_list_with_member_counts_and_members_with_a_limit() {
    let api = Api::new();
    let members: Vec<Process> = (0..3).map(|_| api.node.new_process()).collect();
    for (i, p) in members.iter().enumerate() {
        p.join("room/1", &json!({ "seat": i })).unwrap();
    }
    members[0].join("room/2", &()).unwrap();
    let (status, page) = api.get("/api/groups?prefix=room/").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        page["items"],
        json!([{"key": "room/1", "members": 3}, {"key": "room/2", "members": 1}])
    );
    let (status, group) = api.get("/api/groups/room/1?limit=2").await;
    assert_eq!(status, StatusCode::OK, "{group}");
    assert_eq!(group["count"], 3);
    assert_eq!(group["members"].as_array().unwrap().len(), 2);
    assert_eq!(group["members"][0]["node"], "api-test");
    assert!(group["members"][0]["meta"]["seat"].is_number(), "{group}");
    let (status, missing) = api.get("/api/groups/room/9").await;
    assert_eq!(
        (status, &missing["error"]),
        (StatusCode::NOT_FOUND, &json!("unknown_group"))
    );
}

/// Pages through names while names before and after the cursor come and go: no key twice,
/// and every key that existed throughout is seen.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registry_pages_are_stable_under_concurrent_writes() {
    let api = Api::new();
    let mut owners: BTreeMap<String, Process> = BTreeMap::new();
    for i in 0..250 {
        let p = api.node.new_process();
        let key = format!("user/{i:04}");
        p.register(&key, &i).unwrap();
        owners.insert(key, p);
    }
    // Keys removed during the walk; every other initial key exists throughout.
    let doomed: BTreeSet<String> = ["user/0005", "user/0120", "user/0240"]
        .map(String::from)
        .into();
    let throughout: BTreeSet<String> = owners
        .keys()
        .filter(|k| !doomed.contains(*k))
        .cloned()
        .collect();
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    let mut round = 0;
    loop {
        let uri = match &cursor {
            None => "/api/registry?prefix=user/&limit=100".to_owned(),
            Some(c) => format!("/api/registry?prefix=user/&limit=100&cursor={c}"),
        };
        let (status, page) = api.get(&uri).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        seen.extend(
            page["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|item| item["key"].as_str().unwrap().to_owned()),
        );
        // Between pages: remove names on both sides of the cursor, add new ones.
        for key in &doomed {
            owners.remove(key);
        }
        for extra in [format!("user/0000a{round}"), format!("user/9999-{round}")] {
            let p = api.node.new_process();
            p.register(&extra, &()).unwrap();
            owners.insert(extra, p);
        }
        round += 1;
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
        assert!(round < 20, "pagination must end");
    }
    let unique: BTreeSet<String> = seen.iter().cloned().collect();
    assert_eq!(unique.len(), seen.len(), "no key twice");
    let missing: Vec<&String> = throughout.difference(&unique).collect();
    assert!(missing.is_empty(), "skipped: {missing:?}");
}

/// Every bad input gets its 4xx and `{"error": CODE, "message": TEXT}`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_bad_input_gets_its_code_and_a_json_error() {
    let api = Api::new();
    let long_key = "k".repeat(2000);
    let put = |body: &str, content_type: Option<&str>| {
        let mut request =
            Request::put("/api/log-level").header("authorization", format!("Bearer {TOKEN}"));
        if let Some(content_type) = content_type {
            request = request.header("content-type", content_type);
        }
        request.body(Body::from(body.to_owned())).unwrap()
    };
    let json_type = Some("application/json");
    let get = |uri: &str| Request::get(uri).body(Body::empty()).unwrap();
    let mut many_headers = Request::get("/api/nodes");
    for i in 0..(limits::MAX_HEADERS + 1) {
        many_headers = many_headers.header(format!("x-h{i}"), "v");
    }
    let cases: Vec<(Request<Body>, u16, &str)> = vec![
        (get("/api/registry?limit=0"), 400, "bad_limit"),
        (get("/api/registry?limit=ten"), 400, "bad_limit"),
        (get("/api/groups?limit=1001"), 400, "bad_limit"),
        (get("/api/groups/room/1?limit=0"), 400, "bad_limit"),
        (get("/api/registry?prefix=user"), 400, "bad_prefix"),
        (get("/api/groups?prefix=room"), 400, "bad_prefix"),
        (get("/api/registry?cursor=***"), 400, "bad_cursor"),
        (get("/api/registry?limit=1&limit=2"), 400, "bad_query"),
        (get("/api/registry?scope=nope"), 404, "unknown_scope"),
        (get("/api/groups?scope=nope"), 404, "unknown_scope"),
        (get("/api/registry/user/1?scope=nope"), 404, "unknown_scope"),
        (get("/api/groups/room/"), 400, "bad_key"),
        (get("/api/registry/user/"), 400, "bad_key"),
        (get(&format!("/api/registry/{long_key}")), 400, "bad_key"),
        (get("/api/registry/user/404"), 404, "unknown_name"),
        (get("/api/nodes/nobody"), 404, "unknown_node"),
        (get("/api/nodes/nobody/heartbeats"), 404, "unknown_node"),
        (
            get("/api/nodes/api-test/heartbeats?minutes=0"),
            400,
            "bad_minutes",
        ),
        (
            // Past the default heartbeat retention of 7 days.
            get("/api/nodes/api-test/heartbeats?minutes=10081"),
            400,
            "bad_minutes",
        ),
        (get("/api/nodes?status=asleep"), 400, "bad_status"),
        (get("/api/nodes?label=novalue"), 400, "bad_label"),
        (get("/api/nodes?colour=red"), 400, "bad_query"),
        (get("/api/nope"), 404, "not_found"),
        (
            Request::post("/api/graph")
                .header("authorization", format!("Bearer {TOKEN}"))
                .body(Body::empty())
                .unwrap(),
            405,
            "method_not_allowed",
        ),
        (
            Request::delete("/api/nodes/api-test")
                .header("authorization", format!("Bearer {TOKEN}"))
                .body(Body::empty())
                .unwrap(),
            409,
            "node_is_up",
        ),
        (
            Request::delete("/api/nodes/api-test")
                .body(Body::empty())
                .unwrap(),
            401,
            "unauthorized",
        ),
        (
            Request::post("/api/faults/isolate")
                .header("authorization", format!("Bearer {TOKEN}"))
                .header("content-type", "application/json")
                .body(Body::from(r#"{"for": "1s"}"#))
                .unwrap(),
            404,
            "fault_injection_off",
        ),
        (
            Request::delete("/api/nodes/api-test")
                .header("authorization", "Bearer wrong-token-0123456789")
                .body(Body::empty())
                .unwrap(),
            403,
            "forbidden",
        ),
        (
            put(r#"{"level": "debug"}"#, None),
            415,
            "wrong_content_type",
        ),
        (
            put(r#"{"level": "debug"}"#, Some("text/plain")),
            415,
            "wrong_content_type",
        ),
        (put(r#"{"level": "#, json_type), 400, "malformed_json"),
        (put(r#"{"lvl": 1}"#, json_type), 422, "invalid_body"),
        (
            put(r#"{"level": "info,["}"#, json_type),
            400,
            "bad_log_level",
        ),
        (put(r#"{"level": ""}"#, json_type), 400, "bad_log_level"),
        (
            put(
                &format!(r#"{{"level": "{}"}}"#, "x".repeat(limits::MAX_BODY_BYTES)),
                json_type,
            ),
            413,
            "body_too_large",
        ),
        (
            many_headers.body(Body::empty()).unwrap(),
            431,
            "headers_too_large",
        ),
    ];
    for (request, status, code) in cases {
        let what = format!("{} {}", request.method(), request.uri());
        let (got, body) = api.call(request).await;
        assert_eq!(got.as_u16(), status, "{what}: {body}");
        assert_eq!(body["error"], code, "{what}: {body}");
        assert!(
            body["message"].as_str().is_some_and(|m| !m.is_empty()),
            "{what}: {body}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_log_level_changes_while_running() {
    let api = Api::new();
    let request = Request::put("/api/log-level")
        .header("authorization", format!("Bearer {TOKEN}"))
        .header("content-type", "application/json")
        .body(Body::from(r#"{"level": "roster=trace,info"}"#))
        .unwrap();
    let (status, set) = api.call(request).await;
    assert_eq!(status, StatusCode::OK, "{set}");
    assert_eq!(
        set,
        json!({"level": "roster=trace,info", "node": "verbose"})
    );
    assert_eq!(api.node.log_level(), roster::LogLevel::Verbose);
    let (_, level) = api.get("/api/log-level").await;
    assert_eq!(level, set);
}

/// The endpoints of this part of the agent, as the brief lists them.
const ROUTES: [(&str, &str); 18] = [
    ("get", "/api/nodes"),
    ("get", "/api/nodes/{name}"),
    ("delete", "/api/nodes/{name}"),
    ("get", "/api/nodes/{name}/heartbeats"),
    ("get", "/api/graph"),
    ("get", "/api/link-sessions"),
    ("get", "/api/registry"),
    ("get", "/api/registry/{key}"),
    ("get", "/api/groups"),
    ("get", "/api/groups/{key}"),
    ("get", "/api/partition"),
    ("get", "/api/scopes"),
    ("get", "/api/log-level"),
    ("put", "/api/log-level"),
    ("get", "/healthz"),
    ("get", "/readyz"),
    ("get", "/api/audit"),
    ("get", "/api/alerts"),
];

/// Whether a body is the Prometheus text of `/metrics` rather than JSON.
fn response_is_text(bytes: &[u8]) -> bool {
    bytes.starts_with(b"# TYPE")
}

/// The endpoints of sessions, messages, events, metrics and external nodes.
/// Fault injection (answering only with `--fault-injection`).
const FAULT_ROUTES: [(&str, &str); 2] = [
    ("post", "/api/faults/isolate"),
    ("post", "/api/faults/sever-links"),
];

const SESSION_ROUTES: [(&str, &str); 17] = [
    ("post", "/api/sessions"),
    ("get", "/api/sessions"),
    ("get", "/api/sessions/{id}"),
    ("delete", "/api/sessions/{id}"),
    ("put", "/api/sessions/{id}/keepalive"),
    ("put", "/api/sessions/{id}/names/{key}"),
    ("delete", "/api/sessions/{id}/names/{key}"),
    ("put", "/api/sessions/{id}/groups/{key}"),
    ("delete", "/api/sessions/{id}/groups/{key}"),
    ("get", "/api/sessions/{id}/messages"),
    ("post", "/api/send"),
    ("post", "/api/dispatch"),
    ("get", "/api/events"),
    ("get", "/metrics"),
    ("put", "/api/external-nodes/{name}"),
    ("post", "/api/external-nodes/{name}/heartbeat"),
    ("put", "/api/external-nodes/{name}/status"),
];

fn documented() -> BTreeSet<(String, String)> {
    let doc = serde_json::to_value(http::openapi()).unwrap();
    let mut operations = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            if ["get", "put", "post", "delete", "patch"].contains(&method.as_str()) {
                operations.insert((method.clone(), path.clone()));
            }
        }
    }
    operations
}

/// The document lists exactly the routes, and each path answers exactly the methods the
/// document gives it (any other method gets the 405 of a path without it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_openapi_document_matches_the_routes() {
    let api = Api::new();
    let mut expected: BTreeSet<(String, String)> = ROUTES
        .iter()
        .chain(SESSION_ROUTES.iter())
        .chain(FAULT_ROUTES.iter())
        .map(|(m, p)| ((*m).to_owned(), (*p).to_owned()))
        .collect();
    expected.insert(("get".into(), "/api/openapi.json".into()));
    assert_eq!(documented(), expected);

    let (status, served) = api.get("/api/openapi.json").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(served, serde_json::to_value(http::openapi()).unwrap());
    assert!(
        served["openapi"].as_str().unwrap().starts_with("3.1"),
        "{}",
        served["openapi"]
    );

    let paths: BTreeSet<&String> = expected.iter().map(|(_, p)| p).collect();
    for path in paths {
        let uri = path.replace("{name}", "api-test").replace("{key}", "k/1");
        // An unknown scope answers at once (the stream itself would not end).
        let uri = uri
            .replace("/api/events", "/api/events?scope=none")
            .replace("{id}", "none");
        for method in ["get", "put", "post", "delete", "patch"] {
            let request = Request::builder()
                .method(method.to_uppercase().as_str())
                .uri(&uri)
                .header("authorization", format!("Bearer {TOKEN}"))
                .body(Body::empty())
                .unwrap();
            let (status, body) = api.call(request).await;
            assert_ne!(body["error"], "not_found", "{method} {uri} is routed");
            let routed = status != StatusCode::METHOD_NOT_ALLOWED;
            let in_doc = expected.contains(&(method.to_owned(), path.clone()));
            assert_eq!(routed, in_doc, "{method} {uri}: {status} {body}");
        }
    }
}
