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

# Each section says how long the run has taken so far.
section() { echo "== [$SECONDS s] $*"; }

bash scripts/ensure-packages.sh "${PACKAGES[@]}"

# Every debug build of this machine's target has the tray icon, so the
# scripts below (smoke tests, the release signer) reuse the test build
# instead of compiling the crate again without it.
export HOST_FEATURES="--features tray"

# The server holds one descriptor per connection; some tests open many.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

section "cargo fmt --check"
cargo fmt --all -- --check
section "layers (ARCHITECTURE.md)"
python3 scripts/check-layers.py src
# Everything is built once, with the tray icon (the desktop build); the
# default build's own code paths are linted too (this crate and the few
# dependencies whose features differ without the tray are checked again).
section "cargo clippy (tray, and default features)"
cargo clippy --all-targets --locked --features tray -- -D warnings
cargo clippy --lib --bins --locked -- -D warnings
# The private-channel tests mint tokens with Node's jsonwebtoken, installed
# with the browser tests' packages.
if [ ! -d tests/browser/node_modules/jsonwebtoken ]; then
    (cd tests/browser && npm ci --no-audit --no-fund --loglevel=error)
fi
section "cargo test"
cargo test --all-targets --locked --features tray
section "browser tests (headless Chromium)"
cargo build --locked --features tray
bash tests/browser/run.sh
section "tray icon (Xvfb)"
bash scripts/tray-test.sh
section "macOS build, type-checked (cargo check --target *-apple-darwin --features tray)"
bash scripts/check-macos.sh
section "installers (cross builds, packages, their smoke tests, the Windows service under Wine)"
bash scripts/installers.sh
section "the update path: release N+1 signed into a loopback feed, N updates, rolls back"
bash scripts/release-test.sh
section "all passed"
