//! Processes: the RAII handles that own registrations and memberships (`handle`). The
//! node's table of its local processes, with what each holds, is part of the store
//! (`store::process_table`); a message in a mailbox is an [`crate::Envelope`].

mod handle;
mod mailbox;

pub use handle::Process;
