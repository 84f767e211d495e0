#!/usr/bin/env bash
# Roster vs OTP pg, side by side, in one run on this machine.
#
# Usage (from anywhere in the repository):
#   bench/peers/run.sh [--reps N] [--out DIR] [SCENARIOS...]
#
# Default scenarios: L1 L3 L4 L5 L6 D1 D2 D3 D5 D7 (also known: L2); default reps: 3.
# For each rep and each scenario it runs pg (the Erlang harness, fresh VMs) and then
# roster-bench (fresh process), so transient load hits both. At the end it prints a
# markdown table (medians, ratio Roster/pg, verdict) and one JSON line per row.
#
# Environment: PB_GATE_MAX_S (default 5): before each run, wait up to this many seconds
# for the machine to be >= 85% idle (the idle % and load average are recorded either way).
set -u

HERE="$(cd "$(dirname "$0")" && pwd)"
COMPARE="$HERE/compare.py"
PROG="peer-bench"
die() { echo "$PROG: $*" >&2; exit 2; }
say() { echo "$PROG: $*" >&2; }

REPS=3
OUT=""
SCEN=()
while [ $# -gt 0 ]; do
  case $1 in
    --reps) [ $# -ge 2 ] || die "--reps needs a number"; REPS=$2; shift 2 ;;
    --reps=*) REPS=${1#--reps=}; shift ;;
    --out) [ $# -ge 2 ] || die "--out needs a directory"; OUT=$2; shift 2 ;;
    --out=*) OUT=${1#--out=}; shift ;;
    -h|--help) sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    -*) die "unknown option $1 (see --help)" ;;
    *) SCEN+=("$(echo "$1" | tr '[:lower:]' '[:upper:]')"); shift ;;
  esac
