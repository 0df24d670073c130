#!/usr/bin/env bash
# Run the parser property tests (tests/fuzz.rs) far longer than the default
# test run does: CASES random inputs per property (default 200,000), release
# build. Prints the cases run and the time; any failure is shrunk to a
# minimal input by proptest and printed, and belongs in a regression test.
#
#   bash scripts/fuzz.sh            # 200,000 cases per property
#   CASES=2000000 bash scripts/fuzz.sh
set -euo pipefail
cd "$(dirname "$0")/.."
CASES=${CASES:-200000}
start=$(date +%s)
PROPTEST_CASES=$CASES cargo test --release --locked --test fuzz -- --test-threads 2 2>&1 | tail -15
end=$(date +%s)
properties=$(grep -c '^    fn ' tests/fuzz.rs)
echo "fuzz: $properties properties x $CASES cases = $((properties * CASES)) executions in $((end - start)) s"
