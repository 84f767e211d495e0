//! Processes: pids, RAII exit, spawn and kill, typed messaging, and exit racing writes.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Barrier};

use common::{
    assert_quiet, batch, cluster_config, eventually, fully_linked, meta, node, single,
    start_clustered, within,
};
use roster::Incarnation;
use roster::TryRecvError;
use roster::{
    EventKind, ExitReason, Node, Pattern, Pid, Process, Reason, RecvError, RegistryError,
    SendError, Table,
};
use serde::ser::{Error as _, Serialize, Serializer};

#[tokio::test]
async fn pids_of_a_node_carry_its_incarnation_and_increase() {
    let node = Node::builder()
        .incarnation(Incarnation::new(42))
        .start()
        .unwrap();
    let (a, b, c) = (node.new_process(), node.new_process(), node.new_process());
    assert_eq!(a.pid().incarnation(), Incarnation::new(42));
    assert!(a.pid() < b.pid() && b.pid() < c.pid());
    assert_ne!(a.pid().serial(), b.pid().serial());
}

#[test]
fn pids_order_by_incarnation_then_serial() {
    assert!(Pid::new(Incarnation::new(1), 100) < Pid::new(Incarnation::new(2), 1));
    assert!(Pid::new(Incarnation::new(2), 1) < Pid::new(Incarnation::new(2), 2));
    assert_eq!(
        Pid::new(Incarnation::new(3), 4),
        Pid::new(Incarnation::new(3), 4)
    );
    assert_eq!(
        Pid::new(Incarnation::new(255), 9).to_string(),
        "<00000000000000ff.9>"
    );
}

#[tokio::test]
async fn two_nodes_draw_different_incarnations() {
    let (a, b) = (node(), node());
    assert_ne!(a.incarnation(), b.incarnation());
    assert_ne!(a.new_process().pid(), b.new_process().pid());
}

#[tokio::test]
async fn dropping_a_process_removes_every_name_and_membership_it_holds() {
    let node = node();
    let other = node.connect("other").unwrap();
    let keeper = node.new_process();
    keeper.register("kept", &()).unwrap();
    let p = node.new_process();
    p.register("n/1", &()).unwrap();
    p.register("n/2", &()).unwrap();
    p.join("g/1", &()).unwrap();
    p.join("kept-group", &()).unwrap();
    keeper.join("kept-group", &()).unwrap();
    other.register(&p, "o/1", &()).unwrap();
    other.join(&p, "o/g", &()).unwrap();

    drop(p);

    assert_eq!(node.default_scope().name_count(), 1);
    assert_eq!(node.default_scope().whereis("kept"), Some(keeper.pid()));
    assert!(
        node.default_scope().lookup("n/1").is_none()
            && node.default_scope().lookup("n/2").is_none()
    );
    assert!(node.default_scope().members("g/1").is_empty());
    assert_eq!(
        node.default_scope().members("kept-group").pids(),
        [keeper.pid()]
    );
    assert_eq!(node.default_scope().membership_count(), 1);
    assert_eq!(other.name_count(), 0);
    assert_eq!(other.membership_count(), 0);
    assert!(other.lookup("o/1").is_none());
}

#[tokio::test]
async fn dropping_a_process_emits_its_removals_with_reason_normal() {
    let node = node();
    let mut events = node.default_scope().subscribe(Pattern::All).unwrap();
    let p = node.new_process();
    let pid = p.pid();
    p.register("name", &1u8).unwrap();
    p.join("group", &2u8).unwrap();
    let _ = (single(&mut events), single(&mut events));

    drop(p);

    let mut removed = batch(&mut events);
    removed.sort_by(|a, b| a.key.cmp(&b.key));
    assert_eq!(removed.len(), 2);
    assert_eq!(
        (removed[0].kind, removed[0].key.as_str()),
        (EventKind::Left, "group")
    );
    assert_eq!(removed[0].meta, meta(&2u8));
    assert_eq!(
        (removed[1].kind, removed[1].key.as_str()),
        (EventKind::Unregistered, "name")
    );
    assert_eq!(removed[1].meta, meta(&1u8));
    for event in &removed {
        assert_eq!(event.pid, pid);
        assert_eq!(event.reason, Reason::Exit(ExitReason::Normal));
        assert_eq!(event.previous_meta, None);
    }
    assert_quiet(&mut events);
}

