//! Link-level tests with a hand-driven peer: it speaks the real handshake, then misbehaves
//! (closes at once, stays silent, holds its proof across a sever).

use std::net::SocketAddr;
use std::time::Duration;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::Notify;

use super::handshake::{ClusterKey, Greeting, handshake};
use crate::{ClusterConfig, FailureDetection, Node};

const SECRET: &str = "link-test-secret";

/// The incarnation of the node whose next link reader panics on its next frame (0: none).
static PANIC_READER_OF: AtomicU64 = AtomicU64::new(0);

/// Called by every link reader before it handles a frame (test builds only).
pub(super) fn maybe_inject_reader_panic(incarnation: u64) {
    if PANIC_READER_OF
        .compare_exchange(incarnation, 0, Ordering::Relaxed, Ordering::Relaxed)
        .is_ok()
    {
        panic!("injected link reader panic");
    }
}

fn node() -> Node {
    let config = ClusterConfig::new("127.0.0.1:0".parse().unwrap(), SECRET)
        .failure_detection(FailureDetection::Fast)
        .anti_entropy_interval(Duration::from_millis(100));
    Node::builder()
        .name("node")
        .cluster(config)
        .start()
        .expect("node starts")
}

fn greeting(incarnation: u64) -> Greeting {
    Greeting::for_test("roster", incarnation)
}

/// Reads (and drops) what the node sends on `tcp` until it closes the connection; `false`
/// if it did not within 15 s.
async fn closed_by_node(tcp: &mut TcpStream) -> bool {
    let mut sink = vec![0u8; 64 * 1024];
    let closed = tokio::time::timeout(Duration::from_secs(15), async {
        while let Ok(n) = tcp.read(&mut sink).await {
            if n == 0 {
                return;
            }
        }
    });
    closed.await.is_ok()
}

/// Connects to `addr` and completes the handshake as a node of incarnation `incarnation`.
async fn handshaken_peer(addr: SocketAddr, incarnation: u64) -> TcpStream {
    let mut tcp = TcpStream::connect(addr).await.expect("connects");
    handshake(&mut tcp, &greeting(incarnation), &key())
        .await
        .expect("handshake with the node");
    tcp
}

fn key() -> ClusterKey {
    ClusterKey::derive(SECRET.as_bytes())
}

async fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    while !check() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for: {what}"
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

/// A peer that closes right after its handshake (as a severed node or the loser of two
/// concurrent links does) never leaves a link behind: the link's end is handled even
/// when it comes before the link is listed. Repeated, since it is a race.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_link_closed_right_after_its_handshake_is_never_left_listed() {
    let node = node();
    let addr = node.cluster().addr().unwrap();
    for round in 0..200u64 {
        let tcp = handshaken_peer(addr, 1_000_000 + round).await;
        drop(tcp);
        eventually(&format!("round {round}: the link was established"), || {
            node.cluster().stats().unwrap().links_established == round + 1
        })
        .await;
        eventually(&format!("round {round}: the closed link is gone"), || {
            node.cluster().peers().is_empty()
        })
        .await;
    }
    // Gone because its end was seen, not because the silent-link closer found it later
    // (within the wait above).
    assert_eq!(node.cluster().stats().unwrap().links_silent, 0);
    node.shutdown().await;
}

/// A session that ends moves from the live sessions to the closed ones in one step: a
/// reader of `link_sessions` never sees it in neither list (nor in both), while links
/// are established and closed as fast as peers come and go. Repeated, since it is a race.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_closing_session_is_always_listed_once() {
    let node = node();
    let addr = node.cluster().addr().unwrap();
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let reader = {
        let (node, done) = (node.clone(), Arc::clone(&done));
        std::thread::spawn(move || {
            let mut seen = std::collections::BTreeSet::new();
            let mut snapshots = 0u64;
            while !done.load(Ordering::Relaxed) {
                let sessions = node.cluster().link_sessions();
                let listed: std::collections::BTreeSet<u64> =
                    sessions.iter().map(|s| s.session).collect();
                assert_eq!(listed.len(), sessions.len(), "a session listed twice");
                let missing: Vec<&u64> = seen.difference(&listed).collect();
                assert!(missing.is_empty(), "sessions {missing:?} not listed");
                seen = listed;
                snapshots += 1;
            }
            snapshots
        })
    };
    // Fewer rounds than the closed sessions kept, so none is dropped from the history.
    for round in 0..60u64 {
        let tcp = handshaken_peer(addr, 2_000_000 + round).await;
        eventually(&format!("round {round}: the link was established"), || {
            node.cluster().stats().unwrap().links_established == round + 1
        })
        .await;
        drop(tcp);
        eventually(&format!("round {round}: the closed link is gone"), || {
            node.cluster().peers().is_empty()
        })
        .await;
    }
    done.store(true, Ordering::Relaxed);
    let snapshots = reader
        .join()
        .expect("the reader saw every session listed once");
    assert!(snapshots > 0);
    node.shutdown().await;
}

/// A peer that completes its handshake and then sends nothing (not even the ping every
/// interval) is closed, counted, and its socket sees the end.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_peer_is_closed() {
    let node = node();
    let mut tcp = handshaken_peer(node.cluster().addr().unwrap(), 7).await;
    eventually("the link is listed", || node.cluster().peers().len() == 1).await;
    // Read what the node sends (its hello and pings) until it closes the link.
    assert!(
        closed_by_node(&mut tcp).await,
        "the node never closed the silent link"
    );
    assert_eq!(node.cluster().stats().unwrap().links_silent, 1);
    assert!(node.cluster().peers().is_empty());
    node.shutdown().await;
}

