// fused.cpp — scaled dot-product attention and a whole multi-head attention block in one call.
//
// The maths is written out from matmul and softmax so it runs on LibTorch 1.13; on 2.1+ the same
// call goes to at::scaled_dot_product_attention (flash / memory-efficient kernels on CUDA) with
// an equivalent additive mask, except when dropout must draw from an explicit generator.
#include <ATen/autocast_mode.h>

#include <limits>

#include "internal.h"

using vlp::T;
using vlp::wrap;

namespace {

// lowest is the most negative finite value of dt: a masked score. Unlike -inf it keeps a row
// whose keys are all masked finite (it then attends uniformly) instead of turning it into NaN.
double lowest(at::ScalarType dt) {
  switch (dt) {
    case at::kDouble: return std::numeric_limits<double>::lowest();
    case at::kHalf: return -65504.0;
    case at::kBFloat16: return -3.3895313892515355e38;
    default: return static_cast<double>(std::numeric_limits<float>::lowest());
  }
}

// mask_for builds the bool mask (true = masked) broadcastable to [B, H, L, S], or an undefined
// tensor when nothing is masked.
at::Tensor mask_for(const at::Tensor& q, const at::Tensor& k, vlp_tensor_t kpm, bool causal) {
  int64_t B = q.size(0), L = q.size(2), S = k.size(2);
  at::Tensor m;
  if (kpm != nullptr) {
    const at::Tensor& p = T(kpm);
    if (p.scalar_type() != at::kBool) throw std::invalid_argument("key padding mask must be bool");
    if (p.dim() != 2 || p.size(0) != B || p.size(1) != S) {
      throw std::invalid_argument("key padding mask has shape " + c10::str(p.sizes()) + ", want [" +
                                  std::to_string(B) + ", " + std::to_string(S) + "]");
    }
    m = p.view({B, 1, 1, S});
  }
  if (causal) {
    at::Tensor c = at::ones({L, S}, q.options().dtype(at::kBool)).triu(1).view({1, 1, L, S});
    m = m.defined() ? m.logical_or(c) : c;
  }
  return m;
}

void check_qkv(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v) {
  if (q.dim() != 4 || k.dim() != 4 || v.dim() != 4) {
    throw std::invalid_argument("attention wants 4-d q, k, v [B, H, L|S, D]");
  }
  if (k.size(0) != q.size(0) || v.size(0) != q.size(0) || k.size(1) != q.size(1) || v.size(1) != q.size(1) ||
      k.size(3) != q.size(3) || v.size(2) != k.size(2)) {
    throw std::invalid_argument("attention: q, k, v shapes do not fit (want q [B,H,L,D], k [B,H,S,D], v [B,H,S,Dv])");
  }
}

#if VLP_TORCH_AT_LEAST(2, 1)
// compute_dtype is the dtype the attention kernels will see: the autocast dtype inside a region.
at::ScalarType compute_dtype(const at::Tensor& q) {
  if (!at::isFloatingType(q.scalar_type())) return q.scalar_type();
#if VLP_TORCH_AT_LEAST(2, 4)
  auto dt = q.device().type();
  if (at::autocast::is_autocast_enabled(dt)) return at::autocast::get_autocast_dtype(dt);
#else
  if (q.is_cuda() && at::autocast::is_enabled()) return at::autocast::get_autocast_gpu_dtype();
  if (q.is_cpu() && at::autocast::is_cpu_enabled()) return at::autocast::get_autocast_cpu_dtype();
#endif
  return q.scalar_type();
}
#endif

at::Tensor attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, vlp_tensor_t kpm, bool causal,
                     double dropout_p, vlp_generator_t g) {
  check_qkv(q, k, v);
  if (dropout_p < 0 || dropout_p >= 1) throw std::invalid_argument("attention dropout must be in [0, 1)");
#if VLP_TORCH_AT_LEAST(2, 1)
  if (dropout_p == 0 || g == nullptr) {
    if (kpm == nullptr) return at::scaled_dot_product_attention(q, k, v, {}, dropout_p, causal);
    at::Tensor m = mask_for(q, k, kpm, causal);
    // 0 where attended, the compute dtype's lowest where masked. The mask is float64 for
    // float64 inputs and float32 otherwise: a float32 mask holds bf16's lowest exactly, and
    // autocast casts it with q. (A where() of two Scalars yields float32, and float64's lowest
    // overflows it: LibTorch 2.x refuses that conversion at run time.)
    auto dt = compute_dtype(q);
    auto md = dt == at::kDouble ? at::kDouble : at::kFloat;
    at::Tensor add = at::zeros(m.sizes(), q.options().dtype(md)).masked_fill_(m, lowest(dt));
    if (dt != at::kBFloat16 && dt != at::kHalf && add.scalar_type() != dt) add = add.to(dt);
    return at::scaled_dot_product_attention(q, k, v, add, dropout_p, false);
  }
#endif
  double scale = 1.0 / std::sqrt(static_cast<double>(q.size(3)));
  at::Tensor scores = vlp::attention_matmul(q * scale, k.transpose(-2, -1));  // [B, H, L, S]
  at::Tensor m = mask_for(q, k, kpm, causal);
  if (m.defined()) scores = scores.masked_fill(m, lowest(scores.scalar_type()));
  at::Tensor attn = scores.softmax(-1);
  if (dropout_p > 0) {
    at::Generator gen = vlp::generator(g, vlp::device_code(attn.device()));
    at::Tensor keep;
    {
      c10::NoGradGuard ng;
      keep = at::empty_like(attn, attn.options().requires_grad(false));
      keep.bernoulli_(1 - dropout_p, gen);
      keep.div_(1 - dropout_p);
    }
    attn = attn * keep;
  }
  return vlp::attention_matmul(attn, v);  // [B, H, L, Dv]
}

}  // namespace

