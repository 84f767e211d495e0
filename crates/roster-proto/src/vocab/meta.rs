//! Per-entry metadata.

use std::fmt;
use std::hash::{Hash, Hasher};

use serde::Serialize;
use serde::de::DeserializeOwned;
use thiserror::Error;
use triomphe::ThinArc;

/// MessagePack encoding of `nil`, the value an empty [`Meta`] decodes from.
const NIL: [u8; 1] = [0xc0];

/// Metadata attached to a registration or a group membership.
///
/// Meta is stored and replicated as self-describing MessagePack bytes, so any node, the
/// CLI or the HTTP API can render it without knowing the Rust type; Rust callers encode and
/// decode typed values with serde. Cloning is cheap (a reference count), and the meta of
/// unit-like values (`()`, `None`) takes no allocation at all.
///
/// # Examples
///
/// ```
/// use roster::Meta;
///
/// let meta = Meta::encode(&("eu-west", 3u8)).unwrap();
/// let (region, shard): (String, u8) = meta.decode().unwrap();
/// assert_eq!((region.as_str(), shard), ("eu-west", 3));
/// assert!(Meta::encode(&()).unwrap().is_empty());
/// ```
///
/// # Representation
///
/// One word: the bytes live behind a thin reference count ([`triomphe::ThinArc`], whose
/// allocation holds the count, the length and the bytes), so a stored registration or
/// group member spends 8 bytes on its meta rather than the 16 of an `Arc<[u8]>`.
#[derive(Clone, Default)]
pub struct Meta(Option<ThinArc<(), u8>>);

impl PartialEq for Meta {
    fn eq(&self, other: &Self) -> bool {
        self.as_bytes() == other.as_bytes()
    }
}

impl Eq for Meta {}

impl Hash for Meta {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.as_bytes().hash(state);
    }
}

/// Meta (or a message) could not be encoded, decoded, or is too large.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum MetaError {
    /// serde could not encode the value as MessagePack.
    #[error("cannot encode value as MessagePack: {0}")]
    Encode(String),
    /// The bytes do not decode as the requested type.
    #[error("cannot decode MessagePack as the requested type: {0}")]
    Decode(String),
    /// The encoded meta is larger than the node's `max_meta_bytes`.
    #[error(
        "meta is {len} bytes encoded, the limit is {max}: store less or raise NodeBuilder::max_meta_bytes"
    )]
    TooLarge {
        /// Encoded length in bytes.
        len: usize,
        /// The configured limit.
        max: usize,
    },
    /// The meta fits this node's limit but not that of a linked peer, which could not
    /// hold the entry (nodes may be configured differently).
    #[error(
        "meta is {len} bytes encoded, a linked peer accepts at most {max}: store less or raise max_meta_bytes on every node"
    )]
    TooLargeForPeer {
        /// Encoded length in bytes.
        len: usize,
        /// The smallest limit among linked peers.
        max: usize,
    },
}

impl Meta {
    /// The empty meta (MessagePack `nil`).
    ///
    /// ```
    /// assert!(roster::Meta::EMPTY.is_empty());
    /// ```
    pub const EMPTY: Self = Self(None);

    /// Encodes a value as MessagePack (structs as maps with field names).
    ///
    /// # Errors
    ///
    /// [`MetaError::Encode`] when serde refuses the value (for example a map with non-string
    /// keys that MessagePack cannot represent).
    ///
    /// ```
    /// let meta = roster::Meta::encode(&42u32).unwrap();
    /// assert_eq!(meta.decode::<u32>().unwrap(), 42);
    /// ```
    pub fn encode<T: Serialize + ?Sized>(value: &T) -> Result<Self, MetaError> {
        thread_local! {
            // Reused per thread: encoding allocates only the final shared bytes, and
            // nothing at all for unit-like values.
            static BUFFER: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
        }
        BUFFER.with(|buffer| {
            // A serializer that re-enters `encode` (through a custom Serialize) gets a
            // fresh buffer instead of a borrow panic.
            let mut fresh = Vec::new();
            let mut borrowed = buffer.try_borrow_mut();
            let bytes = match borrowed.as_deref_mut() {
                Ok(bytes) => bytes,
                Err(_) => &mut fresh,
            };
            bytes.clear();
            value
                .serialize(&mut rmp_serde::Serializer::new(&mut *bytes).with_struct_map())
                .map_err(|e| MetaError::Encode(e.to_string()))?;
            let meta = Self::from_bytes(bytes);
            if bytes.capacity() > 64 * 1024 {
                *bytes = Vec::new();
            }
            Ok(meta)
        })
    }

