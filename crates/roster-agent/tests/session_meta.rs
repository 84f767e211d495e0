//! In process (the router without a port): the meta a session writes as JSON is the
//! MessagePack of that JSON value, so a Rust node decodes it with `rmp_serde` (or
//! `Meta::decode`) into `serde_json::Value` or its own type; and a session's messages
//! stream as Server-Sent Events.

use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use futures_util::StreamExt;
use roster::Node;
use roster_agent::config::{AgentArgs, FileConfig, SecretEnv, Settings};
use roster_agent::http;
use roster_agent::logging::LogControl;
use roster_agent::state::AppState;
use serde_json::{Value, json};
use tower::ServiceExt;

fn router(node: &Node) -> (Router, Box<dyn std::any::Any + Send>) {
    let args = AgentArgs {
        name: Some("meta-test".into()),
        ..AgentArgs::default()
    };
    let settings = Settings::merge(args, FileConfig::default(), SecretEnv::default()).unwrap();
    let (log, layer) = LogControl::detached("info").unwrap();
    let state = AppState::new(node.clone(), settings.into(), log);
    (http::router(state), Box::new(layer))
}

async fn call(
    router: &Router,
    method: &str,
    uri: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let mut request = Request::builder().method(method).uri(uri);
    if body.is_some() {
        request = request.header("content-type", "application/json");
    }
    let body = body.map_or_else(Body::empty, |b| Body::from(b.to_string()));
    let response = router
        .clone()
        .oneshot(request.body(body).unwrap())
        .await
        .unwrap();
    let status = response.status();
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap();
    let value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    (status, value)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_meta_is_messagepack_that_rust_decodes() {
    let node = Node::builder().name("meta-test").start().unwrap();
    let (router, _log) = router(&node);
    let (status, session) =
        call(&router, "POST", "/api/sessions", Some(json!({"ttl": "1m"}))).await;
    assert_eq!(status, StatusCode::CREATED);
    let id = session["id"].as_str().unwrap();
    let meta = json!({"region": "eu", "weight": 3, "tags": ["a", "b"], "ratio": 0.5, "none": null});
    let (status, _) = call(
        &router,
        "PUT",
        &format!("/api/sessions/{id}/names/svc/1"),
        Some(json!({"meta": meta})),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let entry = node.default_scope().lookup("svc/1").unwrap();
    let decoded: Value = rmp_serde::from_slice(entry.meta.as_bytes()).unwrap();
    assert_eq!(decoded, meta);
    #[derive(serde::Deserialize, Debug, PartialEq)]
    struct Typed {
        region: String,
        weight: u8,
    }
    let typed: Typed = entry.meta.decode().unwrap();
    assert_eq!(
        typed,
        Typed {
            region: "eu".into(),
            weight: 3
        }
    );

    let (status, _) = call(
        &router,
        "PUT",
        &format!("/api/sessions/{id}/groups/room/1"),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let members = node.default_scope().members("room/1");
    let member = members.into_iter().next().unwrap();
    assert_eq!(
        rmp_serde::from_slice::<Value>(member.meta().as_bytes()).unwrap(),
        Value::Null
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_s_messages_stream_as_server_sent_events() {
    let node = Node::builder().name("meta-test").start().unwrap();
    let (router, _log) = router(&node);
    let (_, session) = call(&router, "POST", "/api/sessions", Some(json!({"ttl": "1m"}))).await;
    let id = session["id"].as_str().unwrap().to_owned();
    let pid = session["pid"].as_str().unwrap().to_owned();
    let request = Request::builder()
        .uri(format!("/api/sessions/{id}/messages"))
        .header("accept", "text/event-stream")
        .body(Body::empty())
        .unwrap();
    let response = router.clone().oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let mut body = response.into_body().into_data_stream();
    let (status, _) = call(
        &router,
        "POST",
        "/api/send",
        Some(json!({"to": pid, "message": {"n": 1}})),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let mut text = String::new();
    while !text.contains("\n\n") {
        let chunk = tokio::time::timeout(Duration::from_secs(10), body.next())
            .await
            .expect("a message within 10 s")
            .expect("the stream is open")
            .unwrap();
        text.push_str(&String::from_utf8_lossy(&chunk));
    }
    assert!(text.starts_with("event: message\n"), "{text}");
    assert!(
        text.contains(r#"data: {"from":null,"message":{"n":1}}"#),
        "{text}"
    );
    let (status, _) = call(&router, "DELETE", &format!("/api/sessions/{id}"), None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let mut rest = String::new();
    while let Ok(Some(Ok(chunk))) = tokio::time::timeout(Duration::from_secs(10), body.next()).await
    {
        rest.push_str(&String::from_utf8_lossy(&chunk));
    }
    assert!(rest.contains("event: ended"), "{rest}");
}
