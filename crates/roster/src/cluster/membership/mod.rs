//! Membership and failure detection: SWIM (the `foca` crate) over UDP.
//!
//! One task per node owns the [`Foca`](foca::Foca) instance and its UDP socket. Every
//! input (a datagram, a due timer, an announce round to the seeds, a leave request)
//! arrives through one `select!` loop, is handed to foca, and after each foca call the task
//! drains foca's output in a fixed order: datagrams to send, then timers to arm (one
//! min-heap scheduler), then notifications, which become [`MembershipEvent`]s. foca
//! reads no clock and does no IO; this module is the thin shell that does.
//!
//! # What the transport layer gets
//!
//! - [`spawn_membership`] starts the task and returns a [`MembershipHandle`]:
//!   [`MembershipHandle::members`] reads the members currently alive (no task hop),
//!   [`MembershipHandle::leave`] leaves gracefully, dropping the handle aborts.
//! - [`MembershipEvent::Up`] and [`MembershipEvent::Down`] (or [`MembershipEvent::Left`],
//!   a down on purpose) on an unbounded channel. A `Down(m)` always carries exactly the `m`
//!   of the earlier `Up(m)`, so a consumer can key its state by the whole [`MemberId`] or
//!   by its incarnation; [`MembershipEvent::LeftEarlier`] says a member already down had
//!   left on purpose.
//!
//! # Wire format and authentication
//!
//! Each datagram is a foca packet (postcard codec, at most
//! [`foca::Config::max_packet_size`] bytes) followed by a 16-byte MAC: the first 16 bytes
//! of the blake3 keyed hash of the packet, keyed by
//! `blake3::derive_key("roster membership v2", material)`, where `material` is the secret
//! and the cluster name, each preceded by its length (u64, little endian), then the
//! protocol version (u16, little endian). So nodes with another secret, cluster name or
//! protocol version never see each other. A datagram with a bad MAC is refused before
//! anything decodes it: counted ([`MembershipHandle::refused_datagrams`]) and logged, at
//! warn at most once per 10 s for the whole node (the rest at debug). The secret never
//! goes on the wire. The MAC gives authenticity, not freshness: a captured datagram can
//! be replayed, which SWIM tolerates (stale incarnations and probe numbers are ignored).
//!
//! # Identity and restarts
//!
//! A [`MemberId`] is the cluster address plus the node instance (its incarnation and
//! start time). When two identities share an address, the one with the greater
//! `(started_at_ms, incarnation, bump)` wins ([`foca::Identity::win_addr_conflict`]): a
//! restarted node replaces its previous instance, reported as `Down(old)` then `Up(new)`.
//! A node wrongly declared down renews itself (`bump + 1`, same incarnation) and rejoins.
//!
//! # Layout
//!
//! One job per file, imports going one way only: `identity` ([`MemberId`]), `datagram`
//! (the MAC codec), `config` ([`MembershipConfig`]) and `rng` depend on no sibling; `view`
//! (Up/Down derivation), `leave_notice` (foca's handler of leave notices: a leave is told
//! from a death), `timers`, `refusal_log` and `seeds` only on those; `task` (the loop
//! and [`MembershipHandle`]) and `fuzz` on any of them; this file only re-exports.

mod config;
mod datagram;
#[cfg(feature = "fuzzing")]
mod fuzz;
mod identity;
mod leave_notice;
mod refusal_log;
mod rng;
mod seeds;
mod task;
mod timers;
mod view;

pub(crate) use config::MembershipConfig;
#[cfg(feature = "fuzzing")]
pub(crate) use datagram::DatagramKey;
#[cfg(feature = "fuzzing")]
pub(crate) use fuzz::decode_packet;
pub(crate) use identity::MemberId;
pub(crate) use task::{MembershipHandle, spawn_membership};
pub(crate) use view::MembershipEvent;
