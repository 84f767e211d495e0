//! Keys, key validation and subscription patterns.

use std::cmp::Ordering;
use std::hash::{Hash, Hasher};
use std::marker::PhantomData;
use std::num::NonZeroU8;

use compact_str::CompactString;
use thiserror::Error;
use triomphe::ThinArc;

/// A registry or group key: UTF-8, `/` separates levels.
///
/// Keys up to 24 bytes are stored inline without a heap allocation.
pub type Key = CompactString;

/// A key in two words, as the store keeps it in its tables, their ordered indexes and
/// the records of what each local process holds, with a small tag.
///
/// A key of up to [`INLINE_KEY_BYTES`] bytes is stored in place (most keys: no
/// allocation, and a lookup compares it without following a pointer). A longer one is
/// stored once, behind a thin reference count ([`triomphe::ThinArc`], whose allocation
/// holds the count, the length, the tag byte and the key), and every copy shares it.
///
/// The tag is a [`KeyTag`] its owner chooses (the store tags each key with the kind of
/// entry of its table); it is packed beside the length of a short key and before the
/// bytes of a long one.
///
/// Written here because no string crate carries a tag in two words: `compact_str` and
/// `smol_str` take 24 bytes, and `ecow::EcoString` (16 bytes, 15 inline) has no room for
/// the tag, without which the holder's record needs a third word for its kind. Three
/// copies of each key (the table, the index and the holder's record) were most of what
/// a name cost (`roster-bench --only M1 local`).
///
/// It compares, orders and hashes exactly like its `str`, tag aside, and a `&str` finds
/// it in a [`papaya::HashMap`] or a [`scc::TreeIndex`] (through [`papaya::Equivalent`] and
/// [`scc::Comparable`]), so lookups by `&str` build nothing.
///
/// ```
/// use roster_proto::key::PackedKey;
/// use roster_proto::store::HeldKind;
///
/// let names = papaya::HashMap::new();
/// names.pin().insert(PackedKey::new(HeldKind::Name, "user/1"), 7);
/// assert_eq!(names.pin().get("user/1"), Some(&7));
/// ```
pub struct PackedKey<T>(Packed, PhantomData<T>);

/// The longest key a [`PackedKey`] stores in place, in bytes: what two words hold beside
/// the length and tag.
pub const INLINE_KEY_BYTES: usize = 15;

#[derive(Clone)]
enum Packed {
    /// A short key: `head` is `1 + len + 16 * tag` (never zero, which gives the enum its
    /// niche), then the bytes, zero-padded.
    Inline {
        head: NonZeroU8,
        bytes: [u8; INLINE_KEY_BYTES],
    },
    /// A longer key: the tag byte, then the key's bytes.
    Shared(ThinArc<(), u8>),
}

/// The tag of a [`PackedKey`]: a value that fits three bits.
pub trait KeyTag: Copy {
    /// The tag as a byte, at most 7.
    fn to_byte(self) -> u8;

    /// The tag a byte stands for; only bytes made by [`KeyTag::to_byte`] are passed.
    fn from_byte(byte: u8) -> Self;
}

impl<T: KeyTag> PackedKey<T> {
    /// Stores `key` with tag `tag`.
    pub fn new(tag: T, key: &str) -> Self {
        let key = key.as_bytes();
        let tag = tag.to_byte();
        debug_assert!(tag < 8, "a key tag fits three bits");
        let packed = if key.len() <= INLINE_KEY_BYTES {
            let mut bytes = [0; INLINE_KEY_BYTES];
            bytes[..key.len()].copy_from_slice(key);
            Packed::Inline {
                // At most 1 + 15 + 16 * 7 = 128.
                head: NonZeroU8::MIN.saturating_add(key.len() as u8 + 16 * (tag & 7)),
                bytes,
            }
        } else {
            let tagged = (0..key.len() + 1).map(|i| if i == 0 { tag } else { key[i - 1] });
            Packed::Shared(ThinArc::from_header_and_iter((), tagged))
        };
        Self(packed, PhantomData)
    }

