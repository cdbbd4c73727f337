#!/usr/bin/env bash
# Measures the first page load of the release build with Lighthouse's mobile profile (a
# mid-range phone on a slow 4G connection, simulated): performance, accessibility and best
# practices of the home page and the sign-in page, as a first-time visitor (signed out, empty
# cache). The server, Debian's Chromium and Lighthouse run inside a fresh network namespace
# whose only interface is loopback, like the browser tests. Scores are measurements, not
# tests: this is not part of `make test`.
#
# Usage: scripts/lighthouse.sh [path...]   (default: / /signin)
#   `make lighthouse` builds the release site first (parlor_release_build in scripts/env.sh).
#   PARLOR_LIGHTHOUSE_RUNS (default 3): runs per page; the run with the median performance
#   score is reported. Reports (HTML and JSON) go to target/lighthouse/.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=scripts/env.sh
source "$here/scripts/env.sh"

parlor_loopback_only "$0" "$@"

server=${PARLOR_LIGHTHOUSE_SERVER:-$here/target/release/parlor}
site=${PARLOR_LIGHTHOUSE_SITE_ROOT:-$here/target/site}
if [ ! -x "$server" ] || [ ! -d "$site/pkg" ]; then
  echo "no release build in $site: run \`make lighthouse\` (or parlor_release_build) first" >&2
  exit 1
fi
[ -e "$site/hash.txt" ] || echo "note: $site is not from parlor_release_build (no hashed names)" >&2
command -v lighthouse >/dev/null || {
  echo "lighthouse is not installed: run scripts/bootstrap.sh" >&2
  exit 1
}
runs=${PARLOR_LIGHTHOUSE_RUNS:-3}
paths=("$@")
[ ${#paths[@]} -gt 0 ] || paths=(/ /signin)

port=3300
origin="http://127.0.0.1:$port"
out="$here/target/lighthouse"
rm -rf "$out"
mkdir -p "$out"
data=$(mktemp -d -t parlor-lighthouse-XXXXXX)
PARLOR_ADDR="127.0.0.1:$port" PARLOR_DATA_DIR="$data" LEPTOS_SITE_ROOT="$site" \
  LEPTOS_ENV=PROD PARLOR_LOG=warn "$server" &
server_pid=$!
trap 'kill "$server_pid" 2>/dev/null; wait "$server_pid" 2>/dev/null; rm -rf "$data"' EXIT

node -e '
  const url = process.argv[1];
  const deadline = Date.now() + 30000;
  (async function poll() {
    try { if ((await fetch(url)).ok) return; } catch {}
    if (Date.now() > deadline) { console.error("the server did not start"); process.exit(1); }
    setTimeout(poll, 200);
  })();
' "$origin/readyz"

# Debian's Chromium, headless, with nothing of its own going on in the background.
export CHROME_PATH=/usr/bin/chromium
chrome_flags="--headless=new --no-sandbox --disable-gpu --disable-quic --no-first-run \
--disable-background-networking --disable-component-update --disable-sync"

reports=()
for path in "${paths[@]}"; do
  name=$(echo "$path" | tr -c 'A-Za-z0-9\n' '-' | sed 's/^-*//; s/-*$//')
  name=${name:-home}
  for run in $(seq "$runs"); do
    echo "==> Lighthouse $origin$path (run $run of $runs)" >&2
    lighthouse "$origin$path" --quiet --chrome-flags="$chrome_flags" \
      --only-categories=performance,accessibility,best-practices \
      --output=json --output=html --output-path="$out/$name-$run"
    reports+=("$path=$out/$name-$run.report.json")
  done
done

node - "${reports[@]}" <<'EOF'
// One line per page: the run with the median performance score, its scores and timings.
const fs = require('node:fs');
const byPath = new Map();
for (const arg of process.argv.slice(2)) {
  const i = arg.indexOf('=');
  const path = arg.slice(0, i);
  const report = JSON.parse(fs.readFileSync(arg.slice(i + 1), 'utf8'));
  if (!byPath.has(path)) byPath.set(path, []);
  byPath.get(path).push(report);
}
const score = (r, c) => Math.round(r.categories[c].score * 100);
const secs = (r, a) => (r.audits[a].numericValue / 1000).toFixed(1) + ' s';
const kib = (r) => Math.round(r.audits['total-byte-weight'].numericValue / 1024) + ' KiB';
const rows = [['page', 'perf', 'a11y', 'best-pr', 'FCP', 'LCP', 'TBT', 'TTI', 'transferred', 'runs (perf)']];
for (const [path, reports] of byPath) {
  const sorted = [...reports].sort((a, b) => score(a, 'performance') - score(b, 'performance'));
  const r = sorted[Math.floor((sorted.length - 1) / 2)];
  rows.push([
    path,
    score(r, 'performance'),
    score(r, 'accessibility'),
    score(r, 'best-practices'),
    secs(r, 'first-contentful-paint'),
    secs(r, 'largest-contentful-paint'),
    Math.round(r.audits['total-blocking-time'].numericValue) + ' ms',
    secs(r, 'interactive'),
    kib(r),
    reports.map((x) => score(x, 'performance')).join(' '),
  ].map(String));
}
const widths = rows[0].map((_, i) => Math.max(...rows.map((row) => row[i].length)));
console.log(`\nLighthouse ${byPath.values().next().value[0].lighthouseVersion}, mobile (simulated slow 4G, 4x CPU slowdown), median of ${byPath.values().next().value.length} run(s):`);
for (const row of rows) console.log('  ' + row.map((cell, i) => cell.padEnd(widths[i])).join('  '));
console.log('\nReports: target/lighthouse/*.report.html');
EOF
