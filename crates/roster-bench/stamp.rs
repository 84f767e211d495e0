//! The version stamp of the benchmark program: the short commit, `-dirty` when a tracked
//! file differs from it (staged or not), and the files whose change must run the build
//! script again. Included by `build.rs` and by its test (`tests/stamp.rs`).

use std::path::{Path, PathBuf};
use std::process::Command;

/// What `build.rs` tells cargo.
pub(crate) struct Stamp {
    /// `<short commit>`, `<short commit>-dirty`, or `unknown` outside a git checkout.
    pub(crate) commit: String,
    /// Every file whose change may change the stamp: git's `HEAD`, the branch it points
    /// to, the index, and every tracked file (an edit not staged touches none of git's own
    /// files, so without these the stamp would stay clean).
    pub(crate) watch: Vec<PathBuf>,
}

fn git(dir: &Path, args: &[&str]) -> Option<String> {
    let output = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .output()
        .ok()?;
    output
        .status
        .success()
        .then(|| String::from_utf8_lossy(&output.stdout).trim().to_string())
}

/// The stamp of the checkout `dir` is in.
pub(crate) fn stamp(dir: &Path) -> Stamp {
    let commit = git(dir, &["rev-parse", "--short", "HEAD"]).filter(|c| !c.is_empty());
    // `--no-optional-locks`: a status that refreshed the index would change it, and so run
    // the build script again on every build.
    let dirty = git(
        dir,
        &[
            "--no-optional-locks",
            "status",
            "--porcelain",
            "--untracked-files=no",
        ],
    )
    .is_some_and(|s| !s.is_empty());
    let commit = match commit {
        Some(c) if dirty => format!("{c}-dirty"),
        Some(c) => c,
        None => "unknown".to_owned(),
    };
    let mut watch = Vec::new();
    // `--git-path` finds each where it is, in a linked worktree too (its HEAD and index
    // are its own, the branches shared).
    let mut git_paths = vec![
        "HEAD".to_owned(),
        "index".to_owned(),
        "packed-refs".to_owned(),
    ];
    if let Some(head_ref) = git(dir, &["symbolic-ref", "-q", "HEAD"]) {
        git_paths.push(head_ref);
    }
    for path in git_paths {
        // Only those that exist: cargo runs a build script whose watched file is missing
        // on every build (a branch may live only in `packed-refs`, which may not exist).
        if let Some(found) = git(
            dir,
            &["rev-parse", "--path-format=absolute", "--git-path", &path],
        )
        .map(PathBuf::from)
        .filter(|p| p.exists())
        {
            watch.push(found);
        }
    }
    if let (Some(top), Some(files)) = (
        git(dir, &["rev-parse", "--show-toplevel"]),
        git(dir, &["ls-files", "-z", "--full-name", ":/"]),
    ) {
        let top = PathBuf::from(top);
        watch.extend(
            files
                .split('\0')
                .filter(|f| !f.is_empty())
                .map(|f| top.join(f)),
        );
    }
    Stamp { commit, watch }
}