    /// The tag it was stored with.
    pub fn tag(&self) -> T {
        T::from_byte(match &self.0 {
            Packed::Inline { head, .. } => (head.get() - 1) / 16,
            Packed::Shared(shared) => shared.slice[0],
        })
    }
}

impl<T> PackedKey<T> {
    /// The key's bytes (always UTF-8).
    #[inline]
    pub fn as_bytes(&self) -> &[u8] {
        match &self.0 {
            Packed::Inline { head, bytes } => &bytes[..inline_len(*head)],
            Packed::Shared(shared) => &shared.slice[1..],
        }
    }

    /// The key. Checks the bytes are UTF-8 (cheap for a short key, and they always are):
    /// lookups compare bytes and never call this.
    pub fn as_str(&self) -> &str {
        std::str::from_utf8(self.as_bytes()).expect("a packed key is built from a str")
    }

    /// An owned copy of the key, as the API hands keys out.
    pub fn to_key(&self) -> Key {
        Key::from(self.as_str())
    }
}

impl<T> Clone for PackedKey<T> {
    fn clone(&self) -> Self {
        Self(self.0.clone(), PhantomData)
    }
}

impl<T> PartialEq for PackedKey<T> {
    #[inline]
    fn eq(&self, other: &Self) -> bool {
        equal_bytes(self.as_bytes(), other.as_bytes())
    }
}

impl<T> Eq for PackedKey<T> {}

impl<T> PartialEq<str> for PackedKey<T> {
    #[inline]
    fn eq(&self, other: &str) -> bool {
        equal_bytes(self.as_bytes(), other.as_bytes())
    }
}

impl<T> PartialOrd for PackedKey<T> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// Byte order, which is the order of `str`.
impl<T> Ord for PackedKey<T> {
    #[inline]
    fn cmp(&self, other: &Self) -> Ordering {
        match (&self.0, &other.0) {
            (Packed::Inline { head: a, bytes: x }, Packed::Inline { head: b, bytes: y }) => {
                // Zero-padded, two short keys compare as big-endian words (bytes 0-7,
                // then 7-14), then by length (which orders a key before itself followed
                // by zero bytes).
                let word = |bytes: &[u8; INLINE_KEY_BYTES], at: usize| {
                    u64::from_be_bytes(bytes[at..at + 8].try_into().expect("8 bytes"))
                };
                word(x, 0)
                    .cmp(&word(y, 0))
                    .then_with(|| word(x, 7).cmp(&word(y, 7)))
                    .then_with(|| inline_len(*a).cmp(&inline_len(*b)))
            }
            _ => compare_bytes(self.as_bytes(), other.as_bytes()),
        }
    }
}

/// The length of an in-place key, from its `head` (see [`Packed::Inline`]).
#[inline]
fn inline_len(head: NonZeroU8) -> usize {
    usize::from((head.get() - 1) % 16)
}

/// The byte order of `a` and `b`, which `<[u8]>::cmp` gives too, without its call to
/// `memcmp`: keys are short, and the ordered index compares the key it inserts or seeks
/// with several others (in a profile of the index alone, 5K keys inserted and removed,
/// `memcmp` took a quarter of its time).
#[inline]
fn compare_bytes(a: &[u8], b: &[u8]) -> Ordering {
    let common = a.len().min(b.len());
    let mut a_words = a[..common].chunks_exact(8);
    let mut b_words = b[..common].chunks_exact(8);
    for (x, y) in a_words.by_ref().zip(b_words.by_ref()) {
        let word = |bytes: &[u8]| u64::from_be_bytes(bytes.try_into().expect("8 bytes"));
        let (x, y) = (word(x), word(y));
        if x != y {
            return x.cmp(&y);
        }
    }
    for (x, y) in a_words.remainder().iter().zip(b_words.remainder()) {
        if x != y {
            return x.cmp(y);
        }
    }
    a.len().cmp(&b.len())
}

