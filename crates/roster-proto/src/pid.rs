//! Process identifiers.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Identifies a process anywhere in the cluster.
///
/// A `Pid` is the incarnation of the node that created the process plus a serial number
/// local to that incarnation. Pids are totally ordered (incarnation first, then serial) and
/// compare identically on every node, which makes them usable as a deterministic tie-break.
/// A restarted node has a new incarnation, so pids of the old incarnation never collide with
/// new ones.
///
/// # Examples
///
/// ```
/// use roster::Pid;
///
/// let a = Pid::new(7, 1);
/// let b = Pid::new(7, 2);
/// assert!(a < b);
/// assert_eq!(a.incarnation(), 7);
/// assert_eq!(a.to_string(), "<0000000000000007.1>");
/// ```
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Pid {
    incarnation: u64,
    serial: u64,
}

impl Pid {
    /// Builds a pid from a node incarnation and a serial number.
    ///
    /// ```
    /// let pid = roster::Pid::new(1, 42);
    /// assert_eq!(pid.serial(), 42);
    /// ```
    pub const fn new(incarnation: u64, serial: u64) -> Self {
        Pid {
            incarnation,
            serial,
        }
    }

    /// The incarnation of the node that owns this process.
    ///
    /// ```
    /// assert_eq!(roster::Pid::new(9, 1).incarnation(), 9);
    /// ```
    pub const fn incarnation(&self) -> u64 {
        self.incarnation
    }

    /// The serial number of the process within its node incarnation.
    ///
    /// ```
    /// assert_eq!(roster::Pid::new(9, 1).serial(), 1);
    /// ```
    pub const fn serial(&self) -> u64 {
        self.serial
    }
}

impl fmt::Display for Pid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "<{:016x}.{}>", self.incarnation, self.serial)
    }
}

impl fmt::Debug for Pid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}
