//! The datagram codec: every membership datagram is sealed with a MAC keyed by the
//! cluster's secret, name and protocol version, and opened (checked) before foca decodes it.

use crate::replication::PROTOCOL_VERSION;

/// Length of the MAC appended to every datagram, in bytes.
pub(super) const MAC_LEN: usize = 16;

/// blake3 key-derivation context of the datagram MAC key; change it to change the wire
/// format incompatibly. (v1 derived the key from the secret alone.)
const MAC_CONTEXT: &str = "roster membership v2";

/// Why a received datagram was dropped. Every case is detected before foca sees the
/// bytes, so no membership state changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub(crate) enum DatagramError {
    /// Shorter than the MAC itself.
    #[error("datagram of {len} bytes is shorter than its {MAC_LEN}-byte MAC")]
    TooShort {
        /// Length received.
        len: usize,
    },
    /// Longer than the largest foca packet plus the MAC (possibly truncated by the OS).
    #[error("datagram of at least {len} bytes exceeds the {max}-byte limit")]
    TooLong {
        /// Length received.
        len: usize,
        /// Largest datagram accepted.
        max: usize,
    },
    /// The MAC does not match: another cluster's secret, name or protocol version,
    /// corruption or forgery.
    #[error(
        "datagram MAC mismatch: the sender has another cluster secret, cluster name or \
         protocol version (check its configuration and seeds), or the datagram was \
         corrupted or forged"
    )]
    BadMac,
}

/// Seals outgoing and opens incoming datagrams with the cluster MAC.
pub(crate) struct DatagramKey {
    /// See [`DatagramKey::derive`].
    key: [u8; 32],
    /// Largest datagram accepted: foca's `max_packet_size` plus the MAC.
    pub(super) max_datagram: usize,
}

impl DatagramKey {
    /// The key of this node's cluster: its secret and name, this protocol version.
    pub(crate) fn new(secret: &[u8], cluster: &str, max_packet_size: usize) -> Self {
        Self {
            key: Self::derive(secret, cluster, PROTOCOL_VERSION),
            max_datagram: max_packet_size.saturating_add(MAC_LEN),
        }
    }

    /// `blake3::derive_key(MAC_CONTEXT, material)`, `material` being the secret and the
    /// cluster name, each after its length, then the version: no two different inputs
    /// give the same material.
    fn derive(secret: &[u8], cluster: &str, version: u16) -> [u8; 32] {
        let mut hasher = blake3::Hasher::new_derive_key(MAC_CONTEXT);
        for part in [secret, cluster.as_bytes()] {
            hasher.update(&(part.len() as u64).to_le_bytes());
            hasher.update(part);
        }
        hasher.update(&version.to_le_bytes());
        *hasher.finalize().as_bytes()
    }

    /// The truncated MAC of `payload`.
    fn mac(&self, payload: &[u8]) -> [u8; MAC_LEN] {
        let hash = blake3::keyed_hash(&self.key, payload);
        let mut mac = [0; MAC_LEN];
        mac.copy_from_slice(&hash.as_bytes()[..MAC_LEN]);
        mac
    }

    /// Replaces `out` with `payload` followed by its MAC.
    pub(crate) fn seal(&self, payload: &[u8], out: &mut Vec<u8>) {
        out.clear();
        out.extend_from_slice(payload);
        out.extend_from_slice(&self.mac(payload));
    }

    /// Checks a received datagram and returns its foca payload.
    pub(crate) fn open<'a>(&self, datagram: &'a [u8]) -> Result<&'a [u8], DatagramError> {
        let len = datagram.len();
        if len < MAC_LEN {
            return Err(DatagramError::TooShort { len });
        }
        if len > self.max_datagram {
            return Err(DatagramError::TooLong {
                len,
                max: self.max_datagram,
            });
        }
        let (payload, mac) = datagram.split_at(len - MAC_LEN);
        let expected = self.mac(payload);
        // Constant time: the position of the first wrong byte must not leak.
        let diff = expected
            .iter()
            .zip(mac)
            .fold(0u8, |acc, (a, b)| acc | (a ^ b));
        if diff == 0 {
            Ok(payload)
        } else {
            Err(DatagramError::BadMac)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"cluster secret";

    const CLUSTER: &str = "test";

    #[test]
    fn datagram_mac_rejects_other_secrets_and_tampering() {
        let key = DatagramKey::new(SECRET, CLUSTER, 1400);
        let mut sealed = Vec::new();
        key.seal(b"payload", &mut sealed);
        assert_eq!(sealed.len(), 7 + MAC_LEN);
        assert_eq!(key.open(&sealed), Ok(&b"payload"[..]));

        let other = DatagramKey::new(b"another secret", CLUSTER, 1400);
        assert_eq!(other.open(&sealed), Err(DatagramError::BadMac));
        let other = DatagramKey::new(SECRET, "another cluster", 1400);
        assert_eq!(other.open(&sealed), Err(DatagramError::BadMac));

        let mut tampered = sealed.clone();
        tampered[0] ^= 1;
        assert_eq!(key.open(&tampered), Err(DatagramError::BadMac));

        assert_eq!(
            key.open(&sealed[..5]),
            Err(DatagramError::TooShort { len: 5 })
        );
        let long = vec![0; 1400 + MAC_LEN + 1];
        assert_eq!(
            key.open(&long),
            Err(DatagramError::TooLong {
                len: long.len(),
                max: 1400 + MAC_LEN
            })
        );
        // The secret itself never appears in a datagram.
        assert!(!sealed.windows(SECRET.len()).any(|w| w == SECRET));
    }

    #[test]
    fn the_mac_key_binds_secret_cluster_name_and_version_unambiguously() {
        let key = DatagramKey::derive(SECRET, CLUSTER, PROTOCOL_VERSION);
        assert_eq!(
            key,
            DatagramKey::new(SECRET, CLUSTER, 1400).key,
            "this version's key"
        );
        assert_ne!(key, DatagramKey::derive(SECRET, "other", PROTOCOL_VERSION));
        assert_ne!(
            key,
            DatagramKey::derive(SECRET, CLUSTER, PROTOCOL_VERSION + 1)
        );
        assert_ne!(
            key,
            DatagramKey::derive(b"other", CLUSTER, PROTOCOL_VERSION)
        );
        // The boundary between secret and name is part of the material.
        assert_ne!(
            DatagramKey::derive(b"ab", "c", 1),
            DatagramKey::derive(b"a", "bc", 1)
        );
    }
}
