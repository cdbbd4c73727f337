#!/usr/bin/env bash
# Runs the Playwright suite against the built server (target/debug/parlor unless
# PARLOR_E2E_SERVER says otherwise) inside a fresh network namespace whose only interface is
# loopback, so no test traffic, WebRTC included, can leave the machine. Extra arguments go
# to `playwright test` (e.g. a file name or `--grep`).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=scripts/env.sh
source "$here/scripts/env.sh"

if [ -z "${PARLOR_IN_NETNS:-}" ]; then
  unshare_flags=(--net)
  # Without root, a user namespace maps us to root inside so we may configure `lo`.
  [ "$(id -u)" -eq 0 ] || unshare_flags=(--net --map-root-user)
  exec unshare "${unshare_flags[@]}" env PARLOR_IN_NETNS=1 "$0" "$@"
fi

ip link set lo up
if ip -o link show | grep -v ': lo:' | grep -q .; then
  echo "refusing to run: the test namespace has an interface other than lo" >&2
  exit 1
fi

data=$(mktemp -d -t parlor-e2e-XXXXXX)
trap 'rm -rf "$data"' EXIT
export PARLOR_E2E_DATA_DIR="$data"
export PARLOR_E2E_SERVER="${PARLOR_E2E_SERVER:-$here/target/debug/parlor}"
export PARLOR_E2E_SITE_ROOT="${PARLOR_E2E_SITE_ROOT:-$here/target/site}"
cd "$here/end2end"
exec playwright test "$@"
