//! The agent's metrics: a Prometheus recorder of the `metrics` facade owned by the agent
//! (not installed globally, so that several agents can share a process), rendered by
//! `GET /metrics`. Counters are recorded as requests go through; gauges are sampled at
//! scrape time (see `http::metrics`).

use std::collections::HashMap;
use std::sync::RwLock;

use axum::http::{Method, StatusCode};
use metrics::{Counter, Recorder, counter};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle, PrometheusRecorder};

/// The agent's recorder and its render handle.
pub struct Telemetry {
    recorder: PrometheusRecorder,
    handle: PrometheusHandle,
    requests: RequestCounters,
}

/// The handles of `roster_agent_http_requests_total` by route, then method and status:
/// each series is registered with the recorder once (its labels built and hashed into the
/// recorder's registry then), and a request only finds its handle, without allocating,
/// and adds one to it. Routes are the router's patterns and statuses a few, so the table
/// stays small.
#[derive(Default)]
struct RequestCounters {
    by_route: RwLock<HashMap<Box<str>, Vec<Series>>>,
}

/// One series of a route: its method, its status and its handle.
type Series = (Method, StatusCode, Counter);

impl RequestCounters {
    fn find(&self, route: &str, method: &Method, status: StatusCode) -> Option<Counter> {
        let by_route = self.by_route.read().unwrap_or_else(|e| e.into_inner());
        by_route
            .get(route)?
            .iter()
            .find(|(m, s, _)| m == method && *s == status)
            .map(|(_, _, counter)| counter.clone())
    }
}

impl std::fmt::Debug for Telemetry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Telemetry").finish_non_exhaustive()
    }
}

impl Default for Telemetry {
    fn default() -> Self {
        Self::new()
    }
}

impl Telemetry {
    /// A recorder with no metrics yet.
    pub fn new() -> Self {
        let recorder = PrometheusBuilder::new().build_recorder();
        let handle = recorder.handle();
        Self {
            recorder,
            handle,
            requests: RequestCounters::default(),
        }
    }

    /// Counts one HTTP request of `route` (the matched pattern) and `method` that got
    /// `status`: `roster_agent_http_requests_total{route, method, status}`.
    pub fn count_request(&self, route: &str, method: &Method, status: StatusCode) {
        if let Some(counter) = self.requests.find(route, method, status) {
            counter.increment(1);
            return;
        }
        let counter = self.record(|| {
            counter!(
                "roster_agent_http_requests_total",
                "route" => route.to_owned(),
                "method" => method.as_str().to_owned(),
                "status" => status.as_str().to_owned()
            )
        });
        counter.increment(1);
        let mut by_route = self
            .requests
            .by_route
            .write()
            .unwrap_or_else(|e| e.into_inner());
        let series = by_route.entry(route.into()).or_default();
        // Another request may have registered it meanwhile: both hold the same series.
        if !series.iter().any(|(m, s, _)| m == method && *s == status) {
            series.push((method.clone(), status, counter));
        }
    }

    /// Runs `record` with this agent's recorder as the `metrics` macros' recorder.
    pub fn record<T>(&self, record: impl FnOnce() -> T) -> T {
        metrics::with_local_recorder(&self.recorder as &dyn Recorder, record)
    }

    /// The metrics in the Prometheus text format.
    pub fn render(&self) -> String {
        self.handle.render()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_series_is_registered_once_and_counts_every_request() {
        let telemetry = Telemetry::new();
        for _ in 0..3 {
            telemetry.count_request("/api/registry/{*key}", &Method::GET, StatusCode::OK);
        }
        telemetry.count_request("/api/registry/{*key}", &Method::GET, StatusCode::NOT_FOUND);
        telemetry.count_request("unmatched", &Method::POST, StatusCode::NOT_FOUND);
        let text = telemetry.render();
        let line = |labels: &str| {
            text.lines()
                .find(|l| l.starts_with("roster_agent_http_requests_total{") && l.contains(labels))
                .unwrap_or_else(|| panic!("no series with {labels} in\n{text}"))
                .rsplit_once(' ')
                .map(|(_, v)| v.to_owned())
                .unwrap()
        };
        assert_eq!(
            line(r#"route="/api/registry/{*key}",method="GET",status="200""#),
            "3"
        );
        assert_eq!(
            line(r#"route="/api/registry/{*key}",method="GET",status="404""#),
            "1"
        );
        assert_eq!(line(r#"route="unmatched",method="POST",status="404""#), "1");
    }
}
