#!/usr/bin/env bash
# Every test Parlor has: builds the app, runs the Rust unit and integration tests (the
# integration suite twice: on SQLite, then on a throwaway PostgreSQL), then the browser tests
# in a loopback-only network namespace (one instance, then two behind haproxy), the
# connectivity matrix, then builds the release site and server. Runs all suites even when one fails,
# ends with each runner's own summary lines, and exits non-zero if anything failed.
set -uo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$here"
# shellcheck source=scripts/env.sh
source scripts/env.sh
step() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }

logs=$(mktemp -d)
pg_dir=$(mktemp -d)
trap 'scripts/pg-temp.sh stop "$pg_dir" 2>/dev/null; rm -rf "$logs" "$pg_dir"' EXIT
status=0

step "Building the app (cargo leptos build --split: server + wasm)"
if ! { parlor_build && (parlor_leptos_build_env && cargo build -p testkit --bin stand-in-idp); } \
  2>&1 | tee "$logs/build.txt"; then
  echo "build failed: the tests cannot run" >&2
  exit 1
fi

step "Rust tests (server, app with ssr)"
(parlor_leptos_build_env && cargo test -p server -p app --features app/ssr) 2>&1 | tee "$logs/rust.txt"
[ "${PIPESTATUS[0]}" -eq 0 ] || status=1

step "Integration tests on PostgreSQL (a throwaway server on a private socket: scripts/pg-temp.sh)"
if pg_url=$(scripts/pg-temp.sh start "$pg_dir"); then
  (parlor_leptos_build_env && PARLOR_TEST_POSTGRES="$pg_url" cargo test -p server --test api) 2>&1 \
    | tee "$logs/rust-postgres.txt"
  [ "${PIPESTATUS[0]}" -eq 0 ] || status=1
  scripts/pg-temp.sh stop "$pg_dir"
else
  echo "error: PostgreSQL did not start" | tee "$logs/rust-postgres.txt"
  status=1
fi

step "Browser tests (Playwright + Chromium, loopback-only network namespace)"
scripts/e2e.sh "$@" 2>&1 | tee "$logs/e2e.txt"
[ "${PIPESTATUS[0]}" -eq 0 ] || status=1

step "Browser tests across two instances behind haproxy (PostgreSQL + Redis: scripts/e2e-cluster.sh)"
scripts/e2e-cluster.sh 2>&1 | tee "$logs/e2e-cluster.txt"
[ "${PIPESTATUS[0]}" -eq 0 ] || status=1

step "Connectivity matrix (two Chromiums behind routers in network namespaces: scripts/nat-matrix.sh)"
scripts/nat-matrix.sh 2>&1 | tee "$logs/nat.txt"
[ "${PIPESTATUS[0]}" -eq 0 ] || status=1

# What `make run` serves: a release-only build failure has happened before, so CI builds it.
step "Release build (what make run serves: parlor_release_build in scripts/env.sh)"
parlor_release_build 2>&1 | tee "$logs/release.txt"
release_status=${PIPESTATUS[0]}
[ "$release_status" -eq 0 ] || status=1

step "Summary"
echo "Rust (cargo test):"
grep -E '^test result:|^error(\[|:)' "$logs/rust.txt" | sed 's/^/  /'
echo "Integration tests on PostgreSQL (cargo test):"
grep -E '^test result:|^error(\[|:)' "$logs/rust-postgres.txt" | sed 's/^/  /'
echo "Browser (Playwright):"
grep -E '^\s+[0-9]+ (passed|failed|flaky|skipped|did not run)|^Error:' "$logs/e2e.txt" | sed 's/^ */  /'
echo "Browser, two instances behind haproxy (Playwright):"
grep -E '^\s+[0-9]+ (passed|failed|flaky|skipped|did not run)|^Error:' "$logs/e2e-cluster.txt" | sed 's/^ */  /'
echo "Connectivity matrix (Playwright):"
grep -E '^\s+[0-9]+ (passed|failed|flaky|skipped|did not run)|^Error:|^  \{' "$logs/nat.txt" | sed 's/^ */  /'
echo "Release build:"
if [ "$release_status" -eq 0 ]; then echo "  ok"; else echo "  FAILED (see above)"; fi
exit "$status"
