#!/usr/bin/env bash
# The browser tests of several instances: two Parlor instances on one throwaway PostgreSQL
# (scripts/pg-temp.sh) and one Redis, behind a real haproxy, all inside a fresh network
# namespace whose only interface is loopback (end2end/cluster.config.ts starts Redis, the
# instances and haproxy). Extra arguments go to `playwright test`.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=scripts/env.sh
source "$here/scripts/env.sh"

parlor_loopback_only "$0" "$@"

pg=$(mktemp -d -t parlor-cluster-pg-XXXXXX)
trap '"$here/scripts/pg-temp.sh" stop "$pg" 2>/dev/null; rm -rf "$pg"' EXIT
url=$("$here/scripts/pg-temp.sh" start "$pg")
export PARLOR_E2E_DATABASE_URL="${url//\{db\}/postgres}"
export PARLOR_E2E_SERVER="${PARLOR_E2E_SERVER:-$here/target/debug/parlor}"
export PARLOR_E2E_SITE_ROOT="${PARLOR_E2E_SITE_ROOT:-$here/target/site}"
cd "$here/end2end"
playwright test --config cluster.config.ts "$@"