#[tokio::test]
async fn dropping_a_process_that_holds_nothing_emits_nothing() {
    let node = node();
    let mut events = node.default_scope().subscribe(Pattern::All).unwrap();
    drop(node.new_process());
    assert_quiet(&mut events);
    assert_eq!(node.process_count(), 0);
}

#[tokio::test]
async fn a_process_dropped_while_its_thread_panics_exits_with_reason_panicked() {
    let node = node();
    let mut events = node.default_scope().subscribe(Pattern::All).unwrap();
    let p = node.new_process();
    let pid = p.pid();
    p.register("doomed", &()).unwrap();
    let _ = single(&mut events);

    let outcome = std::thread::spawn(move || {
        let _owned = p;
        panic!("the process's thread panics (expected in this test)");
    })
    .join();

    assert!(outcome.is_err());
    let event = single(&mut events);
    assert_eq!(event.kind, EventKind::Unregistered);
    assert_eq!(event.pid, pid);
    assert_eq!(event.reason, Reason::Exit(ExitReason::Panicked));
    assert!(node.default_scope().lookup("doomed").is_none());
    assert!(!node.is_alive(pid));
}

#[tokio::test]
async fn a_panic_inside_a_spawned_process_cleans_up_with_reason_panicked() {
    let node = node();
    let mut events = node.default_scope().subscribe(Pattern::All).unwrap();
    let pid = node.spawn(|proc| async move {
        proc.register("crasher", &()).unwrap();
        proc.join("crashers", &()).unwrap();
        tokio::task::yield_now().await;
        panic!("a spawned process panics (expected in this test)");
    });

    let mut seen = Vec::new();
    while seen.len() < 4 {
        let delivery = within("the crash events", events.recv()).await.unwrap();
        seen.extend(delivery.into_events().unwrap());
    }

    assert_eq!(seen[0].kind, EventKind::Registered);
    assert_eq!(seen[1].kind, EventKind::Joined);
    let mut removals = seen[2..].to_vec();
    removals.sort_by_key(|e| e.key.clone());
    assert_eq!(
        removals.iter().map(|e| e.kind).collect::<Vec<_>>(),
        [EventKind::Unregistered, EventKind::Left]
    );
    for event in &removals {
        assert_eq!(event.pid, pid);
        assert_eq!(event.reason, Reason::Exit(ExitReason::Panicked));
    }
    assert!(!node.is_alive(pid));
    assert!(node.default_scope().members("crashers").is_empty());
}

#[tokio::test]
async fn a_spawned_process_runs_in_a_task_and_exits_normally_when_it_returns() {
    let node = node();
    let mut events = node.default_scope().subscribe(Pattern::All).unwrap();
    let pid = node.spawn(|mut proc| async move {
        proc.register("worker", &()).unwrap();
        let _ = proc.recv::<String>().await;
    });

    let registered = within("registration", events.recv()).await.unwrap();
    assert_eq!(registered.into_events().unwrap()[0].pid, pid);
    assert_eq!(node.default_scope().whereis("worker"), Some(pid));
    assert!(node.is_alive(pid));

    node.send(pid, &"stop").unwrap();
    let gone = within("the exit", events.recv()).await.unwrap();
    let gone = gone.into_events().unwrap();
    assert_eq!(gone[0].kind, EventKind::Unregistered);
    assert_eq!(gone[0].reason, Reason::Exit(ExitReason::Normal));
    assert!(!node.is_alive(pid));
}

