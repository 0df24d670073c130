#!/usr/bin/env bash
# The redis engine: one node against two, with the memory engine for reference.
#
#   bench/cluster.sh                     # 10,000 subscribers, 1 run of each setup
#   bench/cluster.sh --subs 4000 --runs 3
#
# Setups (same rate ladder and subscriber count N in each):
#   memory   one node, memory engine: subscribers and publisher on it
#   redis-1  one node, redis engine: subscribers and publisher on it
#   redis-2  two nodes, redis engine: the publisher on node A; N/2 subscribers
#            on node B (measured by `loadgen fanout`) and N/2 on node A (held
#            by a `loadgen shard` of their own, asked for its figures at the end)
# then, in each setup, COUNT pipelined ADDMESSAGEs on one control connection
# (`loadgen control`; for redis-2 on node A).
# A redis-server of its own runs on a free loopback port (no disk: --save ""
# --appendonly no). See bench/README.md ("Cluster") for the figures.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$REPO"
YARDSTICKS_SRC=${YARDSTICKS_SRC:-/work/shared/bench}
YARD="$REPO/target/yardsticks"

SUBS=10000 RUNS=1 MSGS=200 COUNT=200000 BUILD=1 OUT="" SETUPS="memory redis-1 redis-2"
while [[ $# -gt 0 ]]; do
    case "$1" in
        --subs) SUBS=${2:?}; shift 2 ;;
        --runs) RUNS=${2:?}; shift 2 ;;
        --msgs) MSGS=${2:?}; shift 2 ;;
        --count) COUNT=${2:?}; shift 2 ;;
        --setups) SETUPS=${2:?}; shift 2 ;;
        --no-build) BUILD=0; shift ;;
        --out) OUT=${2:?}; shift 2 ;;
        -h|--help) sed -n 2,15p "$0"; exit 0 ;;
        *) echo "cluster.sh: unknown option '$1'" >&2; exit 2 ;;
    esac
done
RATES=2,10,50,200,1000,max
MIN_MSGS=20
(( MIN_MSGS > MSGS )) && MIN_MSGS=$MSGS
command -v redis-server >/dev/null || { echo "cluster.sh: needs redis-server (apt-get install redis-server)" >&2; exit 1; }

want_fds=20000
hard=$(ulimit -Hn)
if [[ $hard != unlimited && $hard -lt $want_fds ]]; then want_fds=$hard; fi
ulimit -n "$want_fds"

log() { printf '\n=== %s\n' "$*" >&2; }
if [[ $BUILD == 1 ]]; then
    YARDSTICKS_SRC=$YARDSTICKS_SRC "$REPO/bench/build.sh"
fi
LOADGEN="$YARD/target/release/loadgen"
METEORD="$REPO/target/release/meteord"
CONF="$REPO/assets/meteord.conf"
for b in "$LOADGEN" "$METEORD"; do [[ -x $b ]] || { echo "cluster.sh: missing $b" >&2; exit 1; }; done

OUT=${OUT:-$REPO/target/bench-results/cluster-$(date +%Y%m%d-%H%M%S)}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)

