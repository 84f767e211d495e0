//! Webhook delivery: one thread per webhook POSTs each alert as JSON, retrying with
//! exponential backoff a bounded number of times. Alerts wait on a bounded queue; a
//! webhook that fails or hangs only delays its own queue, and what does not fit is dropped
//! and counted.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError};
use std::time::Duration;

use super::engine::Alert;

/// Alerts waiting per webhook at most.
const WAITING: usize = 256;

/// Attempts per alert (the first and the retries).
const ATTEMPTS: u32 = 6;

/// The wait before the first retry, doubled each time up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(250);

/// The longest wait between retries.
const MAX_BACKOFF: Duration = Duration::from_secs(8);

/// How long one POST may take.
const TIMEOUT: Duration = Duration::from_secs(5);

/// The counters of webhook delivery.
#[derive(Debug, Default)]
pub struct WebhookStats {
    /// Alerts delivered (a 2xx answer).
    pub delivered: AtomicU64,
    /// Alerts given up on after every attempt failed, or dropped from a full queue.
    pub failed: AtomicU64,
}

/// The webhooks of an agent.
#[derive(Debug)]
pub struct Webhooks {
    queues: Vec<(String, SyncSender<Alert>)>,
    stats: Arc<WebhookStats>,
}

impl Webhooks {
    /// Starts a delivery thread for each of `urls`.
    ///
    /// # Errors
    ///
    /// If a thread cannot be started.
    pub fn start(urls: &[String]) -> std::io::Result<Self> {
        let stats = Arc::new(WebhookStats::default());
        let mut queues = Vec::new();
        for url in urls {
            let (queue, alerts) = std::sync::mpsc::sync_channel(WAITING);
            let stats = Arc::clone(&stats);
            let target = url.clone();
            std::thread::Builder::new()
                .name("roster-webhook".to_owned())
                .spawn(move || deliver(&target, &alerts, &stats))?;
            queues.push((url.clone(), queue));
        }
        Ok(Self { queues, stats })
    }

    /// Queues `alert` for every webhook; never blocks.
    pub fn send(&self, alert: &Alert) {
        for (url, queue) in &self.queues {
            if let Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) =
                queue.try_send(alert.clone())
            {
                self.stats.failed.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(
                    url,
                    id = alert.id,
                    "alert webhook: queue full; alert dropped"
                );
            }
        }
    }

    /// The counters.
    pub fn stats(&self) -> &Arc<WebhookStats> {
        &self.stats
    }
}

fn deliver(url: &str, alerts: &Receiver<Alert>, stats: &WebhookStats) {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(TIMEOUT))
        .build()
        .into();
    for alert in alerts {
        let mut backoff = FIRST_BACKOFF;
        let mut attempt = 1;
        loop {
            match agent.post(url).send_json(&alert) {
                Ok(_) => {
                    stats.delivered.fetch_add(1, Ordering::Relaxed);
                    break;
                }
                Err(e) if attempt >= ATTEMPTS => {
                    stats.failed.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(url, id = alert.id, error = %e, attempts = attempt, "alert webhook: giving up");
                    break;
                }
                Err(e) => {
                    tracing::debug!(url, id = alert.id, error = %e, attempt, "alert webhook: retrying");
                    std::thread::sleep(backoff);
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                    attempt += 1;
                }
            }
        }
    }
}
