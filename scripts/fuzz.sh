#!/usr/bin/env bash
# Runs every fuzz target in fuzz/ for a while (default 20 s each; `scripts/fuzz.sh 600` for
# ten minutes each), as CI does. Crashes are saved under target/fuzz-artifacts/TARGET/ and
# fail the run; turn each into a regression test (the property tests in
# crates/roster/tests/decoders.rs take the bytes as they are).
#
# On the pinned stable toolchain: cargo-fuzz would need nightly for its sanitizers, so this
# builds the targets with the same coverage instrumentation cargo-fuzz passes to rustc
# (sancov, stable codegen options) and without a sanitizer; Rust's own checks (bounds,
# overflow with debug assertions on) are what a crash is made of. `--target` keeps the
# instrumentation off build scripts and proc macros.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds="${1:-20}"
host="$(rustc -vV | sed -n 's/^host: //p')"
export CARGO_TARGET_DIR="${FUZZ_TARGET_DIR:-$PWD/target/fuzz-instrumented}"
export RUSTFLAGS="--cfg fuzzing -Cpasses=sancov-module \
  -Cllvm-args=-sanitizer-coverage-level=4 \
  -Cllvm-args=-sanitizer-coverage-inline-8bit-counters \
  -Cllvm-args=-sanitizer-coverage-pc-table \
  -Cllvm-args=-sanitizer-coverage-trace-compares \
  -Cdebug-assertions -Coverflow-checks"

echo "== building the fuzz targets (instrumented, release)"
cargo build --release --locked --target "$host" --manifest-path fuzz/Cargo.toml

targets=$(sed -n 's/^name = "\(.*\)"$/\1/p' fuzz/Cargo.toml | grep -v '^roster-fuzz$')
failed=()
for target in $targets; do
  corpus="target/fuzz-corpus/$target"
  artifacts="target/fuzz-artifacts/$target/"
  mkdir -p "$corpus" "$artifacts"
  echo "== fuzzing $target for ${seconds}s"
  if ! "$CARGO_TARGET_DIR/$host/release/$target" -max_total_time="$seconds" \
      -rss_limit_mb=2048 -timeout=10 -artifact_prefix="$artifacts" -print_final_stats=1 \
      "$corpus" 2>"target/fuzz-$target.log"; then
    tail -40 "target/fuzz-$target.log" >&2
    failed+=("$target")
  else
    grep -E '^(stat::number_of_executed_units|Done)' "target/fuzz-$target.log" || true
  fi
done

if ((${#failed[@]})); then
  echo "fuzz targets that crashed: ${failed[*]} (inputs under target/fuzz-artifacts/)" >&2
  exit 1
fi
