//! Frames exchanged by replication cores, and their binary encoding.
//!
//! Frames are postcard-encoded (compact, stable specification). A frame from the network
//! is decoded with [`Frame::decode`], which checks every key and bound and never panics:
//! bad bytes give a [`WireError`] and change nothing.

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::nodes::{Heartbeat, NodeRecord};
use crate::store::SnapshotSize;
use crate::vocab::key::{Key, Limits, ScopeName};
use crate::vocab::meta::Meta;
use crate::vocab::op::{Op, Restamp};
use crate::vocab::pid::Pid;

/// The replication protocol version. A peer with another version is refused at the
/// handshake.
/// Version 4: the first chunk of a snapshot announces its size. Version 5: node records
/// say whether an offline node left, and external nodes (records kept by a member, and
/// their heartbeats). Version 6: the removal of a name that lost a conflict says who lost
/// it and which rule decided (`Reason::Conflict`), and a process can end with a reason of
/// its owner's (`ExitReason::Shutdown`). Version 7: a node keeps back a registration whose
/// fencing token is below one it showed for the name, and asks its owner for a fresh one
/// (`Frame::Restamp`), and the `Hello` frame carries the sender's clock.
pub const PROTOCOL_VERSION: u16 = 7;

/// One replication frame.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[allow(missing_docs, reason = "the variant docs say what the fields are")]
pub enum Frame {
    /// First frame on a link: the sender's replicated scopes, for each scope the last
    /// sequence of the receiver's stream it has applied (absent: it has none), and the
    /// highest reading of the sender's clocks (the receiver's clocks move past it, so a
    /// node that just started never stamps a token below ones its peers have seen).
    Hello {
        scopes: Vec<ScopeName>,
        positions: Vec<(ScopeName, u64)>,
        clock: u64,
    },
    /// The sender connected to or disconnected from scopes.
    Scopes {
        joined: Vec<ScopeName>,
        left: Vec<ScopeName>,
    },
    /// Consecutive ops of the sender's stream in `scope`, the first numbered `first_seq`.
    Ops {
        scope: ScopeName,
        first_seq: u64,
        ops: Vec<Op>,
    },
    /// A chunk of a snapshot of the sender's stream in `scope` at sequence `seq`; the last
    /// chunk completes it. The first chunk, and only it, carries `size`: how many entries
    /// the whole snapshot holds, so that the receiver can size its maps up front (a hint,
    /// never trusted for more than a bounded reservation; see [`SnapshotSize`]).
    Snapshot {
        scope: ScopeName,
        seq: u64,
        size: Option<SnapshotSize>,
        ops: Vec<Op>,
        last: bool,
    },
    /// The sender's digest of the receiver's entries in `scope`, having applied its stream
    /// up to `seq`.
    Digest {
        scope: ScopeName,
        seq: u64,
        digest: u128,
    },
    /// The sender lost track of the receiver's stream in `scope` and asks for a snapshot.
    Resync { scope: ScopeName },
    /// A message for one process of the receiver.
    Message(Message),
    /// A message for the owner and the members of a key on the receiver.
    Dispatch(Dispatch),
    /// A sign of life, sent once per anti-entropy interval (a link that carries no frame
    /// for several intervals is dead and gets closed); answered with a `Pong` of the same
    /// id, which measures the link's round-trip time.
    Ping { id: u64 },
    /// The answer to the `Ping` of `id`.
    Pong { id: u64 },
    /// The sender's node record (its own, or of an external node it keeps), sent after
    /// `Hello` and on every change.
    Node(NodeRecord),
    /// The sender's latest heartbeat.
    Heartbeat(Heartbeat),
    /// The latest heartbeat of the external node of incarnation `node`, which the sender
    /// keeps.
    KeptHeartbeat {
        node: crate::vocab::pid::Incarnation,
        heartbeat: Heartbeat,
    },
    /// Registrations of the receiver's processes in `scope` that the sender keeps back:
    /// each arrived with a fencing token below one the sender showed for its name since,
    /// and waits for a fresh token from the receiver (see [`Restamp`]).
    Restamp {
        scope: ScopeName,
        names: Vec<Restamp>,
    },
}

/// A message for one process of another node (encoded as the fields of a struct variant,
/// so `Frame::Message` keeps the same bytes as when it was one).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    /// The receiving process.
    pub to: Pid,
    /// The sending process, if a process sent it.
    pub from: Option<Pid>,
    /// The encoded message.
    pub payload: Meta,
}

/// A message for the local owner and members of `key` in `scope` on another node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Dispatch {
    /// The scope of the key.
    pub scope: ScopeName,
    /// The name or group the message is for.
    pub key: Key,
    /// The encoded message.
    pub payload: Meta,
}

