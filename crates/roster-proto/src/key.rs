//! Keys, key validation and subscription patterns.

use compact_str::CompactString;
use thiserror::Error;

/// A registry or group key: UTF-8, `/` separates levels.
///
/// Keys up to 24 bytes are stored inline without a heap allocation.
pub type Key = CompactString;

/// Name of a scope (an isolated sub-cluster).
pub type ScopeName = CompactString;

/// A key, prefix or scope name was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum KeyError {
    /// The key is the empty string.
    #[error("key is empty: use a non-empty UTF-8 key such as \"user/123\"")]
    Empty,
    /// The key is longer than the node's `max_key_bytes`.
    #[error(
        "key is {len} bytes, the limit is {max}: shorten it or raise NodeBuilder::max_key_bytes"
    )]
    TooLong {
        /// Length of the refused key in bytes.
        len: usize,
        /// The configured limit.
        max: usize,
    },
    /// The key fits this node's limit but not that of a linked peer, which could not
    /// hold the entry (nodes may be configured differently).
    #[error(
        "key is {len} bytes, a linked peer accepts at most {max}: shorten it or raise max_key_bytes on every node"
    )]
    TooLongForPeer {
        /// Length of the refused key in bytes.
        len: usize,
        /// The smallest limit among linked peers.
        max: usize,
    },
    /// A key ending in `/` is a prefix: valid in queries and subscriptions, not in writes.
    #[error(
        "key {0:?} ends with '/', which makes it a prefix; prefixes are only valid in queries and subscriptions"
    )]
    PrefixNotAllowed(Key),
    /// A prefix pattern must end with `/`.
    #[error("prefix {0:?} does not end with '/': a prefix selects whole levels, e.g. \"user/\"")]
    NotAPrefix(Key),
}

/// Limits applied to keys, meta and messages; see `roster::NodeBuilder`. Each node
/// announces its own in the link handshake.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Limits {
    /// Longest key, in bytes.
    pub max_key_bytes: usize,
    /// Largest encoded meta, in bytes.
    pub max_meta_bytes: usize,
    /// Largest encoded message, in bytes.
    pub max_message_bytes: usize,
}

impl Limits {
    /// The protocol's own bounds: no node accepts more whatever its configuration, so
    /// that any op or message fits in a frame. Frames from peers are checked against
    /// these; each node then skips the items over its own limits.
    pub const CEILING: Limits = Limits {
        max_key_bytes: 64 * 1024,
        max_meta_bytes: 16 * 1024 * 1024,
        max_message_bytes: 16 * 1024 * 1024,
    };

    /// The defaults of `roster::NodeBuilder`.
    pub const DEFAULT: Limits = Limits {
        max_key_bytes: 1024,
        max_meta_bytes: 64 * 1024,
        max_message_bytes: 1024 * 1024,
    };

    /// Each limit clamped to the protocol's [`Limits::CEILING`].
    pub fn clamped(self) -> Limits {
        Limits {
            max_key_bytes: self.max_key_bytes.min(Self::CEILING.max_key_bytes),
            max_meta_bytes: self.max_meta_bytes.min(Self::CEILING.max_meta_bytes),
            max_message_bytes: self.max_message_bytes.min(Self::CEILING.max_message_bytes),
        }
    }

    /// The smaller of each limit.
    pub fn min(self, other: Limits) -> Limits {
        Limits {
            max_key_bytes: self.max_key_bytes.min(other.max_key_bytes),
            max_meta_bytes: self.max_meta_bytes.min(other.max_meta_bytes),
            max_message_bytes: self.max_message_bytes.min(other.max_message_bytes),
        }
    }

    /// Whether an entry with this key and meta length fits.
    pub fn admits(&self, key: &str, meta_len: usize) -> bool {
        key.len() <= self.max_key_bytes && meta_len <= self.max_meta_bytes
    }

    /// Checks a key used for a write: non-empty, no trailing `/`, within the size limit.
    pub fn write_key(&self, key: &str) -> Result<(), KeyError> {
        self.any_key(key)?;
        if key.ends_with('/') {
            return Err(KeyError::PrefixNotAllowed(key.into()));
        }
        Ok(())
    }

