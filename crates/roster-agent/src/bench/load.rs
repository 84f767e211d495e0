//! Timed request loops: each thread has one keep-alive `ureq` client and its own latency
//! histogram; the histograms are merged at the end.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;

/// What a timed loop measured.
#[derive(Debug)]
pub struct Measured {
    /// Requests that got the expected status.
    pub ok: u64,
    /// Requests that did not.
    pub failed: u64,
    /// How long the loop ran.
    pub elapsed: Duration,
    /// Latencies of the successful requests, in microseconds.
    pub latency: Histogram<u64>,
}

impl Measured {
    /// Successful requests per second.
    #[allow(clippy::cast_precision_loss)] // request counts stay far below 2^52
    pub fn rate(&self) -> f64 {
        self.ok as f64 / self.elapsed.as_secs_f64().max(f64::EPSILON)
    }

    /// A latency quantile in milliseconds.
    #[allow(clippy::cast_precision_loss)] // microseconds stay far below 2^52
    pub fn quantile_ms(&self, q: f64) -> f64 {
        self.latency.value_at_quantile(q) as f64 / 1000.0
    }
}

/// A keep-alive client that reports every status.
pub fn client() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(30)))
        .max_idle_connections_per_host(4)
        .build()
        .into()
}

/// A latency histogram of 1 us to 60 s.
pub fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 60_000_000, 3)
        .expect("1 us to 60 s at 3 significant digits are valid bounds")
}

/// Runs `request` (given the client and a per-thread counter; it answers whether the
/// request succeeded) on `threads` threads for `duration`.
pub fn run<F>(threads: usize, duration: Duration, request: F) -> Measured
where
    F: Fn(&ureq::Agent, u64, usize) -> bool + Send + Sync + 'static,
{
    let request = Arc::new(request);
    let stop = Arc::new(AtomicBool::new(false));
    let start = Instant::now();
    let workers: Vec<_> = (0..threads.max(1))
        .map(|thread| {
            let (request, stop) = (request.clone(), stop.clone());
            std::thread::spawn(move || {
                let agent = client();
                let mut latency = histogram();
                let (mut ok, mut failed, mut n) = (0u64, 0u64, 0u64);
                while !stop.load(Ordering::Relaxed) {
                    let began = Instant::now();
                    if request(&agent, n, thread) {
                        ok += 1;
                        let micros = u64::try_from(began.elapsed().as_micros()).unwrap_or(u64::MAX);
                        let _ = latency.record(micros.max(1));
                    } else {
                        failed += 1;
                    }
                    n += 1;
                }
                (ok, failed, latency)
            })
        })
        .collect();
    std::thread::sleep(duration);
    stop.store(true, Ordering::Relaxed);
    gather(workers, start)
}

/// `PUT url` without a body: whether it answered 200.
pub fn put_ok(agent: &ureq::Agent, url: &str) -> bool {
    agent
        .put(url)
        .send_empty()
        .is_ok_and(|mut r| r.status() == 200 && r.body_mut().read_to_vec().is_ok())
}

/// `POST url` with a JSON body: the body of a 2xx answer.
pub fn post_json(agent: &ureq::Agent, url: &str, body: &str) -> Option<serde_json::Value> {
    let mut response = agent
        .post(url)
        .header("content-type", "application/json")
        .send(body)
        .ok()?;
    if !response.status().is_success() {
        return None;
    }
    response.body_mut().read_json().ok()
}

/// What the `workers` of a timed loop started at `start` measured, merged: each answers
/// its successes, failures and latency histogram.
pub fn gather(
    workers: Vec<std::thread::JoinHandle<(u64, u64, Histogram<u64>)>>,
    start: Instant,
) -> Measured {
    let mut measured = Measured {
        ok: 0,
        failed: 0,
        elapsed: Duration::ZERO,
        latency: histogram(),
    };
    for worker in workers {
        if let Ok((ok, failed, latency)) = worker.join() {
            measured.ok += ok;
            measured.failed += failed;
            let _ = measured.latency.add(latency);
        }
    }
    measured.elapsed = start.elapsed();
    measured
}
