#!/usr/bin/env bash
# Run the whole test suite: formatting, lints, unit and integration tests.
# Installs what the tests need first when it is missing (Debian, as root).
set -euo pipefail
cd "$(dirname "$0")/.."

# Debian packages the tests use; installed only when missing. GTK and the
# appindicator library build and run the tray icon (cargo feature `tray`);
# Xvfb, trayer, D-Bus, ImageMagick and xdotool drive it in scripts/tray-test.sh.
# The cluster tests start their own redis-server on loopback ports (the
# package's own service is not used); the ACME tests start pebble, Let's
# Encrypt's test CA, the same way (tests/acme/pebble.rs).
PACKAGES=(chromium redis-server pebble libgtk-3-dev libayatana-appindicator3-dev xvfb trayer dbus-x11 imagemagick xdotool)
# Node.js may come from elsewhere than Debian; only install it if absent.
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
    PACKAGES+=(nodejs npm)
fi

# The Windows, ARM and macOS checks need cross compilers, Wine, qemu and
# clang: installed up front with the rest, in one go.
PACKAGES+=($(bash scripts/installers.sh --packages) clang llvm)

# Each section says how long the run has taken so far.
section() { echo "== [$SECONDS s] $*"; }
logs=target/test-logs
mkdir -p "$logs"
# Wait for a background job; on failure show its log and stop.
await() { # pid log what
    if ! wait "$1"; then
        cat "$2" >&2
        echo "test.sh: $3 failed (log above: $2)" >&2
        exit 1
    fi
}

# Every debug build of this machine's target has the tray icon, so the
# scripts below (smoke tests, the release signer) reuse the test build
# instead of compiling the crate again without it.
export HOST_FEATURES="--features tray"

# The server holds one descriptor per connection; some tests open many.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

# The packages download and install in the background while the steps
# that need none of them use the processors.
section "Debian packages (in the background)"
bash scripts/ensure-packages.sh "${PACKAGES[@]}" >"$logs/packages.log" 2>&1 &
packages=$!

section "cargo fmt --check"
cargo fmt --all -- --check
section "layers (ARCHITECTURE.md)"
python3 scripts/check-layers.py src
# Everything is built once with the tray icon (the desktop build); the
# default build's own code paths are linted too.
section "cargo clippy (default features)"
cargo clippy --lib --bins --locked -- -D warnings
section "the server build the Linux package takes"
bash scripts/installers.sh --build-only x86_64-unknown-linux-gnu

section "waiting for the Debian packages"
await $packages "$logs/packages.log" "installing the Debian packages"
section "cargo clippy (tray, all targets)"
cargo clippy --all-targets --locked --features tray -- -D warnings
# The private-channel tests mint tokens with Node's jsonwebtoken, installed
# with the browser tests' packages.
if [ ! -d tests/browser/node_modules/jsonwebtoken ]; then
    (cd tests/browser && npm ci --no-audit --no-fund --loglevel=error)
fi
section "cargo test: build"
cargo build --locked --features tray
cargo test --no-run --all-targets --locked --features tray

# The other cross builds need only processor time, which the tests below
# mostly leave idle (they wait on sockets, browsers and timers): they run
# beside them at the lowest priority.
section "cross builds (in the background, at low priority)"
nice -n 19 bash scripts/installers.sh --build-only >"$logs/cross-builds.log" 2>&1 &
cross=$!

section "cargo test: run, a few test binaries at a time"
python3 scripts/run-tests.py --features tray
section "browser tests (headless Chromium)"
bash tests/browser/run.sh
section "tray icon (Xvfb)"
bash scripts/tray-test.sh
section "waiting for the cross builds"
await $cross "$logs/cross-builds.log" "the cross builds"
section "macOS build, type-checked (cargo check --target aarch64-apple-darwin --features tray)"
bash scripts/check-macos.sh
section "installers (packages, their smoke tests, the Windows service under Wine)"
bash scripts/installers.sh
section "the update path: release N+1 signed into a loopback feed, N updates, rolls back"
bash scripts/release-test.sh
section "all passed"