#[tokio::test]
async fn killing_a_process_removes_its_entries_with_reason_killed() {
    let node = node();
    let mut events = node.default_scope().subscribe(Pattern::All).unwrap();
    let p = node.new_process();
    p.register("victim", &()).unwrap();
    p.join("victims", &()).unwrap();
    let _ = (single(&mut events), single(&mut events));

    assert!(node.kill(p.pid()));

    let removed = batch(&mut events);
    assert_eq!(removed.len(), 2);
    assert!(
        removed
            .iter()
            .all(|e| e.reason == Reason::Exit(ExitReason::Killed) && e.pid == p.pid())
    );
    assert!(!p.is_alive());
    assert!(!node.is_alive(p.pid()));
    assert_eq!(p.exit_reason(), Some(ExitReason::Killed));
    assert!(node.default_scope().lookup("victim").is_none());
    assert!(node.default_scope().members("victims").is_empty());
    assert_eq!(node.process_count(), 0);

    // Dropping the killed handle later changes nothing and emits nothing.
    drop(p);
    assert_quiet(&mut events);
}

#[tokio::test]
async fn kill_returns_false_for_an_unknown_or_already_dead_pid() {
    let node = node();
    assert!(!node.kill(Pid::new(node.incarnation(), 999_999)));
    let p = node.new_process();
    assert!(node.kill(p.pid()));
    assert!(!node.kill(p.pid()));
    let dropped = node.new_process().pid();
    assert!(!node.kill(dropped));
}

#[tokio::test]
async fn a_live_process_has_no_exit_reason() {
    let node = node();
    let p = node.new_process();
    assert!(p.is_alive());
    assert_eq!(p.exit_reason(), None);
    assert_eq!(p.node().incarnation(), node.incarnation());
}

#[tokio::test]
async fn killing_a_spawned_process_aborts_its_task() {
    struct SignalOnDrop(Option<tokio::sync::oneshot::Sender<()>>);
    impl Drop for SignalOnDrop {
        fn drop(&mut self) {
            if let Some(tx) = self.0.take() {
                let _ = tx.send(());
            }
        }
    }

    let node = node();
    let (dropped_tx, dropped_rx) = tokio::sync::oneshot::channel();
    let (started_tx, started_rx) = tokio::sync::oneshot::channel();
    let finished = Arc::new(AtomicBool::new(false));
    let finished_in_task = finished.clone();
    let pid = node.spawn(move |proc| async move {
        let _guard = SignalOnDrop(Some(dropped_tx));
        proc.register("sleeper", &()).unwrap();
        started_tx.send(()).unwrap();
        std::future::pending::<()>().await;
        finished_in_task.store(true, Ordering::SeqCst);
        drop(proc);
    });
    within("the process to start", started_rx).await.unwrap();
    assert_eq!(node.default_scope().whereis("sleeper"), Some(pid));

    assert!(node.kill(pid));

    within("the task to be aborted", dropped_rx).await.unwrap();
    assert!(!finished.load(Ordering::SeqCst));
    assert!(node.default_scope().lookup("sleeper").is_none());
}

#[tokio::test]
async fn a_process_killed_before_its_task_first_runs_never_runs_its_body() {
    let node = node();
    let ran = Arc::new(AtomicBool::new(false));
    let ran_in_task = ran.clone();
    let pid = node.spawn(move |proc| async move {
        ran_in_task.store(true, Ordering::SeqCst);
        proc.register("never", &()).unwrap();
    });
    assert!(node.kill(pid));
    for _ in 0..10 {
        tokio::task::yield_now().await;
    }
    assert!(!ran.load(Ordering::SeqCst));
    assert!(node.default_scope().lookup("never").is_none());
}

#[tokio::test]
async fn process_count_counts_live_local_processes() {
    let node = node();
    assert_eq!(node.process_count(), 0);
    let a = node.new_process();
    let b = node.new_process();
    assert_eq!(node.process_count(), 2);
    node.kill(a.pid());
    assert_eq!(node.process_count(), 1);
    drop(b);
    assert_eq!(node.process_count(), 0);
}

