//! What the chaos tests share.

use roster_chaos::net::Network;

/// Whether this machine can build the tests' networks (namespaces, a bridge, nftables).
/// With `CI` set, a machine that cannot is a failure (panics, saying why); elsewhere the
/// test is skipped with the reason printed.
pub(crate) fn networks_available() -> bool {
    match Network::probe() {
        Ok(()) => true,
        Err(reason) if std::env::var_os("CI").is_some() => {
            panic!("CI is set and this test cannot run: {reason}")
        }
        Err(reason) => {
            eprintln!("skipped: {reason} (set CI to make this a failure)");
            false
        }
    }
}