/// A handshake that began before a sever is refused when it completes, even after the
/// sever ended: a sever covers the links being established. The peer's proof is held in
/// a relay while the node waits for it, across a whole sever window.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_handshake_in_flight_across_a_sever_is_refused() {
    let node = node();
    let tcp = TcpStream::connect(node.cluster().addr().unwrap())
        .await
        .expect("connects");
    let (mut from_node, mut to_node) = tcp.into_split();
    let (mut ours, relay) = tokio::io::duplex(64 * 1024);
    let (mut relay_read, mut relay_write) = tokio::io::split(relay);
    let greeted = Arc::new(Notify::new());
    let release = Arc::new(Notify::new());
    // Node to peer: the node's greeting shows its handshake has begun.
    let signal = greeted.clone();
    tokio::spawn(async move {
        let mut buf = vec![0u8; 64 * 1024];
        while let Ok(n) = from_node.read(&mut buf).await {
            if n == 0 || relay_write.write_all(&buf[..n]).await.is_err() {
                return;
            }
            signal.notify_one();
        }
    });
    // Peer to node: the greeting passes, the proof waits for `release`.
    let held = release.clone();
    tokio::spawn(async move {
        let mut len = [0u8; 4];
        relay_read.read_exact(&mut len).await.unwrap();
        let mut greeting = vec![0u8; u32::from_be_bytes(len) as usize];
        relay_read.read_exact(&mut greeting).await.unwrap();
        to_node.write_all(&len).await.unwrap();
        to_node.write_all(&greeting).await.unwrap();
        held.notified().await;
        let _ = tokio::io::copy(&mut relay_read, &mut to_node).await;
    });
    let peer = tokio::spawn(async move {
        let result = handshake(&mut ours, &greeting(3), &key()).await;
        (result, ours)
    });
    greeted.notified().await;
    let refused = node.cluster().stats().unwrap().connections_refused;
    node.cluster().sever_links(Duration::from_millis(20));
    // Let the sever window pass entirely before the proof arrives.
    tokio::time::sleep(Duration::from_millis(60)).await;
    release.notify_one();
    let (result, _stream) = peer.await.unwrap();
    result.expect("the peer's side of the handshake completes");
    eventually("the completed handshake is refused", || {
        node.cluster().stats().unwrap().connections_refused == refused + 1
    })
    .await;
    assert!(
        node.cluster().peers().is_empty(),
        "{:?}",
        node.cluster().peers()
    );
    assert_eq!(node.cluster().stats().unwrap().links_established, 0);
    node.shutdown().await;
}

/// A link task that panics tears its link down (counted); the peer sees the link close
/// instead of a link that is listed with nothing reading it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_link_reader_tears_its_link_down() {
    let node = node();
    let mut tcp = handshaken_peer(node.cluster().addr().unwrap(), 11).await;
    eventually("the link is listed", || node.cluster().peers().len() == 1).await;
    PANIC_READER_OF.store(node.incarnation().get(), Ordering::Relaxed);
    let mut frame = Vec::new();
    super::outlet::encode_frames(
        &[crate::replication::wire::Frame::Ping { id: 1 }],
        &mut frame,
    );
    tcp.write_all(&frame).await.unwrap();
    eventually("the link is torn down", || {
        node.cluster().peers().is_empty()
    })
    .await;
    assert_eq!(node.cluster().stats().unwrap().link_task_panics, 1);
    assert!(
        closed_by_node(&mut tcp).await,
        "the peer's socket was not closed"
    );
    node.shutdown().await;
}

/// Reads frames from `tcp` until one that `wanted` accepts; `None` if none came within
/// 5 s (or the node closed the link).
async fn frame_from_node(
    tcp: &mut TcpStream,
    wanted: impl Fn(&crate::replication::wire::Frame) -> bool,
) -> Option<crate::replication::wire::Frame> {
    let read = async {
        loop {
            let mut len = [0u8; 4];
            tcp.read_exact(&mut len).await.ok()?;
            let mut body = vec![0u8; u32::from_be_bytes(len) as usize];
            tcp.read_exact(&mut body).await.ok()?;
            let frame =
                crate::replication::wire::Frame::decode(&body, &crate::key::Limits::CEILING)
                    .expect("the node sends frames that decode");
            if wanted(&frame) {
                return Some(frame);
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(5), read)
        .await
        .ok()
        .flatten()
}

/// The core's timer runs with no other wake-up than its deadline: a peer whose stream the
/// node has applied gets a digest every anti-entropy interval, though the node's timer
/// had no deadline before the link (it waits on the core then, with no polling that would
/// hide a deadline never set).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_link_gets_its_anti_entropy_digests() {
    use crate::replication::wire::Frame;
    let node = node();
    let mut tcp = handshaken_peer(node.cluster().addr().unwrap(), 13).await;
    eventually("the link is listed", || node.cluster().peers().len() == 1).await;
    // This peer's (empty) stream of the default scope, whole: the node has applied it.
    let mut frames = Vec::new();
    super::outlet::encode_frames(
        &[
            Frame::Hello {
                scopes: vec!["default".into()],
                positions: Vec::new(),
                clock: 0,
            },
            Frame::Snapshot {
                scope: "default".into(),
                seq: 0,
                size: None,
                ops: Vec::new(),
                last: true,
            },
        ],
        &mut frames,
    );
    tcp.write_all(&frames).await.unwrap();
    for round in 0..3 {
        assert!(
            frame_from_node(&mut tcp, |f| matches!(f, Frame::Digest { .. }))
                .await
                .is_some(),
            "digest {round} never came"
        );
    }
    node.shutdown().await;
}
