//! The API's own services beside the node: sessions, the event stream, metrics and the
//! rate limiter, started with the agent's state.

use std::sync::Arc;

use roster::Node;

use crate::config::Settings;
use crate::events::pump::EventCounts;
use crate::events::{EventHub, pump};
use crate::rate_limit::RateLimiter;
use crate::sessions::Sessions;
use crate::shutdown::Shutdown;
use crate::telemetry::Telemetry;

/// The services, shared by every request.
#[derive(Debug)]
pub struct Services {
    /// The session table.
    pub sessions: Sessions,
    /// The event stream.
    pub events: EventHub,
    /// What the event pumps counted.
    pub event_counts: Arc<EventCounts>,
    /// The metrics recorder.
    pub telemetry: Telemetry,
    /// The per-client rate limit.
    pub rate_limiter: RateLimiter,
    /// Ends the SSE streams when the agent stops.
    pub shutdown: Shutdown,
}

impl Services {
    /// Starts the session reaper and the event pumps of `node`. Must run inside a tokio
    /// runtime.
    pub fn start(node: &Node, settings: &Settings) -> Self {
        let api = &settings.api;
        let events = EventHub::new(api.event_ring, api.event_buffer);
        let event_counts = pump::start(node, &events);
        Self {
            sessions: Sessions::start(node.clone(), api.max_sessions),
            events,
            event_counts,
            telemetry: Telemetry::new(),
            rate_limiter: RateLimiter::new(api.rate_limit, api.rate_burst),
            shutdown: Shutdown::default(),
        }
    }
}
