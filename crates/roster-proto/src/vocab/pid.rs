//! Process identifiers.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A node's incarnation: drawn at random when the node starts, so a restarted node is a
/// new incarnation and the pids and entries of the old one can be told apart. A newtype so
/// that it cannot be swapped with a pid's serial, a session id or a timestamp.
///
/// ```
/// use roster::Incarnation;
///
/// let inc = Incarnation::new(7);
/// assert_eq!(inc.get(), 7);
/// assert_eq!(inc.to_string(), "0000000000000007");
/// ```
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Incarnation(u64);

impl Incarnation {
    /// The incarnation numbered `value`.
    pub const fn new(value: u64) -> Self {
        Self(value)
    }

    /// Its number.
    pub const fn get(self) -> u64 {
        self.0
    }
}

impl From<u64> for Incarnation {
    fn from(value: u64) -> Self {
        Self(value)
    }
}

impl fmt::Display for Incarnation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}

impl fmt::Debug for Incarnation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

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
/// use roster::{Incarnation, Pid};
///
/// let a = Pid::new(Incarnation::new(7), 1);
/// let b = Pid::new(Incarnation::new(7), 2);
/// assert!(a < b);
/// assert_eq!(a.incarnation(), Incarnation::new(7));
/// assert_eq!(a.to_string(), "<0000000000000007.1>");
/// ```
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Pid {
    incarnation: Incarnation,
    serial: u64,
}

impl Pid {
    /// Builds a pid from a node incarnation and a serial number.
    ///
    /// ```
    /// let pid = roster::Pid::new(roster::Incarnation::new(1), 42);
    /// assert_eq!(pid.serial(), 42);
    /// ```
    pub const fn new(incarnation: Incarnation, serial: u64) -> Self {
        Self {
            incarnation,
            serial,
        }
    }

    /// The incarnation of the node that owns this process.
    ///
    /// ```
    /// use roster::{Incarnation, Pid};
    /// assert_eq!(Pid::new(Incarnation::new(9), 1).incarnation(), Incarnation::new(9));
    /// ```
    pub const fn incarnation(&self) -> Incarnation {
        self.incarnation
    }

    /// The serial number of the process within its node incarnation.
    ///
    /// ```
    /// assert_eq!(roster::Pid::new(roster::Incarnation::new(9), 1).serial(), 1);
    /// ```
    pub const fn serial(&self) -> u64 {
        self.serial
    }
}

impl fmt::Display for Pid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "<{}.{}>", self.incarnation, self.serial)
    }
}

/// Text that is not a pid as [`Pid`] displays it (`<0123456789abcdef.17>`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{text:?} is not a pid: give one as pids display, e.g. <5f0c2a9e3b1d7c44.17>")]
pub struct PidParseError {
    /// The text refused.
    pub text: String,
}

/// Parses a pid as it displays: `<`, the incarnation in 16 hex digits, `.`, the serial in
/// decimal, `>`.
///
/// ```
/// use roster::{Incarnation, Pid};
///
/// let pid = Pid::new(Incarnation::new(0x5f0c_2a9e_3b1d_7c44), 17);
/// assert_eq!("<5f0c2a9e3b1d7c44.17>".parse::<Pid>().unwrap(), pid);
/// assert_eq!(pid.to_string().parse::<Pid>().unwrap(), pid);
/// assert!("5f0c2a9e3b1d7c44.17".parse::<Pid>().is_err());
/// ```
impl std::str::FromStr for Pid {
    type Err = PidParseError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let refuse = || PidParseError {
            text: text.chars().take(64).collect(),
        };
        let inner = text
            .strip_prefix('<')
            .and_then(|t| t.strip_suffix('>'))
            .ok_or_else(refuse)?;
        let (incarnation, serial) = inner.split_once('.').ok_or_else(refuse)?;
        let hex = |c: char| c.is_ascii_hexdigit();
        if incarnation.len() != 16 || !incarnation.chars().all(hex) {
            return Err(refuse());
        }
        if serial.is_empty() || !serial.chars().all(|c| c.is_ascii_digit()) {
            return Err(refuse());
        }
        let incarnation = u64::from_str_radix(incarnation, 16).map_err(|_| refuse())?;
        let serial = serial.parse::<u64>().map_err(|_| refuse())?;
        Ok(Self::new(Incarnation::new(incarnation), serial))
    }
}

impl fmt::Debug for Pid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}