/// Whether `a` and `b` are the same bytes, as `==` on slices says, without its call to
/// `bcmp` (keys are short; every lookup compares at least one).
#[inline]
fn equal_bytes(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && compare_bytes(a, b).is_eq()
}

/// The hash of the key's `str`, so that a `&str` finds it in a hash map: what `str`
/// feeds a hasher (its bytes, then `0xff`, the default of `Hasher::write_str`, which
/// stable Rust does not let a hasher replace), without checking the bytes are UTF-8.
impl<T> Hash for PackedKey<T> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write(self.as_bytes());
        state.write_u8(0xff);
    }
}

impl<T> papaya::Equivalent<PackedKey<T>> for str {
    #[inline]
    fn equivalent(&self, key: &PackedKey<T>) -> bool {
        equal_bytes(self.as_bytes(), key.as_bytes())
    }
}

impl<T> scc::Equivalent<PackedKey<T>> for str {
    #[inline]
    fn equivalent(&self, key: &PackedKey<T>) -> bool {
        equal_bytes(self.as_bytes(), key.as_bytes())
    }
}

impl<T> scc::Comparable<PackedKey<T>> for str {
    #[inline]
    fn compare(&self, key: &PackedKey<T>) -> Ordering {
        compare_bytes(self.as_bytes(), key.as_bytes())
    }
}

impl<T> std::fmt::Debug for PackedKey<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(self.as_str(), f)
    }
}

/// Name of a scope (an isolated sub-cluster).
pub type ScopeName = CompactString;

