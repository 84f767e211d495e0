//! The benchmark's table: each figure beside its target and what limits it.

use super::BenchArgs;
use super::phases::Row;

/// The table as Markdown, with the settings it ran with.
pub fn table(rows: &[Row], args: &BenchArgs) -> String {
    let mut out = format!(
        "roster bench-agent: {} per phase, {} load threads, {} SSE clients, agent runtime of {} workers, {} CPUs\n\n",
        humantime::format_duration(args.duration),
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
