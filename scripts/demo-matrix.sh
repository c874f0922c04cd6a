#!/usr/bin/env bash
# demo-matrix.sh runs the demo (scripts/demo.sh, as `make demo` does after
# building) once per LibTorch CPU capability × OpenBLAS core type, one run at
# a time (each uses every core), and prints one row per run: the held-out
# figures the demo promises (colour words with one masked a caption, ITM,
# AP50), how many of its printed captions are one of their image's
# captions, the wall time, and whether the run met the demo's bar
# (colour ≥ 0.9, ITM ≥ 0.9, AP50 ≥ 0.5, most captions right).
#
#   CAPS="avx2 avx512"  CORES="SkylakeX Zen"  OUT=build/demo-matrix
#   DEMO_STEPS=…  (and the demo's other variables) forwarded to every run
#
# The capabilities must be ones this CPU has; the core types ones this
# OpenBLAS knows (Zen runs OpenBLAS's Haswell kernels, SkylakeX its AVX-512 ones). Exit status 1
# when any run missed the bar.
set -uo pipefail
cd "$(dirname "$0")/.."
CAPS=${CAPS:-avx2 avx512}
CORES=${CORES:-SkylakeX Zen}
OUT=${OUT:-build/demo-matrix}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)

for cap in $CAPS; do
	for core in $CORES; do
		log="$OUT/$cap-$core.log"
		start=$(date +%s)
		ATEN_CPU_CAPABILITY="$cap" OPENBLAS_CORETYPE="$core" DEMO_DIR="$OUT/$cap-$core" \
			scripts/demo.sh >"$log" 2>&1
		echo "$? $(($(date +%s) - start))" >"$log.rc"
	done
done

printf '%-8s %-10s %8s %8s %8s %10s %8s %s\n' aten openblas colour ITM AP50 captions wall result
fail=0
for cap in $CAPS; do
	for core in $CORES; do
		log="$OUT/$cap-$core.log"
		read -r rc wall <"$log.rc"
		colour=$(sed -n 's/^MLM accuracy, one colour word masked *\([0-9.]*\)%.*/\1/p' "$log" | tail -1)
		itm=$(sed -n 's/^ITM accuracy[^0-9]*\([0-9.]*\)%.*/\1/p' "$log" | tail -1)
		ap50=$(sed -n 's/^detection AP50 *\([0-9.]*\).*/\1/p' "$log" | tail -1)
		right=$(grep -c "greedy .*✓" "$log")
		shown=$(grep -c "^ *greedy " "$log")
		result=pass
		if [ "$rc" != 0 ] || [ -z "$colour" ] || [ -z "$itm" ] || [ -z "$ap50" ] ||
			! awk -v c="$colour" -v i="$itm" -v a="$ap50" -v r="$right" -v n="$shown" \
				'BEGIN { exit !(c >= 90 && i >= 90 && a >= 0.5 && 2 * r > n) }'; then
			result=FAIL
			fail=1
		fi
		printf '%-8s %-10s %7s%% %7s%% %8s %10s %7ss %s\n' "$cap" "$core" "${colour:-?}" "${itm:-?}" "${ap50:-?}" "$right/$shown" "$wall" "$result"
	done
done
exit $fail
