#!/usr/bin/env bash
# Build what the benchmarks run: the yardsticks (copied from YARDSTICKS_SRC,
# default /work/shared/bench, into target/yardsticks/) and meteord, both in
# release mode. Used by run.sh and cluster.sh.
set -euo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$REPO"
YARDSTICKS_SRC=${YARDSTICKS_SRC:-/work/shared/bench}
YARD="$REPO/target/yardsticks"

printf '\n=== %s\n' "building yardsticks (copy of $YARDSTICKS_SRC in $YARD)" >&2
[[ -f $YARDSTICKS_SRC/Cargo.toml ]] || { echo "build.sh: no $YARDSTICKS_SRC/Cargo.toml" >&2; exit 1; }
mkdir -p "$YARD"
# copy the sources (not any target/), keeping mtimes so cargo rebuilds only on change
for item in "$YARDSTICKS_SRC"/*; do
    name=$(basename "$item")
    [[ $name == target ]] && continue
    rm -rf "${YARD:?}/$name"
    cp -pR "$item" "$YARD/$name"
done
chmod -R u+w "$YARD"
cargo build --release --manifest-path "$YARD/Cargo.toml" 2>&1 | tail -n 3 >&2

printf '\n=== %s\n' "building meteord (cargo build --release)" >&2
if ! cargo build --release --bin meteord 2>&1 | tail -n 3 >&2; then
    echo "build.sh: cargo build --release failed; fix the build (or use --no-build)" >&2
    exit 1
fi
