//! Processes: the RAII handles that own registrations and memberships, and the node's
//! table of its local processes.
//!
//! - `handle`: [`Process`], the handle a process's owner holds.
//! - `mailbox`: [`Envelope`], a message in a mailbox.
//! - `table`: [`Locals`], the node's process table; [`ProcessCell`], the node-side state of
//!   one local process; [`Holding`], one entry it holds (the owner index that makes the
//!   cleanup of an exited process cost what it held).

mod handle;
mod mailbox;
mod table;

pub use handle::Process;
pub use mailbox::Envelope;
pub(crate) use table::{Holding, HoldingKind, Locals, ProcessCell};
