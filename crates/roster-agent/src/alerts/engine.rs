//! The alert state machine, without I/O: given what the node observes now, which alerts
//! fire and which resolve. Each alert fires once and resolves once.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::time::{Duration, Instant};

use serde::Serialize;
use utoipa::ToSchema;

use super::rules::Rule;

/// Resolved alerts kept for `GET /api/alerts`.
const RESOLVED_KEPT: usize = 100;

/// What the node observes at one time.
#[derive(Debug, Clone, Default)]
pub struct Observation {
    /// Each known node's status (`online`, `offline`, ...) and whether it left on purpose.
    pub nodes: Vec<(String, String, bool)>,
    /// Whether this node suspects a partition, and the nodes it cannot reach.
    pub partition: Option<Vec<String>>,
    /// Whether this node is fenced.
    pub fenced: bool,
}

/// An alert, firing or resolved.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize, ToSchema)]
pub struct Alert {
    /// Its id on this agent (the same when it fires and resolves).
    pub id: u64,
    /// The rule's kind: `node_offline`, `node_degraded`, `split_brain`, `fence_raised` or
    /// `conflict_storm`.
    pub rule: String,
    /// What it is about: a node's name, or this agent's node for cluster-wide rules.
    pub subject: String,
    /// `firing` or `resolved`.
    pub state: String,
    /// What it means, in words.
    pub message: String,
    /// The agent's node that raised it.
    pub node: String,
    /// When it fired, in milliseconds since the Unix epoch.
    pub fired_at_ms: u64,
    /// When it resolved; `null` while firing.
    pub resolved_at_ms: Option<u64>,
}

/// The alert state machine of one agent.
#[derive(Debug)]
pub struct Engine {
    node: String,
    rules: Vec<Rule>,
    next_id: u64,
    /// Since when each (rule, subject) condition holds, for rules with a duration.
    pending: HashMap<(usize, String), Instant>,
    firing: BTreeMap<(usize, String), Alert>,
    resolved: VecDeque<Alert>,
    conflicts: VecDeque<Instant>,
}

impl Engine {
    /// An engine for the agent's node `node` with `rules`.
    pub fn new(node: &str, rules: Vec<Rule>) -> Self {
        Self {
            node: node.to_owned(),
            rules,
            next_id: 1,
            pending: HashMap::new(),
            firing: BTreeMap::new(),
            resolved: VecDeque::new(),
            conflicts: VecDeque::new(),
        }
    }

    /// Counts a name conflict that happened at `at`.
    pub fn conflict(&mut self, at: Instant) {
        self.conflicts.push_back(at);
    }

    /// The alerts firing now, then the recently resolved ones, newest first.
    pub fn list(&self) -> (Vec<Alert>, Vec<Alert>) {
        let mut firing: Vec<Alert> = self.firing.values().cloned().collect();
        firing.sort_by_key(|alert| std::cmp::Reverse(alert.id));
        (firing, self.resolved.iter().rev().cloned().collect())
    }