#[tokio::test]
async fn messages_are_typed_and_carry_their_sender() {
    let node = node();
    let (a, mut b) = (node.new_process(), node.new_process());
    a.send(b.pid(), &(7u32, "seven")).unwrap();
    node.send(b.pid(), &vec![1u8, 2, 3]).unwrap();

    let first = within("a message", b.recv_envelope()).await.unwrap();
    assert_eq!(first.from(), Some(a.pid()));
    assert_eq!(
        first.decode::<(u32, String)>().unwrap(),
        (7, "seven".into())
    );
    let second = within("a message", b.recv_envelope()).await.unwrap();
    assert_eq!(second.from(), None);
    assert_eq!(second.decode::<Vec<u8>>().unwrap(), [1, 2, 3]);
    assert!(b.try_recv::<u8>() == Err(TryRecvError::Empty));
}

#[tokio::test]
async fn a_message_of_another_type_fails_to_decode_and_is_consumed() {
    let node = node();
    let (a, mut b) = (node.new_process(), node.new_process());
    a.send(b.pid(), &"text").unwrap();
    a.send(b.pid(), &5u8).unwrap();

    let err = within("a message", b.recv::<u64>()).await.unwrap_err();
    assert!(matches!(err, RecvError::Decode { from: Some(from), .. } if from == a.pid()));
    assert_eq!(within("a message", b.recv::<u8>()).await.unwrap(), 5);
}

#[tokio::test]
async fn try_recv_takes_a_queued_message_without_waiting() {
    let node = node();
    let mut p = node.new_process();
    assert!(p.try_recv::<u8>() == Err(TryRecvError::Empty));
    node.send(p.pid(), &9u8).unwrap();
    assert_eq!(p.try_recv::<u8>().unwrap(), 9);
    node.send(p.pid(), &"x").unwrap();
    assert!(matches!(
        p.try_recv::<u8>(),
        Err(TryRecvError::Decode { .. })
    ));
}

#[tokio::test]
async fn sending_to_an_unknown_or_dead_process_fails_with_no_process() {
    let node = node();
    let unknown = Pid::new(node.incarnation(), 123_456);
    assert_eq!(node.send(unknown, &1u8), Err(SendError::NoProcess(unknown)));
    let killed = node.new_process();
    node.kill(killed.pid());
    assert_eq!(
        node.send(killed.pid(), &1u8),
        Err(SendError::NoProcess(killed.pid()))
    );
    let dropped = node.new_process().pid();
    assert_eq!(node.send(dropped, &1u8), Err(SendError::NoProcess(dropped)));
    // A process of another node, which this node never heard of: gone for good as far as
    // this node can tell.
    let elsewhere = common::node().new_process();
    assert_eq!(
        node.send(elsewhere.pid(), &1u8),
        Err(SendError::NodeGone(elsewhere.pid()))
    );
}

#[tokio::test]
async fn a_full_mailbox_refuses_messages_until_one_is_received() {
    let node = Node::builder().mailbox_capacity(2).start().unwrap();
    let mut p = node.new_process();
    node.send(p.pid(), &1u8).unwrap();
    node.send(p.pid(), &2u8).unwrap();
    assert_eq!(
        node.send(p.pid(), &3u8),
        Err(SendError::MailboxFull(p.pid()))
    );
    assert_eq!(p.try_recv::<u8>().unwrap(), 1);
    node.send(p.pid(), &4u8).unwrap();
    assert_eq!(p.try_recv::<u8>().unwrap(), 2);
    assert_eq!(p.try_recv::<u8>().unwrap(), 4);
}

/// A message that encodes to `len` + 5 bytes (a MessagePack str32 header).
fn large(len: usize) -> String {
    "x".repeat(len)
}

/// Bound of the mailboxes below: 1 MiB, room for two 400 KB messages but not three.
const MAILBOX_BYTES: usize = 1 << 20;

