#!/usr/bin/env bash
# Publish→deliver latency for normal subscribers, with and without an
# attack of slow clients holding connections open by trickling a request
# line (slowloris). Same server build, same load, one after the other.
#
#   bash bench/attack.sh            # 2,000 subscribers, 2,000 attackers
#   SUBS=5000 ATTACKERS=5000 bash bench/attack.sh
#
# Loopback only; the attack is bounded (it ends with the run).
set -euo pipefail
cd "$(dirname "$0")/.."
SUBS=${SUBS:-2000}
ATTACKERS=${ATTACKERS:-2000}
YARD=target/yardsticks
if [ ! -x "$YARD/target/release/loadgen" ]; then
    rm -rf "$YARD" && mkdir -p "$YARD"
    cp -r "${YARDSTICKS_SRC:-../shared/bench}/." "$YARD/"
    (cd "$YARD" && cargo build --release >/dev/null 2>&1)
fi
cargo build --release --locked --bin meteord >/dev/null 2>&1
OUT=target/bench-attack
rm -rf "$OUT" && mkdir -p "$OUT"
ulimit -n 20000

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

run() { # label attackers
    local label=$1 attackers=$2 ctl sub pid attack=""
    ctl=$(free_port); sub=$(free_port)
    target/release/meteord -ConfigFileLocation assets/meteord.conf -ControllerPort "$ctl" \
        -SubscriberPort "$sub" -SubscriberIP 127.0.0.1 -MaxTime 0 -AdminPort 0 \
        -Persistence off -DataDirectory "$OUT/data-$label" 2>"$OUT/$label-server.log" &
    pid=$!
    sleep 0.5
    if [ "$attackers" -gt 0 ]; then
        python3 - "$sub" "$attackers" <<'PY' &
import socket, sys, time
port, n = int(sys.argv[1]), int(sys.argv[2])
conns = []
for _ in range(n):
    s = socket.create_connection(("127.0.0.1", port)); s.sendall(b"GET /push/slow"); conns.append(s)
end = time.time() + 600
while time.time() < end:
    for s in conns:
        try: s.sendall(b"a")
        except OSError: pass
    time.sleep(1)
PY
        attack=$!
        sleep 3
    fi
    "$YARD/target/release/loadgen" fanout --label "$label" --subs "$SUBS" --rates 2,10,50 --msgs 100 \
        --sub-url "http://127.0.0.1:$sub/push/{id}/xhrinteractive/{chan}" --pub "tcp://127.0.0.1:$ctl" \
        --server-pid "$pid" --out "$OUT/$label.json" >"$OUT/$label.log" 2>&1
    [ -n "$attack" ] && kill "$attack" 2>/dev/null || true
    kill -TERM "$pid"; wait "$pid" || true
}

run calm 0
run attacked "$ATTACKERS"

python3 - "$OUT" <<'PY'
import json, sys
out = sys.argv[1]
def steps(label):
    data = json.load(open(f"{out}/{label}.json"))
    return {str(s["rate_msgs_per_s"]): s for s in data["steps"]}
calm, attacked = steps("calm"), steps("attacked")
print("| rate msg/s | p99 calm | p99 under attack | ratio | missing (calm / attack) |")
print("|---|---|---|---|---|")
for rate in calm:
    c, a = calm[rate], attacked.get(rate)
    if not a:
        continue
    cp, ap = c["lat_us"]["p99"] / 1000, a["lat_us"]["p99"] / 1000
    print(f"| {rate} | {cp:.0f} ms | {ap:.0f} ms | {ap / cp:.2f}x | {c['missing']} / {a['missing']} |")
PY
