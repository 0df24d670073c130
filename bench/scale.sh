#!/usr/bin/env bash
# Cost as work grows: peak deliveries/s and memory at 1k, 5k, 10k and 19.5k
# subscribers on one channel (meteord and the bare-tokio baseline under the
# shared load generator, side by side), and 10,000 subscribers over 1, 100
# and 10,000 channels (bench/workloads.rs). Writes scale.jsonl, scale.md
# and scale.png into the results directory.
#
#   bench/scale.sh [--no-build] [--out DIR]
set -euo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$REPO"
BUILD=1 OUT=""
while [[ $# -gt 0 ]]; do
    case "$1" in
        --no-build) BUILD=0; shift ;;
        --out) OUT=${2:?}; shift 2 ;;
        *) echo "usage: bench/scale.sh [--no-build] [--out DIR]" >&2; exit 2 ;;
    esac
done
if [[ $BUILD == 1 ]]; then
    bench/build.sh
    cargo build --release --example workloads 2>&1 | tail -n 1 >&2
fi
YARD="$REPO/target/yardsticks/target/release"
OUT=${OUT:-$REPO/target/bench-results/scale-$(date +%Y%m%d-%H%M%S)}
mkdir -p "$OUT"
ulimit -n "$(ulimit -Hn)"
RESULTS="$OUT/scale.jsonl"
: > "$RESULTS"

# shellcheck source=bench/ports.sh
source "$REPO/bench/ports.sh"

# Sockets of the previous run linger in TIME_WAIT for a minute and hold
# their local ports; at 19,500 clients the next run would run out of them.
settle() {
    for _ in $(seq 1 90); do
        (( $(ss -tan state time-wait | wc -l) < 2000 )) && return 0
        sleep 1
    done
}

# One channel, growing subscriber counts: the same loadgen run against each.
for subs in 1000 5000 10000 19500; do
    for target in baseline meteord; do
        settle
        sp=$(free_port) cp=$(free_port)
        if [[ $target == baseline ]]; then
            "$YARD/baseline" --sub-port "$sp" --ctl-port "$cp" 2>"$OUT/$target-$subs.log" &
        else
            rm -rf "$OUT/data"
            target/release/meteord -ConfigFileLocation assets/meteord.conf -ControllerPort "$cp" \
                -SubscriberPort "$sp" -SubscriberIP 127.0.0.1 -MaxTime 0 -AdminPort 0 \
                -DataDirectory "$OUT/data" 2>"$OUT/$target-$subs.log" &
        fi
        pid=$!
        wait_port "$sp" && wait_port "$cp"
        "$YARD/loadgen" fanout --label "$target" --subs "$subs" --rates max --msgs 400 --min-msgs 400 \
            --sub-url "http://127.0.0.1:$sp/push/{id}/xhrinteractive/{chan}" --pub "tcp://127.0.0.1:$cp" \
            --server-pid "$pid" --out "$OUT/$target-$subs.json" >"$OUT/$target-$subs.progress" 2>&1
        kill -TERM "$pid"; wait "$pid" 2>/dev/null || true
        python3 - "$OUT/$target-$subs.json" "$target" "$subs" >>"$RESULTS" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
steps = r.get("steps", [])
peak = max((s.get("deliveries_per_s", 0) for s in steps), default=0)
missing = sum(s.get("missing", 0) for s in steps)
print(json.dumps({"workload": "fanout", "target": sys.argv[2], "subs": int(sys.argv[3]),
                  "connected": r.get("connected"), "deliveries_per_s": peak, "missing": missing,
                  "kib_per_subscriber": r.get("rss_per_sub_bytes", 0) / 1024,
                  "rss_kib": r.get("rss_after_connect_kb")}))
PY
    done
done

# 10,000 subscribers over more and more channels.
for channels in 1 100 10000; do
    count=$(( channels == 1 ? 400 : channels == 100 ? 40000 : 200000 ))
    target/release/examples/workloads channels --subs 10000 --channels "$channels" --count "$count" \
        >>"$RESULTS" 2>>"$OUT/channels.log"
done

python3 bench/scale_report.py "$OUT"
