#!/usr/bin/env bash
# Fan-out benchmark: our meteord against the bare-tokio baseline, side by side in one run.
#
#   bench/run.sh                 # 10,000 subscribers, 3 runs, medians
#   bench/run.sh --quick         # smoke run: 1,000 subscribers, 1 run, fewer messages
#   bench/run.sh --subs 5000 --runs 5
#
# See bench/README.md for what the figures mean and the targets.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$REPO"

YARDSTICKS_SRC=${YARDSTICKS_SRC:-/work/shared/bench}
YARD="$REPO/target/yardsticks"
TARGETS=(baseline meteord)

usage() {
    cat <<EOF
usage: bench/run.sh [--subs N] [--runs R] [--quick] [--msgs M] [--count K] [--no-build] [--out DIR]
                    [--also NAME=BINARY ...]

  --subs N     subscribers per fan-out run (default 10000; --quick: 1000)
  --runs R     repetitions per target; the report shows medians (default 3; --quick: 1)
  --quick      smoke run: 1000 subscribers, 1 run, 50 messages per step (min 10)
  --msgs M     messages per rate step, loadgen --msgs (default 200; --quick: 50)
  --count K    pipelined ADDMESSAGEs for the control benchmark (default 200000)
  --no-build   reuse target/release/meteord and the built yardsticks as they are
  --out DIR    results directory (default target/bench-results/<timestamp>)
  --also NAME=BINARY
               run another meteord build as target NAME, the same way, in the
               same run (e.g. the build before a change: --also before=/tmp/meteord-old)

Environment: YARDSTICKS_SRC (default /work/shared/bench) is copied to target/yardsticks.
EOF
}

SUBS="" RUNS="" MSGS="" COUNT="" MIN_MSGS="" QUICK=0 BUILD=1 OUT=""
declare -A OTHER_BINS=()
while [[ $# -gt 0 ]]; do
    case "$1" in
        --subs) SUBS=${2:?--subs needs a value}; shift 2 ;;
        --runs) RUNS=${2:?--runs needs a value}; shift 2 ;;
        --msgs) MSGS=${2:?--msgs needs a value}; shift 2 ;;
        --count) COUNT=${2:?--count needs a value}; shift 2 ;;
        --quick) QUICK=1; shift ;;
        --no-build) BUILD=0; shift ;;
        --out) OUT=${2:?--out needs a value}; shift 2 ;;
        --also)
            spec=${2:?--also needs NAME=BINARY}
            name=${spec%%=*} bin=${spec#*=}
            [[ $name =~ ^[a-z][a-z0-9_-]*$ && $name != baseline && $name != meteord && -x $bin ]] ||
                { echo "run.sh: --also $spec: want NAME=BINARY with an executable BINARY" >&2; exit 2; }
            OTHER_BINS[$name]=$(cd "$(dirname "$bin")" && pwd)/$(basename "$bin")
            TARGETS+=("$name")
            shift 2 ;;
        -h|--help) usage; exit 0 ;;
        *) echo "run.sh: unknown option '$1'" >&2; usage >&2; exit 2 ;;
    esac
done
if [[ $QUICK == 1 ]]; then
    SUBS=${SUBS:-1000} RUNS=${RUNS:-1} MSGS=${MSGS:-50} MIN_MSGS=10
fi
SUBS=${SUBS:-10000} RUNS=${RUNS:-3} MSGS=${MSGS:-200} COUNT=${COUNT:-200000}
# loadgen clamps each step's message count to [--min-msgs (default 20), --msgs]
# and panics if min > max, so keep min-msgs <= msgs.
MIN_MSGS=${MIN_MSGS:-20}
if (( MIN_MSGS > MSGS )); then MIN_MSGS=$MSGS; fi
for v in "$SUBS" "$RUNS" "$MSGS" "$COUNT"; do
    [[ $v =~ ^[1-9][0-9]*$ ]] || { echo "run.sh: '$v' is not a positive integer" >&2; exit 2; }
done
RATES=2,10,50,200,1000,max

# ---------------------------------------------------------------- limits
want_fds=20000
hard=$(ulimit -Hn)
if [[ $hard != unlimited && $hard -lt $want_fds ]]; then want_fds=$hard; fi
ulimit -n "$want_fds"
if (( SUBS + 100 > want_fds )); then
    echo "run.sh: warning: --subs $SUBS is close to the fd limit $want_fds of one server process" >&2
fi

# ---------------------------------------------------------------- build
log() { printf '\n=== %s\n' "$*" >&2; }

if [[ $BUILD == 1 ]]; then
    YARDSTICKS_SRC=$YARDSTICKS_SRC "$REPO/bench/build.sh"
fi
BASELINE_BIN="$YARD/target/release/baseline"
LOADGEN_BIN="$YARD/target/release/loadgen"
METEORD_BIN="$REPO/target/release/meteord"
METEORD_CONF="$REPO/assets/meteord.conf"
for b in "$BASELINE_BIN" "$LOADGEN_BIN" "$METEORD_BIN"; do
    [[ -x $b ]] || { echo "run.sh: missing $b (run without --no-build)" >&2; exit 1; }
done

