#!/usr/bin/env bash
# Every test Parlor has: runs the Rust unit and integration tests (the integration suite twice:
# on SQLite, then on a throwaway PostgreSQL) while the release site and server (what `make
# run` serves) build, then the browser tests against that release build in a loopback-only
# network namespace (one instance, then two behind haproxy), then the connectivity matrix.
# Runs all suites even when one fails, ends with each runner's own summary lines and how long
# each step took, and exits non-zero if anything failed.
set -uo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$here"
# shellcheck source=scripts/env.sh
source scripts/env.sh
# Each step's name and how long it took, for the summary.
timings=()
step_name= step_start=$SECONDS
step() {
  [ -z "$step_name" ] || timings+=("$(printf '%4d s  %s' $((SECONDS - step_start)) "$step_name")")
  step_name=$1 step_start=$SECONDS
  printf '\n\033[1m==> %s\033[0m\n' "$*"
}

logs=$(mktemp -d)
pg_dir=$(mktemp -d)
release_pid=
trap '[ -z "$release_pid" ] || kill -- -"$release_pid" 2>/dev/null; scripts/pg-temp.sh stop "$pg_dir" 2>/dev/null; rm -rf "$logs" "$pg_dir"' EXIT
status=0

step "Building the Rust tests and Google's stand-in for the browser tests (testkit: stand-in-idp)"
(parlor_leptos_build_env && cargo test -p server -p app --features app/ssr --no-run &&
  cargo build -p testkit --bin stand-in-idp) 2>&1 | tee "$logs/rust-build.txt"
build_status=${PIPESTATUS[0]}
[ "$build_status" -eq 0 ] || status=1

# The browser suites run on the release build: what users get, and one wasm build instead of
# a dev one and a release one (a release-only build failure has happened before). It builds
# while the Rust tests run, at the lowest priority: those tests mostly wait (timeouts, other
# instances, a database), so the build takes the CPU they leave and they keep what they need.
step "Rust tests (server, app with ssr), the release build beside them (parlor_release_build)"
# Its own process group (setsid), so that stopping this script stops the whole build.
setsid nice -n 19 bash -c 'source scripts/env.sh && parlor_release_build; s=$?
  echo "(release build: $SECONDS s, at the lowest priority beside the Rust tests)"; exit $s' \
  >"$logs/release.txt" 2>&1 &
release_pid=$!
(parlor_leptos_build_env && cargo test -p server -p app --features app/ssr) 2>&1 | tee "$logs/rust.txt"
[ "${PIPESTATUS[0]}" -eq 0 ] || status=1

step "Integration tests on PostgreSQL (a throwaway server on a private socket: scripts/pg-temp.sh)"
if pg_url=$(scripts/pg-temp.sh start "$pg_dir"); then
  # The same packages and features as above (only the api suite runs): anything else
  # unifies features differently and compiles the app again.
  (parlor_leptos_build_env && PARLOR_TEST_POSTGRES="$pg_url" \
    cargo test -p server -p app --features app/ssr --test api) 2>&1 \
    | tee "$logs/rust-postgres.txt"
  [ "${PIPESTATUS[0]}" -eq 0 ] || status=1
  scripts/pg-temp.sh stop "$pg_dir"
else
  echo "error: PostgreSQL did not start" | tee "$logs/rust-postgres.txt"
  status=1
fi

step "Release build (what make run serves and the browser tests drive): its output"
wait "$release_pid"
release_status=$? release_pid=
cat "$logs/release.txt"
[ "$release_status" -eq 0 ] || status=1
export PARLOR_E2E_SERVER="$here/target/release/parlor" PARLOR_E2E_SITE_ROOT="$here/target/site"

if [ "$release_status" -ne 0 ] || [ "$build_status" -ne 0 ]; then
  echo "build failed: the browser tests cannot run" | tee "$logs/e2e.txt" "$logs/e2e-cluster.txt" "$logs/nat.txt"
else
  step "Browser tests (Playwright + Chromium, loopback-only network namespace)"
  scripts/e2e.sh "$@" 2>&1 | tee "$logs/e2e.txt"
  [ "${PIPESTATUS[0]}" -eq 0 ] || status=1

  step "Browser tests across two instances behind haproxy (PostgreSQL + Redis: scripts/e2e-cluster.sh)"
  scripts/e2e-cluster.sh 2>&1 | tee "$logs/e2e-cluster.txt"
  [ "${PIPESTATUS[0]}" -eq 0 ] || status=1

  step "Connectivity matrix (two Chromiums behind routers in network namespaces: scripts/nat-matrix.sh)"
  scripts/nat-matrix.sh 2>&1 | tee "$logs/nat.txt"
  [ "${PIPESTATUS[0]}" -eq 0 ] || status=1
fi

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
echo "Time per step:"
printf '  %s\n' "${timings[@]}"
printf '  %4d s  in all (before the summary)\n' "$step_start"
exit "$status"
