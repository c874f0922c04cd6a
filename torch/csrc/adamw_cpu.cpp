// adamw_cpu.cpp — AdamW's update for a float32 CPU parameter in one pass over its memory.
//
// LibTorch's ops take the update of one parameter in eight passes (decay, two for each moment,
// sqrt, divide, add eps, addcdiv), each reading and writing the whole tensor; on a CPU the step is
// bound by that memory traffic. Here every element is read once and written once, with the same
// operations in the same order as those ops (no fused multiply-add), so the values are those of
// the eight-op update up to the rounding of LibTorch's own vector kernels. The loop is compiled
// twice, for AVX2 and for any x86-64 CPU, and the loader picks the one the CPU runs.
#include <ATen/Parallel.h>

#include "internal.h"

namespace {

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define VLP_CLONES __attribute__((target_clones("avx2", "default")))
#else
#define VLP_CLONES
#endif

VLP_CLONES
void adamw_f32(float* __restrict p, const float* __restrict g, float* __restrict m, float* __restrict v, int64_t n,
               float decay, float beta1, float one_minus_beta1, float beta2, float one_minus_beta2, float bc2_sqrt,
               float eps, float neg_step_size) {
  for (int64_t i = 0; i < n; i++) {
    float gi = g[i];
    float mi = m[i] * beta1;
    mi = mi + one_minus_beta1 * gi;
    float vi = v[i] * beta2;
    vi = vi + (one_minus_beta2 * gi) * gi;
    float denom = std::sqrt(vi) / bc2_sqrt + eps;
    p[i] = p[i] * decay + neg_step_size * (mi / denom);
    m[i] = mi;
    v[i] = vi;
  }
}

// same_dense reports whether t is laid out exactly as p: the fused loop walks their storage.
bool same_dense(const at::Tensor& t, const at::Tensor& p) {
  return t.scalar_type() == at::kFloat && t.is_cpu() && t.sizes() == p.sizes() && t.strides() == p.strides();
}

}  // namespace

namespace vlp {

bool adamw_fusable(const at::Tensor& p, const at::Tensor& grad, const at::Tensor& exp_avg,
                   const at::Tensor& exp_avg_sq) {
  return p.is_cpu() && p.scalar_type() == at::kFloat && p.is_non_overlapping_and_dense() && same_dense(grad, p) &&
         same_dense(exp_avg, p) && same_dense(exp_avg_sq, p);
}

void adamw_fused_cpu(const at::Tensor& p, const at::Tensor& grad, const at::Tensor& exp_avg,
                     const at::Tensor& exp_avg_sq, double lr, double beta1, double beta2, double eps, double wd,
                     int64_t step) {
  double bc1 = 1 - std::pow(beta1, static_cast<double>(step));
  double bc2 = 1 - std::pow(beta2, static_cast<double>(step));
  // The scalars as LibTorch's float kernels see them: each op's Scalar cast to float.
  const float decay = static_cast<float>(1 - lr * wd);
  const float b1 = static_cast<float>(beta1), omb1 = static_cast<float>(1 - beta1);
  const float b2 = static_cast<float>(beta2), omb2 = static_cast<float>(1 - beta2);
  const float bc2s = static_cast<float>(std::sqrt(bc2));
  const float e = static_cast<float>(eps);
  const float nss = static_cast<float>(-(lr / bc1));
  float* pp = p.data_ptr<float>();
  const float* gp = grad.data_ptr<float>();
  float* mp = exp_avg.data_ptr<float>();
  float* vp = exp_avg_sq.data_ptr<float>();
  // Elementwise: the split among threads does not change a bit.
  at::parallel_for(0, p.numel(), 1 << 15, [&](int64_t begin, int64_t end) {
    adamw_f32(pp + begin, gp + begin, mp + begin, vp + begin, end - begin, decay, b1, omb1, b2, omb2, bc2s, e, nss);
  });
}

}  // namespace vlp