extern "C" {

char* vlp_sdpa(vlp_tensor_t q, vlp_tensor_t k, vlp_tensor_t v, vlp_tensor_t key_padding_mask, int64_t causal,
               vlp_f64 dropout_p, vlp_generator_t g, vlp_tensor_t* out) {
  VLP_TRY
  *out = wrap(attention(T(q), T(k), T(v), key_padding_mask, causal != 0, vlp::f64(dropout_p), g));
  VLP_CATCH
}

char* vlp_mha(vlp_tensor_t query, vlp_tensor_t key, vlp_tensor_t value, vlp_tensor_t in_w, vlp_tensor_t in_b,
              vlp_tensor_t out_w, vlp_tensor_t out_b, int64_t heads, vlp_tensor_t key_padding_mask, int64_t causal,
              vlp_f64 dropout_p, vlp_generator_t g, vlp_tensor_t* out) {
  VLP_TRY
  const at::Tensor& xq = T(query);
  const at::Tensor& xk = T(key);
  const at::Tensor& xv = T(value);
  const at::Tensor& w = T(in_w);
  at::Tensor b = vlp::opt(in_b);
  if (xq.dim() != 3 || xk.dim() != 3 || xv.dim() != 3) {
    throw std::invalid_argument("multi-head attention wants [B, L, E] query, key and value");
  }
  int64_t B = xq.size(0), L = xq.size(1), E = xq.size(2), S = xk.size(1);
  if (w.dim() != 2 || w.size(0) != 3 * E || w.size(1) != E) {
    throw std::invalid_argument("in-projection weight has shape " + c10::str(w.sizes()) + ", want [" +
                                std::to_string(3 * E) + ", " + std::to_string(E) + "]");
  }
  if (heads <= 0 || E % heads != 0) {
    throw std::invalid_argument("embedding size " + std::to_string(E) + " is not divisible by " +
                                std::to_string(heads) + " heads");
  }
  if (xk.size(0) != B || xv.size(0) != B || xk.size(2) != E || xv.size(2) != E || xv.size(1) != S) {
    throw std::invalid_argument("key/value shapes " + c10::str(xk.sizes()) + ", " + c10::str(xv.sizes()) +
                                " do not fit query " + c10::str(xq.sizes()));
  }
  auto wpart = [&](int64_t i, int64_t n) { return w.narrow(0, i * E, n * E); };
  auto bpart = [&](int64_t i, int64_t n) { return b.defined() ? b.narrow(0, i * E, n * E) : at::Tensor(); };
  at::Tensor q, k, v;
  if (xq.is_same(xk) && xk.is_same(xv)) {
    auto qkv = at::linear(xq, w, b).chunk(3, -1);  // self-attention: one [B, L, 3E] projection
    q = qkv[0], k = qkv[1], v = qkv[2];
  } else if (xq.is_same(xk)) {
    auto qk = at::linear(xq, wpart(0, 2), bpart(0, 2)).chunk(2, -1);  // DETR: q = k = x + pos, v = x
    q = qk[0], k = qk[1];
    v = at::linear(xv, wpart(2, 1), bpart(2, 1));
  } else if (xk.is_same(xv)) {
    q = at::linear(xq, wpart(0, 1), bpart(0, 1));
    auto kv = at::linear(xk, wpart(1, 2), bpart(1, 2)).chunk(2, -1);
    k = kv[0], v = kv[1];
  } else {
    q = at::linear(xq, wpart(0, 1), bpart(0, 1));
    k = at::linear(xk, wpart(1, 1), bpart(1, 1));
    v = at::linear(xv, wpart(2, 1), bpart(2, 1));
  }
  int64_t D = E / heads;
  q = q.reshape({B, L, heads, D}).transpose(1, 2);  // [B, H, L, D]
  k = k.reshape({B, S, heads, D}).transpose(1, 2);  // [B, H, S, D]
  v = v.reshape({B, S, heads, D}).transpose(1, 2);  // [B, H, S, D]
  at::Tensor o = attention(q, k, v, key_padding_mask, causal != 0, vlp::f64(dropout_p), g);
  o = o.transpose(1, 2).reshape({B, L, E});  // [B, L, E]
  *out = wrap(at::linear(o, T(out_w), vlp::opt(out_b)));
  VLP_CATCH
}

}  // extern "C"
