//! The node's clock reading kept in the data directory, so that an agent restarted (even
//! after `kill -9`) starts its clocks past every fencing token it minted or showed before.
//!
//! Fencing tokens are hybrid-logical-clock readings. While one node's clock runs ahead,
//! every node that applies its writes moves its own clock past them, so the cluster's
//! tokens can run ahead of this machine's wall clock for a while. A new incarnation
//! starting from the wall clock could then mint a token below one the old incarnation
//! showed for the same name. The saver writes `Node::clock_reading()` plus a margin to
//! `clock` in the data directory every [`SAVE_EVERY`] and at shutdown; the next start
//! passes it to `NodeBuilder::clock_floor`.
//!
//! The file is created once, at the first start, with a fixed width, and then only
//! overwritten in place: a write needs no new disk block, so it keeps working on a full
//! disk. It is written without `fsync` (a process killed loses nothing the kernel has; a
//! machine that loses power restarts its clock from an older reading, which the margin
//! and the peers' clocks, taken in when links come up, make up for).

use std::fs::{File, OpenOptions};
use std::io::Read;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use roster::Node;

/// How often the reading is saved.
pub const SAVE_EVERY: Duration = Duration::from_millis(100);

/// What is added to the reading saved: one second of the clock (readings are milliseconds
/// shifted left by 16 bits), more than the clock moves at its own pace between two saves,
/// so that a token minted after the last save and before a `kill -9` is still below it.
const MARGIN: u64 = 1_000 << 16;

/// The bytes of one saved reading: 20 decimal digits and a newline.
const WIDTH: usize = 21;

/// The clock file could not be read or created.
#[derive(Debug, thiserror::Error)]
pub enum ClockFileError {
    /// The file cannot be opened, read or created.
    #[error("--data-dir: cannot use the clock file {path}: {reason}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// The file holds something other than a saved reading.
    #[error(
        "--data-dir: the clock file {path} is not a saved clock reading ({found:?}); it is \
         written by the agent only. If another program wrote it, remove it: the agent then \
         starts its clocks from the wall clock and its peers'"
    )]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// Its first bytes.
        found: String,
    },
}

/// The clock file of one data directory, open for saving.
#[derive(Debug, Clone)]
pub struct ClockFile {
    path: PathBuf,
    /// The file, and the last reading saved in it (margin included).
    file: Arc<Mutex<(File, u64)>>,
}

impl ClockFile {
    /// Opens (or creates) the clock file in `data_dir`; returns it with the reading saved
    /// by the previous run (0 at the first start).
    ///
    /// # Errors
    ///
    /// [`ClockFileError`] if the file cannot be opened or created, or holds something else.
    pub fn open(data_dir: &Path) -> Result<(Self, u64), ClockFileError> {
        let path = data_dir.join("clock");
        let io = |e: std::io::Error| ClockFileError::Io {
            path: path.clone(),
            reason: e.to_string(),
        };
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(io)?;
        let mut text = String::new();
        (&mut file)
            .take(64)
            .read_to_string(&mut text)
            .map_err(|_| ClockFileError::Corrupt {
                path: path.clone(),
                found: "bytes that are not text".into(),
            })?;
        let reading = if text.is_empty() {
            file.write_all_at(&encode(0), 0).map_err(io)?;
            0
        } else {
            decode(&text).ok_or_else(|| ClockFileError::Corrupt {
                path: path.clone(),
                found: text.chars().take(32).collect(),
            })?
        };
        let clock = Self {
            path,
            file: Arc::new(Mutex::new((file, reading))),
        };
        Ok((clock, reading))
    }

    /// Saves `node`'s reading (plus the margin) if it moved past the one saved; logs a
    /// failure once per run of failures.
    pub fn save(&self, node: &Node) {
        let reading = node.clock_reading().saturating_add(MARGIN);
        let mut guard = self.file.lock().unwrap_or_else(|e| e.into_inner());
        let (file, saved) = &mut *guard;
        if reading <= *saved {
            return;
        }
        match file.write_all_at(&encode(reading), 0) {
            Ok(()) => *saved = reading,
            Err(e) => tracing::warn!(
                path = %self.path.display(),
                error = %e,
                "cannot save the clock reading; a restart may start its clocks from an older one"
            ),
        }
    }

    /// Saves `node`'s reading every [`SAVE_EVERY`] until the task is aborted.
    pub fn spawn_saver(&self, node: Node) -> tokio::task::JoinHandle<()> {
        let clock = self.clone();
        tokio::spawn(async move {
            let mut every = tokio::time::interval(SAVE_EVERY);
            every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                every.tick().await;
                clock.save(&node);
            }
        })
    }
}

fn encode(reading: u64) -> [u8; WIDTH] {
    let mut bytes = [0; WIDTH];
    bytes.copy_from_slice(format!("{reading:020}\n").as_bytes());
    bytes
}

fn decode(text: &str) -> Option<u64> {
    let digits = text.strip_suffix('\n')?;
    if digits.len() != WIDTH - 1 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_restarted_node_starts_past_the_reading_saved() {
        let dir = tempfile::tempdir().unwrap();
        let (clock, first) = ClockFile::open(dir.path()).unwrap();
        assert_eq!(first, 0);
        let node = Node::builder().start().unwrap();
        let token = node.new_process().register("k", &()).unwrap().token;
        clock.save(&node);
        drop(clock);

        let (_, saved) = ClockFile::open(dir.path()).unwrap();
        assert!(saved > token);
        let again = Node::builder().clock_floor(saved).start().unwrap();
        assert!(again.new_process().register("k", &()).unwrap().token > saved);
    }

    #[test]
    fn a_file_of_something_else_is_refused_with_its_path() {
        let dir = tempfile::tempdir().unwrap();
        for bad in ["hello\n", "123\n", "00000000000000000001", "\u{0}\u{0}"] {
            std::fs::write(dir.path().join("clock"), bad).unwrap();
            let error = ClockFile::open(dir.path()).unwrap_err();
            assert!(
                matches!(error, ClockFileError::Corrupt { .. }),
                "{bad:?}: {error}"
            );
            assert!(error.to_string().contains("clock"), "{error}");
        }
        std::fs::write(dir.path().join("clock"), [0xff, 0xfe]).unwrap();
        assert!(matches!(
            ClockFile::open(dir.path()),
            Err(ClockFileError::Corrupt { .. })
        ));
    }

    #[test]
    fn readings_round_trip_at_a_fixed_width() {
        for reading in [0, 1, 1_000 << 16, u64::MAX >> 1, u64::MAX] {
            let bytes = encode(reading);
            assert_eq!(decode(std::str::from_utf8(&bytes).unwrap()), Some(reading));
        }
    }
}
