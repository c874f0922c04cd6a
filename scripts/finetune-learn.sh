#!/usr/bin/env bash
# The fine-tuning learning tests (docs/finetune.md, "Learning tests"): what `make finetune-learn`
# runs after installing and building. They fine-tune make demo's pretraining checkpoint, so the
# demo runs first when $DEMO_DIR (default out/demo) has none. FINETUNE_TASKS (default vqa,nlvr2;
# also caption, retrieval), FINETUNE_SEED (default 1) and FINETUNE_STEPS (default: the test's,
# 2500 for VQA and 1500 for the others) choose the run; about 25 minutes on 2 cores for the
# default tasks.
set -euo pipefail
cd "$(dirname "$0")/.."
GO=${GO:-go}
OUT=${DEMO_DIR:-out/demo}
STORE="$OUT/run/checkpoints/checkpoints.db"
if [ ! -f "$STORE" ]; then
	echo "finetune-learn: no pretraining checkpoint at $STORE: running the demo first"
	./scripts/demo.sh
fi
if [ -n "${FINETUNE_STEPS:-}" ]; then
	export VLP_FINETUNE_STEPS=$FINETUNE_STEPS
fi
VLP_TORCH_LIB="$PWD/build/lib/libvlptorch.so" VLP_FINETUNE_LEARN=1 VLP_FINETUNE_INIT_FROM="$PWD/$STORE" \
	VLP_FINETUNE_TASKS=${FINETUNE_TASKS:-vqa,nlvr2} VLP_FINETUNE_SEED=${FINETUNE_SEED:-1} \
	"$GO" test -count=1 -timeout 120m -v -run '^TestFinetuneLearns$' ./train/
