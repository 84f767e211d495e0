//! Measuring helpers shared by the scenarios: medians, per-call histograms, reader threads
//! started together, and tasks released together on the runtime.

use std::hint::black_box;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant, SystemTime};

use compact_str::CompactString;
use hdrhistogram::Histogram;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tokio::sync::Notify;

use crate::WORKERS;

/// The median of some values (the mean of the two middle ones for an even count).
///
/// # Panics
///
/// On an empty slice.
pub(crate) fn median(values: &[f64]) -> f64 {
    assert!(!values.is_empty(), "median of nothing");
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let mid = sorted.len() / 2;
    if sorted.len() % 2 == 1 {
        sorted[mid]
    } else {
        (sorted[mid - 1] + sorted[mid]) / 2.0
    }
}

/// Runs `f` `reps` times; returns the runs of each of its `N` results.
pub(crate) fn runs_of<const N: usize>(
    reps: usize,
    mut f: impl FnMut() -> [f64; N],
) -> [Vec<f64>; N] {
    let runs: Vec<[f64; N]> = (0..reps.max(1)).map(|_| f()).collect();
    std::array::from_fn(|i| runs.iter().map(|r| r[i]).collect())
}

/// Operations per second for `ops` operations done in `elapsed`.
pub(crate) fn ops_per_sec(ops: usize, elapsed: Duration) -> f64 {
    ops as f64 / elapsed.as_secs_f64()
}

/// A histogram of nanoseconds from 1 ns to 60 s, 3 significant digits.
pub(crate) fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 60_000_000_000, 3).expect("valid histogram bounds")
}

/// Records one duration in nanoseconds (clamped into the histogram's range).
pub(crate) fn record(hist: &mut Histogram<u64>, elapsed: Duration) {
    let ns = u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX).max(1);
    hist.saturating_record(ns);
}

/// The cost of the timer itself: the median of `Instant::now()` pairs taken back to back,
/// in nanoseconds. Every per-call latency includes about this much; it is reported, not
/// subtracted.
pub(crate) fn timer_overhead_ns(samples: usize) -> f64 {
    let mut hist = new_histogram();
    for _ in 0..samples {
        let start = Instant::now();
        let end = black_box(Instant::now());
        record(&mut hist, end - start);
    }
    hist.value_at_quantile(0.5) as f64
}

/// The keys `{prefix}1..={prefix}{n}`.
pub(crate) fn numbered_keys(prefix: &str, n: usize) -> Vec<CompactString> {
    (1..=n)
        .map(|i| compact_str::format_compact!("{prefix}{i}"))
        .collect()
}

/// `count` keys drawn uniformly from `prefix1..=prefix{n}`, reproducible from `seed`.
///
/// Keys are stored inline (`CompactString`), so walking the list costs no pointer chase.
pub(crate) fn random_keys(prefix: &str, n: usize, count: usize, seed: u64) -> Vec<CompactString> {
    let mut rng = StdRng::seed_from_u64(seed);
    (0..count)
        .map(|_| compact_str::format_compact!("{prefix}{}", rng.random_range(1..=n)))
        .collect()
}

/// A single-use barrier that spins instead of sleeping, so that every thread leaves it at
/// once: waking a sleeping thread can take a millisecond on a virtual machine.
struct SpinBarrier {
    /// Threads that have arrived.
    arrived: AtomicUsize,
    /// Threads expected.
    n: usize,
}

impl SpinBarrier {
    /// Waits (spinning) until all `n` threads have arrived.
    fn wait(&self) {
        self.arrived.fetch_add(1, Ordering::AcqRel);
        while self.arrived.load(Ordering::Acquire) < self.n {
            std::hint::spin_loop();
        }
    }
}

/// What one thread of [`on_threads`] did: when it started and ended, and its result.
#[derive(Debug)]
pub(crate) struct Span<R> {
    /// When the thread left the start barrier.
    pub start: Instant,
    /// When `f` returned.
    pub end: Instant,
    /// What `f` returned.
    pub result: R,
}

