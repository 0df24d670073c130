#!/usr/bin/env bash
# Footprint of the built binaries: file size per target, and the resident
# memory of an idle server — started with the built-in configuration,
# default snapshot persistence and the admin UI on, no client connected —
# after it has settled.
#
#   bench/footprint.sh [PROFILE]        # default: release
#
# Expects the binaries built first, e.g.
#   cargo build --release --bin meteord --target aarch64-unknown-linux-gnu
# (scripts/installers.sh --release builds all four), in CARGO_TARGET_DIR
# when it is set, else in target/.
#
# Foreign Linux binaries run under qemu-user, whose process holds the
# emulator and its translated code as well as the server. qemu is told to
# keep all guest memory in one fixed range (-B base, -R size), so the
# server's own resident memory is the sum of the Rss of the mappings in
# that range (/proc/PID/smaps); the whole qemu process is shown too.
# TOKIO_WORKER_THREADS=4 mimics a 4-core Raspberry Pi on a smaller machine
# (the runtime starts one worker thread per core).
set -euo pipefail
cd "$(dirname "$0")/.."
profile=${1:-release}
target_dir=${CARGO_TARGET_DIR:-target}
settle=${SETTLE_SECONDS:-5}
GUEST_BASE=0x100000000000

runner() {
    case "$1" in
    aarch64-unknown-linux-gnu) echo "qemu-aarch64 -L /usr/aarch64-linux-gnu -B $GUEST_BASE -R 0x100000000" ;;
    # A 32-bit guest lives in 4 GiB at the base anyway (-R would collide
    # with the ARM vector page at 0xffff0000).
    armv7-unknown-linux-gnueabihf) echo "qemu-arm -L /usr/arm-linux-gnueabihf -B $GUEST_BASE" ;;
    *) echo "" ;;
    esac
}

# "rss anon" in KiB: of the whole process, or with a range size, of the
# mappings inside [GUEST_BASE, GUEST_BASE + size).
rss_of() { # pid [range-size]
    python3 - "$1" "$GUEST_BASE" "${2:-}" <<'PY'
import re, sys
pid, base, size = sys.argv[1], int(sys.argv[2], 16), sys.argv[3]
inside = True
rss = anon = 0
for line in open(f"/proc/{pid}/smaps"):
    m = re.match(r"([0-9a-f]+)-([0-9a-f]+) ", line)
    if m:
        lo, hi = int(m.group(1), 16), int(m.group(2), 16)
        inside = not size or (base <= lo and hi <= base + int(size, 16))
    elif inside and line.startswith("Rss:"):
        rss += int(line.split()[1])
    elif inside and line.startswith("Anonymous:"):
        anon += int(line.split()[1])
print(rss, anon)
PY
}

mib() { awk -v k="$1" 'BEGIN {printf "%.1f", k / 1024}'; }

# Prints "rss anon guest-rss guest-anon" (KiB) of an idle server.
idle_rss() { # target binary
    local data pid run range
    data=$(mktemp -d)
    run=$(runner "$1")
    case "$1" in
    aarch64-* | armv7-*) range=0x100000000 ;;
    *) range="" ;;
    esac
    # shellcheck disable=SC2086 # the runner is words
    $run "$2" -ConfigFileLocation assets/meteord.conf -DataDirectory "$data" \
        -ControllerPort 0 -SubscriberPort 0 -SubscriberIP 127.0.0.1 -AdminPort 0 \
        2>"$data/log" &
    pid=$!
    sleep "$settle"
    if ! grep -q "subscriber listening" "$data/log"; then
        echo "footprint.sh: $2 did not start: $(cat "$data/log")" >&2
        kill "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
        rm -rf "$data"
        return 1
    fi
    local whole guest
    whole=$(rss_of "$pid")
    guest=$whole
    [ -n "$range" ] && guest=$(rss_of "$pid" "$range")
    kill -TERM "$pid"
    wait "$pid" || true
    rm -rf "$data"
    echo "$whole $guest"
}

printf '%-31s %9s %6s | %-21s | %-21s\n' "" "" "" "process RSS MiB" "server RSS MiB"
printf '%-31s %9s %6s | %10s %10s | %10s %10s\n' target bytes MiB total anon total anon
for target in x86_64-unknown-linux-gnu aarch64-unknown-linux-gnu armv7-unknown-linux-gnueabihf x86_64-pc-windows-gnu; do
    bin="$target_dir/$target/$profile/meteord"
    [ "$target" = x86_64-pc-windows-gnu ] && bin="$bin.exe"
    if [ ! -f "$bin" ]; then
        printf '%-31s %9s\n' "$target" "(not built)"
        continue
    fi
    size=$(stat -c %s "$bin")
    m=(- - - -)
    if [ "$target" != x86_64-pc-windows-gnu ]; then
        read -r -a kib <<<"$(idle_rss "$target" "$bin")"
        m=("$(mib "${kib[0]}")" "$(mib "${kib[1]}")" "$(mib "${kib[2]}")" "$(mib "${kib[3]}")")
    fi
    printf '%-31s %9d %6.2f | %10s %10s | %10s %10s\n' "$target" "$size" \
        "$(awk -v b="$size" 'BEGIN {print b / 1048576}')" "${m[@]}"
done
