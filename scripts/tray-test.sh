#!/usr/bin/env bash
# The tray icon, for real: the `tray` build runs under a virtual X display
# (Xvfb) with a tray host (trayer) in its own D-Bus session. The test
# clicks the icon, picks "Pause publishing" from the menu and checks that
# the control port then refuses to publish, then picks "Quit" and checks
# that the server shuts down cleanly. A screenshot of the open menu is
# kept in target/screenshots/tray-menu.png.
#
# Expects target/debug/meteord built with `--features tray` (scripts/test.sh
# builds it); builds it when missing. Installs its Debian packages when
# missing (as root).
set -euo pipefail
cd "$(dirname "$0")/.."

PACKAGES=(libgtk-3-dev libayatana-appindicator3-dev xvfb trayer dbus-x11 imagemagick xdotool)
bash scripts/ensure-packages.sh "${PACKAGES[@]}"

BIN=${METEORD_BIN:-target/debug/meteord}
if [ ! -x "$BIN" ]; then
    cargo build --locked --features tray
fi

work=$(mktemp -d)
shots=target/screenshots
mkdir -p "$shots"
xvfb_pid=
session_pid=
# Stop the server first, so that its D-Bus session ends by itself (and
# takes its bus daemon along), then the display.
cleanup() {
    if [ -s "$work/server.pid" ]; then kill "$(cat "$work/server.pid")" 2>/dev/null || true; fi
    if [ -n "$session_pid" ]; then
        for _ in $(seq 100); do kill -0 "$session_pid" 2>/dev/null || break; sleep 0.1; done
        kill "$session_pid" 2>/dev/null || true
    fi
    if [ -n "$xvfb_pid" ]; then kill "$xvfb_pid" 2>/dev/null || true; fi
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

# Everything that talks to the tray shares one D-Bus session.
cat >"$work/session.sh" <<'EOF'
set -euo pipefail
trayer --edge top --align left --widthtype request --height 32 --SetDockType true \
    --transparent false --tint 0xffffff --expand false >"$WORK/trayer.log" 2>&1 &
trayer_pid=$!
"$BIN" -ConfigFileLocation assets/meteord.conf -ControllerPort 0 -SubscriberPort 0 \
    -SubscriberIP 127.0.0.1 -AdminPort 0 -Persistence off -TLS self-signed \
    -DataDirectory "$WORK/data" -LogDirectory "$WORK/logs" >"$WORK/server.log" 2>&1 &
echo $! >"$WORK/server.pid"
wait "$(cat "$WORK/server.pid")"
echo $? >"$WORK/server.exit"
kill "$trayer_pid" 2>/dev/null || true
EOF
# NO_AT_BRIDGE: no accessibility bus (GTK would start one that outlives us).
WORK=$work BIN=$BIN NO_AT_BRIDGE=1 dbus-run-session -- bash "$work/session.sh" \
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

# Resume, then Quit (the last item).
open_menu
xdotool key Down Down Return
resumed() { [[ "$(control "$port" 'ADDMESSAGE c after')" == OK$'\t'* ]]; }
wait_for resumed || fail "'Resume publishing' did not resume publishing"
open_menu
xdotool key Up Return
wait_for test -s "$work/server.exit" || fail "'Quit' did not stop the server"
[ "$(cat "$work/server.exit")" = 0 ] || fail "the server exited with $(cat "$work/server.exit")"
grep -q "tray: quit" "$work/server.log" || fail "the server did not stop through the tray"
grep -q "shutdown complete" "$work/server.log" || fail "no graceful shutdown"
grep -q "tray: quit" "$work"/logs/meteord.*.log || fail "the log file misses the quit"
echo "tray-test.sh: tray icon, menu, pause/resume and quit work; screenshot in $shots/tray-menu.png"
