#!/usr/bin/env python3
"""Roster vs OTP pg: the scenario plan, the metric mapping and the comparison table.

This file is the one place that says which harness runs make up a scenario, which
harness metric corresponds to which roster-bench metric (roster-bench's metric names,
listed with their absolute targets in crates/roster-bench/src/peers.rs), and Roster's
targets relative to pg in the same run. run.sh asks it what to run and hands it the
results.

  compare.py ids                         known scenario ids, in table order
  compare.py family ID                   local | dist (roster-bench subcommand)
  compare.py plan ID                     one pg harness run per line: KIND SCEN [EXTRA...]
  compare.py ingest RUN L0 L1 < OUT      roster-bench --json output -> JSONL (run, load added)
  compare.py report DIR                  markdown table + one JSON line per row

Results layout in DIR: pg.tsv (the harness's "R" lines), roster.jsonl (ingested lines),
runs.tsv (one line per run: who, id, run, idle %, load1 before/after, rc, seconds).
"""
import csv
import json
import os
import statistics
import sys
from collections import defaultdict

# Scenario id -> (roster-bench family, pg harness runs as (kind, harness scenario, extra args)).
# The harness appends "_N" to the scenario name of runs given "n=N" (d5 n=1000 -> d5_1000).
SCENARIOS = {
    "L1": ("local", [("local", "l1", [])]),
    "L2": ("local", [("local", "l2", [])]),
    "L3": ("local", [("local", "l3", [])]),
    "L4": ("local", [("local", "l4", [])]),
    "L5": ("local", [("local", "l5", [])]),
    "L6": ("local", [("local", "l6", [])]),
    "D1": ("dist", [("dist", "d1", [])]),
    "D2": ("dist", [("dist", "d2c", ["n=10000"]), ("dist", "d2c", ["n=100000"])]),
    "D3": ("dist", [("dist", "d3", [])]),
    "D5": ("dist", [("dist", "d5", ["n=1000"]), ("dist", "d5", ["n=5000"]), ("dist", "d5", ["n=50000"])]),
    "D7": ("dist", [("dist", "d7", [])]),
}