/// Runs `f` on each input, one OS thread per input, all started together by a spinning
/// barrier; each thread times its own run.
pub(crate) fn on_threads<T, R, F>(inputs: Vec<T>, f: F) -> Vec<Span<R>>
where
    T: Send,
    R: Send,
    F: Fn(T) -> R + Sync,
{
    let barrier = SpinBarrier {
        arrived: AtomicUsize::new(0),
        n: inputs.len(),
    };
    std::thread::scope(|s| {
        let handles: Vec<_> = inputs
            .into_iter()
            .map(|input| {
                let (barrier, f) = (&barrier, &f);
                s.spawn(move || {
                    barrier.wait();
                    let start = Instant::now();
                    let result = f(input);
                    Span {
                        start,
                        end: Instant::now(),
                        result,
                    }
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("a benchmark thread panicked"))
            .collect()
    })
}

/// From the first start to the last end of some spans.
pub(crate) fn overall<R>(spans: &[Span<R>]) -> Duration {
    let start = spans.iter().map(|s| s.start).min();
    let end = spans.iter().map(|s| s.end).max();
    start
        .zip(end)
        .map_or(Duration::ZERO, |(start, end)| end - start)
}

/// Calls `op` on every key of every list, one OS thread per list, all started together,
/// without timing single calls. Returns the total throughput over the whole pass: all calls
/// divided by the time from the first thread's start to the last thread's end.
pub(crate) fn threaded_pass<F>(lists: &[Vec<CompactString>], op: &F) -> f64
where
    F: Fn(&str) + Sync,
{
    let spans = on_threads(lists.iter().collect(), |keys| {
        for key in keys {
            op(black_box(key.as_str()));
        }
    });
    let ops = lists.iter().map(Vec::len).sum();
    ops_per_sec(ops, overall(&spans))
}

/// Calls `op` on every key, timing each call on its own; returns the histogram (ns).
pub(crate) fn timed_pass(keys: &[CompactString], op: impl Fn(&str)) -> Histogram<u64> {
    let mut hist = new_histogram();
    for key in keys {
        let key = black_box(key.as_str());
        let start = Instant::now();
        op(key);
        let end = Instant::now();
        record(&mut hist, end - start);
    }
    hist
}

/// What came of tasks released together by [`release_tasks`].
#[derive(Debug)]
pub(crate) struct Released<T> {
    /// When the tasks were released.
    pub start: Instant,
    /// When the last of them completed.
    pub end: Instant,
    /// How many operations returned an error.
    pub errors: usize,
    /// The items, handed back so that the caller decides when they are dropped.
    pub items: Vec<T>,
}

/// State shared by the tasks of one [`release_tasks`] call.
struct Shared<F> {
    /// The operation each task runs on its item.
    op: F,
    /// Set when the tasks are released.
    go: AtomicBool,
    /// Wakes the waiting tasks on release.
    start: Notify,
    /// Release tasks spinning on a worker (see [`release`]).
    spinning: AtomicUsize,
    /// Tasks waiting for the release.
    ready: AtomicUsize,
    /// Tasks that have run `op`.
    done: AtomicUsize,
    /// Tasks whose `op` failed.
    errors: AtomicUsize,
    /// Wall-clock time before which the tasks are not released (see [`release_tasks_at`]).
    not_before: Option<SystemTime>,
    /// When the last task finished.
    finished_at: OnceLock<Instant>,
    /// Wakes the caller when the last task finished.
    finished: Notify,
}

/// Longest a release waits for both workers to be spinning.
const SPIN_LIMIT: Duration = Duration::from_millis(100);

/// Releases the waiting tasks from a hot worker, with every worker hot, and returns when it
/// did.
///
/// An idle worker thread sleeps; waking it takes long on a virtual machine (the idle vCPU
/// is descheduled), which would be timed as part of the scenario. So one spinning task
/// per worker holds every worker awake, the first one releases the tasks once all spin,
/// and the others then return at once and their workers take their share of the woken
/// tasks. (BEAM schedulers likewise busy-wait before they sleep.)
async fn release<F: Send + Sync + 'static>(shared: &Arc<Shared<F>>) -> Instant {
    let spinners: Vec<_> = (0..WORKERS)
        .map(|_| {
            let shared = shared.clone();
            tokio::spawn(async move {
                let me = shared.spinning.fetch_add(1, Ordering::AcqRel);
                let since = Instant::now();
                if me > 0 {
                    while !shared.go.load(Ordering::Acquire) && since.elapsed() < SPIN_LIMIT {
                        std::hint::spin_loop();
                    }
                    return None;
                }
                while shared.spinning.load(Ordering::Acquire) < WORKERS
                    && since.elapsed() < SPIN_LIMIT
                {
                    std::hint::spin_loop();
                }
                if let Some(not_before) = shared.not_before {
                    while SystemTime::now() < not_before {
                        std::hint::spin_loop();
                    }
                }
                let start = Instant::now();
                shared.go.store(true, Ordering::Release);
                shared.start.notify_waiters();
                Some(start)
            })
        })
        .collect();
    let mut start = None;
    for spinner in spinners {
        start = start.or(spinner.await.expect("a release task does not panic"));
    }
    start.expect("one spinner releases")
}

/// Spawns one task per item on the current runtime, waits until every task is parked on a
/// start signal, then releases them all and waits for the last one to finish `op`.
///
/// Spawning is not timed: the clock starts when the signal is sent and stops when the
/// task finishing last has completed its operation (that task reads the clock itself, so
/// waking the caller is not timed either). Scenarios that wait for something else than
/// the last completion time it from [`Released::start`].
pub(crate) async fn release_tasks<T, E, F>(items: Vec<T>, op: F) -> Released<T>
where
    T: Send + 'static,
    E: Send + 'static,
    F: Fn(&T) -> Result<(), E> + Send + Sync + 'static,
{
    release_tasks_at(items, op, None).await
}

/// How long before a wall-clock release the workers start spinning (the other spinners
/// give up after [`SPIN_LIMIT`]).
const SPIN_AHEAD: Duration = Duration::from_millis(2);

/// Like [`release_tasks`], but the tasks are not released before the wall-clock time
/// `not_before` (if given): processes started together by a driver release their tasks at
/// the same instant, whatever the latency of the driver's signal to each.
pub(crate) async fn release_tasks_at<T, E, F>(
    items: Vec<T>,
    op: F,
    not_before: Option<SystemTime>,
) -> Released<T>
where
    T: Send + 'static,
    E: Send + 'static,
    F: Fn(&T) -> Result<(), E> + Send + Sync + 'static,
{
    let n = items.len();
    let shared = Arc::new(Shared {
        op,
        go: AtomicBool::new(false),
        start: Notify::new(),
        spinning: AtomicUsize::new(0),
        ready: AtomicUsize::new(0),
        done: AtomicUsize::new(0),
        errors: AtomicUsize::new(0),
        not_before,
        finished_at: OnceLock::new(),
        finished: Notify::new(),
    });
    let handles: Vec<_> = items
        .into_iter()
        .map(|item| {
            let shared = shared.clone();
            tokio::spawn(async move {
                let start = shared.start.notified();
                let mut start = std::pin::pin!(start);
                // Registered as a waiter before counting itself ready: no wake-up is lost.
                start.as_mut().enable();
                shared.ready.fetch_add(1, Ordering::Release);
                if !shared.go.load(Ordering::Acquire) {
                    start.await;
                }
                if (shared.op)(&item).is_err() {
                    shared.errors.fetch_add(1, Ordering::Relaxed);
                }
                if shared.done.fetch_add(1, Ordering::AcqRel) + 1 == n {
                    let _ = shared.finished_at.set(Instant::now());
                    shared.finished.notify_one();
                }
                item
            })
        })
        .collect();
    while shared.ready.load(Ordering::Acquire) < n {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    if let Some(wait) = not_before
        .and_then(|t| t.duration_since(SystemTime::now()).ok())
        .and_then(|d| d.checked_sub(SPIN_AHEAD))
    {
        tokio::time::sleep(wait).await;
    }
    let start = release(&shared).await;
    if n > 0 {
        shared.finished.notified().await;
    }
    let end = shared.finished_at.get().copied().unwrap_or(start);
    let mut items = Vec::with_capacity(n);
    for handle in handles {
        items.push(handle.await.expect("released task panicked"));
    }
    Released {
        start,
        end,
        errors: shared.errors.load(Ordering::Relaxed),
        items,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_odd_and_even_counts() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), 2.5);
        assert_eq!(runs_of(2, || [1.0, 2.0]), [vec![1.0, 1.0], vec![2.0, 2.0]]);
    }

    #[test]
    fn random_keys_are_in_range_and_reproducible() {
        let keys = random_keys("key-", 10, 1000, 7);
        assert_eq!(keys, random_keys("key-", 10, 1000, 7));
        for key in &keys {
            let n: usize = key.strip_prefix("key-").unwrap().parse().unwrap();
            assert!((1..=10).contains(&n));
        }
    }

    #[test]
    fn released_tasks_all_run_and_come_back() {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_time()
            .build()
            .unwrap();
        let counter = Arc::new(AtomicUsize::new(0));
        let c = counter.clone();
        let released = rt.block_on(release_tasks((0..100).collect(), move |i: &usize| {
            c.fetch_add(1, Ordering::Relaxed);
            if *i == 7 { Err(()) } else { Ok(()) }
        }));
        assert_eq!(counter.load(Ordering::Relaxed), 100);
        assert_eq!(released.errors, 1);
        assert_eq!(released.items.len(), 100);
        assert!(released.end >= released.start);
    }
}
