#!/usr/bin/env bash
# Real-browser tests of meteor.js against a real meteord, in headless Chromium.
#
#   cargo build && bash tests/browser/run.sh
#
# Needs: the server binary (target/debug/meteord, or METEORD_BIN=path), Node
# 18+ with npm, and Chromium (/usr/bin/chromium, or CHROMIUM_BIN=path).
# Installs what is missing where it can (npm ci; as root on Debian, apt-get
# for chromium and nodejs). Extra arguments go to `node --test`, e.g.
#   bash tests/browser/run.sh --test-name-pattern=sse
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
cd "$repo"

export METEORD_BIN="${METEORD_BIN:-${CARGO_TARGET_DIR:-$repo/target}/debug/meteord}"
export CHROMIUM_BIN="${CHROMIUM_BIN:-/usr/bin/chromium}"

apt_install() {
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        echo "browser tests: installing $* with apt-get" >&2
        apt-get update -qq >/dev/null
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
    else
        echo "browser tests: please install $* (Debian: apt-get install $*)" >&2
        exit 1
    fi
}

if [ ! -x "$METEORD_BIN" ]; then
    echo "browser tests: no server binary at $METEORD_BIN; run 'cargo build' or set METEORD_BIN" >&2
    exit 1
fi
command -v node >/dev/null && command -v npm >/dev/null || apt_install nodejs npm
[ -x "$CHROMIUM_BIN" ] || apt_install chromium
if [ ! -x "$CHROMIUM_BIN" ]; then
    echo "browser tests: no Chromium at $CHROMIUM_BIN; set CHROMIUM_BIN" >&2
    exit 1
fi

if [ ! -d "$here/node_modules/puppeteer-core" ] || [ ! -d "$here/node_modules/jsonwebtoken" ]; then
    # puppeteer-core downloads no browser
    (cd "$here" && npm ci --no-audit --no-fund --loglevel=error)
fi

# the test files, named explicitly: Node 21+ reads arguments as globs
exec node --test "$@" tests/browser/*.test.mjs
