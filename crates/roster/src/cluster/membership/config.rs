//! The settings of the membership task: [`MembershipConfig`], with its LAN default and a
//! fast preset for tests and demos.

use std::num::{NonZeroU32, NonZeroUsize};
use std::time::Duration;

/// Cluster size `MembershipConfig::default` tunes foca for (`Config::new_lan(32)`). foca
/// scales retransmissions and suspicion with the logarithm of this figure, so being off
/// by a factor of a few costs little.
const DEFAULT_CLUSTER_SIZE: NonZeroU32 = NonZeroU32::new(32).unwrap();

/// Default interval between announce rounds to the seeds.
const DEFAULT_ANNOUNCE_INTERVAL: Duration = Duration::from_secs(5);

/// Settings of the membership task.
#[allow(dead_code)] // used by the transport layer (in progress)
pub(crate) struct MembershipConfig {
    /// Seeds: `"host:port"` strings. DNS names are resolved again at every announce round
    /// (`tokio::net::lookup_host`, concurrently, at most 5 s each). Unresolvable seeds are
    /// logged at debug and skipped for the round, never fatal. Our own address and members
    /// already alive are not announced to.
    ///
    /// Start value: empty (a lone node until someone announces to it).
    pub(crate) seeds: Vec<String>,
    /// How often to announce to the seeds; this is also what re-merges a healed partition.
    /// The first round runs at start.
    ///
    /// Trade-off: shorter re-merges faster and costs one small datagram per seed and round
    /// (plus a reply of up to `max_packet_size`). Values under 10 ms (zero included) are
    /// raised to 10 ms. Start value: 5 s.
    pub(crate) announce_interval: Duration,
    /// foca's own settings (probe period, suspicion, gossip, packet size).
    /// `max_packet_size` bounds the foca packet; each datagram adds the 16-byte MAC, so it
    /// must stay at most 65 491 (UDP's 65 507 minus the MAC), and under the path MTU minus
    /// 16 to avoid IP fragmentation.
    ///
    /// Start value: `foca::Config::new_lan(32)` (1 s probe period, 1400-byte packets).
    pub(crate) foca: foca::Config,
    /// Shared cluster secret material. Every datagram carries a 16-byte MAC keyed by a key
    /// derived from it; datagrams with a bad MAC are refused, counted and logged (warn,
    /// rate-limited), never decoded. The secret never goes on the wire. Nodes with
    /// different secrets never see each other. Any length works, an empty secret included
    /// (then it only separates clusters, it does not authenticate).
    ///
    /// Start value: empty.
    pub(crate) secret: Vec<u8>,
    /// Name of the cluster (`ClusterConfig::cluster_name`). The MAC key is derived from it
    /// too, with the secret and the protocol version: nodes of clusters with other names
    /// never see each other, even with the same secret, and count each other's datagrams
    /// as refused.
    ///
    /// Start value: empty.
    pub(crate) cluster: String,
}

impl Default for MembershipConfig {
    fn default() -> Self {
        Self {
            seeds: Vec::new(),
            announce_interval: DEFAULT_ANNOUNCE_INTERVAL,
            foca: foca::Config::new_lan(DEFAULT_CLUSTER_SIZE),
            secret: Vec::new(),
            cluster: String::new(),
        }
    }
}

impl MembershipConfig {
    /// Settings for tests and demos on loopback or a quiet LAN: a dead member is declared
    /// down within about 1.5 s (200 ms probe period, 80 ms probe RTT, 800 ms suspicion,
    /// gossip every 50 ms, seeds announced every 500 ms). More probe traffic and more
    /// false suspicions under load than [`MembershipConfig::default`].
    #[allow(dead_code)] // used by the transport layer (in progress)
    pub(crate) fn fast_for_tests() -> Self {
        let mut foca = foca::Config::new_lan(NonZeroU32::new(8).unwrap());
        foca.probe_period = Duration::from_millis(200);
        foca.probe_rtt = Duration::from_millis(80);
        foca.suspect_to_down_after = Duration::from_millis(800);
        foca.periodic_gossip = Some(foca::PeriodicParams {
            frequency: Duration::from_millis(50),
            num_members: NonZeroUsize::new(3).unwrap(),
        });
        foca.periodic_announce = Some(foca::PeriodicParams {
            frequency: Duration::from_secs(1),
            num_members: NonZeroUsize::new(1).unwrap(),
        });
        foca.periodic_announce_to_down_members = Some(foca::PeriodicParams {
            frequency: Duration::from_secs(2),
            num_members: NonZeroUsize::new(2).unwrap(),
        });
        Self {
            seeds: Vec::new(),
            announce_interval: Duration::from_millis(500),
            foca,
            secret: Vec::new(),
            cluster: String::new(),
        }
    }
}
