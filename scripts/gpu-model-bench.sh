#!/usr/bin/env bash
# gpu-model-bench.sh — the base model's training step on a GPU host: the Go model (vlp train
# --local) next to the PyTorch reference (reference/e2evlp.py bench) in one run, fp32, fp32 with
# TensorFloat-32 matmuls (--tf32) and bf16 autocast, same card, same shapes (batch 32, 384 px, ResNet-50, encoder 12 / decoder 6, d 256).
#
# Runs from the repository root of a checkout that holds BUNDLE/vlp (built elsewhere: the host
# needs no Go) and torch/csrc; builds libvlptorch.so against the host's PyTorch first.
#   usage: scripts/gpu-model-bench.sh BUNDLE OUT [STEPS]
set -uo pipefail
BUNDLE="$1"; OUT="$2"; STEPS="${3:-15}"
mkdir -p "$OUT"
PYTHON="${PYTHON:-python3}"
T="$("$PYTHON" -c 'import torch, os; print(os.path.dirname(torch.__file__))')"
ABI="$("$PYTHON" -c 'import torch; print(int(torch._C._GLIBCXX_USE_CXX11_ABI))')"
LIBS=(-ltorch -ltorch_cpu -lc10)
[ -f "$T/lib/libtorch_cuda.so" ] && LIBS+=(-ltorch_cuda -lc10_cuda)
BUILD="$(mktemp -d)"
echo "== building the shim against $T" | tee "$OUT/summary.log"
for f in torch/csrc/*.cpp; do
	g++ -O2 -fPIC -std=c++17 -D_GLIBCXX_USE_CXX11_ABI="$ABI" -I"$T/include" -I"$T/include/torch/csrc/api/include" \
		-Wno-unused-parameter -c "$f" -o "$BUILD/$(basename "$f" .cpp).o" 2>>"$OUT/build.log" &
done
wait
g++ -shared -o "$BUILD/libvlptorch.so" "$BUILD"/*.o -L"$T/lib" -Wl,--no-as-needed "${LIBS[@]}" -Wl,--as-needed \
	-Wl,-rpath,"$T/lib" 2>>"$OUT/build.log" || { echo "shim build failed" | tee -a "$OUT/summary.log"; exit 1; }
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader | tee -a "$OUT/summary.log"

median() { sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
for mode in fp32 tf32 bf16; do
	flag=""; [ "$mode" = bf16 ] && flag="--bf16"; [ "$mode" = tf32 ] && flag="--tf32"
	"$BUNDLE/vlp" --torch-lib "$BUILD/libvlptorch.so" train --local --preset base --device cuda:0 --batch 32 \
		--image-size 384 --images 64 --steps "$STEPS" --dropout 0 $flag >"$OUT/go-$mode.log" 2>&1
	ms="$(grep '^step ' "$OUT/go-$mode.log" | awk 'NR>3 {for (i=1;i<=NF;i++) if ($i=="step_ms") print $(i+1)}' | median)"
	match="$(grep '^step ' "$OUT/go-$mode.log" | awk 'NR>3 {for (i=1;i<=NF;i++) if ($i=="match_ms") print $(i+1)}' | median)"
	echo "go $mode cuda:0: median step ${ms} ms (matcher ${match} ms), batch 32, 384 px" | tee -a "$OUT/summary.log"
	tail -2 "$OUT/go-$mode.log" >>"$OUT/summary.log"
done
cat >"$BUILD/base.json" <<'JSON'
{"ResNetDepth": 50, "ResNetWidth": 64, "FrozenBN": true, "DilateC5": false, "DModel": 256, "Heads": 8, "FFN": 1024,
 "EncoderLayers": 12, "DecoderLayers": 6, "VocabSize": 30522, "MaxTextLen": 64, "MaxCaptionLen": 32, "TieMLM": true,
 "NumQueries": 100, "NumClasses": 1600, "NumAttributes": 400, "SharedDecoder": false,
 "Loss": {"Class": 1, "NoObject": 0.1, "L1": 5, "GIoU": 2, "Attribute": 1, "MLM": 1, "ITM": 1, "Caption": 1, "Aux": true}}
JSON
"$PYTHON" reference/e2evlp.py bench "$BUILD/base.json" --device cuda --batch 32 --side 384 --steps "$STEPS" \
	2>&1 | tee "$OUT/pytorch.log" | grep '^pytorch' | tee -a "$OUT/summary.log"