    /// Checks a key or prefix used for a query or subscription.
    pub fn any_key(&self, key: &str) -> Result<(), KeyError> {
        if key.is_empty() {
            return Err(KeyError::Empty);
        }
        if key.len() > self.max_key_bytes {
            return Err(KeyError::TooLong {
                len: key.len(),
                max: self.max_key_bytes,
            });
        }
        Ok(())
    }
}

/// Whether a query key is a prefix (ends with `/`).
pub fn is_prefix(key: &str) -> bool {
    key.ends_with('/')
}

/// What a subscription listens to within a scope.
///
/// # Examples
///
/// ```
/// use roster::Pattern;
///
/// assert_eq!(Pattern::from("user/123"), Pattern::Exact("user/123".into()));
/// assert_eq!(Pattern::from("user/"), Pattern::Prefix("user/".into()));
/// assert!(Pattern::Prefix("user/".into()).matches("user/123"));
/// assert!(!Pattern::Exact("user/1".into()).matches("user/12"));
/// assert!(Pattern::All.matches("anything"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Pattern {
    /// Every key of the scope.
    All,
    /// One key.
    Exact(Key),
    /// Every key that starts with this prefix; the prefix ends with `/`.
    Prefix(Key),
}

impl Pattern {
    /// Whether `key` is matched by this pattern.
    ///
    /// ```
    /// assert!(roster::Pattern::from("a/").matches("a/b/c"));
    /// ```
    pub fn matches(&self, key: &str) -> bool {
        match self {
            Pattern::All => true,
            Pattern::Exact(k) => k == key,
            Pattern::Prefix(p) => key.starts_with(p.as_str()),
        }
    }

    /// Checks the pattern's key or prefix against `limits`.
    pub fn validate(&self, limits: &Limits) -> Result<(), KeyError> {
        match self {
            Pattern::All => Ok(()),
            Pattern::Exact(k) => limits.write_key(k),
            Pattern::Prefix(p) => {
                limits.any_key(p)?;
                if is_prefix(p) {
                    Ok(())
                } else {
                    Err(KeyError::NotAPrefix(p.clone()))
                }
            }
        }
    }
}

impl From<&str> for Pattern {
    /// A key ending in `/` is a prefix, any other key is exact; `"*"` means all keys.
    fn from(key: &str) -> Self {
        if key == "*" {
            Pattern::All
        } else if is_prefix(key) {
            Pattern::Prefix(key.into())
        } else {
            Pattern::Exact(key.into())
        }
    }
}

/// The `/`-terminated ancestors of a key, shortest first: `"a/b/c"` gives `"a/"`, `"a/b/"`.
pub fn ancestor_prefixes(key: &str) -> impl Iterator<Item = &str> {
    key.match_indices('/').map(move |(i, _)| &key[..=i])
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: Limits = Limits {
        max_key_bytes: 8,
        max_meta_bytes: 8,
        max_message_bytes: 8,
    };

    #[test]
    fn write_keys_must_be_non_empty_short_and_not_prefixes() {
        assert_eq!(LIMITS.write_key(""), Err(KeyError::Empty));
        assert_eq!(
            LIMITS.write_key("a/"),
            Err(KeyError::PrefixNotAllowed("a/".into()))
        );
        assert_eq!(
            LIMITS.write_key("123456789"),
            Err(KeyError::TooLong { len: 9, max: 8 })
        );
        assert_eq!(LIMITS.write_key("a/b"), Ok(()));
    }

    #[test]
    fn ancestors_are_every_slash_terminated_prefix() {
        let found: Vec<_> = ancestor_prefixes("a/b/c").collect();
        assert_eq!(found, ["a/", "a/b/"]);
        assert_eq!(ancestor_prefixes("abc").count(), 0);
        let trailing: Vec<_> = ancestor_prefixes("a/").collect();
        assert_eq!(trailing, ["a/"]);
    }

    #[test]
    fn a_prefix_pattern_must_end_with_a_slash() {
        assert!(Pattern::Prefix("a".into()).validate(&LIMITS).is_err());
        assert!(Pattern::Exact("a/".into()).validate(&LIMITS).is_err());
        assert!(Pattern::All.validate(&LIMITS).is_ok());
    }
}
