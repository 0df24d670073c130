#!/usr/bin/env bash
# The tray icon, for real: the `tray` build runs under a virtual X display
# (Xvfb) with a tray host (trayer) in its own D-Bus session. The test
# clicks the icon, picks "Pause publishing" from the menu and checks that
# the control port then refuses to publish and the icon changes; picks
# "Check for updates" against a feed on 127.0.0.1 that offers a newer
# release and checks the desktop notification (seen on the session bus)
# and the icon's update dot; then picks "Quit" and checks that the server
# shuts down cleanly. Last, a second tray started while a server already
# runs on the configured admin port shows that server instead of starting
# another, and closing it leaves the server running. Screenshots of the
# open menus and of the icon in each state are kept in target/screenshots/.
#
# Expects target/debug/meteord built with `--features tray` (scripts/test.sh
# builds it); builds it when missing. Installs its Debian packages when
# missing (as root).
set -euo pipefail
cd "$(dirname "$0")/.."

PACKAGES=(libgtk-3-dev libayatana-appindicator3-dev xvfb trayer dbus-x11 imagemagick xdotool)
bash scripts/ensure-packages.sh "${PACKAGES[@]}"

BIN=${METEORD_BIN:-${CARGO_TARGET_DIR:-target}/debug/meteord}
if [ ! -x "$BIN" ]; then
    cargo build --locked --features tray
fi

work=$(mktemp -d)
shots=target/screenshots
mkdir -p "$shots"
xvfb_pid=
session_pid=
feed_pid=
first_pid=
# Stop the server first, so that its D-Bus session ends by itself (and
# takes its bus daemon along), then the display.
cleanup() {
    if [ -s "$work/server.pid" ]; then kill "$(cat "$work/server.pid")" 2>/dev/null || true; fi
    if [ -s "$work/attach.pid" ]; then kill "$(cat "$work/attach.pid")" 2>/dev/null || true; fi
    if [ -n "$session_pid" ]; then
        for _ in $(seq 100); do kill -0 "$session_pid" 2>/dev/null || break; sleep 0.1; done
        kill "$session_pid" 2>/dev/null || true
    fi
    if [ -n "$xvfb_pid" ]; then kill "$xvfb_pid" 2>/dev/null || true; fi
    if [ -n "$feed_pid" ]; then kill "$feed_pid" 2>/dev/null || true; fi
    if [ -n "$first_pid" ]; then kill "$first_pid" 2>/dev/null || true; fi
    rm -rf "$work"
}
trap cleanup EXIT

fail() {
    echo "tray-test.sh: FAIL: $*" >&2
    echo "--- server log:" >&2
    cat "$work/server.log" >&2 || true
    exit 1
}

# Wait up to 20 s for a command to succeed.
wait_for() {
    for _ in $(seq 200); do
        if "$@"; then return 0; fi
        sleep 0.1
    done
    return 1
}

# A free display: Xvfb picks one and reports it.
Xvfb -displayfd 3 -screen 0 1024x480x24 -nolisten tcp 3>"$work/display" 2>"$work/xvfb.log" &
xvfb_pid=$!
wait_for test -s "$work/display" || fail "Xvfb did not start"
export DISPLAY=":$(head -n1 "$work/display")"

# One control-port request: send a line, print the reply line.
control() {
    exec 3<>"/dev/tcp/127.0.0.1/$1"
    printf '%s\r\n' "$2" >&3
    local reply
    IFS= read -r -t 5 reply <&3 || true
    exec 3<&- 3>&-
    printf '%s' "${reply%$'\r'}"
}

# A release feed on 127.0.0.1 that offers a newer release (only the
# manifest: the test checks, it does not install).
mkdir -p "$work/feed"
target=$(rustc -vV | sed -n 's/^host: //p')
printf '{"schema":1,"releases":[{"version":"99.0.0","assets":[{"name":"meteord-99.0.0-%s.tar.gz","url":"meteord-99.0.0-%s.tar.gz"}]}]}\n' \
    "$target" "$target" >"$work/feed/manifest.json"
python3 -m http.server 0 --bind 127.0.0.1 --directory "$work/feed" >"$work/feed.log" 2>&1 &
feed_pid=$!
wait_for grep -q 'port [0-9]' "$work/feed.log" || fail "the feed server did not start"
FEED="http://127.0.0.1:$(sed -n 's/.* port \([0-9]*\).*/\1/p' "$work/feed.log" | head -n1)/manifest.json"

