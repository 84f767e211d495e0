//! Records the commit the benchmark program is built from (`-dirty` when a tracked file
//! differs from it, staged or not), so that a binary kept for before/after runs reports its
//! own commit, not the one its source directory has moved to since.

#[path = "stamp.rs"]
mod stamp;

fn main() {
    let stamp = stamp::stamp(std::path::Path::new(env!("CARGO_MANIFEST_DIR")));
    println!("cargo:rustc-env=ROSTER_BENCH_COMMIT={}", stamp.commit);
    // Build again when HEAD moves, the index changes (a commit, a checkout, a `git add`) or
    // a tracked file is edited (an unstaged edit).
    for path in &stamp.watch {
        println!("cargo:rerun-if-changed={}", path.display());
    }
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=stamp.rs");
}
