#!/usr/bin/env bash
# The tests, as CI runs them and as a newcomer runs them on a fresh machine: installs what
# the tests need when it is missing (Debian packages: iproute2, nftables and libfaketime
# for the network-namespace tests, PostgreSQL for the agent's history tests, Chromium and its
# WebDriver for the dashboard's browser test, Python's venv for schemathesis), installs
# schemathesis from PyPI into target/schemathesis (the agent's API test runs it), then runs
# every test of the workspace.
# The tests start their own servers (agents, PostgreSQL in a temporary directory); nothing
# has to be started by hand. Arguments are passed to `cargo test`.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v cargo >/dev/null 2>&1; then
  echo "cargo not found: install Rust (https://rustup.rs) first" >&2
  exit 1
fi

# The newest PostgreSQL server binaries Debian installs (initdb, pg_ctl).
have_postgres() {
  compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null
}

missing=()
command -v ip >/dev/null 2>&1 || missing+=(iproute2)
command -v nft >/dev/null 2>&1 || missing+=(nftables)
compgen -G "/usr/lib/*/faketime/libfaketimeMT.so.1" >/dev/null || missing+=(libfaketime)
have_postgres || missing+=(postgresql)
[[ -x /usr/bin/chromium ]] || missing+=(chromium)
[[ -x /usr/bin/chromedriver ]] || missing+=(chromium-driver)
command -v python3 >/dev/null 2>&1 || missing+=(python3)
command -v python3 >/dev/null 2>&1 && python3 -c 'import ensurepip, venv' 2>/dev/null || missing+=(python3-venv)

if ((${#missing[@]})); then
  if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null 2>&1; then
    echo "== installing ${missing[*]}"
    apt-get update -q
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
  else
    echo "the tests need these Debian packages: ${missing[*]}" >&2
    echo "install them (sudo apt-get install ${missing[*]}) and run this again" >&2
    exit 1
  fi
fi

# schemathesis, pinned, in a virtual environment of its own (tests/schemathesis.rs runs it
# against an agent's OpenAPI document).
schemathesis_venv="${CARGO_TARGET_DIR:-$PWD/target}/schemathesis"
if [[ ! -x "$schemathesis_venv/bin/schemathesis" ]]; then
  echo "== installing schemathesis into $schemathesis_venv"
  python3 -m venv "$schemathesis_venv"
  "$schemathesis_venv/bin/pip" install -q --disable-pip-version-check "schemathesis==4.32.5"
fi

exec cargo test --workspace --all-features "$@"
