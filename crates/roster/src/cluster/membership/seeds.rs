//! The seeds: announce rounds that (re)introduce this node to its configured seeds, one
//! per interval, each resolving every seed (DNS name or literal address) concurrently.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinSet;
use tokio::time::{Interval, MissedTickBehavior};

/// Smallest announce interval used; a smaller configured value (zero included) is raised
/// to this, since a zero-period ticker is meaningless.
const MIN_ANNOUNCE_INTERVAL: Duration = Duration::from_millis(10);

/// How long one seed's DNS resolution may take before that seed is skipped for the round.
/// Chosen to match the resolver's usual 5 s per-query timeout; seeds resolve concurrently,
/// so a slow one never delays the others.
const SEED_RESOLVE_TIMEOUT: Duration = Duration::from_secs(5);

/// A seed resolution round in flight.
type Resolving = Pin<Box<dyn Future<Output = Vec<SocketAddr>> + Send>>;

/// The announce rounds to the seeds: the first at once, then one per interval. A round
/// resolves every seed; the next one is not due before it has resolved.
pub(super) struct AnnounceRounds {
    /// The seeds, as configured (`"host:port"`).
    seeds: Arc<[String]>,
    /// When the next round is due.
    ticker: Interval,
    /// The round being resolved, if any.
    resolving: Option<Resolving>,
}

impl AnnounceRounds {
    /// Rounds over `seeds` every `interval` (raised to [`MIN_ANNOUNCE_INTERVAL`]), the
    /// first one due at once. Must be called inside a tokio runtime.
    pub(super) fn new(seeds: Vec<String>, interval: Duration) -> Self {
        let mut ticker = tokio::time::interval(interval.max(MIN_ANNOUNCE_INTERVAL));
        ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
        Self {
            seeds: seeds.into(),
            ticker,
            resolving: None,
        }
    }

    /// Waits for the next round to be due and resolved, and returns its addresses.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: a round that is due stays in flight, and the next call resumes it.
    pub(super) async fn next(&mut self) -> Vec<SocketAddr> {
        let round = match &mut self.resolving {
            Some(round) => round,
            None => {
                self.ticker.tick().await;
                self.resolving
                    .insert(Box::pin(resolve_seeds(self.seeds.clone())))
            }
        };
        let addrs = round.await;
        self.resolving = None;
        addrs
    }
}

/// Resolves every seed concurrently (at most [`SEED_RESOLVE_TIMEOUT`] each); seeds that do
/// not resolve are logged and skipped. Returns the addresses sorted, without duplicates.
async fn resolve_seeds(seeds: Arc<[String]>) -> Vec<SocketAddr> {
    let mut lookups = JoinSet::new();
    for seed in seeds.iter().cloned() {
        lookups.spawn(async move {
            let found =
                tokio::time::timeout(SEED_RESOLVE_TIMEOUT, tokio::net::lookup_host(seed.clone()))
                    .await;
            (seed, found)
        });
    }
    let mut addrs = Vec::new();
    while let Some(joined) = lookups.join_next().await {
        match joined {
            Ok((_, Ok(Ok(found)))) => addrs.extend(found),
            Ok((seed, Ok(Err(error)))) => {
                tracing::debug!(%seed, %error, "membership: seed did not resolve; skipped this round");
            }
            Ok((seed, Err(_))) => {
                tracing::debug!(%seed, "membership: seed resolution timed out; skipped this round");
            }
            Err(error) => tracing::debug!(%error, "membership: seed resolution failed"),
        }
    }
    addrs.sort_unstable();
    addrs.dedup();
    addrs
}

#[cfg(test)]
mod tests {
    use tokio::time::{Instant, timeout};

    use super::*;

    #[tokio::test(start_paused = true)]
    async fn rounds_come_at_once_then_every_interval_with_the_seeds_sorted_and_deduplicated() {
        let seeds = ["127.0.0.1:2", "127.0.0.1:1", "127.0.0.1:2"].map(str::to_owned);
        let expected: Vec<SocketAddr> = ["127.0.0.1:1", "127.0.0.1:2"]
            .map(|addr| addr.parse().unwrap())
            .to_vec();
        let start = Instant::now();
        let mut rounds = AnnounceRounds::new(seeds.to_vec(), Duration::from_secs(5));
        assert_eq!(rounds.next().await, expected);
        assert!(
            start.elapsed() < Duration::from_secs(1),
            "the first round is at once"
        );

        let early = timeout(Duration::from_secs(1), rounds.next()).await;
        assert!(early.is_err(), "the next round is not due yet");
        assert_eq!(
            rounds.next().await,
            expected,
            "a cancelled wait loses nothing"
        );
        assert!(start.elapsed() >= Duration::from_secs(5));

        // A zero interval is raised to the minimum instead of making the ticker panic.
        let mut rounds = AnnounceRounds::new(Vec::new(), Duration::ZERO);
        let start = Instant::now();
        assert!(rounds.next().await.is_empty());
        assert!(rounds.next().await.is_empty());
        assert!(start.elapsed() >= MIN_ANNOUNCE_INTERVAL);
    }
}
