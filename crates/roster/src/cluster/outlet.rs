//! The write side of a plain TCP link, pumped by whoever has frames to send.
//!
//! Waking a parked writer task costs a thread wake-up (tens of microseconds on a small
//! VM), more than the write itself. So the task that made the core queue frames — the
//! flusher after handing it local writes, or a reader after applying a frame — sends them
//! at once with non-blocking writes. Only when the socket is full does the link's writer
//! task take over, waiting for the socket to become writable. One pump runs at a time per
//! link: a thread that finds the link busy leaves a note, and the busy pump goes round
//! again, so frames keep their order and none is left behind.

use std::io;
use std::sync::{Mutex, MutexGuard};

use tokio::net::tcp::OwnedWriteHalf;

use crate::replication::wire::Frame;

/// Bytes a pump moved, for the counters.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Moved {
    /// Bytes the socket accepted.
    pub(crate) sent: u64,
    /// Bytes of resync frames encoded for the socket ([`is_resync`]); counted when handed
    /// to the link, so a link that fails mid-snapshot counts the rest too.
    pub(crate) resync: u64,
}

/// What a pump achieved.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Pumped {
    /// Everything queued was written, or another pump is running and will write it.
    Done,
    /// The socket is full: the rest waits in the backlog for the writer task.
    Blocked,
}

#[derive(Default)]
struct State {
    busy: bool,
    again: bool,
    /// Encoded bytes, of which those from `written` on are not yet accepted by the socket;
    /// written before anything newer. Kept whole with an offset: cutting off the written
    /// part at every partial write would copy a large snapshot over and over.
    backlog: Vec<u8>,
    written: usize,
}

/// The write side of a plain TCP link.
pub(crate) struct Outlet {
    half: OwnedWriteHalf,
    state: Mutex<State>,
}

impl Outlet {
    pub(crate) fn new(half: OwnedWriteHalf) -> Self {
        Self {
            half,
            state: Mutex::new(State::default()),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // Each critical section only flips flags or moves a buffer.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Waits until the socket can take more bytes (for the writer task).
    pub(crate) async fn writable(&self) -> io::Result<()> {
        self.half.writable().await
    }

    /// Writes the backlog and every frame `take` yields, without ever waiting; returns
    /// whether the socket filled up and the bytes moved (for counters).
    pub(crate) fn pump(&self, mut take: impl FnMut() -> Vec<Frame>) -> io::Result<(Pumped, Moved)> {
        {
            let mut state = self.lock();
            if state.busy {
                state.again = true;
                return Ok((Pumped::Done, Moved::default()));
            }
            state.busy = true;
            state.again = false;
        }
        let (mut buf, mut written) = {
            let mut state = self.lock();
            (
                std::mem::take(&mut state.backlog),
                std::mem::take(&mut state.written),
            )
        };
        let mut moved = Moved::default();
        loop {
            // The backlog goes first; frames are taken from the core only once the socket
            // accepted everything before them, so what waits for a slow peer waits in the
            // core, where it is bounded and paced.
            while written < buf.len() {
                match self.half.try_write(&buf[written..]) {
                    Ok(n) => {
                        written += n;
                        moved.sent += n as u64;
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                        let mut state = self.lock();
                        state.backlog = buf;
                        state.written = written;
                        state.busy = false;
                        return Ok((Pumped::Blocked, moved));
                    }
                    Err(e) => {
                        self.lock().busy = false;
                        return Err(e);
                    }
                }
            }
            buf.clear();
            written = 0;
            let frames = take();
            if !frames.is_empty() {
                moved.resync += encode_frames(&frames, &mut buf);
                continue;
            }
            let mut state = self.lock();
            if state.again {
                state.again = false;
                drop(state);
                continue;
            }
            state.busy = false;
            return Ok((Pumped::Done, moved));
        }
    }
}

/// Whether `frame` resynchronises a peer: a chunk of a snapshot (sent when a link comes
/// up without a delta to catch up from, after a gap or a repair), or a request for one.
pub(crate) fn is_resync(frame: &Frame) -> bool {
    matches!(frame, Frame::Snapshot { .. } | Frame::Resync { .. })
}

/// Appends each frame with its 4-byte big-endian length prefix; returns how many of the
/// bytes appended (prefixes included) are of resync frames ([`is_resync`]).
pub(crate) fn encode_frames(frames: &[Frame], buf: &mut Vec<u8>) -> u64 {
    let mut resync = 0;
    for frame in frames {
        let start = buf.len();
        buf.extend_from_slice(&[0; 4]);
        frame.encode_into(buf);
        let len = (buf.len() - start - 4) as u32;
        buf[start..start + 4].copy_from_slice(&len.to_be_bytes());
        if is_resync(frame) {
            resync += (buf.len() - start) as u64;
        }
    }
    resync
}