/// A key, prefix or scope name was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
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
    pub const CEILING: Self = Self {
        max_key_bytes: 64 * 1024,
        max_meta_bytes: 16 * 1024 * 1024,
        max_message_bytes: 16 * 1024 * 1024,
    };

    /// The defaults of `roster::NodeBuilder`.
    pub const DEFAULT: Self = Self {
        max_key_bytes: 1024,
        max_meta_bytes: 64 * 1024,
        max_message_bytes: 1024 * 1024,
    };

    /// Each limit clamped to the protocol's [`Limits::CEILING`].
    pub fn clamped(self) -> Self {
        Self {
            max_key_bytes: self.max_key_bytes.min(Self::CEILING.max_key_bytes),
            max_meta_bytes: self.max_meta_bytes.min(Self::CEILING.max_meta_bytes),
            max_message_bytes: self.max_message_bytes.min(Self::CEILING.max_message_bytes),
        }
    }

    /// The smaller of each limit.
    pub fn min(self, other: Self) -> Self {
        Self {
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
            Self::All => true,
            Self::Exact(k) => k == key,
            Self::Prefix(p) => key.starts_with(p.as_str()),
        }
    }

    /// Checks the pattern's key or prefix against `limits`.
    pub fn validate(&self, limits: &Limits) -> Result<(), KeyError> {
        match self {
            Self::All => Ok(()),
            Self::Exact(k) => limits.write_key(k),
            Self::Prefix(p) => {
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
            Self::All
        } else if is_prefix(key) {
            Self::Prefix(key.into())
        } else {
            Self::Exact(key.into())
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

    /// A tag of this module's own (the store's `HeldKind` is above it), up to the largest
    /// value a tag may take.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    enum HeldKind {
        Name,
        Member,
        Last,
    }

    impl KeyTag for HeldKind {
        fn to_byte(self) -> u8 {
            match self {
                Self::Name => 0,
                Self::Member => 1,
                Self::Last => 7,
            }
        }

        fn from_byte(byte: u8) -> Self {
            match byte {
                0 => Self::Name,
                1 => Self::Member,
                _ => Self::Last,
            }
        }
    }

    #[test]
    fn a_packed_key_is_two_words_and_found_by_its_str() {
        use std::hash::BuildHasher;
        use std::ops::Bound;

        assert_eq!(size_of::<PackedKey<HeldKind>>(), 16);
        let hasher = foldhash::fast::FixedState::default();
        // In place, at the limit, and shared.
        for text in ["", "user/123", "fifteen-bytes-k", "sixteen-bytes-ke"] {
            for tag in [HeldKind::Name, HeldKind::Member, HeldKind::Last] {
                let key = PackedKey::new(tag, text);
                assert_eq!(key.tag(), tag);
                assert_eq!(key.as_str(), text);
                assert_eq!(key.to_key(), text);
                assert_eq!(key.clone(), *text);
                assert_eq!(hasher.hash_one(&key), hasher.hash_one(text));
            }
        }
        let map = papaya::HashMap::new();
        map.pin()
            .insert(PackedKey::new(HeldKind::Name, "user/123"), 1);
        map.pin()
            .insert(PackedKey::new(HeldKind::Name, "user/a-long-key-name"), 2);
        assert_eq!(map.pin().get("user/123"), Some(&1));
        assert_eq!(map.pin().get("user/a-long-key-name"), Some(&2));
        assert_eq!(map.pin().get("user/12"), None);
        let index = scc::TreeIndex::new();
        for k in ["b", "a/2", "a/10", "c", "a/10-and-more-than-fifteen"] {
            let _ = index.insert_sync(PackedKey::new(HeldKind::Name, k), ());
        }
        let guard = scc::Guard::new();
        let from_a: Vec<&str> = index
            .range::<str, _>((Bound::Included("a/"), Bound::Unbounded), &guard)
            .map(|(k, ())| k.as_str())
            .collect();
        assert_eq!(
            from_a,
            ["a/10", "a/10-and-more-than-fifteen", "a/2", "b", "c"]
        );
        assert!(index.peek("b", &guard).is_some());
        assert!(PackedKey::new(HeldKind::Member, "a/10") < PackedKey::new(HeldKind::Name, "a/2"));
    }

    /// Keys whose order is easy to get wrong: a small alphabet with the zero byte and
    /// bytes above 0x7f, lengths either side of a word (8) and of the in-place limit (15).
    fn awkward_key() -> impl proptest::strategy::Strategy<Value = String> {
        "[a\\x00\\x7f\\u{e9}/]{0,20}"
    }

    proptest::proptest! {
        /// Packed keys, in place or shared, order and compare exactly like their strs,
        /// with each other and with a `str`; `b` often starts with part of `a`.
        #[test]
        fn packed_keys_order_like_their_strs(
            a in awkward_key(),
            shared in 0usize..=20,
            tail in awkward_key(),
        ) {
            let b: String = a.chars().take(shared).chain(tail.chars()).collect();
            let (pa, pb) = (PackedKey::new(HeldKind::Name, &a), PackedKey::new(HeldKind::Last, &b));
            proptest::prop_assert_eq!(pa.cmp(&pb), a.cmp(&b));
            proptest::prop_assert_eq!(pa == pb, a == b);
            proptest::prop_assert_eq!(pa == *b.as_str(), a == b);
            proptest::prop_assert_eq!(scc::Comparable::compare(a.as_str(), &pb), a.cmp(&b));
            proptest::prop_assert_eq!(scc::Equivalent::equivalent(a.as_str(), &pb), a == b);
            proptest::prop_assert_eq!(papaya::Equivalent::equivalent(a.as_str(), &pb), a == b);
        }
    }

    #[test]
    fn a_prefix_pattern_must_end_with_a_slash() {
        assert!(Pattern::Prefix("a".into()).validate(&LIMITS).is_err());
        assert!(Pattern::Exact("a/".into()).validate(&LIMITS).is_err());
        assert!(Pattern::All.validate(&LIMITS).is_ok());
    }
}
