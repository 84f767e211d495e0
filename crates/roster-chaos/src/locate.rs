//! Where the `roster` binary is.
//!
//! `ROSTER_BIN` names it when set. Otherwise it is `roster` in the cargo profile directory
//! of the running executable (`target/<profile>/` for a binary, `target/<profile>/deps/..`
//! for a test), built with `cargo build -p roster-agent` (plus `--release` for the
//! release profile) when missing, so `cargo test -p roster-chaos` works on a fresh
//! checkout.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::error::ChaosError;

/// The path of the `roster` binary, built first if needed.
pub fn roster_binary() -> Result<PathBuf, ChaosError> {
    if let Some(path) = std::env::var_os("ROSTER_BIN") {
        let path = PathBuf::from(path);
        return if path.is_file() {
            Ok(path)
        } else {
            Err(ChaosError::Binary(format!(
                "ROSTER_BIN={} is not a file",
                path.display()
            )))
        };
    }
    let exe = std::env::current_exe().map_err(|e| ChaosError::io("current_exe", e))?;
    let mut dir = exe
        .parent()
        .ok_or_else(|| ChaosError::Binary("the executable has no directory".into()))?;
    if dir.file_name().is_some_and(|n| n == "deps") {
        dir = dir.parent().unwrap_or(dir);
    }
    let candidate = dir.join("roster");
    if candidate.is_file() {
        return Ok(candidate);
    }
    build(dir)?;
    if candidate.is_file() {
        Ok(candidate)
    } else {
        Err(ChaosError::Binary(format!(
            "{} is missing after cargo build; set ROSTER_BIN",
            candidate.display()
        )))
    }
}

/// `cargo build -p roster-agent` into the target directory that holds `profile_dir`.
fn build(profile_dir: &Path) -> Result<(), ChaosError> {
    let target = profile_dir
        .parent()
        .ok_or_else(|| ChaosError::Binary("no target directory".into()))?;
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut command = Command::new(cargo);
    command
        .args(["build", "-p", "roster-agent", "--bin", "roster"])
        .env("CARGO_TARGET_DIR", target);
    if profile_dir.file_name().is_some_and(|n| n == "release") {
        command.arg("--release");
    }
    let status = command
        .status()
        .map_err(|e| ChaosError::io("cargo build -p roster-agent", e))?;
    if status.success() {
        Ok(())
    } else {
        Err(ChaosError::Binary(format!(
            "cargo build -p roster-agent failed ({status})"
        )))
    }
}
