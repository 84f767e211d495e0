//! Processes: the RAII handles that own registrations and memberships, and the node's
//! table of its local processes.
//!
//! - `handle`: [`Process`], the handle a process's owner holds.
//! - `mailbox`: [`Envelope`], a message in a mailbox.
//! - `table`: [`ProcessTable`], the node's process table; [`LocalProcess`], the node-side state of
//!   one local process; [`HeldEntry`], one entry it holds (the owner index that makes the
//!   cleanup of an exited process cost what it held).

mod handle;
mod mailbox;
mod table;

pub use handle::Process;
pub use mailbox::Envelope;
pub(crate) use table::{HeldEntry, HeldKind, LocalProcess, ProcessTable};
