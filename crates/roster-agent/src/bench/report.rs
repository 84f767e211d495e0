//! The benchmark's table: each figure beside its target and what limits it.

use super::BenchArgs;
use super::phases::Row;

/// The table as Markdown, with the settings it ran with.
pub fn table(rows: &[Row], args: &BenchArgs) -> String {
    let mut out = format!(
        "roster bench-agent: {} per phase, lookups and keepalives over {} connections from a load generator of {} thread{}, {} blocking client threads elsewhere, {} SSE clients, agent runtime of {} workers, {} CPUs\n\n",
        humantime::format_duration(args.duration),
        args.connections
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("/"),
        args.load_threads.max(1),
        if args.load_threads > 1 { "s" } else { "" },
        args.threads,
        args.sse_clients,
        args.agent_threads,
        std::thread::available_parallelism().map_or(0, std::num::NonZero::get),
    );
    out.push_str("| figure | measured | target | met | limited by |\n|---|---|---|---|---|\n");
    for row in rows {
        let met = match row.met {
            Some(true) => "yes",
            Some(false) => "no",
            None => "-",
        };
        out.push_str(&format!(
            "| {} | {} | {} | {met} | {} |\n",
            row.figure, row.measured, row.target, row.limit
        ));
    }
    out
}