    /// Evaluates every rule against `observed` at `now` (`now_ms` on the wall clock);
    /// returns the alerts that fired and resolved, in that order.
    pub fn evaluate(&mut self, observed: &Observation, now: Instant, now_ms: u64) -> Vec<Alert> {
        let longest = self
            .rules
            .iter()
            .filter_map(|r| match r {
                Rule::ConflictStorm { window, .. } => Some(*window),
                _ => None,
            })
            .max()
            .unwrap_or(Duration::ZERO);
        while self
            .conflicts
            .front()
            .is_some_and(|at| now.saturating_duration_since(*at) > longest)
        {
            self.conflicts.pop_front();
        }
        // Every condition that holds now, with how long it must hold to fire.
        let mut conditions: Vec<((usize, String), String, Duration)> = Vec::new();
        for (index, rule) in self.rules.iter().enumerate() {
            match *rule {
                Rule::NodeOffline(hold) | Rule::NodeDegraded(hold) => {
                    let wanted = if matches!(rule, Rule::NodeOffline(_)) {
                        "offline"
                    } else {
                        "degraded"
                    };
                    for (name, status, left) in &observed.nodes {
                        if status == wanted && !*left {
                            conditions.push((
                                (index, name.clone()),
                                format!("node {name} is {wanted} (for at least {hold:?})"),
                                hold,
                            ));
                        }
                    }
                }
                Rule::SplitBrain(hold) => {
                    if let Some(unreachable) = &observed.partition {
                        conditions.push((
                            (index, self.node.clone()),
                            format!(
                                "{} suspects a partition: cannot reach {}",
                                self.node,
                                unreachable.join(", ")
                            ),
                            hold,
                        ));
                    }
                }
                Rule::FenceRaised(hold) => {
                    if observed.fenced {
                        conditions.push((
                            (index, self.node.clone()),
                            format!(
                                "{} is fenced: it refuses new unique registrations",
                                self.node
                            ),
                            hold,
                        ));
                    }
                }
                Rule::ConflictStorm { threshold, window } => {
                    let count = self
                        .conflicts
                        .iter()
                        .filter(|at| now.saturating_duration_since(**at) <= window)
                        .count() as u64;
                    if count > threshold {
                        conditions.push((
                            (index, self.node.clone()),
                            format!("{count} name conflicts in {window:?} (more than {threshold})"),
                            Duration::ZERO,
                        ));
                    }
                }
            }
        }
        // A condition that stops holding starts over.
        self.pending
            .retain(|key, _| conditions.iter().any(|(held, _, _)| held == key));
        let mut holding: Vec<((usize, String), String)> = Vec::new();
        for (key, message, hold) in conditions {
            let since = *self.pending.entry(key.clone()).or_insert(now);
            if now.saturating_duration_since(since) >= hold {
                holding.push((key, message));
            }
        }
        let mut changes = Vec::new();
        let held: std::collections::HashSet<(usize, String)> =
            holding.iter().map(|(key, _)| key.clone()).collect();
        let ended: Vec<(usize, String)> = self
            .firing
            .keys()
            .filter(|key| !held.contains(*key))
            .cloned()
            .collect();
        for (key, message) in holding {
            if self.firing.contains_key(&key) {
                continue;
            }
            let alert = Alert {
                id: self.next_id,
                rule: self.rules[key.0].kind().to_owned(),
                subject: key.1.clone(),
                state: "firing".to_owned(),
                message,
                node: self.node.clone(),
                fired_at_ms: now_ms,
                resolved_at_ms: None,
            };
            self.next_id += 1;
            changes.push(alert.clone());
            self.firing.insert(key, alert);
        }
        for key in ended {
            if let Some(mut alert) = self.firing.remove(&key) {
                alert.state = "resolved".to_owned();
                alert.resolved_at_ms = Some(now_ms);
                changes.push(alert.clone());
                if self.resolved.len() >= RESOLVED_KEPT {
                    self.resolved.pop_front();
                }
                self.resolved.push_back(alert);
            }
        }
        changes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nodes(list: &[(&str, &str)]) -> Observation {
        Observation {
            nodes: list
                .iter()
                .map(|(n, s)| ((*n).to_owned(), (*s).to_owned(), false))
                .collect(),
            ..Observation::default()
        }
    }

    #[test]
    fn an_offline_node_fires_once_after_its_duration_and_resolves_once() {
        let mut engine = Engine::new("a", vec![Rule::NodeOffline(Duration::from_secs(5))]);
        let t0 = Instant::now();
        let down = nodes(&[("a", "online"), ("b", "offline")]);
        assert!(engine.evaluate(&down, t0, 0).is_empty());
        assert!(
            engine
                .evaluate(&down, t0 + Duration::from_secs(4), 0)
                .is_empty()
        );
        let fired = engine.evaluate(&down, t0 + Duration::from_secs(5), 5);
        assert_eq!(fired.len(), 1);
        assert_eq!(
            (fired[0].subject.as_str(), fired[0].state.as_str()),
            ("b", "firing")
        );
        assert!(
            engine
                .evaluate(&down, t0 + Duration::from_secs(6), 6)
                .is_empty()
        );
        let up = nodes(&[("a", "online"), ("b", "online")]);
        let resolved = engine.evaluate(&up, t0 + Duration::from_secs(7), 7);
        assert_eq!(resolved.len(), 1);
        assert_eq!(
            (resolved[0].id, resolved[0].state.as_str()),
            (fired[0].id, "resolved")
        );
        assert!(
            engine
                .evaluate(&up, t0 + Duration::from_secs(8), 8)
                .is_empty()
        );
        let (firing, recent) = engine.list();
        assert!(firing.is_empty());
        assert_eq!(recent.len(), 1);
    }

    #[test]
    fn a_conflict_storm_fires_over_the_threshold_and_resolves_when_the_window_passes() {
        let window = Duration::from_secs(10);
        let mut engine = Engine::new(
            "a",
            vec![Rule::ConflictStorm {
                threshold: 2,
                window,
            }],
        );
        let t0 = Instant::now();
        for _ in 0..3 {
            engine.conflict(t0);
        }
        let fired = engine.evaluate(&Observation::default(), t0, 0);
        assert_eq!(fired.len(), 1, "{fired:?}");
        assert_eq!(fired[0].rule, "conflict_storm");
        let resolved = engine.evaluate(&Observation::default(), t0 + window * 2, 20);
        assert_eq!(resolved[0].state, "resolved");
    }

    #[test]
    fn split_brain_and_fence_follow_the_partition_status() {
        let mut engine = Engine::new(
            "a",
            vec![
                Rule::SplitBrain(Duration::ZERO),
                Rule::FenceRaised(Duration::ZERO),
            ],
        );
        let t0 = Instant::now();
        let split = Observation {
            partition: Some(vec!["b".into(), "c".into()]),
            fenced: true,
            ..Observation::default()
        };
        let fired = engine.evaluate(&split, t0, 0);
        let kinds: Vec<&str> = fired.iter().map(|a| a.rule.as_str()).collect();
        assert_eq!(kinds, ["split_brain", "fence_raised"]);
        let healed = engine.evaluate(&Observation::default(), t0, 1);
        assert_eq!(healed.len(), 2);
        assert!(healed.iter().all(|a| a.state == "resolved"));
    }
}
