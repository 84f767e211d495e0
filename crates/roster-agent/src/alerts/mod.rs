//! Alerts: rules from the settings file evaluated against what the node sees (nodes
//! offline or degraded for a while, a suspected partition, a raised fence, a storm of name
//! conflicts). An alert fires once and resolves once; each change is POSTed to the
//! webhooks, recorded in the history, and listed by `GET /api/alerts`.
//!
//! - [`rules`]: the `[alerts]` settings;
//! - [`engine`]: the state machine;
//! - [`webhook`]: delivery to the webhooks.

pub mod engine;
pub mod rules;
pub mod webhook;

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use roster::{Delivery, EventKind, Node, NodeFilter, Pattern};

use self::engine::{Alert, Engine, Observation};
use self::rules::AlertSettings;
use self::webhook::{WebhookStats, Webhooks};
use crate::history::now_ms;
use crate::history::record::RecordKind;
use crate::history::recorder::Recorder;

/// How often the rules are evaluated.
const EVERY: Duration = Duration::from_millis(250);

/// The running alerts of an agent. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Alerts {
    engine: Arc<Mutex<Engine>>,
    webhooks: Arc<Webhooks>,
}

impl Alerts {
    /// Starts evaluating `settings`' rules on `node`, delivering to its webhooks and
    /// recording into `recorder`. Must run inside a tokio runtime.
    ///
    /// # Errors
    ///
    /// If a webhook thread cannot be started.
    pub fn start(
        node: &Node,
        settings: &AlertSettings,
        recorder: Option<Recorder>,
    ) -> std::io::Result<Self> {
        let engine = Arc::new(Mutex::new(Engine::new(node.name(), settings.rules.clone())));
        let webhooks = Arc::new(Webhooks::start(&settings.webhooks)?);
        let alerts = Self { engine, webhooks };
        if settings.rules.is_empty() {
            return Ok(alerts);
        }
        for scope in node.scopes() {
            let Ok(scope) = node.scope(&scope) else {
                continue;
            };
            if let Ok(events) = scope.subscribe(Pattern::All) {
                tokio::spawn(count_conflicts(events, Arc::clone(&alerts.engine)));
            }
        }
        tokio::spawn(evaluate(node.clone(), alerts.clone(), recorder));
        Ok(alerts)
    }

    /// The alerts firing now, and the recently resolved ones, newest first.
    pub fn list(&self) -> (Vec<Alert>, Vec<Alert>) {
        self.engine
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .list()
    }

    /// The webhook counters.
    pub fn webhook_stats(&self) -> &Arc<WebhookStats> {
        self.webhooks.stats()
    }
}

/// What `node` observes now.
fn observe(node: &Node) -> Observation {
    let nodes = node.nodes();
    let partition = nodes.partition();
    Observation {
        nodes: nodes
            .list(&NodeFilter::default())
            .into_iter()
            .map(|info| {
                let left = info.offline.as_ref().is_some_and(|o| o.left);
                (info.record.name, info.status.to_string(), left)
            })
            .collect(),
        fenced: partition.as_ref().is_some_and(|p| p.fenced),
        partition: partition
            .filter(|p| p.partition_suspected)
            .map(|p| p.unreachable),
    }
}

async fn evaluate(node: Node, alerts: Alerts, recorder: Option<Recorder>) {
    let mut ticks = tokio::time::interval(EVERY);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        let observed = observe(&node);
        let changes = alerts
            .engine
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .evaluate(&observed, Instant::now(), now_ms());
        for alert in changes {
            tracing::warn!(id = alert.id, rule = %alert.rule, subject = %alert.subject, state = %alert.state, "alert: {}", alert.message);
            if let Some(recorder) = &recorder {
                recorder.record(RecordKind::Alert {
                    id: alert.id,
                    rule: alert.rule.clone(),
                    subject: alert.subject.clone(),
                    state: alert.state.clone(),
                    message: alert.message.clone(),
                });
            }
            alerts.webhooks.send(&alert);
        }
    }
}

async fn count_conflicts(mut events: roster::Subscription, engine: Arc<Mutex<Engine>>) {
    while let Some(delivery) = events.recv().await {
        let Delivery::Events(batch) = delivery else {
            continue;
        };
        // Each conflict once per node: the library reports it with one `ConflictResolved`
        // on every node that learns of it (the loser's `Unregistered` is the same conflict).
        let resolved = batch
            .iter()
            .filter(|e| e.kind == EventKind::ConflictResolved)
            .count();
        if resolved > 0 {
            let mut engine = engine.lock().unwrap_or_else(PoisonError::into_inner);
            for _ in 0..resolved {
                engine.conflict(Instant::now());
            }
        }
    }
}
