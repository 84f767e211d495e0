//! A filesystem of its own under each agent's data directory (a small tmpfs), so that a
//! fault can fill it: the agent's SQLite history then meets a full disk while the rest of
//! the machine has room.
//!
//! The tmpfs is mounted with the source name `roster-chaos-PID` (the harness's process),
//! so [`cleanup_stale`] can unmount what a run that died left behind; `Drop` unmounts it
//! (after the cluster killed its agents).

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::error::ChaosError;
use crate::net::run;

/// The size of each agent's data filesystem: room for a long soak's history.
pub const DATA_FS_MIB: u64 = 64;

/// The file that fills a data filesystem.
const FILLER: &str = "chaos-filler";

/// The source name of this process's mounts.
fn source() -> String {
    format!("roster-chaos-{}", std::process::id())
}

/// One agent's data filesystem.
#[derive(Debug)]
pub struct DataFs {
    path: PathBuf,
    /// Whether `Drop` unmounts it (not when the run's files are kept).
    unmount: bool,
}

impl DataFs {
    /// Mounts a tmpfs of [`DATA_FS_MIB`] at `path` (created if missing).
    pub fn mount(path: &Path) -> Result<Self, ChaosError> {
        std::fs::create_dir_all(path)
            .map_err(|e| ChaosError::io(format!("create {}", path.display()), e))?;
        let size = format!("size={DATA_FS_MIB}m");
        let target = path.to_string_lossy();
        run("mount", &["-t", "tmpfs", "-o", &size, &source(), &target])?;
        Ok(Self {
            path: path.to_owned(),
            unmount: true,
        })
    }

    /// Leaves it mounted when dropped (the run's files are kept for a look).
    pub fn keep(&mut self) {
        self.unmount = false;
    }

    /// Fills it up: writes a file until the filesystem refuses more (`ENOSPC`). Returns
    /// how many bytes it took.
    pub fn fill(&self) -> Result<u64, ChaosError> {
        let path = self.path.join(FILLER);
        let mut file = std::fs::File::create(&path)
            .map_err(|e| ChaosError::io(format!("create {}", path.display()), e))?;
        let chunk = vec![0u8; 1 << 20];
        let mut written = 0u64;
        loop {
            match file.write(&chunk) {
                Ok(0) => break,
                Ok(n) => written += n as u64,
                Err(e) if e.kind() == std::io::ErrorKind::StorageFull => break,
                Err(e) => return Err(ChaosError::io(format!("fill {}", path.display()), e)),
            }
        }
        // Small writes take what a 1 MiB chunk could not.
        let byte = [0u8; 1];
        while let Ok(1) = file.write(&byte) {
            written += 1;
        }
        Ok(written)
    }

    /// Makes room again: removes what [`DataFs::fill`] wrote.
    pub fn free(&self) -> Result<(), ChaosError> {
        let path = self.path.join(FILLER);
        match std::fs::remove_file(&path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(ChaosError::io(format!("remove {}", path.display()), e)),
        }
    }
}

impl Drop for DataFs {
    fn drop(&mut self) {
        if self.unmount {
            let _ = run("umount", &["-l", &self.path.to_string_lossy()]);
        }
    }
}

/// Unmounts the data filesystems of earlier runs whose process is gone.
pub fn cleanup_stale() -> Result<Vec<String>, ChaosError> {
    let mounts = std::fs::read_to_string("/proc/mounts")
        .map_err(|e| ChaosError::io("read /proc/mounts", e))?;
    let mut removed = Vec::new();
    for line in mounts.lines() {
        let mut fields = line.split_whitespace();
        let (Some(source), Some(target)) = (fields.next(), fields.next()) else {
            continue;
        };
        let Some(pid) = source.strip_prefix("roster-chaos-") else {
            continue;
        };
        if pid.parse::<u32>().is_err() || Path::new(&format!("/proc/{pid}")).exists() {
            continue;
        }
        if run("umount", &["-l", target]).is_ok() {
            removed.push(target.to_owned());
        }
    }
    Ok(removed)
}
