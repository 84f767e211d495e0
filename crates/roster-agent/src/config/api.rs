//! The settings of the API's own services: sessions, the event stream and the per-client
//! rate limit. Flags (with environment variables) are flattened into `roster agent`'s
//! command line; the TOML file has them in an `[api]` table. Validated into
//! [`ApiSettings`].

use clap::Args;
use serde::Deserialize;

use super::ConfigError;

/// The default most sessions an agent holds at once.
pub const DEFAULT_MAX_SESSIONS: usize = 10_000;

/// The default number of recent events kept for `Last-Event-ID` resumption.
pub const DEFAULT_EVENT_RING: usize = 10_000;

/// The default number of events an SSE client may fall behind before it is told it lagged.
pub const DEFAULT_EVENT_BUFFER: usize = 4_096;

/// The default writes and keepalives per second per client address.
pub const DEFAULT_RATE_LIMIT: u32 = 2_000;

/// The flags of the API's services.
#[derive(Debug, Default, Args)]
pub struct ApiArgs {
    /// The most sessions this agent holds at once [default: 10000].
    #[arg(long, env = "ROSTER_MAX_SESSIONS", value_name = "N")]
    pub max_sessions: Option<usize>,
    /// How many recent events are kept for SSE resumption with Last-Event-ID [default: 10000].
    #[arg(long, env = "ROSTER_EVENT_RING", value_name = "N")]
    pub event_ring: Option<usize>,
    /// How many events an SSE client may fall behind before it gets `lagged` [default: 4096].
    #[arg(long, env = "ROSTER_EVENT_BUFFER", value_name = "N")]
    pub event_buffer: Option<usize>,
    /// Writes and keepalives per second per client IP address; 0 turns the limit off
    /// [default: 2000].
    #[arg(long, env = "ROSTER_RATE_LIMIT", value_name = "PER_SECOND")]
    pub rate_limit: Option<u32>,
    /// How many requests a client may send at once above the rate [default: twice the rate].
    #[arg(long, env = "ROSTER_RATE_BURST", value_name = "N")]
    pub rate_burst: Option<u32>,
}

/// The `[api]` table of the TOML file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiFileConfig {
    /// `max_sessions`.
    pub max_sessions: Option<usize>,
    /// `event_ring`.
    pub event_ring: Option<usize>,
    /// `event_buffer`.
    pub event_buffer: Option<usize>,
    /// `rate_limit`.
    pub rate_limit: Option<u32>,
    /// `rate_burst`.
    pub rate_burst: Option<u32>,
}

/// The validated settings of the API's services.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiSettings {
    /// The most sessions held at once.
    pub max_sessions: usize,
    /// Recent events kept for resumption.
    pub event_ring: usize,
    /// Events an SSE client may fall behind.
    pub event_buffer: usize,
    /// Writes per second per client; 0: no limit.
    pub rate_limit: u32,
    /// The burst above the rate.
    pub rate_burst: u32,
}

impl Default for ApiSettings {
    fn default() -> Self {
        Self {
            max_sessions: DEFAULT_MAX_SESSIONS,
            event_ring: DEFAULT_EVENT_RING,
            event_buffer: DEFAULT_EVENT_BUFFER,
            rate_limit: DEFAULT_RATE_LIMIT,
            rate_burst: DEFAULT_RATE_LIMIT * 2,
        }
    }
}

impl ApiSettings {
    /// Merges the flags over the file's `[api]` table and validates the result.
    ///
    /// # Errors
    ///
    /// [`ConfigError::Invalid`] naming the first setting out of its bounds.
    pub fn merge(args: ApiArgs, file: Option<ApiFileConfig>) -> Result<Self, ConfigError> {
        let file = file.unwrap_or_default();
        let defaults = Self::default();
        let max_sessions = bounded(
            "--max-sessions",
            args.max_sessions.or(file.max_sessions),
            defaults.max_sessions,
            1..=1_000_000,
        )?;
        let event_ring = bounded(
            "--event-ring",
            args.event_ring.or(file.event_ring),
            defaults.event_ring,
            1..=1_000_000,
        )?;
        let event_buffer = bounded(
            "--event-buffer",
            args.event_buffer.or(file.event_buffer),
            defaults.event_buffer,
            1..=1_000_000,
        )?;
        let rate_limit = args
            .rate_limit
            .or(file.rate_limit)
            .unwrap_or(defaults.rate_limit);
        let rate_burst = match args.rate_burst.or(file.rate_burst) {
            Some(0) => {
                return Err(ConfigError::Invalid {
                    setting: "--rate-burst",
                    value: "0".to_owned(),
                    allowed: "at least 1".to_owned(),
                });
            }
            Some(burst) => burst,
            None => rate_limit.saturating_mul(2).max(1),
        };
        Ok(Self {
            max_sessions,
            event_ring,
            event_buffer,
            rate_limit,
            rate_burst,
        })
    }
}

fn bounded(
    setting: &'static str,
    value: Option<usize>,
    default: usize,
    range: std::ops::RangeInclusive<usize>,
) -> Result<usize, ConfigError> {
    let value = value.unwrap_or(default);
    if range.contains(&value) {
        Ok(value)
    } else {
        Err(ConfigError::Invalid {
            setting,
            value: value.to_string(),
            allowed: format!("{} to {}", range.start(), range.end()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_win_over_the_file_and_bounds_are_checked() {
        let file = ApiFileConfig {
            max_sessions: Some(5),
            rate_limit: Some(10),
            ..ApiFileConfig::default()
        };
        let args = ApiArgs {
            max_sessions: Some(7),
            ..ApiArgs::default()
        };
        let settings = ApiSettings::merge(args, Some(file)).unwrap();
        assert_eq!(settings.max_sessions, 7);
        assert_eq!((settings.rate_limit, settings.rate_burst), (10, 20));
        let zero = ApiArgs {
            event_ring: Some(0),
            ..ApiArgs::default()
        };
        let err = ApiSettings::merge(zero, None).unwrap_err();
        assert!(err.to_string().starts_with("--event-ring"), "{err}");
    }
}