# One row per compared figure:
# (id, label, unit, higher_is_better, (harness scenario, harness metric, factor to unit) or
#  None for a Roster figure shown without a pg counterpart, roster-bench metric (already in
#  unit), target: how far ahead of pg Roster must be in the same run (1 = ahead), or None).
ROWS = [
    ("L1", "L1 lookup, 1 reader: ops/s", "ops/s", True, ("l1", "c1_ops_per_s", 1), "lookup_1t", 10),
    ("L1", "L1 lookup, 1 reader: p50", "ns", False, ("l1", "c1_p50_ns", 1), "lookup_p50", None),
    ("L1", "L1 lookup, 1 reader: p99", "ns", False, ("l1", "c1_p99_ns", 1), "lookup_p99", None),
    ("L1", "L1 lookup, 2 readers: total ops/s", "ops/s", True, ("l1", "c2_ops_per_s", 1), "lookup_2t", 10),
    ("L1", "L1 bare map read, 1 thread: ops/s (Roster only)", "ops/s", True, None, "baseline_map_get_1t", None),
    ("L1", "L1 bare map read, 2 threads: total ops/s (Roster only)", "ops/s", True, None, "baseline_map_get_2t", None),
    ("L2", "L2 members 100x100, 1 reader: ops/s", "ops/s", True, ("l2", "c1_ops_per_s", 1), "members_1t", 5),
    ("L2", "L2 members, 1 reader: p50", "ns", False, ("l2", "c1_p50_ns", 1), "members_p50", None),
    ("L2", "L2 members, 2 readers: total ops/s", "ops/s", True, ("l2", "c2_ops_per_s", 1), "members_2t", 5),
    ("L3", "L3 register, 10K concurrent: ops/s", "ops/s", True, ("l3", "ops_per_s", 1), "register_concurrent", 5),
    ("L4", "L4 register+unregister cycle: p50", "ns", False, ("l4", "p50_ns", 1), "cycle_p50", None),
    ("L4", "L4 register+unregister cycle: p99", "ns", False, ("l4", "p99_ns", 1), "cycle_p99", 2),
    ("L5", "L5 join, 10K concurrent: ops/s", "ops/s", True, ("l5", "ops_per_s", 1), "join_concurrent", 5),
    ("L6", "L6 5K registration events received", "ms", False, ("l6", "total_us", 1e-3), "events_5k", 5),
    ("D1", "D1 replication latency p50 (after idle)", "us", False, ("d1", "p50_us", 1), "repl_p50", 1),
    ("D1", "D1 replication latency p99 (after idle)", "us", False, ("d1", "p99_us", 1), "repl_p99", 1),
    ("D1", "D1 register call on A, p50 (after idle)", "us", False, ("d1", "reg_call_p50_us", 1), "register_call_p50", 1),
    ("D1", "D1 replication p50, busy_poll off", "us", False, ("d1", "p50_us", 1), "repl_p50_no_poll", None),
    ("D1", "D1 replication p99, busy_poll off", "us", False, ("d1", "p99_us", 1), "repl_p99_no_poll", None),
    ("D1", "D1 register call p50, busy_poll off", "us", False, ("d1", "reg_call_p50_us", 1), "register_call_p50_no_poll", None),
    ("D1", "D1 replication p50, read_poll 1 ms", "us", False, ("d1", "p50_us", 1), "repl_p50_read_poll", None),
    ("D1", "D1 replication p99, read_poll 1 ms", "us", False, ("d1", "p99_us", 1), "repl_p99_read_poll", None),
    ("D1", "D1 register call p50, read_poll 1 ms", "us", False, ("d1", "reg_call_p50_us", 1), "register_call_p50_read_poll", None),
    ("D1", "D1 replication p50 during traffic (Roster only)", "us", False, None, "repl_p50_traffic", None),
    ("D1", "D1 replication p99 during traffic (Roster only)", "us", False, None, "repl_p99_traffic", None),
    ("D1", "D1 register call p50 during traffic (Roster only)", "us", False, None, "register_call_p50_traffic", None),
    ("D1", "D1 nodes' CPU per replicated write (Roster only)", "us", False, None, "node_cpu_per_write", None),
    ("D1", "D1 nodes' CPU per write, busy_poll off (Roster only)", "us", False, None, "node_cpu_per_write_no_poll", None),
    ("D1", "D1 nodes' CPU per write, read_poll 1 ms (Roster only)", "us", False, None, "node_cpu_per_write_read_poll", None),
    ("D1", "D1 nodes' CPU per idle second (Roster only)", "us", False, None, "node_cpu_idle_second", None),
    ("D1", "D1 nodes' CPU per idle second, busy_poll off (Roster only)", "us", False, None, "node_cpu_idle_second_no_poll", None),
    ("D1", "D1 nodes' CPU per idle second, read_poll 1 ms (Roster only)", "us", False, None, "node_cpu_idle_second_read_poll", None),
    ("D1", "D1 yardstick: raw TCP one way, spinning reader (Roster only)", "us", False, None, "raw_one_way_p50", None),
    ("D2", "D2 bulk sync on connect, 10K", "ms", False, ("d2c_10000", "sync_ms", 1), "sync_10k", 1),
    ("D2", "D2 bulk sync on connect, 100K", "ms", False, ("d2c_100000", "sync_ms", 1), "sync_100k", None),
    ("D2", "D2 replica bytes per entry (100K)", "bytes", False, ("d2c_100000", "b_mem_bytes_per_entry", 1), "replica_bytes_per_entry_100k", None),
    ("D3", "D3 5K+5K concurrent writes, both converged", "ms", False, ("d3", "converged_ms", 1), "converge_10k", 5),
    ("D5", "D5 1K deaths, B sees 0", "ms", False, ("d5_1000", "b_zero_ms", 1), "cleanup_1k", 5),
    ("D5", "D5 5K deaths, B sees 0", "ms", False, ("d5_5000", "b_zero_ms", 1), "cleanup_5k", 5),
    ("D5", "D5 50K deaths, B sees 0", "ms", False, ("d5_50000", "b_zero_ms", 1), "cleanup_50k", 5),
    ("D7", "D7 1K group members die, B sees 0", "ms", False, ("d7", "b_zero_ms", 1), "group_cleanup_1k", None),
]


def die(msg):
    print(f"compare.py: {msg}", file=sys.stderr)
    sys.exit(2)


def scenario(sid):
    s = SCENARIOS.get(sid.upper())
    if s is None:
        die(f"unknown scenario {sid!r}; known: {' '.join(SCENARIOS)}")
    return s


def cmd_ingest(run, l0, l1):
    """roster-bench --json output on stdin -> JSON lines with run and load added."""
    for line in sys.stdin:
        line = line.strip()
        if not line.startswith("{"):
            continue
        try:
            d = json.loads(line)
        except ValueError:
            continue
        if d.get("scenario") == "meta":
            continue
        d.update(run=run, load1_start=float(l0), load1_end=float(l1))
        print(json.dumps(d))


def fmt(v):
    if v is None:
        return "–"
    a = abs(v)
    if a >= 1e6:
        return f"{v / 1e6:.2f}M"
    if a >= 1e4:
        return f"{v / 1e3:.0f}K"
    if a >= 100:
        return f"{v:,.0f}"
    if a >= 10:
        return f"{v:.1f}"
    return f"{v:.2f}"


def cell(xs):
    if not xs:
        return None, "–"
    m = statistics.median(xs)
    if len(xs) == 1:
        return m, f"{fmt(m)} (n=1)"
    return m, f"{fmt(m)} [{fmt(min(xs))}–{fmt(max(xs))}] n={len(xs)}"


