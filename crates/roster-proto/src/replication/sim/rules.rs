//! The conflict rule of a simulated cluster, drawn per seed: keep-oldest, keep-newest, a
//! deterministic custom resolver, or a custom resolver that panics for some keys (those
//! pairs fall back to keep-oldest). Every node of a run has the same rule, as a real
//! cluster must; the invariants checked after the heal hold whichever it is.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::vocab::conflict::{ConflictRule, Winner};
use crate::vocab::entry::Registration;
use crate::vocab::pid::Pid;

/// The conflict rule of one run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum SimRule {
    KeepOldest,
    KeepNewest,
    /// Decides by a hash of the key and both pids: deterministic, unrelated to age.
    Hashed,
    /// As [`SimRule::Hashed`], but panics for keys under `user/`.
    Panicking,
}

impl SimRule {
    pub(super) const ALL: [Self; 4] = [
        Self::KeepOldest,
        Self::KeepNewest,
        Self::Hashed,
        Self::Panicking,
    ];

    /// The rule of `seed`'s run. Drawn from a generator of its own, so that the rest of
    /// the run draws what it drew before the rule was chosen.
    pub(super) fn of_seed(seed: u64) -> Self {
        let mut rng = StdRng::seed_from_u64(seed ^ 0x5eed_0fc0_ff1c_e5e7);
        Self::ALL[rng.random_range(0..Self::ALL.len())]
    }

    /// The store's rule; calls of the custom resolvers are counted in `counts`.
    pub(super) fn conflict_rule(self, counts: &Arc<Decisions>) -> ConflictRule {
        match self {
            Self::KeepOldest => ConflictRule::KeepOldest,
            Self::KeepNewest => ConflictRule::KeepNewest,
            Self::Hashed => {
                let counts = counts.clone();
                ConflictRule::Custom(Arc::new(move |key, first, second| {
                    counts.custom.fetch_add(1, Ordering::Relaxed);
                    hashed(key, first, second)
                }))
            }
            Self::Panicking => {
                let counts = counts.clone();
                ConflictRule::Custom(Arc::new(move |key, first, second| {
                    if key.starts_with("user/") {
                        counts.panicked.fetch_add(1, Ordering::Relaxed);
                        // A panic that skips the panic hook: thousands of seeds print
                        // nothing, and the store catches it all the same.
                        std::panic::resume_unwind(Box::new(format!(
                            "the simulation's resolver panics for {key}"
                        )));
                    }
                    counts.custom.fetch_add(1, Ordering::Relaxed);
                    hashed(key, first, second)
                }))
            }
        }
    }
}

/// How often the custom resolvers of a run decided, and how often they panicked.
#[derive(Debug, Default)]
pub(super) struct Decisions {
    pub(super) custom: AtomicU64,
    pub(super) panicked: AtomicU64,
}

/// FNV-1a of the key and both pids: the same on every node and in every run.
fn hashed(key: &str, first: &Registration, second: &Registration) -> Winner {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    let mut mix = |bytes: &[u8]| {
        for b in bytes {
            hash ^= u64::from(*b);
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
    };
    mix(key.as_bytes());
    for pid in [first.pid, second.pid] {
        mix(&pid_bytes(pid));
    }
    if hash & 1 == 0 {
        Winner::First
    } else {
        Winner::Second
    }
}

fn pid_bytes(pid: Pid) -> [u8; 16] {
    let mut bytes = [0; 16];
    bytes[..8].copy_from_slice(&pid.incarnation().get().to_le_bytes());
    bytes[8..].copy_from_slice(&pid.serial().to_le_bytes());
    bytes
}