# Everything that talks to the tray shares one D-Bus session; dbus-monitor
# records the desktop notifications sent on it.
cat >"$work/session.sh" <<'EOF'
set -euo pipefail
trayer --edge top --align left --widthtype request --height 32 --SetDockType true \
    --transparent false --tint 0xffffff --expand false >"$WORK/trayer.log" 2>&1 &
trayer_pid=$!
dbus-monitor --session "interface='org.freedesktop.Notifications'" >"$WORK/notifications.log" 2>&1 &
monitor_pid=$!
"$BIN" -ConfigFileLocation assets/meteord.conf -ControllerPort 0 -SubscriberPort 0 \
    -SubscriberIP 127.0.0.1 -AdminPort 0 -Persistence off -TLS self-signed \
    -UpdateFeed "$FEED" -AutoUpdate off \
    -DataDirectory "$WORK/data" -LogDirectory "$WORK/logs" >"$WORK/server.log" 2>&1 &
echo $! >"$WORK/server.pid"
wait "$(cat "$WORK/server.pid")"
echo $? >"$WORK/server.exit"
kill "$trayer_pid" "$monitor_pid" 2>/dev/null || true
EOF
# NO_AT_BRIDGE: no accessibility bus (GTK would start one that outlives us).
WORK=$work BIN=$BIN FEED=$FEED NO_AT_BRIDGE=1 dbus-run-session -- bash "$work/session.sh" \
    >"$work/session.log" 2>&1 &
session_pid=$!

wait_for grep -qs "tray icon ready" "$work/server.log" || fail "the tray icon never came up"
port=$(sed -n 's/.*control listening on 127\.0\.0\.1:\([0-9]*\).*/\1/p' "$work/server.log" | head -n1)
[ -n "$port" ] || fail "no control port in the log"
[ "$(control "$port" 'ADDMESSAGE c before')" = $'OK\t0' ] || fail "publishing before the pause"

# The tray host's window holds just our icon: click its middle.
wait_for xdotool search --onlyvisible --class trayer >/dev/null || fail "no trayer window"
tray=$(xdotool search --onlyvisible --class trayer | head -n1)
eval "$(xdotool getwindowgeometry --shell "$tray")"
icon_x=$((X + WIDTH / 2))
icon_y=$((Y + HEIGHT / 2))
sleep 1 # the icon is embedded a moment after it exists

open_menu() {
    xdotool mousemove "$icon_x" "$icon_y" click 1
    sleep 1
}
# The icon, as the tray host shows it (a strip around its middle: the
# host's window can be narrower than the icon it draws).
icon_shot() {
    local left=$((icon_x - 32))
    [ "$left" -ge 0 ] || left=0
    import -window root -crop "64x${HEIGHT}+${left}+${Y}" +repage "$1"
}
differs() { # two icon shots differ in more than a few pixels
    local changed
    changed=$(compare -metric AE "$1" "$2" null: 2>&1 || true)
    [ "${changed%%.*}" -gt 20 ] 2>/dev/null
}
icon_shot "$shots/tray-icon-running.png"

# Menu: status and (with TLS) the certificate fingerprint, both disabled;
# then Open admin, Pause publishing, Check for
# updates, Open logs folder, Quit. Keys walk the enabled items.
import -window root "$work/before.png"
open_menu
import -window root "$shots/tray-menu.png"
# The open menu changes a good part of the screen (AE: pixels that differ).
changed=$(compare -metric AE "$work/before.png" "$shots/tray-menu.png" null: 2>&1 || true)
[ "${changed%%.*}" -gt 2000 ] 2>/dev/null || fail "no menu in the screenshot ($changed pixels changed)"
xdotool key Down Down Return
paused() { [ "$(control "$port" 'ADDMESSAGE c during')" = "ERR Publishing is paused" ]; }
wait_for paused || fail "'Pause publishing' did not pause publishing"
grep -q "publishing paused" "$work/server.log" || fail "no log line for the pause"
sleep 1.5 # the icon follows the state at the next refresh
icon_shot "$shots/tray-icon-paused.png"
differs "$shots/tray-icon-running.png" "$shots/tray-icon-paused.png" || fail "the icon did not change when publishing paused"

# Resume, then Quit (the last item).
open_menu
xdotool key Down Down Return
resumed() { [[ "$(control "$port" 'ADDMESSAGE c after')" == OK$'\t'* ]]; }
wait_for resumed || fail "'Resume publishing' did not resume publishing"

