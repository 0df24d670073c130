#!/usr/bin/env bash
# The whole update path, on loopback: an installed meteord of this version
# (N, the debug build) updates itself to a release N+1 that
# scripts/release.sh builds and signs with a test key into a directory
# served over HTTP on 127.0.0.1 — the release carries that feed as its
# built-in one. First the feed serves an archive signed with another key:
# refused, nothing changes. Then the genuine release: installed from the
# admin UI, the server restarts into N+1 on the same ports with its data
# (messages, ids, admin account) kept. Then the dashboard's rollback puts
# N back, again with the data kept.
#
#   scripts/release-test.sh        (after `cargo build`; scripts/test.sh runs it)
#
# The release is built with the quick dist-check profile for this machine's
# target only (sharing scripts/installers.sh's build).
set -euo pipefail
cd "$(dirname "$0")/.."

TARGET_DIR=${CARGO_TARGET_DIR:-target}
BIN=${METEORD_BIN:-$TARGET_DIR/debug/meteord}
HOST_TARGET=x86_64-unknown-linux-gnu
[ -x "$BIN" ] || cargo build --locked ${HOST_FEATURES:-}

work=$(mktemp -d)
feed_pid=
server_pid=
cleanup() {
    [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null || true
    [ -n "$feed_pid" ] && kill "$feed_pid" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

fail() {
    echo "release-test.sh: FAIL: $*" >&2
    echo "--- server log:" >&2
    tail -n 40 "$work/server.log" >&2 || true
    exit 1
}
wait_for() { # up to 30 s
    for _ in $(seq 300); do
        if "$@"; then return 0; fi
        sleep 0.1
    done
    return 1
}
logged() { [ "$(grep -c -- "$1" "$work/server.log" 2>/dev/null || true)" -ge "${2:-1}" ]; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
control() { # one line to the control port, its reply
    exec 3<>"/dev/tcp/127.0.0.1/$control_port"
    printf '%s\r\nQUIT\r\n' "$1" >&3
    local reply
    IFS= read -r -t 5 reply <&3 || true
    exec 3<&- 3>&-
    printf '%s' "${reply%$'\r'}"
}

version=$("$BIN" --version | awk '{print $2}')
IFS=. read -r major minor patch <<<"${version%%-*}"
next="$major.$minor.$((patch + 1))"
echo "== release-test: installed $version, releasing $next"

# --- the feed, and release N+1 into it ----------------------------------------

mkdir -p "$work/feed" "$work/keys"
python3 -m http.server 0 --bind 127.0.0.1 --directory "$work/feed" >"$work/feed.log" 2>&1 &
feed_pid=$!
wait_for grep -q 'port [0-9]' "$work/feed.log" || fail "the feed server did not start"
feed_port=$(sed -n 's/.* port \([0-9]*\).*/\1/p' "$work/feed.log" | head -n1)
feed_url="http://127.0.0.1:$feed_port/manifest.json"

cargo run --quiet --locked ${HOST_FEATURES:-} --example release-sign -- keygen "$work/keys/test.key" "$work/keys/test.pub" >/dev/null
cargo run --quiet --locked ${HOST_FEATURES:-} --example release-sign -- keygen "$work/keys/other.key" "$work/keys/other.pub" >/dev/null
test_key_hex=$(od -An -tx1 -v "$work/keys/test.pub" | tr -d ' \n')

started=$SECONDS
scripts/release.sh "$next" --test-release --key "$work/keys/test.key" --feed "$feed_url" \
    --targets "$HOST_TARGET" --profile dist-check --out "$work/release" >/dev/null
echo "== release-test: release.sh $next took $((SECONDS - started)) s"
archive=meteord-$next-$HOST_TARGET.tar.gz
for f in manifest.json "$archive" SHA256SUMS SHA256SUMS.sig; do
    [ -s "$work/release/$f" ] || fail "the release lacks $f"
done
ls "$work/release"/meteord_"$next"-1_amd64.deb >/dev/null || fail "the release lacks its .deb"
(cd "$work/release" && sha256sum --quiet -c SHA256SUMS) || fail "SHA256SUMS does not match"
grep -q "\"version\":\"$next\"" "$work/release/manifest.json" || fail "the manifest does not announce $next"

# The same binary, signed with a key meteord does not trust.
mkdir -p "$work/bad"
tar -xzf "$work/release/$archive" -C "$work/bad"
tar -C "$work/bad" -czf "$work/bad/$archive" meteord
cargo run --quiet --locked ${HOST_FEATURES:-} --example release-sign -- sign-tar "$work/bad/$archive" "$work/keys/other.key"
cp "$work/release/manifest.json" "$work/feed/"
cp "$work/bad/$archive" "$work/feed/$archive"

# --- installed N -------------------------------------------------------------

mkdir -p "$work/install/bin" "$work/data"
cp "$BIN" "$work/install/bin/meteord"
exe=$work/install/bin/meteord
control_port=$(free_port)
sub_port=$(free_port)
admin_port=$(free_port)
METEORD_UPDATE_TEST_KEY=$test_key_hex "$exe" --no-tray -ConfigFileLocation assets/meteord.conf \
    -UpdateFeed "$feed_url" -DataDirectory "$work/data" -LogDirectory off -Persistence snapshot \
    -ControllerPort "$control_port" -SubscriberPort "$sub_port" -SubscriberIP 127.0.0.1 \
    -AdminPort "$admin_port" >"$work/server.log" 2>&1 &
server_pid=$!
wait_for logged "control listening on 127.0.0.1:$control_port" || fail "meteord $version did not start"
[ "$(control 'ADDMESSAGE kept hello')" = $'OK\t0' ] || fail "publishing to $version"

admin=http://127.0.0.1:$admin_port
jar=$work/cookies
curl -fsS -o /dev/null -c "$jar" -X POST "$admin/setup" \
    --data 'username=admin&password=release+test+password&password2=release+test+password' ||
    fail "setting the admin password"
csrf() { curl -fsS -b "$jar" "$admin/" | sed -n 's/.*name="csrf" value="\([^"]*\)".*/\1/p' | head -n1; }
post() { curl -fsS -o /dev/null -b "$jar" -X POST "$admin$1" --data "csrf=$(csrf)"; }
dashboard() { curl -fsS -b "$jar" "$admin/"; }

dashboard | grep -q "Set by UpdateFeed" || fail "the dashboard does not say where the feed comes from"
post /update/check
dashboard | grep -q "meteord $next" || fail "the check did not find $next"

# --- a wrong signature is refused ------------------------------------------------

post /update/install
dashboard | grep -q "the update was refused, its signature does not verify" ||
    fail "an archive signed with another key was not refused"
cmp -s "$BIN" "$exe" || fail "the refused update changed the program"
kill -0 "$server_pid" || fail "the server stopped after a refused update"

# --- the genuine release: installed, restarted, data kept --------------------------

cp "$work/release/$archive" "$work/feed/$archive"
post /update/install || true # the answer may be cut by the restart
wait_for logged "meteord $next starting" || fail "the server did not restart into $next"
wait_for logged "control listening on 127.0.0.1:$control_port" 2 || fail "$next did not listen on the same port"
kill -0 "$server_pid" || fail "the updated server exited"
[ "$("$exe" --version)" = "meteord $next" ] || fail "the installed program is not $next"
cmp -s "$BIN" "$work/install/bin/meteord.previous" || fail "the previous program was not kept"
[ "$(control 'ADDMESSAGE kept again')" = $'OK\t1' ] || fail "ids did not go on after the update"
backlog=$(curl -fsS "http://127.0.0.1:$sub_port/push/h1/simplepoll/kept.b10")
grep -q '"hello"' <<<"$backlog" || fail "the message published before the update is gone"
dashboard | grep -q "Kept version" || fail "the dashboard (same session) does not offer the rollback"
# The release carries its feed: with no UpdateFeed it checks there.
"$exe" update --check -ConfigFileLocation assets/meteord.conf | grep -q "meteord $next is up to date" ||
    fail "the release does not check its built-in feed"

# --- rollback from the dashboard ------------------------------------------------------

post /update/rollback || true
wait_for logged "meteord $version starting" 2 || fail "the rollback did not restart into $version"
wait_for logged "control listening on 127.0.0.1:$control_port" 3 || fail "$version did not come back"
cmp -s "$BIN" "$exe" || fail "the rollback did not restore $version"
[ "$(control 'ADDMESSAGE kept third')" = $'OK\t2' ] || fail "ids did not go on after the rollback"

kill -TERM "$server_pid"
wait "$server_pid" || fail "meteord did not stop cleanly"
server_pid=
echo "release-test.sh: $version → $next (signed release, wrong key refused, data kept) → rollback to $version: ok"
