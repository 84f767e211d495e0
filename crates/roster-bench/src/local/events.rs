//! L6: event delivery to one subscriber of every event.

use std::time::{Duration, Instant};

use roster::{Delivery, EventKind, Pattern, Subscription};

use super::{Sizes, processes};
use crate::Bench;
use crate::measure::{numbered_keys, release_tasks};
use crate::report::{Report, Unit};

/// How long a run may wait for its events before it is declared failed.
const DEADLINE: Duration = Duration::from_secs(10);

/// What the subscriber saw.
#[derive(Debug)]
struct Received {
    /// When it had received `expected` `Registered` events (or stopped).
    at: Instant,
    /// `Registered` events received.
    registered: usize,
    /// Events the subscription reported as missed (`Delivery::Lagged`).
    missed: u64,
}

/// Receives until `expected` `Registered` events have arrived, a lag is reported, or the
/// subscription ends; counts events across batches.
async fn receive(mut events: Subscription, expected: usize) -> Received {
    let mut registered = 0;
    let mut missed = 0;
    while registered < expected {
        match events.recv().await {
            Some(Delivery::Events(batch)) => {
                registered += batch
                    .iter()
                    .filter(|e| e.kind == EventKind::Registered)
                    .count();
            }
            Some(Delivery::Lagged { missed: m }) => {
                // The missing events can never arrive: stop here and report it.
                missed += m;
                break;
            }
            None => break,
        }
    }
    Received {
        at: Instant::now(),
        registered,
        missed,
    }
}

/// One run: a subscriber task to all events, then `n` processes registering unique keys
/// concurrently; milliseconds from the release until the subscriber has all `n` events.
fn run_once(bench: &Bench<'_>, n: usize) -> Result<f64, String> {
    let node = bench.node();
    let events = node
        .default_scope()
        .subscribe(Pattern::All)
        .map_err(|e| format!("subscribe: {e}"))?;
    let jobs: Vec<_> = processes(&node, n)
        .into_iter()
        .zip(numbered_keys("key-", n))
        .collect();
    bench.rt.block_on(async {
        let mut subscriber = tokio::spawn(receive(events, n));
        let released = release_tasks(jobs, |(proc, key)| proc.register(key, &()).map(drop)).await;
        if released.errors > 0 {
            subscriber.abort();
            return Err(format!("{} of {n} registrations failed", released.errors));
        }
        let Ok(joined) = tokio::time::timeout(DEADLINE, &mut subscriber).await else {
            subscriber.abort();
            return Err(format!("subscriber did not get {n} events in {DEADLINE:?}"));
        };
        let received = joined.map_err(|e| format!("subscriber task failed: {e}"))?;
        if received.missed > 0 {
            return Err(format!(
                "subscriber lagged: {} events missed (got {} of {n})",
                received.missed, received.registered
            ));
        }
        if received.registered < n {
            return Err(format!(
                "subscription ended after {} of {n} events",
                received.registered
            ));
        }
        Ok((received.at - released.start).as_secs_f64() * 1e3)
    })
}

/// One run of L6's breakdown: `n` processes register unique keys one after another on
/// this thread, with no subscriber or with one subscriber of every event (then drained
/// after); milliseconds from the first registration to the last (to the last event taken
/// from the subscription, with one). What the registrations and their events cost
/// without the release of `n` tasks.
fn one_thread(bench: &Bench<'_>, n: usize, subscribed: bool) -> Result<f64, String> {
    let node = bench.node();
    let mut events = subscribed
        .then(|| node.default_scope().subscribe(Pattern::All))
        .transpose()
        .map_err(|e| format!("subscribe: {e}"))?;
    let jobs: Vec<_> = processes(&node, n)
        .into_iter()
        .zip(numbered_keys("key-", n))
        .collect();
    let start = Instant::now();
    for (proc, key) in &jobs {
        proc.register(key, &())
            .map_err(|e| format!("register {key}: {e}"))?;
    }
    if let Some(events) = events.take() {
        let received = bench.rt.block_on(receive(events, n));
        if received.registered < n {
            return Err(format!("{} of {n} events", received.registered));
        }
    }
    Ok(start.elapsed().as_secs_f64() * 1e3)
}

/// L6: time until one subscriber of all events has received 5K `Registered` events from
/// 5K concurrent registrations; and its breakdown, the same registrations from one thread
/// with and without the subscriber.
pub(super) fn delivery(bench: &Bench<'_>, sizes: &Sizes, report: &mut Report) {
    let runs: Result<Vec<f64>, String> = (0..sizes.reps)
        .map(|_| run_once(bench, sizes.events))
        .collect();
    match runs {
        Ok(ms) => report.add_runs("L6", "events_5k", &ms, Unit::Ms),
        Err(e) => report.fail(format!("L6 events_5k: {e}")),
    }
    for (metric, subscribed) in [
        ("register_5k_1thread", false),
        ("register_5k_1thread_subscribed", true),
    ] {
        let runs: Result<Vec<f64>, String> = (0..sizes.reps)
            .map(|_| one_thread(bench, sizes.events, subscribed))
            .collect();
        match runs {
            Ok(ms) => report.add_runs("L6", metric, &ms, Unit::Ms),
            Err(e) => report.fail(format!("L6 {metric}: {e}")),
        }
    }
}
