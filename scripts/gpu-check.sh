#!/usr/bin/env bash
# gpu-check.sh — run the binding's checks on a GPU host with a CUDA PyTorch installed.
#
# Runs from the folder `make gpu-bundle` fills (gpu/: vlp, torch.test, csrc/, this script); the
# host needs no Go and no network. It
#   1. builds libvlptorch.so from csrc/ against that PyTorch's LibTorch (LIBTORCH=$T, default:
#      the torch package of $PYTHON), with the CUDA runtime headers when it finds them
#      (VLP_WITH_CUDA: memory statistics and device names);
#   2. runs the compiled torch tests on the CPU and on cuda:0 (VLP_TEST_DEVICE);
#   3. runs `vlp torch check --device cuda:0`;
#   4. runs the binding's benchmarks on cuda:0 and a PyTorch eager baseline of the same work;
# then prints a short table. Logs go to OUT (default: ./gpu-out), objects to BUILD_DIR.
#
#   usage: gpu-check.sh [OUT]
set -uo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
OUT="${1:-$PWD/gpu-out}"
mkdir -p "$OUT"
PYTHON="${PYTHON:-python3}"
BUILD="${BUILD_DIR:-${TMPDIR:-/tmp}/vlp-gpu-build}"
mkdir -p "$BUILD"
export PYTHONUNBUFFERED=1

declare -A RESULT
step() { echo "== $*" | tee -a "$OUT/summary.log"; }

T="${LIBTORCH:-$("$PYTHON" -c 'import torch, os; print(os.path.dirname(torch.__file__))')}"
ABI="$("$PYTHON" -c 'import torch; print(int(torch._C._GLIBCXX_USE_CXX11_ABI))' 2>/dev/null || echo 1)"
TORCH_VERSION="$("$PYTHON" -c 'import torch; print(torch.__version__)' 2>/dev/null || echo unknown)"
step "LibTorch at $T (torch $TORCH_VERSION, CXX11 ABI $ABI)"

# CUDA runtime headers: $CUDA_HOME, /usr/local/cuda, or the nvidia-cuda-runtime wheel.
CUDA_INC=""
for d in ${CUDA_HOME:+"$CUDA_HOME/include"} /usr/local/cuda/include \
	$("$PYTHON" - <<'PY' 2>/dev/null
import glob, os
try:
    import nvidia
    for p in nvidia.__path__:
        for h in glob.glob(os.path.join(p, "*", "include", "cuda_runtime_api.h")):
            print(os.path.dirname(h))
except Exception:
    pass
PY
); do
	if [ -f "$d/cuda_runtime_api.h" ]; then CUDA_INC="$d"; break; fi
done
DEFS=()
if [ -n "$CUDA_INC" ]; then DEFS=(-DVLP_WITH_CUDA "-I$CUDA_INC"); fi
step "CUDA headers: ${CUDA_INC:-none (memory statistics and device names disabled)}"

LIBS=(-ltorch -ltorch_cpu -lc10)
if [ -f "$T/lib/libtorch_cuda.so" ]; then LIBS+=(-ltorch_cuda -lc10_cuda); fi
# The few CUDA runtime calls (VLP_WITH_CUDA) resolve at load time against the libcudart that
# libc10_cuda already loads: linking another copy could mix two runtimes.

