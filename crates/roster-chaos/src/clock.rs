//! Clock skew of one agent. Each agent runs with libfaketime preloaded (Debian's
//! `libfaketime`, when it is installed), which shifts the wall clock (`CLOCK_REALTIME`:
//! what the HLC, the fencing tokens, heartbeats and the history read) by the offset in a
//! file of the agent's; the monotonic clock (timers, failure detection) is left alone.
//! Rewriting the file skews a running agent within a second.

use std::path::{Path, PathBuf};

use crate::error::ChaosError;

/// Where Debian installs libfaketime, per architecture directory.
const LIB_DIRS: &str = "/usr/lib";
const LIB: &str = "faketime/libfaketimeMT.so.1";

/// The libfaketime library, if it is installed.
pub fn libfaketime() -> Option<PathBuf> {
    let entries = std::fs::read_dir(LIB_DIRS).ok()?;
    entries
        .filter_map(Result::ok)
        .map(|entry| entry.path().join(LIB))
        .find(|path| path.is_file())
}

/// The skew control of one agent: the library and the file it reads its offset from.
#[derive(Debug, Clone)]
pub struct Skew {
    /// The libfaketime library to preload.
    pub library: PathBuf,
    /// The file holding the offset (`+0`, `+30`, `-30`: seconds).
    pub file: PathBuf,
}

impl Skew {
    /// A control with no skew yet, its file next to `dir`'s other files.
    pub fn new(library: PathBuf, dir: &Path) -> Result<Self, ChaosError> {
        let skew = Self {
            library,
            file: dir.join("clock-offset"),
        };
        skew.set(0)?;
        Ok(skew)
    }

    /// The environment that makes an agent read its clock through the file.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("LD_PRELOAD", self.library.to_string_lossy().into_owned()),
            (
                "FAKETIME_TIMESTAMP_FILE",
                self.file.to_string_lossy().into_owned(),
            ),
            // Re-read the file at most once a second, and leave the monotonic clock alone.
            ("FAKETIME_CACHE_DURATION", "1".to_owned()),
            ("FAKETIME_DONT_FAKE_MONOTONIC", "1".to_owned()),
        ]
    }

    /// Sets the agent's wall clock `seconds` ahead (behind, if negative) of the host's.
    pub fn set(&self, seconds: i64) -> Result<(), ChaosError> {
        std::fs::write(&self.file, format!("{seconds:+}\n"))
            .map_err(|e| ChaosError::io(format!("write {}", self.file.display()), e))
    }
}
