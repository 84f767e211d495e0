//! Helpers of the session, event and metrics tests: JSON requests that also return the
//! headers, and an SSE client whose events arrive on a channel (read by a thread, so a
//! test can hold a connection unread to make it lag). Every read has a deadline.

use std::io::{BufRead, BufReader, Read};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::Value;
use ureq::http::Method;

/// One Server-Sent Event.
#[derive(Debug, Clone, Default)]
pub(crate) struct SseEvent {
    pub(crate) id: Option<u64>,
    pub(crate) event: String,
    pub(crate) data: Value,
}

fn stream_client() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(120)))
        .build()
        .into()
}

/// An open SSE response, not read yet.
pub(crate) struct SseStream {
    reader: Box<dyn Read + Send>,
}

impl SseStream {
    /// `GET url` with `Accept: text/event-stream` (and `Last-Event-ID`), once the headers
    /// are in.
    pub(crate) fn open(url: &str, last_id: Option<u64>) -> Self {
        let mut request = ureq::http::Request::builder()
            .method(Method::GET)
            .uri(url)
            .header("accept", "text/event-stream");
        if let Some(id) = last_id {
            request = request.header("last-event-id", id.to_string());
        }
        let response = stream_client()
            .run(request.body(()).expect("request"))
            .expect("SSE request");
        assert_eq!(response.status().as_u16(), 200, "{url}");
        let content_type = response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        assert!(
            content_type.starts_with("text/event-stream"),
            "{content_type}"
        );
        Self {
            reader: Box::new(response.into_body().into_reader()),
        }
    }

    /// Starts reading: the events arrive on the returned channel.
    pub(crate) fn read(self) -> mpsc::Receiver<SseEvent> {
        let (events, receiver) = mpsc::channel();
        let reader = self.reader;
        std::thread::spawn(move || {
            let mut current = SseEvent::default();
            let mut data = String::new();
            for line in BufReader::new(reader).lines() {
                let Ok(line) = line else { break };
                if line.is_empty() {
                    if !data.is_empty() || !current.event.is_empty() {
                        current.data =
                            serde_json::from_str(&data).unwrap_or(Value::String(data.clone()));
                        if events.send(std::mem::take(&mut current)).is_err() {
                            break;
                        }
                    }
                    data.clear();
                } else if let Some(id) = line.strip_prefix("id:") {
                    current.id = id.trim().parse().ok();
                } else if let Some(name) = line.strip_prefix("event:") {
                    name.trim().clone_into(&mut current.event);
                } else if let Some(text) = line.strip_prefix("data:") {
                    data.push_str(text.strip_prefix(' ').unwrap_or(text));
                }
            }
        });
        receiver
    }
}

/// Receives events until `done` says stop (it gets each event), failing after `deadline`.
pub(crate) fn collect_until(
    events: &mpsc::Receiver<SseEvent>,
    deadline: Duration,
    mut done: impl FnMut(&SseEvent) -> bool,
) -> Vec<SseEvent> {
    let end = Instant::now() + deadline;
    let mut seen = Vec::new();
    loop {
        let left = end.saturating_duration_since(Instant::now());
        let event = events
            .recv_timeout(left)
            .unwrap_or_else(|_| panic!("not within {deadline:?}; seen: {seen:?}"));
        let stop = done(&event);
        seen.push(event);
        if stop {
            return seen;
        }
    }
}

/// A request as (status, headers, body text).
pub(crate) fn raw(
    method: Method,
    url: &str,
    content_type: Option<&str>,
    body: &[u8],
) -> (u16, ureq::http::HeaderMap, String) {
    let mut request = ureq::http::Request::builder().method(method).uri(url);
    if let Some(content_type) = content_type {
        request = request.header("content-type", content_type);
    }
    let request = request.body(body.to_vec()).expect("request");
    let mut response = crate::support::client().run(request).expect("HTTP request");
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let text = response.body_mut().read_to_string().expect("body");
    (status, headers, text)
}