# Check for updates (the item after Pause): the feed offers 99.0.0.
open_menu
xdotool key Down Down Down Return
wait_for grep -qs "meteord 99.0.0 is available" "$work/notifications.log" ||
    fail "no desktop notification of the update (session bus: $(cat "$work/notifications.log"))"
grep -q "update available: meteord 99.0.0" "$work/server.log" || fail "no log line for the update"
sleep 1.5
icon_shot "$shots/tray-icon-update.png"
differs "$shots/tray-icon-running.png" "$shots/tray-icon-update.png" || fail "the icon shows no update dot"
open_menu
import -window root "$shots/tray-menu-update.png"
xdotool key Escape
open_menu
xdotool key Up Return
wait_for test -s "$work/server.exit" || fail "'Quit' did not stop the server"
[ "$(cat "$work/server.exit")" = 0 ] || fail "the server exited with $(cat "$work/server.exit")"
grep -q "tray: quit" "$work/server.log" || fail "the server did not stop through the tray"
grep -q "shutdown complete" "$work/server.log" || fail "no graceful shutdown"
grep -q "tray: quit" "$work"/logs/meteord.*.log || fail "the log file misses the quit"
for _ in $(seq 100); do kill -0 "$session_pid" 2>/dev/null || break; sleep 0.1; done
rm -f "$work/server.pid"

# --- a second start while a server runs: the tray shows that one -------------
admin_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"$BIN" --no-tray -ConfigFileLocation assets/meteord.conf -ControllerPort 0 -SubscriberPort 0 \
    -SubscriberIP 127.0.0.1 -AdminPort "$admin_port" -Persistence off \
    -DataDirectory "$work/data1" -LogDirectory off >"$work/first.log" 2>&1 &
first_pid=$!
wait_for grep -qs "admin listening on 127.0.0.1:$admin_port" "$work/first.log" || fail "the first server did not start"
first_control=$(sed -n 's/.*control listening on 127\.0\.0\.1:\([0-9]*\).*/\1/p' "$work/first.log" | head -n1)
cat >"$work/attach.sh" <<'EOF'
set -euo pipefail
trayer --edge top --align left --widthtype request --height 32 --SetDockType true \
    --transparent false --tint 0xffffff --expand false >"$WORK/trayer2.log" 2>&1 &
trayer_pid=$!
"$BIN" -ConfigFileLocation assets/meteord.conf -AdminPort "$ADMIN_PORT" -ControllerPort 0 \
    -SubscriberPort 0 -SubscriberIP 127.0.0.1 -DataDirectory "$WORK/data2" -LogDirectory off \
    >"$WORK/attach.log" 2>&1 &
echo $! >"$WORK/attach.pid"
wait "$(cat "$WORK/attach.pid")"
echo $? >"$WORK/attach.exit"
kill "$trayer_pid" 2>/dev/null || true
EOF
WORK=$work BIN=$BIN ADMIN_PORT=$admin_port NO_AT_BRIDGE=1 dbus-run-session -- bash "$work/attach.sh" \
    >"$work/session2.log" 2>&1 &
session_pid=$!
wait_for grep -qs "tray icon ready (showing the meteord at http://127.0.0.1:$admin_port/)" "$work/attach.log" ||
    fail "a second start did not attach to the running server: $(cat "$work/attach.log")"
if grep -q "listening on" "$work/attach.log"; then fail "the second start bound listeners of its own"; fi
wait_for xdotool search --onlyvisible --class trayer >/dev/null || fail "no trayer window for the second tray"
tray=$(xdotool search --onlyvisible --class trayer | head -n1)
eval "$(xdotool getwindowgeometry --shell "$tray")"
icon_x=$((X + WIDTH / 2))
icon_y=$((Y + HEIGHT / 2))
sleep 1
open_menu
import -window root "$shots/tray-menu-attached.png"
xdotool key Up Return
wait_for test -s "$work/attach.exit" || fail "closing the attached tray did not end it"
[ "$(cat "$work/attach.exit")" = 0 ] || fail "the attached tray exited with $(cat "$work/attach.exit")"
[[ "$(control "$first_control" 'ADDMESSAGE c still')" == OK$'\t'* ]] || fail "closing the attached tray stopped the server"
kill -TERM "$first_pid"
wait "$first_pid" || fail "the first server did not stop cleanly"
first_pid=
echo "tray-test.sh: tray icon, menu, pause/resume (the icon follows), update notification, quit, and a second start showing the running server work; screenshots in $shots/tray-*.png"
