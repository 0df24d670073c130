#!/usr/bin/env bash
# Run the whole test suite: formatting, lints, unit and integration tests.
# Installs what the tests need first when it is missing (Debian, as root).
set -euo pipefail
cd "$(dirname "$0")/.."

# Debian packages the tests use; installed only when missing. (The cluster
# tests start their own redis-server on loopback ports; the package's own
# service is not used.)
PACKAGES=(chromium redis-server)
# Node.js may come from elsewhere than Debian; only install it if absent.
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
    PACKAGES+=(nodejs npm)
fi

missing=()
for pkg in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
    if [ "$(id -u)" -ne 0 ]; then
        echo "test.sh: missing packages ${missing[*]}; run as root to install them" >&2
        exit 1
    fi
    echo "test.sh: installing ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# The server holds one descriptor per connection; some tests open many.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy"
cargo clippy --all-targets --locked -- -D warnings
echo "== cargo test"
cargo test --all-targets --locked
echo "== browser tests (headless Chromium)"
cargo build --locked
bash tests/browser/run.sh
