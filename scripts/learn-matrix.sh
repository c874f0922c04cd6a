#!/usr/bin/env bash
# learn-matrix.sh runs the learning test (model.TestModelLearnsShapes) over
# seeds × LibTorch CPU capabilities × OpenBLAS core types, several runs at a
# time (one LibTorch thread each), and prints one row per run with the four
# held-out metrics and whether the run passed. Other CPUs' kernels are
# imitated by the kernels the libraries are told to pick; other seeds draw
# other training and held-out worlds and another initialisation.
#
#   SEEDS="1 2 3"  CAPS="avx2 default"  CORES="Haswell Zen"  JOBS=$(nproc)
#   OUT=build/learn-matrix      (one log per run)
#   EXTRA_ENV="VLP_LEARN_STEPS=3000 ..."   forwarded to every run
#
# The capabilities must be ones this CPU has (default, avx2, avx512); the
# core types ones this OpenBLAS knows (e.g. Haswell, SkylakeX, Zen,
# Sandybridge). Exit status 1 when any run failed.
set -uo pipefail
cd "$(dirname "$0")/.."
SEEDS=${SEEDS:-1 2 3}
CAPS=${CAPS:-avx2 default}
CORES=${CORES:-Haswell Zen}
JOBS=${JOBS:-$(nproc)}
OUT=${OUT:-build/learn-matrix}
EXTRA_ENV=${EXTRA_ENV:-}
LIB=${VLP_TORCH_LIB:-$PWD/build/lib/libvlptorch.so}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
test_bin="$OUT/model.test"
go test -c -o "$test_bin" ./model || exit 1

run() { # run SEED CAP CORE: one learning test, its log in $OUT
	local seed=$1 cap=$2 core=$3
	local log="$OUT/seed$seed-$cap-$core.log"
	(cd model && env VLP_TORCH_LIB="$LIB" VLP_LEARN_SEED="$seed" \
		ATEN_CPU_CAPABILITY="$cap" OPENBLAS_CORETYPE="$core" $EXTRA_ENV \
		"$test_bin" -test.run '^TestModelLearnsShapes$' -test.v -test.timeout 60m) >"$log" 2>&1
	echo "$?" >"$log.rc"
}

start=$(date +%s)
n=0
for seed in $SEEDS; do
	for cap in $CAPS; do
		for core in $CORES; do
			run "$seed" "$cap" "$core" &
			n=$((n + 1))
			if [ $((n % JOBS)) -eq 0 ]; then wait; fi
		done
	done
done
wait

printf '%-5s %-8s %-12s %10s %8s %8s %8s %8s %s\n' seed aten openblas "MLM colour" ITM AP50 caption wall result
fail=0
for seed in $SEEDS; do
	for cap in $CAPS; do
		for core in $CORES; do
			log="$OUT/seed$seed-$cap-$core.log"
			# "held-out: MLM colour acc 0.9453, ITM acc 0.9609, AP50 0.681269, caption token acc 0.8361"
			read -r mlm itm ap cap_acc < <(sed -n 's/.*held-out: MLM colour acc \([0-9.]*\), ITM acc \([0-9.]*\), AP50 \([0-9.]*\), caption token acc \([0-9.]*\).*/\1 \2 \3 \4/p' "$log" | tail -1)
			wall=$(sed -n 's/.*wall time: \([0-9hms.]*\) training.*/\1/p' "$log" | tail -1)
			result=pass
			if [ "$(cat "$log.rc" 2>/dev/null)" != 0 ]; then result=FAIL; fail=1; fi
			printf '%-5s %-8s %-12s %10s %8s %8s %8s %8s %s\n' "$seed" "$cap" "$core" "${mlm:--}" "${itm:--}" "${ap:--}" "${cap_acc:--}" "${wall:--}" "$result"
		done
	done
done
echo "thresholds: MLM colour 0.9, ITM 0.9, AP50 0.5, caption 0.8; $(( ($(date +%s) - start) / 60 )) min in all, $JOBS at a time; logs in $OUT"
exit $fail
