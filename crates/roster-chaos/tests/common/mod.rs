//! What the chaos tests share.

pub(crate) mod api;

use roster_chaos::net::Network;

/// Whether the chaos tests must run here: `CI` or `ROSTER_REQUIRE_NETNS` is set (`.ci/run`
/// sets the latter).
pub(crate) fn required() -> bool {
    std::env::var_os("CI").is_some() || std::env::var_os("ROSTER_REQUIRE_NETNS").is_some()
}

/// Whether this machine can build the tests' networks (namespaces, a bridge, nftables).
/// Where the tests are [`required`], a machine that cannot is a failure (panics, saying
/// why); elsewhere the test is skipped with the reason printed.
pub(crate) fn networks_available() -> bool {
    match Network::probe() {
        Ok(()) => true,
        Err(reason) if required() => {
            panic!("CI or ROSTER_REQUIRE_NETNS is set and this test cannot run: {reason}")
        }
        Err(reason) => {
            eprintln!("skipped: {reason} (set CI or ROSTER_REQUIRE_NETNS to make this a failure)");
            false
        }
    }
}
