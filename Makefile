# Parlor's developer commands. `make run` and `make test` are all a fresh machine needs: both
# install what is missing first (see scripts/bootstrap.sh) and skip what is already there.
SHELL := /bin/bash
ENV := source scripts/env.sh &&

.PHONY: run test bootstrap build dev lint fmt e2e bench soak lighthouse clean

## run: build the release app and serve it (http://127.0.0.1:3000 unless PARLOR_ADDR says otherwise)
run: bootstrap
	@$(ENV) echo "==> Building Parlor (release; the first build takes ~10 min on 2 cores)" && \
	  parlor_release_build
	@$(ENV) LEPTOS_SITE_ROOT=target/site LEPTOS_ENV=PROD exec target/release/parlor

## test: every test: Rust unit + integration (the release build beside them), then Playwright on the release build in a loopback-only namespace and the NAT matrix
test: bootstrap
	@scripts/test.sh

## bootstrap: install the toolchain (Debian packages, cargo-leptos, wasm-bindgen, npm tools)
bootstrap:
	@scripts/bootstrap.sh

## bench: measure the real-time channel (release build, 10 000 sockets; prints figures)
bench: bootstrap
	@$(ENV) parlor_release_build && parlor_leptos_build_env && \
	  cargo build --release -p bench && target/release/channel-bench $(BENCH_ARGS)

## soak: Parlor under a mixed load for SOAK_MINUTES (30), memory printed every minute
SOAK_MINUTES ?= 30
soak: bootstrap
	@$(ENV) parlor_release_build && parlor_leptos_build_env && \
	  cargo build --release -p bench && target/release/channel-bench --soak $(SOAK_MINUTES)

## lighthouse: build the release site and measure its first page load (Lighthouse, mobile
## profile, home and sign-in pages, loopback-only namespace; prints scores, passes or fails
## nothing). Paths in LIGHTHOUSE_ARGS, e.g. `make lighthouse LIGHTHOUSE_ARGS=/signup`
lighthouse: bootstrap
	@$(ENV) parlor_release_build && scripts/lighthouse.sh $(LIGHTHOUSE_ARGS)

## dev: rebuild and reload on every change (cargo leptos watch --split)
dev: bootstrap
	@$(ENV) parlor_watch

## build: dev build of server, wasm and the test stand-ins
build: bootstrap
	@$(ENV) parlor_build && parlor_leptos_build_env && cargo build -p testkit --bin stand-in-idp

## e2e: only the browser tests, against the current dev build (`make build` first)
e2e:
	@scripts/e2e.sh

## lint: rustfmt, and clippy on the server build and on the browser code (rustup's toolchain:
## Debian's rustc-web has no clippy; its own target dir, as its rustc differs; the browser
## code is linted for the host target, as rustup has no wasm32 std here)
lint:
	@$(ENV) cargo fmt --all --check && parlor_leptos_build_env && \
	  PATH="$$HOME/.cargo/bin:$$PATH" RUSTUP_TOOLCHAIN=stable CARGO_TARGET_DIR=target/clippy \
	  cargo clippy -p server -p app -p bench --features app/ssr --all-targets -- -D warnings && \
	  PATH="$$HOME/.cargo/bin:$$PATH" RUSTUP_TOOLCHAIN=stable CARGO_TARGET_DIR=target/clippy \
	  cargo clippy -p app --features hydrate -- -D warnings

fmt:
	@$(ENV) cargo fmt --all

clean:
	@$(ENV) cargo clean
