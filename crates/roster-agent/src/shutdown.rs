//! The agent's stop signal for long-lived responses: SSE streams end when the agent
//! shuts down, so that the HTTP server's graceful shutdown (which waits for every
//! response to finish) is not held open by a client that never disconnects.

use std::future::Future;

use tokio::sync::watch;

/// Raised once when the agent stops.
#[derive(Debug)]
pub struct Shutdown(watch::Sender<bool>);

impl Default for Shutdown {
    fn default() -> Self {
        Self(watch::Sender::new(false))
    }
}

impl Shutdown {
    /// Raises the signal.
    pub fn stop(&self) {
        self.0.send_replace(true);
    }

    /// Completes once the signal is raised (at once if it was).
    pub fn stopped(&self) -> impl Future<Output = ()> + Send + 'static + use<> {
        let mut stopped = self.0.subscribe();
        async move {
            let _ = stopped.wait_for(|stopped| *stopped).await;
        }
    }
}