#[tokio::test]
async fn a_mailbox_full_of_bytes_refuses_large_messages_until_one_is_received() {
    let node = Node::builder()
        .mailbox_bytes(MAILBOX_BYTES)
        .start()
        .unwrap();
    let mut p = node.new_process();
    node.send(p.pid(), &large(400_000)).unwrap();
    node.send(p.pid(), &large(400_000)).unwrap();
    assert_eq!(
        node.send(p.pid(), &large(400_000)),
        Err(SendError::MailboxFull(p.pid())),
        "a third would hold 1,200,015 bytes"
    );
    // Refused by bytes, not by count: a small message still fits.
    node.send(p.pid(), &1u8).unwrap();
    assert_eq!(p.try_recv::<String>().unwrap().len(), 400_000);
    node.send(p.pid(), &large(400_000)).unwrap();
    assert_eq!(
        node.send(p.pid(), &large(400_000)),
        Err(SendError::MailboxFull(p.pid()))
    );
    assert_eq!(
        within("a message", p.recv::<String>()).await.unwrap().len(),
        400_000
    );
    assert_eq!(p.try_recv::<u8>().unwrap(), 1);
    assert_eq!(p.try_recv::<String>().unwrap().len(), 400_000);
    assert!(p.try_recv::<String>() == Err(TryRecvError::Empty));
    // Every byte was released: the mailbox takes two large messages again.
    node.send(p.pid(), &large(400_000)).unwrap();
    node.send(p.pid(), &large(400_000)).unwrap();
}