    /// Wraps bytes that are already MessagePack (as received from a peer or the HTTP API).
    ///
    /// ```
    /// let meta = roster::Meta::from_bytes(&[0x2a]);
    /// assert_eq!(meta.decode::<u8>().unwrap(), 42);
    /// ```
    pub fn from_bytes(bytes: &[u8]) -> Self {
        if bytes.is_empty() || bytes == NIL {
            Self(None)
        } else {
            Self(Some(ThinArc::from_header_and_slice((), bytes)))
        }
    }

    /// Decodes the meta into a typed value.
    ///
    /// # Errors
    ///
    /// [`MetaError::Decode`] when the bytes do not hold a `T` (the entry was written with
    /// another type).
    ///
    /// ```
    /// let meta = roster::Meta::encode("hello").unwrap();
    /// assert!(meta.decode::<u64>().is_err());
    /// assert_eq!(meta.decode::<String>().unwrap(), "hello");
    /// ```
    pub fn decode<T: DeserializeOwned>(&self) -> Result<T, MetaError> {
        rmp_serde::from_slice(self.as_bytes()).map_err(|e| MetaError::Decode(e.to_string()))
    }

    /// The MessagePack bytes (`[0xc0]`, i.e. `nil`, for the empty meta).
    ///
    /// ```
    /// assert_eq!(roster::Meta::EMPTY.as_bytes(), &[0xc0]);
    /// ```
    pub fn as_bytes(&self) -> &[u8] {
        match &self.0 {
            Some(bytes) => &bytes.slice,
            None => &NIL,
        }
    }

    /// Whether this is the empty meta (`nil`).
    ///
    /// ```
    /// assert!(!roster::Meta::encode(&1u8).unwrap().is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.0.is_none()
    }

    /// Bytes this meta occupies on the heap (used by size limits and memory accounting).
    ///
    /// ```
    /// assert_eq!(roster::Meta::EMPTY.encoded_len(), 1);
    /// ```
    pub fn encoded_len(&self) -> usize {
        self.as_bytes().len()
    }
}

impl fmt::Debug for Meta {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Meta({:02x?})", self.as_bytes())
    }
}

impl Serialize for Meta {
    /// Meta crosses the wire as its MessagePack bytes.
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_bytes(self.as_bytes())
    }
}

impl<'de> serde::Deserialize<'de> for Meta {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct BytesVisitor;

        impl<'de> serde::de::Visitor<'de> for BytesVisitor {
            type Value = Meta;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("MessagePack bytes")
            }

            fn visit_bytes<E: serde::de::Error>(self, bytes: &[u8]) -> Result<Meta, E> {
                Ok(Meta::from_bytes(bytes))
            }

            fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Meta, A::Error> {
                let mut bytes = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(4096));
                while let Some(byte) = seq.next_element::<u8>()? {
                    bytes.push(byte);
                }
                Ok(Meta::from_bytes(&bytes))
            }
        }

        deserializer.deserialize_bytes(BytesVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::Meta;

    /// Meta is one word, so that a stored registration or member pays 8 bytes for it.
    #[test]
    fn meta_is_one_word_and_compares_by_bytes() {
        assert_eq!(size_of::<Meta>(), size_of::<usize>());
        let a = Meta::from_bytes(&[0x2a]);
        assert_eq!(a, Meta::from_bytes(&[0x2a]));
        assert_ne!(a, Meta::EMPTY);
        assert_eq!(Meta::from_bytes(&[0xc0]), Meta::EMPTY);
        assert_eq!(a.clone().as_bytes(), &[0x2a]);
    }
}
