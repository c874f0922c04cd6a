#!/usr/bin/env bash
# Fuzzes each fuzz target of the importer (package sharding: the streaming
# JSON reader, the COCO and VG record decoders, the tar shard reader, the
# JPEG header check) for a bounded time, one after another. A failing input
# is written to sharding/testdata/fuzz/<target>/ and the script stops: fix
# the bug and commit the input with the fix, as a regression seed.
#
#   scripts/fuzz.sh                 # 30s per target
#   FUZZTIME=5m scripts/fuzz.sh     # longer (any -fuzztime value: 30s, 2m, 10000x)
#   FUZZ_PARALLEL=1 scripts/fuzz.sh # fewer fuzzing workers (default: one per CPU)
#
# FUZZMINIMIZETIME (default 1s) bounds the time spent shrinking each new
# input, so that a short run fuzzes rather than minimizes.
set -euo pipefail
cd "$(dirname "$0")/.."
GO=${GO:-go}
FUZZTIME=${FUZZTIME:-30s}
FUZZMINIMIZETIME=${FUZZMINIMIZETIME:-1s}
pkg=./sharding
parallel=()
if [ -n "${FUZZ_PARALLEL:-}" ]; then
	parallel=(-parallel "$FUZZ_PARALLEL")
fi
targets=$("$GO" test "$pkg" -list '^Fuzz' | grep '^Fuzz')
for t in $targets; do
	echo "== $t ($FUZZTIME)"
	"$GO" test "$pkg" -run '^$' -fuzz "^${t}\$" -fuzztime "$FUZZTIME" -fuzzminimizetime "$FUZZMINIMIZETIME" "${parallel[@]}"
done
echo "fuzzed: $(echo $targets | wc -w) targets, $FUZZTIME each"
