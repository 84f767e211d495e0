//! What applying a large snapshot costs its receiver: the receiver's side of D2 (bulk sync),
//! without sockets, a sender or a second process.
//!
//! A measurement, not a check, so it is `#[ignore]`d and prints its figures:
//! `cargo test --release -p roster-proto --lib snapshot_apply_figures -- --ignored --nocapture`.
//! The snapshot is the one D2's agent makes: [`ENTRIES`] names `sync-{i}` held by one
//! process each, meta `()`, in key order, in chunks of [`CoreConfig::max_ops_per_frame`].
//! Its frames are encoded first; then each is decoded and handed to the receiver's core as a
//! link reader does. Times are the thread's CPU time (from `/proc/thread-self/schedstat`),
//! so that other load on the machine changes them less than the wall time.

use std::time::Instant;

use compact_str::format_compact;

use super::pair::Pair;
use crate::replication::core::CoreConfig;
use crate::replication::wire::Frame;
use crate::store::SnapshotSize;
use crate::vocab::key::Limits;
use crate::vocab::meta::Meta;
use crate::vocab::op::Op;
use crate::vocab::pid::{Incarnation, Pid};

/// Names in the snapshot.
const ENTRIES: usize = 1_000_000;

/// CPU time this thread has used, ns (0 where `/proc` is missing).
fn thread_cpu_ns() -> u64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// The encoded frames of a snapshot of [`ENTRIES`] names of `origin`, the first announcing
/// its size if `announce`.
fn snapshot_frames(origin: u64, announce: bool) -> Vec<Vec<u8>> {
    let meta = Meta::encode(&()).expect("unit encodes");
    let mut ops: Vec<Op> = (0..ENTRIES as u64)
        .map(|i| Op::Register {
            key: format_compact!("sync-{i}"),
            pid: Pid::new(Incarnation::new(origin), i + 1),
            meta: meta.clone(),
            registered_at: 1_000 + i,
            token: 1_000 + i,
        })
        .collect();
    ops.sort_unstable_by(|a, b| a.key().cmp(b.key()));
    let chunks: Vec<&[Op]> = ops
        .chunks(CoreConfig::default().max_ops_per_frame)
        .collect();
    let last = chunks.len() - 1;
    chunks
        .into_iter()
        .enumerate()
        .map(|(i, chunk)| {
            let size = SnapshotSize {
                names: ENTRIES as u64,
                groups: 0,
                members: 0,
            };
            Frame::Snapshot {
                scope: "default".into(),
                seq: ENTRIES as u64,
                size: (i == 0 && announce).then_some(size),
                ops: chunk.to_vec(),
                last: i == last,
            }
            .encode()
        })
        .collect()
}

#[test]
#[ignore = "a measurement that prints figures, not a check; see the module docs"]
fn snapshot_apply_figures() {
    for announce in [true, false] {
        let mut pair = Pair::new(CoreConfig::default());
        pair.link();
        let frames = snapshot_frames(pair.a.incarnation.get(), announce);

        let cpu = thread_cpu_ns();
        for bytes in &frames {
            drop(Frame::decode(bytes, &Limits::CEILING).expect("a valid frame"));
        }
        let decode_ms = (thread_cpu_ns() - cpu) as f64 / 1e6;

        let (cpu, wall) = (thread_cpu_ns(), Instant::now());
        for bytes in &frames {
            pair.deliver_to_b(bytes);
        }
        let apply_ms = (thread_cpu_ns() - cpu) as f64 / 1e6;
        let wall_ms = wall.elapsed().as_secs_f64() * 1e3;
        assert_eq!(pair.b.names(), ENTRIES);
        println!(
            "size announced: {announce:5} | {ENTRIES} names decoded and applied in {apply_ms:.0} ms CPU \
             ({:.0} K entries/s; {wall_ms:.0} ms wall), of which decoding {decode_ms:.0} ms",
            ENTRIES as f64 / apply_ms,
        );
    }
}
