//! The node's own log level: `Off`, `Info`, `Verbose`, per node, changeable while running.
//! A test-local `tracing` subscriber collects every line; the tests run in parallel, so
//! each reads only the lines of its own nodes (by their `node` field or a unique reason).

use std::fmt::Write as _;
use std::sync::{Arc, Mutex, OnceLock};

use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Level, Metadata, Subscriber};

mod common;
use common::{cluster_config, eventually, start_clustered, within};

use roster::nodes::NodeStatus;
use roster::{Delivery, LogLevel, Node, Pattern};

/// One line: its level, target, message and fields (`name=value`, space separated).
#[derive(Debug, Clone)]
struct Line {
    level: Level,
    target: String,
    text: String,
}

#[derive(Default)]
struct Collector {
    lines: Mutex<Vec<Line>>,
}

struct Fields(String);

impl Visit for Fields {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        let _ = write!(self.0, " {}={:?}", field.name(), value);
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        let _ = write!(self.0, " {}={}", field.name(), value);
    }
}

struct Capture(Arc<Collector>);

impl Subscriber for Capture {
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, _: &Attributes<'_>) -> Id {
        Id::from_u64(1)
    }
    fn record(&self, _: &Id, _: &Record<'_>) {}
    fn record_follows_from(&self, _: &Id, _: &Id) {}
    fn event(&self, event: &Event<'_>) {
        let mut fields = Fields(String::new());
        event.record(&mut fields);
        self.0.lines.lock().unwrap().push(Line {
            level: *event.metadata().level(),
            target: event.metadata().target().to_string(),
            text: fields.0,
        });
    }
    fn enter(&self, _: &Id) {}
    fn exit(&self, _: &Id) {}
}

/// The process-wide collector (installed once per test binary).
fn collector() -> &'static Arc<Collector> {
    static COLLECTOR: OnceLock<Arc<Collector>> = OnceLock::new();
    COLLECTOR.get_or_init(|| {
        let collector = Arc::new(Collector::default());
        tracing::subscriber::set_global_default(Capture(collector.clone()))
            .expect("no other global subscriber in this test binary");
        collector
    })
}

/// The verbose lines of node `name` so far, as `message key` (or `message pid`).
fn verbose_of(name: &str) -> Vec<String> {
    let tag = format!(" node={name} ");
    collector()
        .lines
        .lock()
        .unwrap()
        .iter()
        .filter(|l| l.target == "roster::verbose" && l.text.contains(&tag))
        .inspect(|l| assert_eq!(l.level, Level::INFO))
        .map(|l| {
            let message = field(&l.text, "message");
            let key = field(&l.text, "key");
            format!("{message} {key}").trim_end().to_string()
        })
        .collect()
}

fn field(text: &str, name: &str) -> String {
    let Some(at) = text.find(&format!(" {name}=")) else {
        return String::new();
    };
    let rest = &text[at + name.len() + 2..];
    // Fields are space separated; a message is recorded last-but-not-always, so cut at
    // the next ` word=`.
    let end = rest
        .match_indices(' ')
        .find(|(i, _)| {
            rest[i + 1..]
                .split_once('=')
                .is_some_and(|(w, _)| !w.contains(' '))
        })
        .map_or(rest.len(), |(i, _)| i);
    rest[..end].to_string()
}

fn lines_containing(needle: &str) -> usize {
    collector()
        .lines
        .lock()
        .unwrap()
        .iter()
        .filter(|l| l.text.contains(needle))
        .count()
}

#[tokio::test]
async fn verbose_logs_each_write_and_death_until_switched_off() {
    collector();
    let node = Node::builder()
        .name("verbose-1")
        .log_level(LogLevel::Verbose)
        .start()
        .unwrap();
    let p = node.new_process();
    p.register("user/1", &1u8).unwrap();
    p.join("room/1", &()).unwrap();
    p.leave("room/1").unwrap();
    p.unregister("user/1").unwrap();
    let chat = node.connect("chat").unwrap();
    chat.join(&p, "room/2", &()).unwrap();
    assert!(p.register("user/1", &()).is_ok());
    let q = node.new_process();
    node.kill(q.pid());
    drop(p); // a death: one line, whatever it held
    assert_eq!(
        verbose_of("verbose-1"),
        [
            "registered user/1",
            "joined room/1",
            "left room/1",
            "unregistered user/1",
            "joined room/2",
            "registered user/1",
            "process exited",
            "process exited",
        ]
    );

    node.set_log_level(LogLevel::Off);
    let r = node.new_process();
    r.register("user/2", &()).unwrap();
    r.join("room/3", &()).unwrap();
    drop(r);
    node.set_log_level(LogLevel::Info);
    let s = node.new_process();
    s.register("user/3", &()).unwrap();
    drop(s);
    assert_eq!(
        verbose_of("verbose-1").len(),
        8,
        "Off and Info log no write"
    );

    node.set_log_level(LogLevel::Verbose);
    node.new_process().join("room/4", &()).unwrap();
    assert_eq!(
        verbose_of("verbose-1")[8..],
        ["joined room/4", "process exited"]
    );
}

#[tokio::test]
async fn info_logs_none_of_the_per_write_lines() {
    collector();
    let node = Node::builder().name("info-1").start().unwrap();
    assert_eq!(node.log_level(), LogLevel::Info);
    let p = node.new_process();
    p.register("k", &()).unwrap();
    p.join("g", &()).unwrap();
    p.unregister("k").unwrap();
    drop(p);
    assert!(verbose_of("info-1").is_empty());
}

