#!/usr/bin/env bash
# Runs the Playwright suite against the built server (target/debug/parlor unless
# PARLOR_E2E_SERVER says otherwise) inside a fresh network namespace whose only interface is
# loopback, so no test traffic, WebRTC included, can leave the machine. Extra arguments go
# to `playwright test` (e.g. a file name or `--grep`).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=scripts/env.sh
source "$here/scripts/env.sh"

parlor_loopback_only "$0" "$@"

data=$(mktemp -d -t parlor-e2e-XXXXXX)
trap 'rm -rf "$data"' EXIT
export PARLOR_E2E_DATA_DIR="$data"
export PARLOR_E2E_SERVER="${PARLOR_E2E_SERVER:-$here/target/debug/parlor}"
export PARLOR_E2E_SITE_ROOT="${PARLOR_E2E_SITE_ROOT:-$here/target/site}"
cd "$here/end2end"
# Not `exec`: the EXIT trap above must still remove the data directory.
playwright test "$@"
