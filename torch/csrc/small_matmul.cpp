// small_matmul.cpp — batched products of small float32 matrices on the CPU, for attention.
//
// at::matmul of [B, H, L, D] by [B, H, D, S] becomes a bmm of B·H matrices, and LibTorch's CPU
// bmm calls the BLAS once per matrix. For an attention head (L, S of tens, D of 16–64) each call
// costs more in the BLAS's argument checks, packing and dispatch than in arithmetic: on the tiny
// preset a [32, 30, 16] × [32, 16, 30] product ran at about 3 GFLOP/s, and the attention products
// took an eighth of a training step. Here one loop walks every matrix: it reads the operands
// through their strides (no copy of a transposed or head-split view; the right operand is packed
// row-major when its rows are not), and accumulates each output row as a contiguous vector the
// compiler vectorises — compiled for AVX-512, AVX2 and any x86-64 CPU, and run with the best the
// CPU has unless ATEN_CPU_CAPABILITY asks for less (rows_times). Its gradients are products of
// the same kind, so backward takes the same path.
//
// Used for CPU float32 products whose matrices are small (small_matmul_fits); larger ones, other
// devices and dtypes, and products under autocast stay with at::matmul.
#include <ATen/Parallel.h>
#include <ATen/autocast_mode.h>
#include <torch/csrc/autograd/custom_function.h>

#include "internal.h"

