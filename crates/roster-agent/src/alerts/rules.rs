//! The alert rules and webhooks of the TOML file (`[[alerts.rules]]`,
//! `[[alerts.webhooks]]`), validated into [`AlertSettings`].

use std::time::Duration;

use serde::Deserialize;

use crate::history::settings::parse_duration;

/// The `[alerts]` table of the settings file.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertsConfig {
    /// `[[alerts.rules]]`.
    #[serde(default)]
    pub rules: Vec<RuleConfig>,
    /// `[[alerts.webhooks]]`.
    #[serde(default)]
    pub webhooks: Vec<WebhookConfig>,
}

/// One `[[alerts.rules]]` entry.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleConfig {
    /// `node_offline`, `node_degraded`, `split_brain`, `fence_raised` or `conflict_storm`.
    pub kind: String,
    /// How long the condition must hold before the alert fires (every kind but
    /// `conflict_storm`; default 0s), e.g. `30s`.
    #[serde(rename = "for")]
    pub for_: Option<String>,
    /// `conflict_storm`: fires when more than this many name conflicts happen in `window`.
    pub threshold: Option<u64>,
    /// `conflict_storm`: the window, e.g. `1m` (default 1m).
    pub window: Option<String>,
}

/// One `[[alerts.webhooks]]` entry.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    /// Where alerts are POSTed as JSON (`http://` only: no TLS client is built in).
    pub url: String,
}

/// An alert rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rule {
    /// A node (not one that left on purpose) is offline for at least this long.
    NodeOffline(Duration),
    /// A node is degraded for at least this long.
    NodeDegraded(Duration),
    /// This node suspects a partition for at least this long.
    SplitBrain(Duration),
    /// This node is fenced for at least this long.
    FenceRaised(Duration),
    /// More than `threshold` name conflicts in `window`.
    ConflictStorm {
        /// The number of conflicts allowed in the window.
        threshold: u64,
        /// The window.
        window: Duration,
    },
}

impl Rule {
    /// Its kind, as in the settings file.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::NodeOffline(_) => "node_offline",
            Self::NodeDegraded(_) => "node_degraded",
            Self::SplitBrain(_) => "split_brain",
            Self::FenceRaised(_) => "fence_raised",
            Self::ConflictStorm { .. } => "conflict_storm",
        }
    }
}

/// The validated alert settings.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AlertSettings {
    /// The rules, in file order.
    pub rules: Vec<Rule>,
    /// The webhook URLs.
    pub webhooks: Vec<String>,
}

impl AlertSettings {
    /// Validates the `[alerts]` table. Errors are `(value, what is allowed)`.
    ///
    /// # Errors
    ///
    /// The first rule or webhook that is not allowed.
    pub fn from_config(config: AlertsConfig) -> Result<Self, (String, String)> {
        let mut rules = Vec::new();
        for rule in config.rules {
            let duration = |text: Option<&str>, default: Duration| match text {
                None => Ok(default),
                Some(text) => parse_duration(text).ok_or_else(|| {
                    (
                        text.to_owned(),
                        "a duration such as 30s, 5m or 1h".to_owned(),
                    )
                }),
            };
            let check_unused = |allowed: bool, what: &str| {
                if allowed {
                    Ok(())
                } else {
                    Err((
                        rule.kind.clone(),
                        format!("{what} is not a setting of a {} rule", rule.kind),
                    ))
                }
            };
            let timed = rule.threshold.is_none() && rule.window.is_none();
            let hold = duration(rule.for_.as_deref(), Duration::ZERO)?;
            rules.push(match rule.kind.as_str() {
                "node_offline" => {
                    check_unused(timed, "threshold/window")?;
                    Rule::NodeOffline(hold)
                }
                "node_degraded" => {
                    check_unused(timed, "threshold/window")?;
                    Rule::NodeDegraded(hold)
                }
                "split_brain" => {
                    check_unused(timed, "threshold/window")?;
                    Rule::SplitBrain(hold)
                }
                "fence_raised" => {
                    check_unused(timed, "threshold/window")?;
                    Rule::FenceRaised(hold)
                }
                "conflict_storm" => {
                    check_unused(rule.for_.is_none(), "for")?;
                    let threshold = rule.threshold.ok_or_else(|| {
                        (
                            rule.kind.clone(),
                            "a conflict_storm rule needs threshold (conflicts allowed in the window)"
                                .to_owned(),
                        )
                    })?;
                    let window = duration(rule.window.as_deref(), Duration::from_secs(60))?;
                    if window.is_zero() {
                        return Err(("0".to_owned(), "a window longer than zero".to_owned()));
                    }
                    Rule::ConflictStorm { threshold, window }
                }
                other => {
                    return Err((
                        other.to_owned(),
                        "node_offline, node_degraded, split_brain, fence_raised or conflict_storm"
                            .to_owned(),
                    ));
                }
            });
        }
        let mut webhooks = Vec::new();
        for hook in config.webhooks {
            if !hook.url.starts_with("http://") || hook.url.len() <= "http://".len() {
                return Err((
                    hook.url,
                    "an http:// URL (the agent has no TLS client for webhooks)".to_owned(),
                ));
            }
            webhooks.push(hook.url);
        }
        Ok(Self { rules, webhooks })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<AlertSettings, (String, String)> {
        #[derive(Deserialize)]
        struct File {
            alerts: AlertsConfig,
        }
        let file: File = toml::from_str(text).unwrap();
        AlertSettings::from_config(file.alerts)
    }

    #[test]
    fn rules_and_webhooks_are_validated() {
        let settings = parse(
            r#"
            [[alerts.rules]]
            kind = "node_offline"
            for = "30s"
            [[alerts.rules]]
            kind = "conflict_storm"
            threshold = 5
            window = "1m"
            [[alerts.rules]]
            kind = "split_brain"
            [[alerts.webhooks]]
            url = "http://127.0.0.1:9000/hook"
            "#,
        )
        .unwrap();
        assert_eq!(
            settings.rules,
            [
                Rule::NodeOffline(Duration::from_secs(30)),
                Rule::ConflictStorm {
                    threshold: 5,
                    window: Duration::from_secs(60)
                },
                Rule::SplitBrain(Duration::ZERO)
            ]
        );
        assert_eq!(settings.webhooks, ["http://127.0.0.1:9000/hook"]);
        assert!(parse("[[alerts.rules]]\nkind = \"moon_phase\"").is_err());
        assert!(parse("[[alerts.rules]]\nkind = \"conflict_storm\"").is_err());
        assert!(parse("[[alerts.rules]]\nkind = \"split_brain\"\nthreshold = 1").is_err());
        assert!(parse("[[alerts.rules]]\nkind = \"node_offline\"\nfor = \"soon\"").is_err());
        assert!(parse("[[alerts.webhooks]]\nurl = \"https://x\"").is_err());
    }
}
