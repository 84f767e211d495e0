//! The core's test harness, `pair` (two cores linked in memory, or one core of a node with
//! a manual clock, driven frame by frame), and the tests driven through it: the core's
//! calls (`core_tests`), its link lifecycle (`links_tests`) and a measurement of snapshot
//! apply (`apply_figures`, ignored: it prints figures).

#[cfg(test)]
mod apply_figures;
#[cfg(test)]
mod core_tests;
#[cfg(test)]
mod links_tests;
// The fuzz target `hostile_peer` drives a pair too; what only the tests use is dead there.
#[cfg_attr(not(test), allow(dead_code))]
pub(in crate::replication) mod pair;
