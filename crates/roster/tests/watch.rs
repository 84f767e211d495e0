//! Watches (list-then-watch): the initial entries and the events after them rebuild the
//! scope exactly, with no gap and no duplicate, while local threads and a replicating peer
//! write.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};

use common::{EntryModel, cluster_config, drain, eventually, fully_linked, node, start_clustered};
use roster::{Node, Pattern, Process, RegistryError, Watch};

#[tokio::test]
async fn a_watch_starts_with_the_matching_entries_then_streams_what_follows() {
    let node = node();
    let p = node.new_process();
    p.register("user/1", &1u8).unwrap();
    p.register("other", &()).unwrap();
    p.join("user/room", &"a").unwrap();

    let Watch {
        names,
        members,
        mut events,
        ..
    } = node.default_scope().watch("user/").unwrap();
    let keys: Vec<&str> = names.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(keys, ["user/1"]);
    assert_eq!(names[0].1.pid, p.pid());
    assert_eq!(members.len(), 1);
    assert_eq!(
        (members[0].0.as_str(), members[0].1.pid()),
        ("user/room", p.pid())
    );
    assert!(
        drain(&mut events).is_empty(),
        "nothing before the watch is an event"
    );

    p.register("user/2", &()).unwrap();
    p.register("other/2", &()).unwrap();
    let keys: Vec<String> = drain(&mut events)
        .iter()
        .map(|e| e.key.to_string())
        .collect();
    assert_eq!(keys, ["user/2"]);
}

#[tokio::test]
async fn a_watch_of_a_disconnected_scope_or_an_invalid_pattern_is_refused() {
    let node = node();
    let scope = node.connect("s").unwrap();
    assert!(matches!(
        scope.watch(Pattern::Prefix("no-slash".into())),
        Err(RegistryError::InvalidKey(_))
    ));
    node.disconnect("s").unwrap();
    assert!(matches!(
        scope.watch(Pattern::All),
        Err(RegistryError::ScopeNotConnected { .. })
    ));
}

#[tokio::test]
async fn a_watch_ends_with_its_scope_like_a_subscription() {
    let node = node();
    let scope = node.connect("s").unwrap();
    let p = node.new_process();
    scope.register(&p, "k", &()).unwrap();
    let mut watch = scope.watch("k").unwrap();
    assert_eq!(watch.names.len(), 1);
    node.disconnect("s").unwrap();
    let last = watch.events.recv().await.unwrap().into_events().unwrap();
    assert_eq!(last.len(), 1);
    assert_eq!(watch.events.recv().await, None);
}

/// A tiny deterministic generator (xorshift), so that each round of the race writes
/// something different without a dependency.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

const ROUNDS: u64 = 200;
const WRITERS_PER_NODE: u64 = 2;
const OPS_PER_WRITER: u64 = 40;

/// Writes at random on `node`: its own names `w/<node>/<i>`, the groups `g/<i>` that both
/// nodes share, meta updates, and processes that exit with what they hold. Counts each op
/// in `progress`.
fn write_at_random(node: &Node, tag: &str, seed: u64, progress: &AtomicUsize) {
    let mut rng = Rng(seed | 1);
    let mut procs: Vec<Process> = (0..3).map(|_| node.new_process()).collect();
    for _ in 0..OPS_PER_WRITER {
        let p = rng.below(procs.len() as u64) as usize;
        let name = format!("w/{tag}/{}", rng.below(6));
        let group = format!("g/{}", rng.below(4));
        let meta = rng.below(3);
        let proc = &procs[p];
        // Refusals (taken, not registered, not a member) are part of the race: ignored.
        let _ = match rng.below(6) {
            0 | 1 => proc.register(&name, &meta).map(drop),
            2 => proc.unregister(&name),
            3 => proc.join(&group, &meta),
            4 => proc.leave(&group),
            _ => {
                // A process exits with everything it holds (one batch), a new one replaces it.
                procs[p] = node.new_process();
                Ok(())
            }
        };
        progress.fetch_add(1, Ordering::Relaxed);
    }
}

/// One round: writers on both nodes, and a watch on each node started once the writers
/// have done a random number of ops.
fn race(nodes: [&Node; 2], round: u64, pattern: &Pattern) -> [Watch; 2] {
    let progress = AtomicUsize::new(0);
    let total = 2 * WRITERS_PER_NODE * OPS_PER_WRITER;
    let start_at = Rng(round.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1).below(total) as usize;
    std::thread::scope(|s| {
        for (n, node) in nodes.into_iter().enumerate() {
            for w in 0..WRITERS_PER_NODE {
                let progress = &progress;
                let seed = round * 1_000 + n as u64 * 10 + w;
                s.spawn(move || write_at_random(node, ["a", "b"][n], seed, progress));
            }
        }
        while progress.load(Ordering::Relaxed) < start_at {
            std::thread::yield_now();
        }
        nodes.map(|node| node.default_scope().watch(pattern.clone()).unwrap())
    })
}

/// While two threads write on each of two linked nodes (each node's writes reaching the
/// other as replicated ops), a watch is started on each node, 200 times with a different
/// pattern and moment. Every event is checked against the entries rebuilt so far (a
/// registration of an entry the watch already holds, or a removal of one it lacks, fails
/// at once), and once both nodes agree, the rebuilt entries must equal the node's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watch_sees_every_change_once_whatever_writes_race_with_it() {
    let builder = || Node::builder().subscription_capacity(1 << 20);
    let a = start_clustered(builder(), "a", cluster_config("watch", &[]));
    let b = start_clustered(builder(), "b", cluster_config("watch", &[&a]));
    eventually("a and b link", || fully_linked(&[&a, &b])).await;
    // Residents, so that every watch starts with entries of both nodes.
    let (ra, rb) = (a.new_process(), b.new_process());
    ra.register("w/a/resident", &()).unwrap();
    rb.join("g/0", &"resident").unwrap();

    let patterns = [
        Pattern::All,
        Pattern::from("w/"),
        Pattern::from("g/1"),
        Pattern::from("g/"),
    ];
    for round in 0..ROUNDS {
        let pattern = &patterns[(round % 4) as usize];
        let (na, nb) = (a.clone(), b.clone());
        let pattern_ = pattern.clone();
        let watches = tokio::task::spawn_blocking(move || race([&na, &nb], round, &pattern_))
            .await
            .expect("the round's threads finish");
        let mut rebuilt: Vec<(EntryModel, Watch)> = watches
            .into_iter()
            .map(|w| (EntryModel::of_watch(&w), w))
            .collect();
        let what =
            format!("round {round} ({pattern:?}): both nodes agree and their watches rebuild them");
        eventually(&what, || {
            let views = [&a, &b].map(|n| EntryModel::of_scope(n.default_scope(), pattern));
            let mut rebuilt_all = true;
            for ((model, watch), view) in rebuilt.iter_mut().zip(&views) {
                for event in drain(&mut watch.events) {
                    model.apply(&event);
                }
                rebuilt_all &= model == view;
            }
            rebuilt_all && views[0] == views[1]
        })
        .await;
    }
    drop((ra, rb));
}