#[tokio::test]
async fn a_dispatch_counts_a_mailbox_full_of_bytes_as_full() {
    let node = Node::builder()
        .mailbox_bytes(MAILBOX_BYTES)
        .start()
        .unwrap();
    let (mut full, mut free) = (node.new_process(), node.new_process());
    full.join("g", &()).unwrap();
    free.join("g", &()).unwrap();
    node.send(full.pid(), &large(700_000)).unwrap();

    let sent = node.default_scope().dispatch("g", &large(400_000)).unwrap();

    assert_eq!((sent.local, sent.mailbox_full), (1, 1));
    assert_eq!(free.try_recv::<String>().unwrap().len(), 400_000);
    assert_eq!(full.try_recv::<String>().unwrap().len(), 700_000);
    assert!(full.try_recv::<String>() == Err(TryRecvError::Empty));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_from_a_peer_are_refused_at_the_byte_bound_too() {
    let a = start_clustered(
        Node::builder().mailbox_bytes(MAILBOX_BYTES),
        "a",
        cluster_config("mailbox", &[]),
    );
    let b = start_clustered(Node::builder(), "b", cluster_config("mailbox", &[&a]));
    eventually("a and b linked", || fully_linked(&[&a, &b])).await;
    let (mut p, mut marker) = (a.new_process(), a.new_process());
    let sender = b.new_process();
    for _ in 0..3 {
        sender.send(p.pid(), &large(400_000)).unwrap();
    }
    sender.send(marker.pid(), &"after the three").unwrap();
    // The link delivers in order: once the marker is in, the three were delivered or
    // refused.
    within("the marker", marker.recv::<String>()).await.unwrap();
    assert!(p.try_recv::<String>().is_ok());
    assert!(p.try_recv::<String>().is_ok());
    assert!(
        p.try_recv::<String>() == Err(TryRecvError::Empty),
        "the third was refused"
    );
    a.shutdown().await;
    b.shutdown().await;
}

#[tokio::test]
async fn a_killed_process_drains_its_queued_messages_then_recv_reports_exited() {
    let node = node();
    let mut p = node.new_process();
    node.send(p.pid(), &1u8).unwrap();
    node.send(p.pid(), &2u8).unwrap();
    node.kill(p.pid());
    assert_eq!(within("a message", p.recv::<u8>()).await.unwrap(), 1);
    assert_eq!(within("a message", p.recv::<u8>()).await.unwrap(), 2);
    assert_eq!(
        within("recv", p.recv::<u8>()).await,
        Err(RecvError::Exited(p.pid()))
    );
}

struct Unencodable;

impl Serialize for Unencodable {
    fn serialize<S: Serializer>(&self, _: S) -> Result<S::Ok, S::Error> {
        Err(S::Error::custom("this value refuses to be encoded"))
    }
}

#[tokio::test]
async fn a_message_serde_cannot_encode_fails_to_send_with_encode() {
    let node = node();
    let mut p = node.new_process();
    assert!(matches!(
        node.send(p.pid(), &Unencodable),
        Err(SendError::Encode(_))
    ));
    assert!(p.try_recv::<u8>() == Err(TryRecvError::Empty));
}

#[tokio::test]
async fn a_dead_process_can_neither_register_nor_join() {
    let node = node();
    let mut events = node.default_scope().subscribe(Pattern::All).unwrap();
    let p = node.new_process();
    node.kill(p.pid());
    assert_eq!(
        p.register("late", &()),
        Err(RegistryError::ProcessDead { pid: p.pid() })
    );
    assert_eq!(
        p.join("late", &()),
        Err(RegistryError::ProcessDead { pid: p.pid() })
    );
    assert!(matches!(
        p.unregister("late"),
        Err(RegistryError::NotRegistered { .. })
    ));
    assert!(matches!(
        p.leave("late"),
        Err(RegistryError::NotInGroup { .. })
    ));
    assert_eq!(node.default_scope().name_count(), 0);
    assert_eq!(node.default_scope().membership_count(), 0);
    assert_quiet(&mut events);
}

#[tokio::test]
async fn a_process_of_another_node_is_refused_as_foreign() {
    let node = node();
    let elsewhere = common::node();
    let foreign = elsewhere.new_process();
    let expected = Err(RegistryError::ForeignProcess { pid: foreign.pid() });
    assert_eq!(
        node.default_scope()
            .register(&foreign, "k", &())
            .map(|_| ()),
        expected
    );
    assert_eq!(node.default_scope().join(&foreign, "k", &()), expected);
    assert_eq!(node.default_scope().unregister(&foreign, "k"), expected);
    assert_eq!(node.default_scope().leave(&foreign, "k"), expected);
    assert_eq!(node.default_scope().name_count(), 0);
    assert_eq!(node.default_scope().membership_count(), 0);
    assert_eq!(elsewhere.default_scope().name_count(), 0);
}

/// Checks that every index agrees with the others and that only live processes appear.
fn assert_consistent(node: &Node, procs: &[Process]) {
    let names = node.default_scope().names("", usize::MAX).unwrap();
    let memberships = node
        .default_scope()
        .select(Table::Groups, None, |_| true)
        .unwrap();
    for (key, registration) in &names {
        assert!(
            node.is_alive(registration.pid),
            "{key} is still owned by dead {}",
            registration.pid
        );
    }
    for entry in &memberships {
        assert!(
            node.is_alive(entry.pid),
            "{} still has dead member {}",
            entry.key,
            entry.pid
        );
    }
    assert_eq!(node.default_scope().name_count(), names.len());
    assert_eq!(node.default_scope().local_name_count(), names.len());
    assert_eq!(node.default_scope().membership_count(), memberships.len());
    assert_eq!(node.default_scope().member_count("g/"), memberships.len());
    assert_eq!(
        node.default_scope().groups("", usize::MAX).unwrap().len(),
        {
            let keys: BTreeSet<_> = memberships.iter().map(|e| e.key.clone()).collect();
            keys.len()
        }
    );
    for p in procs {
        let owned: Vec<_> = names
            .iter()
            .filter(|(_, r)| r.pid == p.pid())
            .map(|(k, _)| k.clone())
            .collect();
        assert_eq!(
            node.default_scope().names_of(p.pid()),
            owned,
            "owner index of {}",
            p.pid()
        );
        let mut joined: Vec<_> = memberships
            .iter()
            .filter(|e| e.pid == p.pid())
            .map(|e| e.key.clone())
            .collect();
        joined.sort();
        assert_eq!(
            node.default_scope().groups_of(p.pid()),
            joined,
            "owner index of {}",
            p.pid()
        );
    }
}

/// Checks that the events of each key tell a consistent story: a name is registered before
/// it is updated or unregistered, by the pid that holds it; a membership likewise.
fn assert_event_story(events: &[roster::Event]) {
    let mut owners: BTreeMap<String, Pid> = BTreeMap::new();
    let mut members: BTreeSet<(String, Pid)> = BTreeSet::new();
    for e in events {
        let key = e.key.to_string();
        match e.kind {
            EventKind::Registered if e.previous_meta.is_none() => {
                let before = owners.insert(key, e.pid);
                assert_eq!(before, None, "{e:?} while the name was held");
            }
            EventKind::Registered => assert_eq!(owners.get(&key), Some(&e.pid), "{e:?}"),
            EventKind::Unregistered => {
                assert_eq!(owners.remove(&key), Some(e.pid), "{e:?}");
            }
            EventKind::Joined if e.previous_meta.is_none() => {
                assert!(members.insert((key, e.pid)), "{e:?} twice");
            }
            EventKind::Joined => assert!(members.contains(&(key, e.pid)), "{e:?}"),
            EventKind::Left => assert!(members.remove(&(key, e.pid)), "{e:?}"),
            other => panic!("no conflict happens on one node: {other:?} {e:?}"),
        }
    }
}

#[test]
fn a_process_killed_while_registering_and_joining_never_leaves_an_entry_behind() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let _guard = runtime.enter();
    let node = Node::builder()
        .subscription_capacity(1 << 22)
        .start()
        .unwrap();
    let mut events = node.default_scope().subscribe(Pattern::All).unwrap();
    let other = node.connect("other").unwrap();
    const KEYS: usize = 6;
    for round in 0..300usize {
        let procs: Vec<Process> = (0..4).map(|_| node.new_process()).collect();
        let victims = [procs[0].pid(), procs[2].pid(), procs[3].pid()];
        let barrier = Barrier::new(3);
        std::thread::scope(|s| {
            for pair in procs.chunks(2) {
                let (barrier, other) = (&barrier, &other);
                s.spawn(move || {
                    barrier.wait();
                    for k in 0..KEYS {
                        for p in pair {
                            let _ = p.register(&format!("n/{k}"), &round);
                            let _ = p.join(&format!("g/{k}"), &round);
                            let _ = other.register(p, &format!("o/{k}"), &round);
                            if k % 2 == 1 {
                                let _ = p.unregister(&format!("n/{}", k - 1));
                                let _ = p.leave(&format!("g/{}", k - 1));
                            }
                        }
                    }
                });
            }
            let (barrier, node) = (&barrier, &node);
            s.spawn(move || {
                barrier.wait();
                for _ in 0..(round * 37) % 3000 {
                    std::hint::spin_loop();
                }
                for pid in victims {
                    assert!(node.kill(pid));
                }
            });
        });

        for pid in victims {
            assert!(!node.is_alive(pid));
            assert!(
                node.default_scope().names_of(pid).is_empty()
                    && node.default_scope().groups_of(pid).is_empty()
            );
        }
        assert_consistent(&node, &procs);
        let survivor = procs[1].pid();
        assert!(
            other
                .names("", usize::MAX)
                .unwrap()
                .iter()
                .all(|(_, r)| r.pid == survivor)
        );
        assert_eq!(other.names_of(survivor).len(), other.name_count());
        drop(procs);
        assert_eq!(node.default_scope().name_count(), 0, "round {round}");
        assert_eq!(node.default_scope().local_name_count(), 0);
        assert_eq!(node.default_scope().membership_count(), 0);
        assert_eq!(other.name_count(), 0);
        assert_eq!(other.local_name_count(), 0);
        assert_eq!(node.process_count(), 0);
    }
    assert_event_story(&common::drain(&mut events));
}

