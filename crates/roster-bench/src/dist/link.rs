//! What the agent needs from Roster's link layer: byte counters and severing links (R1).

use std::time::Duration;

use roster::Node;
use serde_json::{Value, json};

/// The node's link statistics as a reply: `bytes_sent`, `bytes_received` (link bytes:
/// frames and their length prefixes; SWIM's UDP datagrams are not counted) and the
/// counters of link trouble.
pub(super) fn stats(node: &Node) -> Result<Value, String> {
    let s = node
        .cluster()
        .stats()
        .ok_or("the node has no cluster layer")?;
    Ok(json!({
        "bytes_sent": s.bytes_sent,
        "bytes_received": s.bytes_received,
        "links_established": s.links_established,
        "handshake_failures": s.handshake_failures,
        "links_overloaded": s.links_overloaded,
        "digest_repairs": s.digest_repairs,
        "stream_gaps": s.stream_gaps,
        "bad_frames": s.bad_frames,
    }))
}

/// Closes every link of the node and refuses new ones for `for_`.
pub(super) fn sever(node: &Node, for_: Duration) -> Result<(), String> {
    if node.cluster().addr().is_none() {
        return Err("the node has no cluster layer".into());
    }
    node.cluster().sever_links(for_);
    Ok(())
}