PIDS=()
cleanup() {
    local pid
    for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    sleep 1
    for pid in "${PIDS[@]}"; do kill -KILL "$pid" 2>/dev/null || true; done
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# shellcheck source=bench/ports.sh
source "$REPO/bench/ports.sh"

REDIS_PORT=$(free_port)
mkdir -p "$OUT/redis"
redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --dir "$OUT/redis" --save "" \
    --appendonly no --daemonize no >"$OUT/redis.log" 2>&1 &
REDIS_PID=$!
PIDS+=("$REDIS_PID")
wait_port "$REDIS_PORT"
REDIS_URL="redis://127.0.0.1:$REDIS_PORT/"

# start_node NAME ENGINE -> prints "PID SUBPORT CTLPORT"
start_node() {
    local name=$1 engine=$2 sp cp
    sp=$(free_port); cp=$(free_port)
    rm -rf "$OUT/data-$name"
    "$METEORD" -ConfigFileLocation "$CONF" -ControllerPort "$cp" -SubscriberPort "$sp" \
        -SubscriberIP 127.0.0.1 -MaxTime 0 -Persistence off -DataDirectory "$OUT/data-$name" \
        -AdminPort 0 -Engine "$engine" -RedisURL "$REDIS_URL" -NodeName "$name" \
        2>"$OUT/$name.log" &
    local pid=$!
    wait_port "$sp" && wait_port "$cp"
    echo "$pid $sp $cp"
}

sub_url() { echo "http://127.0.0.1:$1/push/{id}/xhrinteractive/{chan}"; }

for run in $(seq 1 "$RUNS"); do
    for setup in $SETUPS; do
        redis-cli -p "$REDIS_PORT" FLUSHALL >/dev/null
        log "run $run: $setup ($SUBS subscribers)"
        case $setup in
            memory|redis-1)
                engine=memory; [[ $setup == redis-1 ]] && engine=redis
                read -r pid sp cp < <(start_node "$setup-$run" "$engine")
                PIDS+=("$pid")
                "$LOADGEN" fanout --label "$setup" --subs "$SUBS" --rates "$RATES" --msgs "$MSGS" \
                    --min-msgs "$MIN_MSGS" --sub-url "$(sub_url "$sp")" --pub "tcp://127.0.0.1:$cp" \
                    --server-pid "$pid" --out "$OUT/$setup-$run.json" 2>"$OUT/$setup-$run.log"
                "$LOADGEN" control --label "$setup" --pub "tcp://127.0.0.1:$cp" --count "$COUNT" \
                    --server-pid "$pid" --out "$OUT/$setup-control-$run.json" 2>>"$OUT/$setup-$run.log"
                kill -TERM "$pid"; wait "$pid" 2>/dev/null || true
                ;;
            redis-2)
                read -r pa spa cpa < <(start_node "a-$run" redis)
                PIDS+=("$pa")
                read -r pb spb cpb < <(start_node "b-$run" redis)
                PIDS+=("$pb")
                half=$((SUBS / 2))
                # Node A's half: a shard of its own, fed commands through a fifo.
                fifo="$OUT/shard-a-$run.in"
                rm -f "$fifo"; mkfifo "$fifo"
                "$LOADGEN" shard --sub-url "$(sub_url "$spa")" --subs "$half" --nonce a \
                    --channel bench --threads 1 <"$fifo" >"$OUT/shard-a-$run.out" 2>&1 &
                shard=$!
                PIDS+=("$shard")
                exec 7>"$fifo"
                for _ in $(seq 1 600); do grep -q '^READY' "$OUT/shard-a-$run.out" && break; sleep 0.1; done
                grep -q '^READY' "$OUT/shard-a-$run.out" || { echo "cluster.sh: node A's subscribers did not connect" >&2; exit 1; }
                "$LOADGEN" fanout --label redis-2 --subs "$((SUBS - half))" --rates "$RATES" \
                    --msgs "$MSGS" --min-msgs "$MIN_MSGS" --sub-url "$(sub_url "$spb")" \
                    --pub "tcp://127.0.0.1:$cpa" --server-pid "$pa" --server-pid "$pb" \
                    --out "$OUT/redis-2-$run.json" 2>"$OUT/redis-2-$run.log"
                # Node A's half of every step, then done.
                for step in $(python3 -c "import json,sys; print(' '.join(str(s['step']) for s in json.load(open(sys.argv[1]))['steps']))" "$OUT/redis-2-$run.json"); do
                    echo "R $step" >&7
                done
                echo "Q" >&7
                exec 7>&-
                wait "$shard" 2>/dev/null || true
                # Pipelined publishing on A while B follows the log too.
                "$LOADGEN" control --label redis-2 --pub "tcp://127.0.0.1:$cpa" --count "$COUNT" \
                    --server-pid "$pa" --server-pid "$pb" --out "$OUT/redis-2-control-$run.json" \
                    2>>"$OUT/redis-2-$run.log"
                kill -TERM "$pa" "$pb"; wait "$pa" "$pb" 2>/dev/null || true
                ;;
            *) echo "cluster.sh: unknown setup $setup" >&2; exit 2 ;;
        esac
    done
done

python3 "$REPO/bench/cluster_report.py" "$OUT" | tee "$OUT/report.md"
