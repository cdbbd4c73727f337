#!/usr/bin/env bash
# Installs everything Parlor needs to build and test on a fresh Debian 12 machine, and skips
# whatever is already there. Tools live in a cache outside the clone ($PARLOR_TOOLS), so a
# fresh clone on the same machine installs nothing.
#
# Why this route: rustup cannot fetch the wasm32 target here, so the wasm build uses Debian's
# rustc-web (1.96) with `-Z build-std`. See docs/toolchain.md.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=scripts/env.sh
source "$here/scripts/env.sh"

step() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }
note() { printf '    %s\n' "$*"; }

sudo_cmd=()
if [ "$(id -u)" -ne 0 ]; then sudo_cmd=(sudo); fi

# --- Debian packages --------------------------------------------------------------------
# rustc-web/cargo-web/rust-web-src: a compiler that can build std for wasm32.
# rust-web-llvm + lld-22: /usr/bin/rust-lld (a link into lld-22), rustc's default wasm linker.
# chromium: the browser the end-to-end tests drive. iproute2/util-linux: the loopback-only
# network namespace the browser tests run in. postgresql/redis-server: the scale-out backends;
# haproxy: the load balancer in front of two instances in the cluster browser tests.
# nftables/conntrack/curl: the NAT matrix (scripts/nat-matrix.sh) builds routers, empties
# their NAT tables between cases and checks the server is ready.
apt_packages=(rustc-web cargo-web rust-web-src rust-web-llvm lld-22 chromium iproute2 util-linux openssl
  postgresql redis-server haproxy pkg-config libssl-dev nftables conntrack curl)
missing=()
for p in "${apt_packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$p")
  fi
done
if [ ${#missing[@]} -gt 0 ]; then
  step "Installing Debian packages: ${missing[*]} (a few minutes)"
  "${sudo_cmd[@]}" apt-get update
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y --no-install-recommends "${missing[@]}"
else
  note "Debian packages: all present"
fi
# Debian's binaryen 108 breaks the release wasm (see docs/toolchain.md): we use npm's.
if dpkg-query -W -f='${Status}' binaryen 2>/dev/null | grep -q 'install ok installed'; then
  note "warning: Debian's binaryen is installed; the npm one in $PARLOR_TOOLS is used first"
fi

# --- cargo tools, pinned --------------------------------------------------------------------
# Installed with Debian's cargo 1.96 (cargo-leptos needs >= 1.96) into $PARLOR_TOOLS/cargo.
cargo_install() { # name version extra-args...
  local name=$1 version=$2 bin=$3 took=$4; shift 4
  if [ -x "$PARLOR_TOOLS/cargo/bin/$bin" ] && \
     "$PARLOR_TOOLS/cargo/bin/$bin" --version 2>/dev/null | grep -q " $version"; then
    note "$name $version: present"
    return
  fi
  step "Building $name $version from crates.io ($took; output follows)"
  # Their release profiles ask for fat LTO in one codegen unit (cargo-leptos): the slowest
  # build there is, for tools whose own speed hardly matters here (they spend a build's
  # seconds in wasm-opt, rustc and the compression of a few files). Light optimisation and
  # no LTO build them in far less time. Config beats the manifest.
  CARGO_PROFILE_RELEASE_LTO=false CARGO_PROFILE_RELEASE_CODEGEN_UNITS=16 \
    CARGO_PROFILE_RELEASE_OPT_LEVEL=1 \
    CARGO_TARGET_DIR="$PARLOR_TOOLS/build" cargo install "$name" --version "=$version" \
    --root "$PARLOR_TOOLS/cargo" "$@"
}
cargo_install cargo-leptos "$CARGO_LEPTOS_VERSION" cargo-leptos "about 14 min on 2 cores" --locked
# wasm-bindgen-cli must match the wasm-bindgen crate in Cargo.lock exactly. Not --locked:
# its lockfile asks for a webpki-roots version the registry no longer serves.
wbg_version=$(awk '/^name = "wasm-bindgen"$/{getline; gsub(/version = |"/,""); print; exit}' "$here/Cargo.lock")
cargo_install wasm-bindgen-cli "$wbg_version" wasm-bindgen "about 3 min on 2 cores, after cargo-leptos"
rm -rf "$PARLOR_TOOLS/build"

# --- npm packages (wasm-opt from binaryen, Playwright's test runner, Lighthouse) -------------
# Both files are compared: package.json carries `overrides` the lock file depends on.
node_dir="$PARLOR_TOOLS/node"
mkdir -p "$node_dir"
if ! cmp -s "$here/end2end/package-lock.json" "$node_dir/package-lock.json" || \
   ! cmp -s "$here/end2end/package.json" "$node_dir/package.json" || \
   [ ! -d "$node_dir/node_modules" ]; then
  step "Installing npm packages (binaryen, @playwright/test, lighthouse) into $node_dir"
  cp "$here/end2end/package.json" "$here/end2end/package-lock.json" "$node_dir/"
  # A failed install is retried by the next bootstrap, not taken for done.
  (cd "$node_dir" && npm ci --no-audit --no-fund) || { rm -f "$node_dir/package-lock.json"; exit 1; }
else
  note "npm packages: present"
fi
# The Playwright config imports @playwright/test from end2end/: point it at the cache.
ln -sfn "$node_dir/node_modules" "$here/end2end/node_modules"

# --- crates, fetched ahead so builds and tests work offline ---------------------------------
# build-std needs std's own dependencies; fetch them too (once per machine: CARGO_HOME cache).
stamp="$PARLOR_TOOLS/fetched-$(sha256sum "$here/Cargo.lock" | cut -c1-16)"
if [ ! -e "$stamp" ]; then
  step "Fetching crates (workspace and wasm std)"
  (cd "$here" && cargo fetch)
  cargo fetch --manifest-path /usr/lib/rustlib/src/rust/library/Cargo.toml
  touch "$stamp"
else
  note "crates: fetched"
fi

step "Toolchain ready"
note "cargo $(cargo --version | cut -d' ' -f2), cargo-leptos $("$PARLOR_TOOLS/cargo/bin/cargo-leptos" --version | cut -d' ' -f2), wasm-bindgen $wbg_version, wasm-opt $(wasm-opt --version | cut -d' ' -f3)"