/// A frame could not be decoded or is invalid. The receiver's state is unchanged.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum WireError {
    /// The bytes are not a frame of this protocol version.
    #[error("malformed frame: {0}")]
    Malformed(String),
    /// A node record or heartbeat is over the protocol's bounds.
    #[error("invalid frame: {0}")]
    Invalid(String),
    /// The frame has bytes after its end.
    #[error("frame has {0} trailing bytes")]
    TrailingBytes(usize),
    /// A key or scope name in the frame breaks the limits.
    #[error("invalid key in frame: {0}")]
    InvalidKey(String),
    /// Meta in the frame is larger than the limit.
    #[error("meta of {len} bytes in frame exceeds the limit of {max}")]
    MetaTooLarge {
        /// Encoded meta length.
        len: usize,
        /// The limit.
        max: usize,
    },
}

impl Frame {
    /// Encodes the frame (without a length prefix).
    #[cfg(any(test, feature = "fuzzing"))]
    pub fn encode(&self) -> Vec<u8> {
        let mut bytes = Vec::new();
        self.encode_into(&mut bytes);
        bytes
    }

    /// Appends the frame's encoding to `out`.
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        postcard::to_io(self, out).expect("frames always encode into a Vec");
    }

    /// Decodes and validates a frame received from a peer. `limits` are the protocol's
    /// bounds ([`Limits::CEILING`]): items within them but over the receiving node's own
    /// limits are skipped when applied, without failing the frame.
    pub fn decode(bytes: &[u8], limits: &Limits) -> Result<Self, WireError> {
        let (frame, rest): (Self, &[u8]) =
            postcard::take_from_bytes(bytes).map_err(|e| WireError::Malformed(e.to_string()))?;
        if !rest.is_empty() {
            return Err(WireError::TrailingBytes(rest.len()));
        }
        frame.validate(limits)?;
        Ok(frame)
    }

    fn validate(&self, limits: &Limits) -> Result<(), WireError> {
        let scope = |s: &str| {
            limits
                .write_key(s)
                .map_err(|e| WireError::InvalidKey(e.to_string()))
        };
        let within = |m: &Meta, max: usize| {
            if m.encoded_len() > max {
                Err(WireError::MetaTooLarge {
                    len: m.encoded_len(),
                    max,
                })
            } else {
                Ok(())
            }
        };
        let meta = |m: &Meta| within(m, limits.max_meta_bytes);
        let message = |m: &Meta| within(m, limits.max_message_bytes);
        let ops = |ops: &[Op]| {
            ops.iter().try_for_each(|op| {
                scope(op.key())?;
                match op {
                    Op::Register { meta: m, .. } | Op::Join { meta: m, .. } => meta(m),
                    _ => Ok(()),
                }
            })
        };
        match self {
            Self::Hello {
                scopes, positions, ..
            } => {
                scopes.iter().try_for_each(|s| scope(s))?;
                positions.iter().try_for_each(|(s, _)| scope(s))
            }
            Self::Scopes { joined, left } => joined.iter().chain(left).try_for_each(|s| scope(s)),
            Self::Ops {
                scope: s, ops: o, ..
            }
            | Self::Snapshot {
                scope: s, ops: o, ..
            } => {
                scope(s)?;
                ops(o)
            }
            Self::Digest { scope: s, .. } | Self::Resync { scope: s } => scope(s),
            Self::Ping { .. } | Self::Pong { .. } => Ok(()),
            Self::Node(record) => record.validate().map_err(WireError::Invalid),
            Self::Heartbeat(beat)
            | Self::KeptHeartbeat {
                heartbeat: beat, ..
            } => beat.validate().map_err(WireError::Invalid),
            Self::Message(m) => message(&m.payload),
            Self::Dispatch(d) => {
                scope(&d.scope)?;
                scope(&d.key)?;
                message(&d.payload)
            }
            Self::Restamp { scope: s, names } => {
                scope(s)?;
                names.iter().try_for_each(|r| scope(&r.key))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vocab::event::Reason;
    use crate::vocab::pid::Incarnation;

    const LIMITS: Limits = Limits {
        max_key_bytes: 64,
        max_meta_bytes: 64,
        max_message_bytes: 64,
    };

    fn sample() -> Vec<Frame> {
        let pid = Pid::new(Incarnation::new(7), 3);
        vec![
            Frame::Hello {
                scopes: vec!["default".into()],
                positions: vec![("default".into(), 42)],
                clock: 7 << 16,
            },
            Frame::Ops {
                scope: "default".into(),
                first_seq: 1,
                ops: vec![
                    Op::Register {
                        key: "user/1".into(),
                        pid,
                        meta: Meta::encode(&"eu").unwrap(),
                        registered_at: 5,
                        token: 6,
                    },
                    Op::Unregister {
                        key: "user/1".into(),
                        pid,
                        reason: Reason::Conflict {
                            winner: Pid::new(Incarnation::new(9), 2),
                            loser: pid,
                            rule: crate::vocab::conflict::DecidedBy::KeepOldest,
                        },
                    },
                    Op::Leave {
                        key: "room/1".into(),
                        pid,
                        reason: Reason::Conflict {
                            winner: pid,
                            loser: Pid::new(Incarnation::new(8), 1),
                            rule: crate::vocab::conflict::DecidedBy::CustomPanicked,
                        },
                    },
                ],
            },
            Frame::Snapshot {
                scope: "default".into(),
                seq: 12,
                size: Some(SnapshotSize {
                    names: 1,
                    groups: 1,
                    members: u64::MAX,
                }),
                ops: vec![Op::Join {
                    key: "room/1".into(),
                    pid,
                    meta: Meta::EMPTY,
                }],
                last: false,
            },
            Frame::Snapshot {
                scope: "default".into(),
                seq: 12,
                size: None,
                ops: Vec::new(),
                last: true,
            },
            Frame::Digest {
                scope: "s".into(),
                seq: 9,
                digest: u128::MAX - 3,
            },
            Frame::Message(Message {
                to: pid,
                from: None,
                payload: Meta::EMPTY,
            }),
            Frame::Ping { id: 3 },
            Frame::Pong { id: u64::MAX },
            Frame::Node(NodeRecord::new("api-1", Incarnation::new(7), 1_000).with_role("api")),
            Frame::Heartbeat(Heartbeat {
                cpu_load: 0.25,
                peers: vec![crate::nodes::PeerSample {
                    name: "b".into(),
                    incarnation: Incarnation::new(2),
                    session: 4,
                    rtt_us: Some(80),
                    queued: 1,
                }],
                ..Heartbeat::at(1_000)
            }),
            Frame::Node(NodeRecord {
                keeper: Some(crate::nodes::Keeper {
                    name: "api-1".into(),
                    incarnation: Incarnation::new(7),
                }),
                ..NodeRecord::new("worker-1", Incarnation::new(70), 1_000)
            }),
            Frame::KeptHeartbeat {
                node: Incarnation::new(70),
                heartbeat: Heartbeat::at(2_000),
            },
            Frame::Restamp {
                scope: "default".into(),
                names: vec![Restamp {
                    key: "leader".into(),
                    pid,
                    above: u64::MAX,
                }],
            },
        ]
    }

    #[test]
    fn records_and_heartbeats_over_the_bounds_are_refused() {
        let mut record = NodeRecord::new("a", Incarnation::new(1), 1);
        record.labels = (0..=crate::nodes::MAX_LABELS)
            .map(|i| (i.to_string(), String::new()))
            .collect();
        let bytes = Frame::Node(record).encode();
        assert!(matches!(
            Frame::decode(&bytes, &LIMITS),
            Err(WireError::Invalid(_))
        ));
        let mut beat = Heartbeat::at(1);
        beat.app.insert("x".repeat(crate::nodes::MAX_TEXT + 1), 1.0);
        let bytes = Frame::Heartbeat(beat).encode();
        assert!(matches!(
            Frame::decode(&bytes, &LIMITS),
            Err(WireError::Invalid(_))
        ));
    }

    #[test]
    fn frames_round_trip() {
        for frame in sample() {
            assert_eq!(Frame::decode(&frame.encode(), &LIMITS), Ok(frame));
        }
    }

    #[test]
    fn truncated_and_padded_frames_are_refused() {
        for frame in sample() {
            let bytes = frame.encode();
            for cut in 0..bytes.len() {
                assert!(Frame::decode(&bytes[..cut], &LIMITS).is_err());
            }
            let mut padded = bytes.clone();
            padded.push(0);
            assert_eq!(
                Frame::decode(&padded, &LIMITS),
                Err(WireError::TrailingBytes(1))
            );
        }
    }

    #[test]
    fn invalid_keys_and_large_meta_are_refused() {
        let bad_key = Frame::Resync { scope: "".into() };
        assert!(matches!(
            Frame::decode(&bad_key.encode(), &LIMITS),
            Err(WireError::InvalidKey(_))
        ));
        let big = Frame::Message(Message {
            to: Pid::new(Incarnation::new(1), 1),
            from: None,
            payload: Meta::from_bytes(&[0xc4; 100]),
        });
        assert!(matches!(
            Frame::decode(&big.encode(), &LIMITS),
            Err(WireError::MetaTooLarge { .. })
        ));
    }

    proptest::proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..512)) {
            let _ = Frame::decode(&bytes, &LIMITS);
        }

        #[test]
        fn mutated_frames_never_panic(which in 0usize..64, flips in proptest::collection::vec((0usize..4096, proptest::prelude::any::<u8>()), 1..8)) {
            let samples = sample();
            let mut bytes = samples[which % samples.len()].encode();
            for (at, value) in flips {
                let at = at % bytes.len();
                bytes[at] = value;
            }
            let _ = Frame::decode(&bytes, &LIMITS);
        }
    }
}