done
[[ "$REPS" =~ ^[1-9][0-9]*$ ]] || die "--reps must be a positive integer, got '$REPS'"
[ ${#SCEN[@]} -gt 0 ] || SCEN=(L1 L3 L4 L5 L6 D1 D2 D3 D5 D7)
GATE_MAX=${PB_GATE_MAX_S:-5}

# ---- 1. the repository's root: two levels above this script ---------------------------
case "$OUT" in ""|/*) ;; *) OUT="$PWD/$OUT" ;; esac   # --out is relative to where we started
cd "$HERE/../.." || die "cannot enter the repository root"
[ -f crates/roster-bench/Cargo.toml ] && grep -q '^\[workspace\]' Cargo.toml \
  || die "$PWD is not Roster's repository root (this script lives in bench/peers/)"
command -v cargo >/dev/null || die "cargo not found: install Rust (https://rustup.rs), then rerun"

# ---- 2. tools: Erlang/OTP (erl, erlc, kernel's pg, TCP distribution) and python3 -------
as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"
  elif command -v sudo >/dev/null; then sudo "$@"
  else die "need root (or sudo) to install: $*"; fi
}
PKGS=()
command -v erl >/dev/null && command -v erlc >/dev/null || PKGS+=(erlang-base)
command -v python3 >/dev/null || PKGS+=(python3)
if [ ${#PKGS[@]} -gt 0 ]; then
  command -v apt-get >/dev/null \
    || die "missing ${PKGS[*]} and no apt-get here: install Erlang/OTP >= 23 (erl, erlc) and python3, then rerun"
  say "installing ${PKGS[*]} with apt-get (erlang-base alone provides erl, erlc, epmd, kernel's pg and distribution over TCP)"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q || die "apt-get update failed"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${PKGS[@]}" \
    || die "apt-get install ${PKGS[*]} failed"
fi
OTP=$(erl -noshell -eval 'io:format("~s", [erlang:system_info(otp_release)]), halt().' 2>/dev/null)
[[ "$OTP" =~ ^[0-9]+$ ]] || die "erl does not start (got '$OTP')"
[ "$OTP" -ge 23 ] || die "Erlang/OTP $OTP is too old: pg and erpc need OTP >= 23"

for s in "${SCEN[@]}"; do python3 "$COMPARE" family "$s" >/dev/null || exit 2; done

# ---- 3. work dir outside the repo; compile the harness --------------------------------
WORK=$(mktemp -d "${TMPDIR:-/tmp}/peer-bench.XXXXXX") || die "cannot create a temp dir"
EBIN="$WORK/ebin"
[ -n "$OUT" ] || OUT="$WORK/results"
mkdir -p "$EBIN" "$OUT/logs" || die "cannot create $OUT"
OUT="$(cd "$OUT" && pwd)"
say "compiling the Erlang harness into $EBIN"
erlc -o "$EBIN" "$HERE"/harness/*.erl || die "erlc failed"

# ---- 4. build roster-bench (in the project's own target dir) ------------------------
say "building roster-bench: cargo build --release -p roster-bench"
cargo build --release -p roster-bench >&2 || die "cargo build --release -p roster-bench failed"
TARGET_DIR=$(cargo metadata --no-deps --format-version 1 2>/dev/null \
  | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])') \
  || die "cargo metadata failed"
ROSTER="$TARGET_DIR/release/roster-bench"
[ -x "$ROSTER" ] || die "built, but $ROSTER is missing"

# ---- 5. runs ------------------------------------------------------------------------
COOKIE=pbench
RUNS="$OUT/runs.tsv"
[ -f "$RUNS" ] || printf "who\tid\trun\twhat\tidle_pct_before\tload1_start\tload1_end\trc\tsecs\n" > "$RUNS"
load1() { cut -d' ' -f1 /proc/loadavg; }
gate() { "$HERE/harness/quiet_gate.sh" "$GATE_MAX"; }
record() {  # who id run what idle l0 l1 rc t0 t1
  printf "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%.1f\n" "$1" "$2" "$3" "$4" "$5" "$6" "$7" "$8" \
    "$(awk -v a="$9" -v b="${10}" 'BEGIN { print b - a }')" >> "$RUNS"
}
FAILED=0

# pg_run ID RUN KIND SCEN [EXTRA...]: same VMs and flags as the harness's run_local.sh /
# run_dist.sh (fresh VM(s) per run, -name ...@127.0.0.1, one cookie, hidden coordinator).
pg_run() {
  local id=$1 run=$2 kind=$3 scen=$4; shift 4
  local extra="" e tag log idle l0 l1 t0 t1 rc pa pb
  for e in "$@"; do extra="$extra,\"$e\""; done
  tag="pg-$scen-$run${1:+-$(echo "$*" | tr ' =' '__')}"
  log="$OUT/logs/$kind-$tag.log"
  idle=$(gate); l0=$(load1); t0=$(date +%s.%N)
  echo "# $(date -Is) load=$(cut -d' ' -f1-3 /proc/loadavg)" > "$log"
  if [ "$kind" = local ]; then
    timeout 600 erl -name pbl@127.0.0.1 -setcookie $COOKIE -noshell -pa "$EBIN" \
      -eval "pb_local:main([\"pg\",\"$scen\",\"$run\"$extra])" < /dev/null >> "$log" 2>&1
    rc=$?
  else
    erl -name pba@127.0.0.1 -setcookie $COOKIE -noshell -pa "$EBIN" -eval 'pb_node:boot()' \
      < /dev/null > "$OUT/logs/dist-$tag.a.log" 2>&1 &
    pa=$!
    erl -name pbb@127.0.0.1 -setcookie $COOKIE -noshell -pa "$EBIN" -eval 'pb_node:boot()' \
      < /dev/null > "$OUT/logs/dist-$tag.b.log" 2>&1 &
    pb=$!
    timeout 900 erl -name pbc@127.0.0.1 -hidden -setcookie $COOKIE -noshell -pa "$EBIN" \
      -eval "pb_dist:main([\"pg\",\"$scen\",\"$run\"$extra])" < /dev/null >> "$log" 2>&1
    rc=$?
    sleep 0.5   # the coordinator halts the replicas; make sure (by PID) they are gone
    kill "$pa" "$pb" 2>/dev/null
    wait "$pa" "$pb" 2>/dev/null
  fi
  t1=$(date +%s.%N); l1=$(load1)
  grep $'^R\t' "$log" >> "$OUT/pg.tsv"
  if [ $rc -ne 0 ] || grep -q $'^R\t.*\terror\t' "$log"; then
    [ $rc -ne 0 ] || rc=1
    say "pg $kind $scen $* ($run) FAILED rc=$rc, see $log"; FAILED=1
  fi
  record pg "$id" "$run" "$scen${1:+ $*}" "$idle" "$l0" "$l1" "$rc" "$t0" "$t1"
}

roster_run() {  # roster_run ID RUN
  local id=$1 run=$2 fam log idle l0 l1 t0 t1 rc
  fam=$(python3 "$COMPARE" family "$id")
  log="$OUT/logs/roster-$id-$run"
  idle=$(gate); l0=$(load1); t0=$(date +%s.%N)
  timeout 1200 "$ROSTER" "$fam" --json --reps 1 --only "$id" < /dev/null > "$log.out" 2> "$log.err"
  rc=$?
  t1=$(date +%s.%N); l1=$(load1)
  python3 "$COMPARE" ingest "$run" "$l0" "$l1" < "$log.out" >> "$OUT/roster.jsonl"
  [ $rc -eq 0 ] || { say "roster-bench $fam --only $id ($run) FAILED rc=$rc, see $log.err"; FAILED=1; }
  record roster "$id" "$run" "$fam --only $id" "$idle" "$l0" "$l1" "$rc" "$t0" "$t1"
}

START=$(date +%s)
say "scenarios: ${SCEN[*]}; reps: $REPS; results: $OUT"
CPU=$(grep -m1 '^model name' /proc/cpuinfo 2>/dev/null | cut -d: -f2- | sed 's/^ *//')
say "machine: $(nproc) cores ($CPU), load average $(cut -d' ' -f1-3 /proc/loadavg); Erlang/OTP $OTP"
for r in $(seq 1 "$REPS"); do
  for id in "${SCEN[@]}"; do
    say "rep $r/$REPS $id: pg, then Roster (load1 $(load1))"
    mapfile -t PLAN < <(python3 "$COMPARE" plan "$id")
    for p in "${PLAN[@]}"; do
      # shellcheck disable=SC2086  # KIND SCEN [EXTRA...], split into words on purpose
      pg_run "$id" "r$r" $p
    done
    roster_run "$id" "r$r"
  done
done
ELAPSED=$(( $(date +%s) - START ))

# ---- 6. table -----------------------------------------------------------------------
{
  echo
  echo "## Roster vs OTP pg, same machine, same session"
  echo
  echo "$(date -Is); $(nproc) cores, ${CPU:-unknown CPU}; Erlang/OTP $OTP;"
  echo "Command: bench/peers/run.sh --reps $REPS ${SCEN[*]}; roster-bench from $(GIT_OPTIONAL_LOCKS=0 git rev-parse --short HEAD 2>/dev/null || echo '?')$(GIT_OPTIONAL_LOCKS=0 git diff --quiet HEAD 2>/dev/null || echo ' (+local changes)'); reps $REPS, interleaved pg then Roster; ${ELAPSED}s."
  echo "Cells: median [min–max] n over runs. pg has no unique names: registry rows use one pg group per key (same call shape, weaker guarantee)."
  echo "Ratio = Roster/pg; 'better' says which way is good; the verdict turns the ratio into 'ahead/behind by Nx'."
  echo
} > "$OUT/summary.md"
python3 "$COMPARE" report "$OUT" >> "$OUT/summary.md"
RRC=$?
cat "$OUT/summary.md"
grep '^{' "$OUT/summary.md" > "$OUT/summary.jsonl"
echo
echo "Raw results, per-run load and logs: $OUT"
[ $FAILED -eq 0 ] && [ $RRC -eq 0 ] || exit 1
