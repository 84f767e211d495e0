//! The load generator of the lookup and keepalive phases: many keep-alive HTTP/1.1
//! connections driven by a tokio runtime of its own, each sending pre-built request bytes
//! and reading the answers with a minimal parser; with a depth over 1, each connection
//! writes that many requests at once (pipelining) and then reads as many answers.
//!
//! Written by hand rather than with an HTTP client library, so that the generator costs
//! as little CPU as possible on the cores it shares with the agent: a request is one
//! `write` of bytes built before the clock starts, and an answer is checked by its status
//! line and skipped by its `Content-Length`, with no header map, no allocation and no
//! thread per connection. The blocking `ureq` clients the lookups used before spent about
//! 1.5 times the agent's CPU per request (a thread wake-up and a parsed header map each);
//! this one spends about half of it. `wrk` against the same agent gives the same figures
//! (see the agent's performance notes).

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::load::{Measured, histogram};

/// A bodiless request to `path`, as the generator sends it.
pub fn request(method: &str, path: &str) -> Vec<u8> {
    if method == "GET" {
        format!("GET {path} HTTP/1.1\r\nhost: bench\r\n\r\n").into_bytes()
    } else {
        format!("{method} {path} HTTP/1.1\r\nhost: bench\r\ncontent-length: 0\r\n\r\n").into_bytes()
    }
}

/// What a phase sends, and how.
#[derive(Debug, Clone)]
pub struct Load {
    /// The agent.
    pub addr: SocketAddr,
    /// Requests, each complete ([`request`]); connections take them round robin.
    pub requests: Arc<Vec<Vec<u8>>>,
    /// Concurrent keep-alive connections.
    pub connections: usize,
    /// Requests written at once on a connection before its answers are read (1: one
    /// request per round trip).
    pub depth: usize,
    /// Worker threads of the generator's runtime.
    pub threads: usize,
    /// How long it runs.
    pub duration: Duration,
}

/// Runs `load` and measures it, with where the CPU went meanwhile
/// ([`cpu::split`](super::cpu::split)); latencies are per round trip (per request at depth
/// 1, per batch of `depth` otherwise). The generator's threads are named
/// [`LOAD_THREADS`](super::cpu::LOAD_THREADS), so that their CPU can be told apart; the
/// counters are read while they still run.
pub fn run(load: &Load) -> (Measured, String) {
    let load = load.clone();
    let failed = || Measured {
        ok: 0,
        failed: 1,
        elapsed: Duration::ZERO,
        latency: histogram(),
    };
    let thread = std::thread::Builder::new()
        .name(super::cpu::LOAD_THREADS.to_owned())
        .spawn(move || {
            let runtime = if load.threads <= 1 {
                tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
            } else {
                tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(load.threads)
                    .thread_name(super::cpu::LOAD_THREADS)
                    .enable_all()
                    .build()
            };
            let runtime = runtime?;
            let before = super::cpu::sample();
            let measured = runtime.block_on(drive(&load));
            let after = super::cpu::sample();
            let cpus = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
            let split = super::cpu::split(before.as_ref(), after.as_ref(), cpus);
            Ok::<_, std::io::Error>((measured, split))
        });
    match thread.map(std::thread::JoinHandle::join) {
        Ok(Ok(Ok(done))) => done,
        _ => (failed(), "the load generator did not start".to_owned()),
    }
}

/// Every connection of `load`, until its duration is over.
async fn drive(load: &Load) -> Measured {
    let stop = Arc::new(AtomicBool::new(false));
    let start = Instant::now();
    let tasks: Vec<_> = (0..load.connections.max(1))
        .map(|n| {
            let (stop, requests) = (stop.clone(), load.requests.clone());
            tokio::spawn(connection(load.addr, requests, load.depth.max(1), n, stop))
        })
        .collect();
    tokio::time::sleep(load.duration).await;
    stop.store(true, Ordering::Relaxed);
    let mut measured = Measured {
        ok: 0,
        failed: 0,
        elapsed: Duration::ZERO,
        latency: histogram(),
    };
    for task in tasks {
        match task.await {
            Ok((ok, failed, latency)) => {
                measured.ok += ok;
                measured.failed += failed;
                let _ = measured.latency.add(latency);
            }
            Err(_) => measured.failed += 1,
        }
    }
    measured.elapsed = start.elapsed();
    measured
}