#[tokio::test]
async fn off_silences_the_nodes_info_lines_and_keeps_the_others() {
    collector();
    let node = Node::builder()
        .name("off-1")
        .log_level(LogLevel::Off)
        .start()
        .unwrap();
    node.nodes()
        .set_status(NodeStatus::Degraded, "reason-while-off")
        .unwrap();
    assert_eq!(lines_containing("reason-while-off"), 0);
    node.set_log_level(LogLevel::Info);
    node.nodes()
        .set_status(NodeStatus::Draining, "reason-while-info")
        .unwrap();
    assert_eq!(lines_containing("reason-while-info"), 1);
}

/// Waits for `n` events on `events`.
async fn changes(events: &mut roster::Subscription, n: usize) {
    let mut seen = 0;
    while seen < n {
        match within("events", events.recv()).await {
            Some(Delivery::Events(batch)) => seen += batch.len(),
            other => panic!("expected events, got {other:?}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verbose_logs_each_op_applied_from_a_peer() {
    collector();
    const SECRET: &str = "log-level-secret";
    let a = start_clustered(Node::builder(), "ops-a", cluster_config(SECRET, &[]));
    let b = start_clustered(
        Node::builder().log_level(LogLevel::Verbose),
        "ops-b",
        cluster_config(SECRET, &[&a]),
    );
    eventually("linked", || common::fully_linked(&[&a, &b])).await;
    let mut on_b = b.default_scope().subscribe(Pattern::All).unwrap();

    let p = a.new_process();
    p.register("user/1", &()).unwrap();
    p.join("room/1", &()).unwrap();
    p.leave("room/1").unwrap();
    p.unregister("user/1").unwrap();
    changes(&mut on_b, 4).await;
    // The store logs a change after it has delivered its event: wait for the fourth line.
    eventually("b's four lines", || verbose_of("ops-b").len() == 4).await;
    assert_eq!(
        verbose_of("ops-b"),
        [
            "applied a register from a peer user/1",
            "applied a join from a peer room/1",
            "applied a leave from a peer room/1",
            "applied an unregister from a peer user/1",
        ]
    );
    assert!(verbose_of("ops-a").is_empty(), "a is at Info");

    b.set_log_level(LogLevel::Off);
    p.register("user/2", &()).unwrap();
    changes(&mut on_b, 1).await;
    assert_eq!(verbose_of("ops-b").len(), 4);
    a.shutdown().await;
    b.shutdown().await;
}

/// Lines whose message is `message` about `peer`.
fn lines_about(message: &str, peer: &str) -> usize {
    collector()
        .lines
        .lock()
        .unwrap()
        .iter()
        .filter(|l| field(&l.text, "message") == message && field(&l.text, "peer") == peer)
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn off_silences_the_cluster_lines_of_its_node_only() {
    collector();
    let quiet = Node::builder().log_level(LogLevel::Off);
    let quiet = start_clustered(quiet, "quiet-links", cluster_config("links", &[]));
    let loud = start_clustered(
        Node::builder(),
        "loud-links",
        cluster_config("links", &[&quiet]),
    );
    within(
        "linked",
        eventually("both linked", || {
            !quiet.cluster().peers().is_empty() && !loud.cluster().peers().is_empty()
        }),
    )
    .await;
    eventually("the loud node logs its link and member lines", || {
        lines_about("link established", "quiet-links") == 1
            && lines_about("member up", "quiet-links") == 1
    })
    .await;
    // The quiet node's lines would name its peer, the loud node.
    assert_eq!(lines_about("link established", "loud-links"), 0);
    assert_eq!(lines_about("member up", "loud-links"), 0);
    loud.shutdown().await;
    quiet.shutdown().await;
}

/// A client that opens connection after connection and sends garbage gets one warn line
/// for the lot (the line is rate-limited, its `suppressed` field counts the others), not
/// one per connection.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_on_many_connections_makes_one_warn_line() {
    use tokio::io::AsyncWriteExt;

    collector();
    let node = start_clustered(Node::builder(), "garbage", cluster_config("garbage", &[]));
    let target = node.cluster().addr().unwrap();
    let mut remotes = Vec::new();
    for _ in 0..100 {
        let mut tcp = tokio::net::TcpStream::connect(target).await.unwrap();
        remotes.push(format!(" remote={}", tcp.local_addr().unwrap()));
        let _ = tcp
            .write_all(b"GET / HTTP/1.1\r\nHost: roster\r\n\r\n")
            .await;
    }
    eventually("every handshake failed", || {
        node.cluster().stats().unwrap().handshake_failures >= 100
    })
    .await;
    let warned: Vec<String> = collector()
        .lines
        .lock()
        .unwrap()
        .iter()
        .filter(|l| l.level == Level::WARN && l.text.contains("inbound link refused"))
        .filter(|l| remotes.iter().any(|r| l.text.contains(r.as_str())))
        .map(|l| l.text.clone())
        .collect();
    // One line, or two if the connections took longer than the interval.
    assert!(
        (1..=2).contains(&warned.len()),
        "{} warn lines for 100 refused connections: {warned:?}",
        warned.len()
    );
    node.shutdown().await;
}
