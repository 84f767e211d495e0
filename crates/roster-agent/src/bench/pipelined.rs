//! Requests with HTTP/1.1 pipelining: each connection writes a batch of requests at once
//! and reads the batch of answers, so that the agent's own cost per request shows rather
//! than one TCP round trip per request. Raw sockets: no HTTP client pipelines.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use super::load::{Measured, histogram};

/// The answers in `buffer` from `start`: (complete answers, how many were 200, the end of
/// the last complete one).
fn complete_answers(buffer: &[u8], mut start: usize) -> (usize, usize, usize) {
    let (mut complete, mut ok) = (0, 0);
    loop {
        let rest = &buffer[start..];
        let Some(head_end) = rest.windows(4).position(|w| w == b"\r\n\r\n") else {
            return (complete, ok, start);
        };
        let head = String::from_utf8_lossy(&rest[..head_end]).to_ascii_lowercase();
        let length: usize = head
            .lines()
            .find_map(|line| line.strip_prefix("content-length:"))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0);
        let end = head_end + 4 + length;
        if rest.len() < end {
            return (complete, ok, start);
        }
        complete += 1;
        if head.starts_with("http/1.1 200") {
            ok += 1;
        }
        start += end;
    }
}

/// Runs bodiless `method` requests to `paths` (round robin) on `threads` connections,
/// `depth` requests per batch, for `duration`. Latencies are per batch.
pub fn run(
    addr: SocketAddr,
    method: &'static str,
    paths: Arc<Vec<String>>,
    threads: usize,
    depth: usize,
    duration: Duration,
) -> Measured {
    let stop = Arc::new(AtomicBool::new(false));
    let start = Instant::now();
    let workers: Vec<_> = (0..threads.max(1))
        .map(|thread| {
            let (stop, paths) = (stop.clone(), paths.clone());
            std::thread::spawn(move || {
                let mut latency = histogram();
                let (mut ok, mut failed) = (0u64, 0u64);
                let Ok(mut stream) = TcpStream::connect(addr) else {
                    return (ok, 1, latency);
                };
                let _ = stream.set_nodelay(true);
                let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
                let mut buffer = vec![0u8; 1 << 16];
                let mut n = thread;
                while !stop.load(Ordering::Relaxed) {
                    let mut batch = String::new();
                    for _ in 0..depth {
                        n = (n + 7) % paths.len().max(1);
                        let path = paths.get(n).map_or("/", String::as_str);
                        batch.push_str(&format!(
                            "{method} {path} HTTP/1.1\r\nhost: bench\r\ncontent-length: 0\r\n\r\n"
                        ));
                    }
                    let began = Instant::now();
                    if stream.write_all(batch.as_bytes()).is_err() {
                        failed += 1;
                        break;
                    }
                    let (mut filled, mut parsed, mut answers, mut good) = (0, 0, 0, 0);
                    while answers < depth {
                        if filled == buffer.len() {
                            buffer.resize(buffer.len() * 2, 0);
                        }
                        match stream.read(&mut buffer[filled..]) {
                            Ok(0) | Err(_) => break,
                            Ok(read) => filled += read,
                        }
                        let (complete, fine, end) = complete_answers(&buffer[..filled], parsed);
                        answers += complete;
                        good += fine;
                        parsed = end;
                    }
                    if answers < depth {
                        failed += 1;
                        break;
                    }
                    ok += good as u64;
                    failed += (depth - good) as u64;
                    let micros = u64::try_from(began.elapsed().as_micros()).unwrap_or(u64::MAX);
                    let _ = latency.record(micros.max(1));
                }
                (ok, failed, latency)
            })
        })
        .collect();
    std::thread::sleep(duration);
    stop.store(true, Ordering::Relaxed);
    super::load::gather(workers, start)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_are_counted_only_when_complete() {
        let two = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}HTTP/1.1 404 Not Found\r\nContent-Length: 3\r\n\r\nab";
        assert_eq!(complete_answers(two, 0), (1, 1, 40));
        let full = [&two[..], b"c"].concat();
        assert_eq!(complete_answers(&full, 40), (1, 0, full.len()));
    }
}