build() {
	local std="$1" rc=0 pids=()
	rm -f "$BUILD"/*.o
	for f in "$HERE"/csrc/*.cpp; do
		g++ -O2 -g0 -std="$std" -fPIC -fvisibility=hidden -D_GLIBCXX_USE_CXX11_ABI="$ABI" \
			-I"$T/include" -I"$T/include/torch/csrc/api/include" "${DEFS[@]}" -Wall -Wno-unused-parameter \
			-c "$f" -o "$BUILD/$(basename "$f" .cpp).o" 2>"$BUILD/$(basename "$f" .cpp).log" &
		pids+=($!)
	done
	for p in "${pids[@]}"; do wait "$p" || rc=1; done
	return $rc
}
step "building libvlptorch.so"
t0=$(date +%s)
if ! build c++17; then
	echo "C++17 build failed; retrying with C++20" | tee -a "$OUT/summary.log"
	build c++20 || { cat "$BUILD"/*.log | grep -m 40 -E "error" | tee -a "$OUT/summary.log"; RESULT[build]=FAIL; }
fi
cat "$BUILD"/*.log >"$OUT/build.log" 2>/dev/null
if [ "${RESULT[build]:-}" != FAIL ]; then
	if g++ -shared -o "$BUILD/libvlptorch.so" "$BUILD"/*.o -L"$T/lib" -Wl,--no-as-needed "${LIBS[@]}" \
		-Wl,--as-needed -Wl,-rpath,"$T/lib" 2>>"$OUT/build.log"; then
		RESULT[build]="ok ($(($(date +%s) - t0)) s)"
	else
		RESULT[build]=FAIL
		tail -20 "$OUT/build.log" | tee -a "$OUT/summary.log"
	fi
fi
LIB="$BUILD/libvlptorch.so"

if [ -f "$LIB" ]; then
	export VLP_TORCH_LIB="$LIB" VLP_PYTHON="$PYTHON" VLP_BIN="$HERE/vlp"
	step "torch tests on cpu (LibTorch $TORCH_VERSION)"
	if (cd "$HERE" && ./torch.test -test.count=1 -test.v -test.timeout 10m >"$OUT/test-cpu.log" 2>&1); then
		RESULT[test-cpu]="ok ($(grep -c '^--- PASS' "$OUT/test-cpu.log") passed, $(grep -c '^--- SKIP' "$OUT/test-cpu.log") skipped)"
	else
		RESULT[test-cpu]="FAIL: $(grep -E '^--- FAIL' "$OUT/test-cpu.log" | tr '\n' ' ')$(tail -1 "$OUT/test-cpu.log")"
		grep -B2 -A12 -E '^--- FAIL|panic:' "$OUT/test-cpu.log" | head -60 | tee -a "$OUT/summary.log"
	fi
	step "torch tests on cuda:0"
	if (cd "$HERE" && VLP_TEST_DEVICE=cuda:0 ./torch.test -test.count=1 -test.v -test.timeout 10m >"$OUT/test-cuda.log" 2>&1); then
		RESULT[test-cuda]="ok ($(grep -c '^--- PASS' "$OUT/test-cuda.log") passed, $(grep -c '^--- SKIP' "$OUT/test-cuda.log") skipped)"
	else
		RESULT[test-cuda]="FAIL: $(grep -E '^--- FAIL' "$OUT/test-cuda.log" | tr '\n' ' ')$(tail -1 "$OUT/test-cuda.log")"
		grep -B2 -A12 -E '^--- FAIL|panic:' "$OUT/test-cuda.log" | head -60 | tee -a "$OUT/summary.log"
	fi
	step "vlp torch check --device cuda:0"
	if "$HERE/vlp" --torch-lib "$LIB" torch check --device cuda:0 >"$OUT/check.log" 2>&1; then
		RESULT[check]="ok: $(grep 'loss before' "$OUT/check.log" | sed 's/^ *//')"
	else
		RESULT[check]="FAIL: $(tail -1 "$OUT/check.log")"
	fi
	cat "$OUT/check.log" | tee -a "$OUT/summary.log"
	step "benchmarks on cuda:0 (binding)"
	(cd "$HERE" && VLP_TEST_DEVICE=cuda:0 ./torch.test -test.run '^$' -test.bench . -test.benchtime 2s \
		-test.count 1 >"$OUT/bench-cuda.log" 2>&1) || true
	step "benchmarks on cuda:0 (PyTorch eager baseline)"
	"$PYTHON" - >"$OUT/bench-pytorch.log" 2>&1 <<'PY' || true
import time, math, torch
import torch.nn.functional as F
dev = "cuda:0"
def bench(name, f, n=2000, warm=50):
    for _ in range(warm): f()
    torch.cuda.synchronize()
    t = time.perf_counter()
    for _ in range(n): f()
    torch.cuda.synchronize()
    print(f"Pytorch{name}\t{n}\t{(time.perf_counter()-t)/n*1e9:.0f} ns/op")
a = torch.ones(1, device=dev); b = torch.ones(1, device=dev)
bench("AddTiny", lambda: a + b, n=20000)
g = torch.Generator().manual_seed(0)
B, H, L, D = 8, 8, 64, 32
q, k, v = (torch.randn(B, H, L, D, generator=g).to(dev) for _ in range(3))
pad = (torch.arange(L) >= 3 * L // 4).repeat(B, 1).to(dev)
add = torch.zeros(B, 1, 1, L, device=dev).masked_fill(pad[:, None, None, :], torch.finfo(torch.float32).min)
def unfused():
    s = (q * (1 / math.sqrt(D))) @ k.transpose(-2, -1)
    return s.masked_fill(pad[:, None, None, :], -1e30).softmax(-1) @ v
bench("AttentionFusedMaskPrebuilt", lambda: F.scaled_dot_product_attention(q, k, v, add))
# what the binding does per call: turn the bool key padding mask into an additive one
bench("AttentionFused", lambda: F.scaled_dot_product_attention(
    q, k, v, torch.where(pad[:, None, None, :], torch.finfo(torch.float32).min, 0.0)))
bench("AttentionUnfused", unfused)
qg, kg, vg = (x.clone().requires_grad_(True) for x in (q, k, v))
bench("AttentionFusedBackward", lambda: F.scaled_dot_product_attention(qg, kg, vg, add).sum().backward(), n=500)
E = 256
mha = torch.nn.MultiheadAttention(E, 8, batch_first=True).to(dev)
x = torch.randn(B, L, E, device=dev)
with torch.no_grad():
    bench("MHA", lambda: mha(x, x, x, key_padding_mask=pad, need_weights=False))
PY
	cat "$OUT/bench-cuda.log" "$OUT/bench-pytorch.log" | grep -E "^(Benchmark|Pytorch)" | tee -a "$OUT/summary.log"
fi

echo
echo "| step | result |" | tee -a "$OUT/summary.log"
echo "|---|---|" | tee -a "$OUT/summary.log"
for k in build test-cpu test-cuda check; do
	echo "| $k | ${RESULT[$k]:-not run} |" | tee -a "$OUT/summary.log"
done
[[ "${RESULT[build]:-}" == ok* && "${RESULT[test-cpu]:-}" == ok* && "${RESULT[test-cuda]:-}" == ok* && "${RESULT[check]:-}" == ok* ]]
