#!/usr/bin/env bash
# The demo: what `make demo` runs after installing and building. Everything it
# writes goes under $DEMO_DIR (default out/demo, git-ignored); a rerun starts
# afresh. DEMO_IMAGES, DEMO_STEPS, DEMO_WORKERS, DEMO_THREADS and DEMO_EVAL scale it.
set -euo pipefail
cd "$(dirname "$0")/.."
VLP=${VLP:-build/bin/vlp}
OUT=${DEMO_DIR:-out/demo}
IMAGES=${DEMO_IMAGES:-4000}
STEPS=${DEMO_STEPS:-3000}
WORKERS=${DEMO_WORKERS:-2}
THREADS=${DEMO_THREADS:-1}
# Held-out images of the end-of-run evaluation: a rate near 0.9 measured on 128 moves by about
# ±0.03 from one held-out world to the next, on 1024 by about ±0.01 (a few seconds more).
EVAL=${DEMO_EVAL:-1024}
SIZE=64
case "$OUT" in
"" | / | . | .. | "$HOME") echo "demo: refusing DEMO_DIR=$OUT" >&2; exit 1 ;;
esac

step() { printf '\n== %s\n' "$*"; }
start=$(date +%s)

"$VLP" version
step "LibTorch"
"$VLP" torch check

rm -rf "$OUT"
mkdir -p "$OUT"
step "synthetic COCO + Visual Genome: $IMAGES images of ${SIZE}px, 1-2 shapes each"
"$VLP" data synth --out "$OUT/raw" --images "$IMAGES" --width "$SIZE" --height "$SIZE" --max-objects 2

step "shards"
"$VLP" shard build --coco "$OUT/raw/coco" --vg "$OUT/raw/vg" --out "$OUT/shards" --shard-size 500 --quiet
"$VLP" shard verify "$OUT/shards"

step "training: $WORKERS worker processes, tiny preset, $STEPS steps (a coordinator with embedded NATS in this process)"
"$VLP" --log-level warn train --workers "$WORKERS" --threads "$THREADS" --preset tiny \
	--data "$OUT/shards" --image-size "$SIZE" --batch 32 --lr 1e-3 --steps "$STEPS" \
	--attribute-mask 0.5 --itm-negatives 0.25 \
	--checkpoint-every 200 --progress-every 20 --eval "$EVAL" --dir "$OUT/run"

step "checkpoints"
"$VLP" checkpoint ls --store "$OUT/run/checkpoints/checkpoints.db"

end=$(date +%s)
step "done in $((end - start)) s"
echo "loss curve:  $OUT/run/loss-curve.png"
echo "predictions: $OUT/run/boxes.png"
echo "worker logs: $OUT/run/worker-*.log; TensorBoard event files: $OUT/run/events"
