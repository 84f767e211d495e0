//! Entry hashes for anti-entropy digests.
//!
//! A digest of an (origin, scope) stream is the XOR of a 128-bit hash of each entry of the
//! origin: order-independent, updated in O(1) per write (XOR in on insert, XOR out on
//! removal), and equal on two nodes exactly when they hold the same entries (up to a 2^-128
//! collision). The hash is xxh3-128 over a fixed layout, so it is the same on every node and
//! platform.

use xxhash_rust::xxh3::{Xxh3, xxh3_128};

use crate::vocab::entry::Registration;
use crate::vocab::meta::Meta;
use crate::vocab::pid::Pid;

const NAME: u8 = 1;
const MEMBER: u8 = 2;

/// Longest name entry (in hashed bytes) hashed in one call from a stack buffer.
const ONE_SHOT_MAX: usize = 128;

fn hasher(kind: u8, key: &str, pid: Pid) -> Xxh3 {
    let mut h = Xxh3::new();
    h.update(&[kind]);
    h.update(&(key.len() as u64).to_le_bytes());
    h.update(key.as_bytes());
    h.update(&pid.incarnation().get().to_le_bytes());
    h.update(&pid.serial().to_le_bytes());
    h
}

/// Hash of a name entry: key, owner, meta and both clock readings.
pub(super) fn name(key: &str, r: &Registration) -> u128 {
    let meta = r.meta.as_bytes();
    // The same bytes as the streaming form below, hashed in one call when they fit on the
    // stack: the streaming hasher's state setup costs more than hashing a short entry.
    let len = 1 + 8 + key.len() + 16 + 16 + meta.len();
    if len <= ONE_SHOT_MAX {
        let mut buf = [0u8; ONE_SHOT_MAX];
        let mut at = 0;
        for part in [
            &[NAME][..],
            &(key.len() as u64).to_le_bytes(),
            key.as_bytes(),
            &r.pid.incarnation().get().to_le_bytes(),
            &r.pid.serial().to_le_bytes(),
            &r.registered_at.to_le_bytes(),
            &r.token.to_le_bytes(),
            meta,
        ] {
            buf[at..at + part.len()].copy_from_slice(part);
            at += part.len();
        }
        return xxh3_128(&buf[..at]);
    }
    let mut h = hasher(NAME, key, r.pid);
    h.update(&r.registered_at.to_le_bytes());
    h.update(&r.token.to_le_bytes());
    h.update(meta);
    h.digest128()
}

/// Hash of a group membership: key, member and meta.
pub(super) fn member(key: &str, pid: Pid, meta: &Meta) -> u128 {
    let mut h = hasher(MEMBER, key, pid);
    h.update(meta.as_bytes());
    h.digest128()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vocab::pid::Incarnation;

    /// The one-call hash of a short entry equals the streaming hash of the same bytes, so
    /// digests do not depend on an entry's length (nor differ from older nodes').
    #[test]
    fn short_and_long_entries_hash_the_same_way() {
        for (key, meta) in [
            ("k", &[][..]),
            ("key-123", &[0x2a][..]),
            ("a/b", &[7; 90][..]),
        ] {
            let r = Registration {
                pid: Pid::new(Incarnation::new(3), 9),
                meta: Meta::from_bytes(meta),
                registered_at: 11,
                token: 12,
            };
            let mut h = hasher(NAME, key, r.pid);
            h.update(&r.registered_at.to_le_bytes());
            h.update(&r.token.to_le_bytes());
            h.update(r.meta.as_bytes());
            assert_eq!(name(key, &r), h.digest128());
        }
    }
}
