#!/usr/bin/env bash
# Publishing throughput in each persistence mode, and restore time.
#
#   bench/persistence.sh            # prints a markdown table
#
# For each mode (off, snapshot, durable): one pipelining connection
# (batches of 1000) and 16 concurrent connections (batches of 100), 5 s
# each, 64-byte messages. Then 1,000 channels x 250 messages are written in
# snapshot mode and the time a restart takes to restore them is read from
# the server's log.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --bin meteord --example publish >/dev/null 2>&1
BIN=target/release/meteord
PUB=target/release/examples/publish
WORK=target/bench-persistence
rm -rf "$WORK" && mkdir -p "$WORK"

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

start() { # mode datadir logfile -> sets PID CTL
    CTL=$(free_port); local sub; sub=$(free_port)
    "$BIN" -ConfigFileLocation assets/meteord.conf -ControllerPort "$CTL" -SubscriberPort "$sub" \
        -SubscriberIP 127.0.0.1 -Persistence "$1" -DataDirectory "$2" -MaxMessagesPerChannel 250 -AdminPort 0 2>"$3" &
    PID=$!
    for _ in $(seq 100); do grep -q "control listening" "$3" 2>/dev/null && return; sleep 0.1; done
    echo "server did not start: $(cat "$3")" >&2; exit 1
}
stop() { kill -TERM "$PID"; wait "$PID" || true; }
rate() { python3 -c 'import json,sys; print(int(json.load(sys.stdin)["per_second"]))'; }

# Modes are interleaved, three rounds, and medians reported: on two shared
# cores a single 5 s run of one mode varies by 10-15%.
RESULTS="$WORK/results.txt"
: >"$RESULTS"
for round in 1 2 3; do
    for mode in off snapshot durable; do
        rm -rf "$WORK/$mode"
        start "$mode" "$WORK/$mode" "$WORK/$mode.log"
        one=$("$PUB" --addr "127.0.0.1:$CTL" --connections 1 --batch 1000 --seconds 5 --channels 100 | rate)
        sixteen=$("$PUB" --addr "127.0.0.1:$CTL" --connections 16 --batch 100 --seconds 5 --channels 100 | rate)
        stop
        echo "$mode $one $sixteen" >>"$RESULTS"
    done
done
python3 - "$RESULTS" <<'PY'
import statistics, sys
rows = [l.split() for l in open(sys.argv[1])]
med = {m: [statistics.median(float(r[i]) for r in rows if r[0] == m) for i in (1, 2)]
       for m in ("off", "snapshot", "durable")}
print("| mode | 1 connection, pipelined (msgs/s) | 16 connections (msgs/s) | vs off (1 / 16) |")
print("|---|---|---|---|")
for m in ("off", "snapshot", "durable"):
    one, sixteen = med[m]
    print(f"| {m} | {one:,.0f} | {sixteen:,.0f} | {one/med['off'][0]:.3f} / {sixteen/med['off'][1]:.3f} |")
PY

# Restore time: 1,000 channels x 250 messages.
start snapshot "$WORK/restore" "$WORK/fill.log"
"$PUB" --addr "127.0.0.1:$CTL" --connections 4 --batch 1000 --channels 1000 --count 250000 >/dev/null
stop
start snapshot "$WORK/restore" "$WORK/restore.log"
stop
echo
grep -o "restored [0-9]* messages.* in [^;]*" "$WORK/restore.log"
