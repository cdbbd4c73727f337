# Sourced by the Makefile and by developers (`source scripts/env.sh`) to get the project's
# toolchain on PATH. Safe to source more than once.
export PARLOR_TOOLS="${PARLOR_TOOLS:-${XDG_CACHE_HOME:-$HOME/.cache}/parlor-tools}"
export CARGO_LEPTOS_VERSION=0.3.11
# Debian's cargo/rustc 1.96 first (cargo-leptos spawns plain `cargo`), then our pinned tools
# and npm's binaryen (never Debian's binaryen 108).
case ":$PATH:" in
  *":$PARLOR_TOOLS/cargo/bin:"*) ;;
  *) export PATH="$PARLOR_TOOLS/node/node_modules/.bin:$PARLOR_TOOLS/cargo/bin:/usr/bin:$PATH" ;;
esac
# Lets Debian's stable compiler accept -Z build-std. Keep it set for EVERY cargo command:
# build scripts rerun when it changes.
export RUSTC_BOOTSTRAP=1
# The builds, with the flags every one of them needs. `--split`: pages and the call code are
# split points (`#[lazy_route]`, `wasm_split`), and without it the wasm imports a chunk loader
# that is not there (nothing hydrates). The release site (what `make run` serves) also gets
# content-hashed file names (cached for a year) and brotli/gzip copies of every file; the
# server reads `target/site/hash.txt` to link the hashed names.
parlor_build() { cargo leptos build --split "$@"; }
parlor_watch() { cargo leptos watch --split "$@"; }
parlor_release_build() {
  LEPTOS_HASH_FILES=true cargo leptos build --release --split --precompress "$@"
}
# What cargo-leptos exports for a dev build of the server. `make test` runs `cargo test` with
# the same values so the tests reuse the build instead of compiling a second dependency graph.
parlor_leptos_build_env() {
  export LEPTOS_OUTPUT_NAME=parlor LEPTOS_SITE_ROOT=target/site LEPTOS_SITE_PKG_DIR=pkg \
    LEPTOS_SITE_ADDR=127.0.0.1:3000 LEPTOS_RELOAD_PORT=3001 LEPTOS_LIB_DIR=frontend \
    LEPTOS_BIN_DIR=server LEPTOS_JS_MINIFY=false LEPTOS_HASH_FILES=false \
    RUSTFLAGS="--cfg erase_components"
}

# Re-runs the calling script (give it "$0" "$@") in a fresh network namespace whose only
# interface is loopback, unless already inside one; then refuses to go on if anything but lo
# is there. No test or measurement traffic, WebRTC included, can leave the machine.
parlor_loopback_only() {
  if [ -z "${PARLOR_IN_NETNS:-}" ]; then
    local unshare_flags=(--net)
    # Without root, a user namespace maps us to root inside so we may configure `lo`.
    [ "$(id -u)" -eq 0 ] || unshare_flags=(--net --map-root-user)
    exec unshare "${unshare_flags[@]}" env PARLOR_IN_NETNS=1 "$@"
  fi
  ip link set lo up
  if ip -o link show | grep -v ': lo:' | grep -q .; then
    echo "refusing to run: the namespace has an interface other than lo" >&2
    exit 1
  fi
}
