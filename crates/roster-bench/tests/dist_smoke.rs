//! Smoke test: `dist --quick --json` spawns node agents, runs every distributed scenario
//! and emits every contract metric of them (and the extra ones this program adds) with a
//! finite positive value. No timing thresholds: this checks the program, not the machine.

mod common;

/// The contract metrics of the distributed scenarios (those `src/peers.rs` lists), with units.
const CONTRACT: &[(&str, &str, &str)] = &[
    ("D1", "repl_p50", "us"),
    ("D1", "repl_p99", "us"),
    ("D1", "repl_max", "us"),
    ("D1", "register_call_p50", "us"),
    ("D1", "raw_one_way_p50", "us"),
    ("D2", "sync_10k", "ms"),
    ("D2", "sync_100k", "ms"),
    ("D2", "sync_1m", "ms"),
    ("D2", "replica_bytes_per_entry", "bytes"),
    ("D3", "converge_10k", "ms"),
    ("D5", "cleanup_1k", "ms"),
    ("D5", "cleanup_5k", "ms"),
    ("D5", "cleanup_50k", "ms"),
    ("D7", "group_cleanup_1k", "ms"),
    ("T1", "repl_throughput_3n", "ops/s"),
    ("R1", "resync_bytes_after_1s_drop_1m", "bytes"),
    ("R1", "snapshot_bytes_1m", "bytes"),
];

/// Metrics this program adds.
const EXTRA: &[(&str, &str, &str)] = &[
    ("D1", "raw_one_way_p99", "us"),
    ("D1", "register_call_local_scope_p50", "us"),
    ("D1", "unpark_call_p50", "us"),
    ("D1", "raw_woken_writer_parked_reader_p50", "us"),
    ("D1", "raw_woken_writer_parked_reader_p99", "us"),
    ("D1", "node_cpu_per_write", "us"),
    ("D1", "repl_p50_traffic", "us"),
    ("D1", "repl_p99_traffic", "us"),
    ("D1", "register_call_p50_traffic", "us"),
    ("D1", "node_cpu_idle_second", "us"),
    ("D1", "repl_p50_no_poll", "us"),
    ("D1", "repl_p99_no_poll", "us"),
    ("D1", "repl_max_no_poll", "us"),
    ("D1", "register_call_p50_no_poll", "us"),
    ("D1", "register_call_local_scope_p50_no_poll", "us"),
    ("D1", "node_cpu_per_write_no_poll", "us"),
    ("D1", "repl_p50_traffic_no_poll", "us"),
    ("D1", "repl_p99_traffic_no_poll", "us"),
    ("D1", "register_call_p50_traffic_no_poll", "us"),
    ("D1", "node_cpu_idle_second_no_poll", "us"),
    ("D1", "repl_p50_read_poll", "us"),
    ("D1", "repl_p99_read_poll", "us"),
    ("D1", "repl_max_read_poll", "us"),
    ("D1", "register_call_p50_read_poll", "us"),
    ("D1", "register_call_local_scope_p50_read_poll", "us"),
    ("D1", "node_cpu_per_write_read_poll", "us"),
    ("D1", "repl_p50_traffic_read_poll", "us"),
    ("D1", "repl_p99_traffic_read_poll", "us"),
    ("D1", "register_call_p50_traffic_read_poll", "us"),
    ("D1", "node_cpu_idle_second_read_poll", "us"),
    ("D2", "link_up", "ms"),
    ("D2", "agent_spawn", "ms"),
    ("D2", "replica_bytes_per_entry_100k", "bytes"),
    ("D3", "local_writes_10k", "ms"),
    ("D5", "cleanup_1k_owner", "ms"),
    ("D5", "cleanup_5k_owner", "ms"),
    ("D5", "cleanup_50k_owner", "ms"),
    ("D5", "owner_death_1k", "ns"),
    ("D5", "owner_death_5k", "ns"),
    ("D5", "owner_death_50k", "ns"),
    ("D5", "owner_unregister_1k", "ns"),
    ("D5", "owner_unregister_5k", "ns"),
    ("D5", "owner_unregister_50k", "ns"),
    ("D7", "group_cleanup_1k_owner", "ms"),
    ("D2", "sync_1m_entries_per_s", "ops/s"),
    ("D2", "register_p99_idle", "us"),
    ("D2", "register_p99_during_snapshot", "us"),
    ("T2", "writes_per_s_3n", "ops/s"),
    ("T2", "bytes_per_write_per_peer_3n", "bytes"),
    ("T2", "writes_per_s_5n", "ops/s"),
    ("T2", "bytes_per_write_per_peer_5n", "bytes"),
    ("T2", "writes_per_s_8n", "ops/s"),
    ("T2", "bytes_per_write_per_peer_8n", "bytes"),
    ("G1", "join_200k", "ms"),
    ("G1", "join_200k_seen", "ms"),
    ("G1", "members_200k_p50", "ns"),
    ("G1", "members_200k_iterate", "ms"),
    ("G1", "dispatch_200k", "ms"),
    ("G1", "group_cleanup_200k", "ms"),
    ("G1", "group_cleanup_200k_owner", "ms"),
    ("R1", "resync_ms_after_1s_drop_1m", "ms"),
];

#[test]
fn quick_dist_run_emits_every_metric_with_a_positive_value() {
    let (meta, figures, stderr) = common::run_json(&["dist", "--quick", "--json"]);
    assert_eq!(meta["quick"], true);
    assert_eq!(meta["command"], "dist");
    let expected: Vec<_> = CONTRACT.iter().chain(EXTRA).copied().collect();
    common::check_emitted(&figures, &expected, &stderr);
    assert_eq!(
        figures.len(),
        expected.len(),
        "unexpected metrics: {:?}",
        figures.keys().collect::<Vec<_>>()
    );
}

#[test]
fn an_unknown_scenario_is_refused() {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_roster-bench"))
        .args(["dist", "--only", "D9"])
        .output()
        .expect("the benchmark program runs");
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("unknown scenario"));
}
