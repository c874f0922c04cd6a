// loss.cpp — cross-entropy, binary cross-entropy with logits, L1/MSE/smooth-L1.
#include "internal.h"

using vlp::T;
using vlp::wrap;

static int64_t reduction(int64_t r) {
  if (r < 0 || r > 2) throw std::invalid_argument("reduction must be 0 (none), 1 (mean) or 2 (sum)");
  return r;  // matches at::Reduction::{None, Mean, Sum}
}

extern "C" {

char* vlp_cross_entropy(vlp_tensor_t logits, vlp_tensor_t target, vlp_tensor_t weight, int64_t ignore_index,
                        int64_t red, vlp_f64 label_smoothing, vlp_tensor_t* out) {
  VLP_TRY
  *out = wrap(at::cross_entropy_loss(T(logits), T(target), vlp::opt(weight), reduction(red), ignore_index,
                                     vlp::f64(label_smoothing)));
  VLP_CATCH
}

char* vlp_bce_with_logits(vlp_tensor_t x, vlp_tensor_t y, vlp_tensor_t weight, vlp_tensor_t pos_weight,
                          int64_t red, vlp_tensor_t* out) {
  VLP_TRY
  *out = wrap(at::binary_cross_entropy_with_logits(T(x), T(y), vlp::opt(weight), vlp::opt(pos_weight),
                                                   reduction(red)));
  VLP_CATCH
}

char* vlp_pair_loss(int64_t op, vlp_tensor_t x, vlp_tensor_t y, int64_t red, vlp_f64 beta, vlp_tensor_t* out) {
  VLP_TRY
  const at::Tensor& a = T(x);
  const at::Tensor& b = T(y);
  if (!a.sizes().equals(b.sizes())) {
    // PyTorch only warns and broadcasts; a silent broadcast in a loss is almost always a bug.
    throw std::invalid_argument("input and target shapes differ");
  }
  at::Tensor r;
  switch (op) {
    case 0: r = at::l1_loss(a, b, reduction(red)); break;
    case 1: r = at::mse_loss(a, b, reduction(red)); break;
    case 2: r = at::smooth_l1_loss(a, b, reduction(red), vlp::f64(beta)); break;
    default: throw std::invalid_argument("unknown loss " + std::to_string(op));
  }
  *out = wrap(std::move(r));
  VLP_CATCH
}

}  // extern "C"