/// One connection's loop until `stop`: (answers 200, other answers or failures, latency
/// per round trip in microseconds).
async fn connection(
    addr: SocketAddr,
    requests: Arc<Vec<Vec<u8>>>,
    depth: usize,
    first: usize,
    stop: Arc<AtomicBool>,
) -> (u64, u64, Histogram<u64>) {
    let mut latency = histogram();
    let (mut ok, mut failed) = (0u64, 0u64);
    let Ok(mut stream) = TcpStream::connect(addr).await else {
        return (ok, 1, latency);
    };
    let _ = stream.set_nodelay(true);
    let mut batch = Vec::new();
    let mut answers = Answers::default();
    let mut next = first;
    let count = requests.len().max(1);
    while !stop.load(Ordering::Relaxed) {
        // Spread the connections over the keys: a different stride start for each.
        let mut pick = || {
            next = (next + 7) % count;
            requests.get(next).map_or(&[][..], Vec::as_slice)
        };
        let began = Instant::now();
        let written = if depth == 1 {
            stream.write_all(pick()).await
        } else {
            batch.clear();
            for _ in 0..depth {
                batch.extend_from_slice(pick());
            }
            stream.write_all(&batch).await
        };
        if written.is_err() {
            failed += 1;
            break;
        }
        match answers.read(&mut stream, depth).await {
            Some(good) => {
                ok += good as u64;
                failed += (depth - good) as u64;
                let micros = u64::try_from(began.elapsed().as_micros()).unwrap_or(u64::MAX);
                let _ = latency.record(micros.max(1));
            }
            None => {
                failed += depth as u64;
                break;
            }
        }
    }
    (ok, failed, latency)
}

/// A connection's read buffer: bytes from `parsed` to `filled` are the start of answers
/// not yet complete.
struct Answers {
    buffer: Vec<u8>,
    parsed: usize,
    filled: usize,
}

impl Default for Answers {
    fn default() -> Self {
        Self {
            buffer: vec![0; 64 * 1024],
            parsed: 0,
            filled: 0,
        }
    }
}

impl Answers {
    /// Reads `count` answers: how many were 200, or `None` if the connection closed or
    /// sent something that is not an answer this parser knows.
    async fn read(&mut self, stream: &mut TcpStream, count: usize) -> Option<usize> {
        let (mut got, mut good) = (0, 0);
        loop {
            while got < count {
                match answer(&self.buffer[self.parsed..self.filled]) {
                    Parsed::Complete { len, ok } => {
                        self.parsed += len;
                        got += 1;
                        good += usize::from(ok);
                    }
                    Parsed::Partial => break,
                    Parsed::Malformed => return None,
                }
            }
            if got == count {
                return Some(good);
            }
            if self.parsed == self.filled {
                (self.parsed, self.filled) = (0, 0);
            } else if self.filled == self.buffer.len() {
                // Keep the partial answer, moved to the front, and room after it.
                self.buffer.copy_within(self.parsed..self.filled, 0);
                self.filled -= self.parsed;
                self.parsed = 0;
                if self.filled == self.buffer.len() {
                    self.buffer.resize(self.buffer.len() * 2, 0);
                }
            }
            match stream.read(&mut self.buffer[self.filled..]).await {
                Ok(0) | Err(_) => return None,
                Ok(read) => self.filled += read,
            }
        }
    }
}

/// What the start of a buffer holds.
#[derive(Debug, PartialEq, Eq)]
enum Parsed {
    /// A whole answer of `len` bytes; `ok` if its status is 200.
    Complete { len: usize, ok: bool },
    /// The start of one.
    Partial,
    /// Not an HTTP/1.1 answer with a `Content-Length` (the agent sends nothing else to
    /// these requests).
    Malformed,
}

/// The answer at the start of `bytes`.
fn answer(bytes: &[u8]) -> Parsed {
    let Some(head_end) = bytes.windows(4).position(|w| w == b"\r\n\r\n") else {
        return if bytes.len() > 64 * 1024 {
            Parsed::Malformed
        } else {
            Parsed::Partial
        };
    };
    let head = &bytes[..head_end];
    if !head.starts_with(b"HTTP/1.1 ") || head.len() < 12 {
        return Parsed::Malformed;
    }
    let ok = &head[9..12] == b"200";
    let length = head.split(|&b| b == b'\n').find_map(|line| {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let (name, value) = line.split_at_checked(15)?;
        if !name.eq_ignore_ascii_case(b"content-length:") {
            return None;
        }
        std::str::from_utf8(value)
            .ok()?
            .trim()
            .parse::<usize>()
            .ok()
    });
    let Some(length) = length else {
        return Parsed::Malformed;
    };
    let len = head_end + 4 + length;
    if bytes.len() < len {
        Parsed::Partial
    } else {
        Parsed::Complete { len, ok }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_are_counted_only_when_complete() {
        let two = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}HTTP/1.1 404 Not Found\r\nContent-Length: 3\r\n\r\nab";
        assert_eq!(answer(two), Parsed::Complete { len: 40, ok: true });
        assert_eq!(answer(&two[40..]), Parsed::Partial);
        let full = [&two[..], b"c"].concat();
        assert_eq!(
            answer(&full[40..]),
            Parsed::Complete {
                len: full.len() - 40,
                ok: false
            }
        );
        assert_eq!(answer(b"HTTP/1.1 200 OK\r\n"), Parsed::Partial);
        assert_eq!(
            answer(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n"),
            Parsed::Malformed
        );
        assert_eq!(answer(b"SSH-2.0\r\n\r\n"), Parsed::Malformed);
    }
}