def verdict(pgm, rom, hib):
    """ratio Roster/pg and the verdict, oriented so that N >= 1."""
    if pgm is None or rom is None or pgm <= 0 or rom <= 0:
        return None, "–"
    r = rom / pgm
    ahead = r >= 1 if hib else r <= 1
    n = r if r >= 1 else 1 / r
    return r, f"{'ahead' if ahead else 'behind'} by {n:.2f}x"


def cmd_report(d):
    pg = defaultdict(list)  # (harness scen, metric) -> [value]
    try:
        with open(os.path.join(d, "pg.tsv")) as f:
            for line in f:
                p = line.rstrip("\n").split("\t")
                if len(p) == 6 and p[0] == "R" and p[2] == "pg":
                    try:
                        pg[(p[3], p[4])].append(float(p[5]))
                    except ValueError:
                        pass
    except FileNotFoundError:
        pass
    roster = defaultdict(list)  # (id, metric) -> [value]
    try:
        with open(os.path.join(d, "roster.jsonl")) as f:
            for line in f:
                r = json.loads(line)
                roster[(r["scenario"], r["metric"])].append(float(r["value"]))
    except FileNotFoundError:
        pass
    loads = defaultdict(list)  # (who, id) -> [load1 at start]
    fails = []
    ran = set()
    try:
        with open(os.path.join(d, "runs.tsv")) as f:
            for row in csv.DictReader(f, delimiter="\t"):
                loads[(row["who"], row["id"])].append(float(row["load1_start"]))
                ran.add(row["id"])
                if row["rc"] != "0":
                    fails.append(row)
    except FileNotFoundError:
        pass

    print("| scenario / metric | unit | better | pg median [min–max] n | Roster median [min–max] n "
          "| Roster/pg | verdict | target vs pg | met | load1 at start (pg; Roster) |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    out = []
    for sid, label, unit, hib, pgspec, rm, target in ROWS:
        if sid not in ran:
            continue
        ps, pm, pf = pgspec if pgspec else ("", "", 1)
        pgv = [v * pf for v in pg.get((ps, pm), [])] if pgspec else []
        rov = roster.get((sid, rm), [])
        pgm, pgc = cell(pgv)
        rom, roc = cell(rov)
        ratio, verd = verdict(pgm, rom, hib)
        lp, lr = loads.get(("pg", sid), []), loads.get(("roster", sid), [])
        lrange = lambda xs: ("–" if not xs else f"{xs[0]:.2f}" if min(xs) == max(xs)
                             else f"{min(xs):.2f}–{max(xs):.2f}")
        better = "higher" if hib else "lower"
        rtxt = f"{ratio:.2f}" if ratio is not None else "–"
        # How many times ahead of pg Roster is (below 1: behind).
        ahead = None if ratio is None else (ratio if hib else 1 / ratio)
        ttxt = "–" if target is None else ("ahead" if target == 1 else f"ahead by >= {target}x")
        met = None if target is None or ahead is None else ahead >= target
        mtxt = "–" if met is None else ("yes" if met else "no")
        print(f"| {label} | {unit} | {better} | {pgc} | {roc} | {rtxt} | {verd} | {ttxt} | {mtxt} "
              f"| {lrange(lp)}; {lrange(lr)} |")
        out.append({
            "scenario": sid, "metric": rm, "label": label, "unit": unit,
            "direction": "higher_is_better" if hib else "lower_is_better",
            "pg_metric": f"{ps}/{pm}" if pgspec else None, "pg_median": pgm, "pg_min": min(pgv) if pgv else None,
            "pg_max": max(pgv) if pgv else None, "pg_n": len(pgv),
            "roster_median": rom, "roster_min": min(rov) if rov else None,
            "roster_max": max(rov) if rov else None, "roster_n": len(rov),
            "ratio_roster_over_pg": ratio, "verdict": verd if ratio is not None else None,
            "target_times_ahead_of_pg": target, "met": met,
            "load1_pg": [min(lp), max(lp)] if lp else None,
            "load1_roster": [min(lr), max(lr)] if lr else None,
        })
    print()
    print("JSON lines (one per row):")
    for o in out:
        print(json.dumps(o))
    if fails:
        print()
        print("FAILED runs (their figures are missing above; logs in the results dir):")
        for f in fails:
            print(f"  {f['who']} {f['id']} {f['run']} {f.get('what', '')} rc={f['rc']}")
        return 1
    return 0


def main(argv):
    if not argv:
        die(__doc__)
    cmd, args = argv[0], argv[1:]
    if cmd == "ids":
        print(" ".join(SCENARIOS))
    elif cmd == "family" and len(args) == 1:
        print(scenario(args[0])[0])
    elif cmd == "plan" and len(args) == 1:
        for kind, scen, extra in scenario(args[0])[1]:
            print(" ".join([kind, scen] + extra))
    elif cmd == "ingest" and len(args) == 3:
        cmd_ingest(*args)
    elif cmd == "report" and len(args) == 1:
        return cmd_report(args[0])
    else:
        die(__doc__)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
