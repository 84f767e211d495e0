//! Entry hashes for anti-entropy digests.
//!
//! A digest of an (origin, scope) stream is the XOR of a 128-bit hash of each entry of the
//! origin: order-independent, updated in O(1) per write (XOR in on insert, XOR out on
//! removal), and equal on two nodes exactly when they hold the same entries (up to a 2^-128
//! collision). The hash is xxh3-128 over a fixed layout, so it is the same on every node and
//! platform.

use xxhash_rust::xxh3::Xxh3;

use crate::entry::Registration;
use crate::meta::Meta;
use crate::pid::Pid;

const NAME: u8 = 1;
const MEMBER: u8 = 2;

fn hasher(kind: u8, key: &str, pid: Pid) -> Xxh3 {
    let mut h = Xxh3::new();
    h.update(&[kind]);
    h.update(&(key.len() as u64).to_le_bytes());
    h.update(key.as_bytes());
    h.update(&pid.incarnation().to_le_bytes());
    h.update(&pid.serial().to_le_bytes());
    h
}

/// Hash of a name entry: key, owner, meta and both clock readings.
pub(super) fn name(key: &str, r: &Registration) -> u128 {
    let mut h = hasher(NAME, key, r.pid);
    h.update(&r.registered_at.to_le_bytes());
    h.update(&r.token.to_le_bytes());
    h.update(r.meta.as_bytes());
    h.digest128()
}

/// Hash of a group membership: key, member and meta.
pub(super) fn member(key: &str, pid: Pid, meta: &Meta) -> u128 {
    let mut h = hasher(MEMBER, key, pid);
    h.update(meta.as_bytes());
    h.digest128()
}