OUT=${OUT:-$REPO/target/bench-results/$(date +%Y%m%d-%H%M%S)}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)

# ---------------------------------------------------------------- server control
SERVER_PID=""
cleanup() {
    if [[ -n $SERVER_PID ]] && kill -0 "$SERVER_PID" 2>/dev/null; then
        kill -TERM "$SERVER_PID" 2>/dev/null || true
        sleep 1
        kill -KILL "$SERVER_PID" 2>/dev/null || true
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Two distinct free loopback ports, below the ephemeral range so the subscriber
# connections of loadgen never collide with them.
free_ports() {
    python3 - <<'EOF'
import random, socket
got = []
while len(got) < 2:
    p = random.randrange(20000, 32000)
    if p in got:
        continue
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", p))
        got.append(p)
    except OSError:
        pass
    finally:
        s.close()
print(*got)
EOF
}

# shellcheck source=bench/ports.sh
source "$REPO/bench/ports.sh"

# start_server TARGET SUBPORT CTLPORT LOGFILE -> sets SERVER_PID
start_server() {
    local target=$1 sp=$2 cp=$3 logf=$4
    case "$target" in
        baseline)
            "$BASELINE_BIN" --sub-port "$sp" --ctl-port "$cp" 2>"$logf" &
            ;;
        *)
            # meteord, or another build of it (--also).
            # -MaxTime 0: the built-in config closes subscribers after 240 s otherwise.
            # Default persistence (snapshot), with its database under target/.
            local bin=$METEORD_BIN
            [[ $target == meteord ]] || bin=${OTHER_BINS[$target]}
            rm -rf "$OUT/meteord-data"
            "$bin" -ConfigFileLocation "$METEORD_CONF" -ControllerPort "$cp" \
                -SubscriberPort "$sp" -SubscriberIP 127.0.0.1 -MaxTime 0 \
                -DataDirectory "$OUT/meteord-data" -AdminPort 0 2>"$logf" &
            ;;
    esac
    SERVER_PID=$!
    local i
    for i in $(seq 1 200); do
        if ! kill -0 "$SERVER_PID" 2>/dev/null; then
            echo "run.sh: $target exited during start-up; its log ($logf):" >&2
            tail -n 20 "$logf" >&2
            SERVER_PID=""
            return 1
        fi
        if port_open "$sp" && port_open "$cp"; then return 0; fi
        sleep 0.1
    done
    echo "run.sh: $target did not open ports $sp/$cp within 20 s" >&2
    return 1
}

stop_server() {
    [[ -n $SERVER_PID ]] || return 0
    kill -TERM "$SERVER_PID" 2>/dev/null || true
    local i
    for i in $(seq 1 100); do
        kill -0 "$SERVER_PID" 2>/dev/null || break
        sleep 0.1
    done
    kill -KILL "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
    SERVER_PID=""
}

# ---------------------------------------------------------------- runs
cat >"$OUT/meta.json" <<EOF
{"subs": $SUBS, "runs": $RUNS, "quick": $QUICK, "msgs": $MSGS, "min_msgs": $MIN_MSGS, "rates": "$RATES", "control_count": $COUNT, "targets": [$(printf '"%s",' "${TARGETS[@]}" | sed 's/,$//')], "nproc": $(nproc), "fd_limit": $want_fds, "started": "$(date -Iseconds)"}
EOF
log "results in $OUT  (subs=$SUBS runs=$RUNS msgs=$MSGS control count=$COUNT)"

for run in $(seq 1 "$RUNS"); do
    for target in "${TARGETS[@]}"; do
        read -r SP CP < <(free_ports)
        log "run $run/$RUNS: $target (subscribers :$SP, control :$CP)"
        start_server "$target" "$SP" "$CP" "$OUT/$target-server-$run.log"
        # fan-out: rate ladder over N streaming subscribers
        "$LOADGEN_BIN" fanout --label "$target" --subs "$SUBS" --rates "$RATES" \
            --msgs "$MSGS" --min-msgs "$MIN_MSGS" \
            --sub-url "http://127.0.0.1:$SP/push/{id}/xhrinteractive/{chan}" \
            --pub "tcp://127.0.0.1:$CP" --server-pid "$SERVER_PID" \
            --out "$OUT/$target-fanout-$run.json" 2>&1 | tee "$OUT/$target-fanout-$run.log" >&2
        # control port: pipelined ADDMESSAGE throughput on one connection
        "$LOADGEN_BIN" control --label "$target" --pub "tcp://127.0.0.1:$CP" --count "$COUNT" \
            --server-pid "$SERVER_PID" \
            --out "$OUT/$target-control-$run.json" 2>&1 | tee "$OUT/$target-control-$run.log" >&2
        if ! kill -0 "$SERVER_PID" 2>/dev/null; then
            echo "run.sh: warning: $target died during the run; see $OUT/$target-server-$run.log" >&2
        fi
        stop_server
        for f in "$OUT/$target-fanout-$run.json" "$OUT/$target-control-$run.json"; do
            [[ -s $f ]] || { echo "run.sh: loadgen wrote no $f" >&2; exit 1; }
        done
    done
done

log "report"
python3 "$REPO/bench/report.py" "$OUT" | tee "$OUT/report.md"