#[test]
fn a_name_freed_by_a_concurrent_kill_is_registrable_as_soon_as_the_death_is_observable() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let _guard = runtime.enter();
    let node = Node::builder()
        .subscription_capacity(1 << 20)
        .start()
        .unwrap();
    let mut events = node.default_scope().subscribe("contested").unwrap();
    for round in 0..500u32 {
        let owner = node.new_process();
        owner.register("contested", &round).unwrap();
        owner.join("also-held", &()).unwrap();
        let heir = node.new_process();
        let (owner_pid, heir_pid) = (owner.pid(), heir.pid());
        std::thread::scope(|s| {
            s.spawn(|| assert!(node.kill(owner_pid)));
            s.spawn(|| {
                while node.is_alive(owner_pid) {
                    std::hint::spin_loop();
                }
                heir.register("contested", &round)
                    .expect("a name is free as soon as its owner is observably dead");
            });
        });
        assert_eq!(node.default_scope().whereis("contested"), Some(heir.pid()));
        assert_eq!(node.default_scope().name_count(), 1);
        assert_eq!(node.default_scope().local_name_count(), 1);
        assert_eq!(node.default_scope().membership_count(), 0);
        drop(heir);
        assert_eq!(node.default_scope().local_name_count(), 0);

        let story: Vec<_> = common::drain(&mut events)
            .into_iter()
            .map(|e| (e.kind, e.pid, e.reason))
            .collect();
        assert_eq!(
            story,
            [
                (EventKind::Registered, owner_pid, Reason::Requested),
                (
                    EventKind::Unregistered,
                    owner_pid,
                    Reason::Exit(ExitReason::Killed)
                ),
                (EventKind::Registered, heir_pid, Reason::Requested),
                (
                    EventKind::Unregistered,
                    heir_pid,
                    Reason::Exit(ExitReason::Normal)
                ),
            ],
            "round {round}"
        );
    }
}