namespace {

// Vectors of 16, 8 and 4 floats: one AVX-512, AVX2 or SSE register. Each variant of the kernel
// works in its own width (GCC would split a wider one through memory).
typedef float v16 __attribute__((vector_size(64)));
typedef float v8 __attribute__((vector_size(32)));
typedef float v4 __attribute__((vector_size(16)));

// block_times computes c[i, j0:j0+16] for rows i0 ≤ i < i0+R (R ≤ 4) and one 16-column panel of
// b, in vectors V: the R·16 sums stay in registers across k. a is read through its strides; b is
// K rows bp floats apart; c is written in full (the caller's scratch when the panel runs past the
// matrix).
template <int R, typename V>
__attribute__((always_inline)) inline void block_times(const float* __restrict a, int64_t sam, int64_t sak,
                                                       const float* __restrict b, int64_t bp, float* __restrict c,
                                                       int64_t cp, int64_t K) {
  constexpr int L = sizeof(V) / sizeof(float);  // lanes
  constexpr int n = 16 / L;                      // vectors a panel row
  V acc[R][n];
#pragma GCC unroll 4
  for (int r = 0; r < R; r++) {
#pragma GCC unroll 4
    for (int v = 0; v < n; v++) acc[r][v] = V{};
  }
  for (int64_t k = 0; k < K; k++) {
    V bk[n];
#pragma GCC unroll 4
    for (int v = 0; v < n; v++) __builtin_memcpy(&bk[v], b + k * bp + v * L, sizeof(V));  // one load each
#pragma GCC unroll 4
    for (int r = 0; r < R; r++) {
      const float x = a[r * sam + k * sak];
#pragma GCC unroll 4
      for (int v = 0; v < n; v++) acc[r][v] += x * bk[v];
    }
  }
#pragma GCC unroll 4
  for (int r = 0; r < R; r++) {
#pragma GCC unroll 4
    for (int v = 0; v < n; v++) __builtin_memcpy(c + r * cp + v * L, &acc[r][v], sizeof(V));
  }
}

// rows_times_body computes c = a · b for one matrix: a M×K read through its strides, b K rows bp
// floats apart (P ≤ bp; when P is not a multiple of 16, bp is and the columns past P are zero), c
// M×P row-major. Rows go four at a time, columns sixteen at a time; a panel that runs past P is
// written to scratch and copied.
template <typename V>
__attribute__((always_inline)) inline void rows_times_body(const float* __restrict a, int64_t sam, int64_t sak,
                                                           const float* __restrict b, int64_t bp, float* __restrict c,
                                                           int64_t M, int64_t K, int64_t P) {
  float scratch[4 * 16];
  for (int64_t j = 0; j < P; j += 16) {
    const int64_t w = std::min<int64_t>(16, P - j);
    for (int64_t i = 0; i < M; i += 4) {
      const int64_t rows = std::min<int64_t>(4, M - i);
      const float* ai = a + i * sam;
      float* out = w == 16 ? c + i * P + j : scratch;
      const int64_t cp = w == 16 ? P : 16;
      switch (rows) {
        case 4: block_times<4, V>(ai, sam, sak, b + j, bp, out, cp, K); break;
        case 3: block_times<3, V>(ai, sam, sak, b + j, bp, out, cp, K); break;
        case 2: block_times<2, V>(ai, sam, sak, b + j, bp, out, cp, K); break;
        default: block_times<1, V>(ai, sam, sak, b + j, bp, out, cp, K); break;
      }
      if (w < 16) {
        for (int64_t r = 0; r < rows; r++) std::memcpy(c + (i + r) * P + j, scratch + r * 16, w * sizeof(float));
      }
    }
  }
}

// rows_times is rows_times_body compiled for AVX-512, for AVX2 with FMA, and for any CPU; rows
// picks one once: the best the CPU runs, bounded by ATEN_CPU_CAPABILITY (default, avx2, avx512)
// as LibTorch's own kernels are — so that one variable selects every vector path of a run.
using RowsFn = void (*)(const float*, int64_t, int64_t, const float*, int64_t, float*, int64_t, int64_t, int64_t);

#if defined(__x86_64__) && defined(__GNUC__)
__attribute__((target("avx512f"))) void rows_avx512(const float* a, int64_t sam, int64_t sak, const float* b,
                                                    int64_t bp, float* c, int64_t M, int64_t K, int64_t P) {
  rows_times_body<v16>(a, sam, sak, b, bp, c, M, K, P);
}
__attribute__((target("avx2,fma"))) void rows_avx2(const float* a, int64_t sam, int64_t sak, const float* b,
                                                   int64_t bp, float* c, int64_t M, int64_t K, int64_t P) {
  rows_times_body<v8>(a, sam, sak, b, bp, c, M, K, P);
}
#endif
void rows_default(const float* a, int64_t sam, int64_t sak, const float* b, int64_t bp, float* c, int64_t M, int64_t K,
                  int64_t P) {
  rows_times_body<v4>(a, sam, sak, b, bp, c, M, K, P);
}

// Rows is the variant of the kernel a process runs and the largest matrix (in multiply-adds) it
// takes: with AVX2 or AVX-512 it matches the BLAS up to 64³ (docs/BENCHMARKS.md, "Attention's
// small products"); with SSE only it loses above about 20³.
struct Rows {
  RowsFn fn;
  int64_t max_macs;
};

Rows pick_rows() {
  const Rows sse{rows_default, 20 * 20 * 20};
#if defined(__x86_64__) && defined(__GNUC__)
  __builtin_cpu_init();
  const bool avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  const bool avx512 = avx2 && __builtin_cpu_supports("avx512f");
  const char* env = std::getenv("ATEN_CPU_CAPABILITY");
  const std::string cap = env == nullptr ? "" : env;
  if (cap == "default") return sse;
  if (avx512 && cap != "avx2") return {rows_avx512, 64 * 64 * 64};
  if (avx2) return {rows_avx2, 64 * 64 * 64};
#endif
  return sse;
}

const Rows& rows() {
  static const Rows r = pick_rows();
  return r;
}

void rows_times(const float* a, int64_t sam, int64_t sak, const float* b, int64_t bp, float* c, int64_t M, int64_t K,
                int64_t P) {
  rows().fn(a, sam, sak, b, bp, c, M, K, P);
}

// offset is the element offset of matrix n of t's leading (batch) dimensions.
int64_t offset(const at::Tensor& t, int64_t n) {
  int64_t off = 0;
  for (int64_t d = t.dim() - 3; d >= 0; d--) {
    int64_t size = t.size(d);
    off += (n % size) * t.stride(d);
    n /= size;
  }
  return off;
}

// batched is a [..., M, K] × b [..., K, P] → [..., M, P], both float32 on the CPU with the same
// leading sizes.
at::Tensor batched(const at::Tensor& a, const at::Tensor& b) {
  const int64_t nd = a.dim();
  const int64_t M = a.size(nd - 2), K = a.size(nd - 1), P = b.size(nd - 1);
  std::vector<int64_t> shape(a.sizes().begin(), a.sizes().end());
  shape[nd - 1] = P;
  at::Tensor c = at::empty(shape, a.options());  // [..., M, P]
  const int64_t N = c.numel() / std::max<int64_t>(1, M * P);
  if (c.numel() == 0) return c;
  if (K == 0) return c.zero_();
  const float* pa = a.data_ptr<float>();
  const float* pb = b.data_ptr<float>();
  float* pc = c.data_ptr<float>();
  const int64_t sam = a.stride(nd - 2), sak = a.stride(nd - 1);
  const int64_t sbk = b.stride(nd - 2), sbp = b.stride(nd - 1);
  // b's rows are read in place when they are contiguous and whole panels (P a multiple of 16, as
  // for a value matrix of 16·n columns); otherwise each matrix is packed, zero past P.
  const bool in_place = sbp == 1 && P % 16 == 0;
  const int64_t bp = in_place ? sbk : (P + 15) / 16 * 16;
  const int64_t grain = std::max<int64_t>(1, 32768 / std::max<int64_t>(1, M * K * P));
  at::parallel_for(0, N, grain, [&](int64_t lo, int64_t hi) {
    std::vector<float> pack(in_place ? 0 : static_cast<size_t>(K * bp), 0.f);  // [K, bp]
    for (int64_t n = lo; n < hi; n++) {
      const float* bn = pb + offset(b, n);
      if (!in_place) {
        for (int64_t k = 0; k < K; k++) {
          for (int64_t j = 0; j < P; j++) pack[k * bp + j] = bn[k * sbk + j * sbp];
        }
        bn = pack.data();
      }
      rows_times(pa + offset(a, n), sam, sak, bn, bp, pc + n * M * P, M, K, P);
    }
  });
  return c;
}

// SmallMatmul is a · b as one autograd node whose backward is two products of the same kind:
// ∂a = g · bᵀ, ∂b = aᵀ · g (through SmallMatmul again, so they too can be differentiated).
struct SmallMatmul : public torch::autograd::Function<SmallMatmul> {
  static at::Tensor forward(torch::autograd::AutogradContext* ctx, const at::Tensor& a, const at::Tensor& b) {
    ctx->save_for_backward({a, b});
    return batched(a, b);
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    auto saved = ctx->get_saved_variables();
    const at::Tensor& a = saved[0];
    const at::Tensor& b = saved[1];
    const at::Tensor& g = grads[0];  // [..., M, P]
    at::Tensor ga, gb;
    if (ctx->needs_input_grad(0)) ga = SmallMatmul::apply(g, b.transpose(-2, -1));  // [..., M, K]
    if (ctx->needs_input_grad(1)) gb = SmallMatmul::apply(a.transpose(-2, -1), g);  // [..., K, P]
    return {ga, gb};
  }
};

bool autocast_on_cpu() {
#if VLP_TORCH_AT_LEAST(2, 4)
  return at::autocast::is_autocast_enabled(at::kCPU);
#else
  return at::autocast::is_cpu_enabled();
#endif
}

// small_matmul_fits: float32 on the CPU, not under autocast, a [..., M, K] and b [..., K, P]
// with the same leading sizes, and matrices within the kernel variant's bound.
bool small_matmul_fits(const at::Tensor& a, const at::Tensor& b) {
  if (!a.is_cpu() || !b.is_cpu() || a.scalar_type() != at::kFloat || b.scalar_type() != at::kFloat) return false;
  if (a.dim() < 3 || a.dim() != b.dim() || autocast_on_cpu()) return false;
  const int64_t nd = a.dim();
  for (int64_t d = 0; d < nd - 2; d++) {
    if (a.size(d) != b.size(d)) return false;
  }
  if (a.size(nd - 1) != b.size(nd - 2)) return false;
  // Above the variant's bound the BLAS's per-call cost is small against the arithmetic it does faster.
  return a.size(nd - 2) * a.size(nd - 1) * b.size(nd - 1) <= rows().max_macs;
}

}  // namespace

namespace vlp {

at::Tensor attention_matmul(const at::Tensor& a, const at::Tensor& b) {
  return small_matmul_fits(a, b) ? SmallMatmul::apply(a, b) : at::matmul(a, b);
}

}  // namespace vlp
