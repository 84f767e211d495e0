//! The version stamp (`stamp.rs`, run by `build.rs`) in a scratch git repository: an
//! unstaged edit of a tracked file marks it dirty, and so does a staged one; the tracked
//! files are watched, so that an unstaged edit runs the build script again at all.

#[path = "../stamp.rs"]
mod stamp;

use std::path::Path;
use std::process::Command;

fn git(dir: &Path, args: &[&str]) {
    let status = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(["-c", "user.name=bench", "-c", "user.email=bench@localhost"])
        .args(["-c", "commit.gpgsign=false"])
        .args(args)
        .status()
        .expect("git runs");
    assert!(status.success(), "git {args:?}");
}

#[test]
fn unstaged_and_staged_edits_of_tracked_files_mark_the_stamp_dirty() {
    let dir = std::env::temp_dir().join(format!("roster-bench-stamp-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("src")).unwrap();
    let dir = dir.canonicalize().unwrap();
    let file = dir.join("src/lib.rs");
    std::fs::write(&file, "// one\n").unwrap();
    git(&dir, &["init", "-q"]);
    git(&dir, &["add", "."]);
    git(&dir, &["commit", "-q", "-m", "one"]);

    let clean = stamp::stamp(&dir.join("src"));
    assert!(
        !clean.commit.ends_with("-dirty") && clean.commit != "unknown",
        "{}",
        clean.commit
    );
    assert!(clean.watch.contains(&file), "{:?}", clean.watch);
    assert!(clean.watch.iter().any(|p| p.ends_with("HEAD")));
    assert!(clean.watch.iter().any(|p| p.ends_with("index")));

    std::fs::write(&file, "// two\n").unwrap();
    let unstaged = stamp::stamp(&dir);
    assert_eq!(unstaged.commit, format!("{}-dirty", clean.commit));

    git(&dir, &["add", "src/lib.rs"]);
    let staged = stamp::stamp(&dir);
    assert_eq!(staged.commit, format!("{}-dirty", clean.commit));

    git(&dir, &["commit", "-q", "-m", "two"]);
    std::fs::write(dir.join("untracked"), "").unwrap();
    let committed = stamp::stamp(&dir);
    assert!(
        !committed.commit.ends_with("-dirty") && committed.commit != clean.commit,
        "{} after {}",
        committed.commit,
        clean.commit
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