#[tokio::test]
async fn killing_a_process_wakes_its_handle_waiting_in_recv_with_exited() {
    let node = node();
    let mut p = node.new_process();
    let pid = p.pid();
    let (waiting_tx, waiting_rx) = tokio::sync::oneshot::channel();
    let waiter = tokio::spawn(async move {
        waiting_tx.send(()).unwrap();
        p.recv::<u8>().await
    });
    within("the waiter to start", waiting_rx).await.unwrap();
    tokio::task::yield_now().await;

    assert!(node.kill(pid));

    let outcome = within("recv to return after the kill", waiter)
        .await
        .unwrap();
    assert_eq!(outcome, Err(RecvError::Exited(pid)));
}

#[test]
fn kill_reports_true_only_when_it_ended_the_process_itself() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let _guard = runtime.enter();
    let node = Node::builder()
        .subscription_capacity(1 << 20)
        .start()
        .unwrap();
    let mut events = node.default_scope().subscribe("racer").unwrap();
    let (mut kills, mut drops) = (0, 0);
    for round in 0..2000 {
        let p = node.new_process();
        p.register("racer", &()).unwrap();
        let pid = p.pid();
        let barrier = Barrier::new(2);
        let killed = std::thread::scope(|s| {
            s.spawn(|| {
                barrier.wait();
                drop(p);
            });
            let killer = s.spawn(|| {
                barrier.wait();
                node.kill(pid)
            });
            killer.join().unwrap()
        });
        let removal = common::drain(&mut events)
            .into_iter()
            .find(|e| e.kind == EventKind::Unregistered)
            .expect("the name was removed");
        let expected = if killed {
            kills += 1;
            Reason::Exit(ExitReason::Killed)
        } else {
            drops += 1;
            Reason::Exit(ExitReason::Normal)
        };
        assert_eq!(
            removal.reason, expected,
            "round {round}: kill returned {killed}"
        );
    }
    assert!(kills > 0 && drops > 0, "both sides won some rounds");
}
