// autograd.cpp — requires_grad, backward, gradients, grad mode and autocast regions.
#include <ATen/autocast_mode.h>

#include "internal.h"

using vlp::T;
using vlp::wrap;

namespace {

// Autocast state for the calling thread, per device type. LibTorch 2.4 replaced the per-device
// functions (set_enabled, set_cpu_enabled, ...) with ones that take a device type.
#if VLP_TORCH_AT_LEAST(2, 4)
bool ac_enabled(bool cuda) { return at::autocast::is_autocast_enabled(cuda ? at::kCUDA : at::kCPU); }
void ac_set_enabled(bool cuda, bool on) { at::autocast::set_autocast_enabled(cuda ? at::kCUDA : at::kCPU, on); }
at::ScalarType ac_dtype(bool cuda) { return at::autocast::get_autocast_dtype(cuda ? at::kCUDA : at::kCPU); }
void ac_set_dtype(bool cuda, at::ScalarType dt) { at::autocast::set_autocast_dtype(cuda ? at::kCUDA : at::kCPU, dt); }
#else
bool ac_enabled(bool cuda) { return cuda ? at::autocast::is_enabled() : at::autocast::is_cpu_enabled(); }
void ac_set_enabled(bool cuda, bool on) {
  if (cuda) {
    at::autocast::set_enabled(on);
  } else {
    at::autocast::set_cpu_enabled(on);
  }
}
at::ScalarType ac_dtype(bool cuda) {
  return cuda ? at::autocast::get_autocast_gpu_dtype() : at::autocast::get_autocast_cpu_dtype();
}
void ac_set_dtype(bool cuda, at::ScalarType dt) {
  if (cuda) {
    at::autocast::set_autocast_gpu_dtype(dt);
  } else {
    at::autocast::set_autocast_cpu_dtype(dt);
  }
}
#endif

int64_t code_or_float(at::ScalarType dt) {
  int64_t c = vlp::dtype_code(dt);
  return c < 0 ? VLP_FLOAT32 : c;
}

}  // namespace

extern "C" {

char* vlp_set_requires_grad(vlp_tensor_t h, int64_t flag) {
  VLP_TRY
  if (!T(h).is_leaf() && flag == 0) {
    // As in Python: a computed tensor leaves the graph through detach, not requires_grad.
    throw std::invalid_argument("only leaf tensors can stop requiring grad; use Detach");
  }
  h->t.set_requires_grad(flag != 0);
  VLP_CATCH
}

char* vlp_backward(vlp_tensor_t h, vlp_tensor_t grad, int64_t retain_graph) {
  VLP_TRY
  T(h).backward(vlp::opt(grad), retain_graph != 0);
  VLP_CATCH
}

char* vlp_grad(vlp_tensor_t h, vlp_tensor_t* out) {
  VLP_TRY
  const at::Tensor& g = T(h).grad();
  *out = g.defined() ? wrap(g) : nullptr;
  VLP_CATCH
}

char* vlp_set_grad(vlp_tensor_t h, vlp_tensor_t g) {
  VLP_TRY
  T(h);
  h->t.mutable_grad() = vlp::opt(g);
  VLP_CATCH
}

char* vlp_zero_grad(const vlp_tensor_t* ts, int64_t n, int64_t set_to_none) {
  VLP_TRY
  c10::NoGradGuard ng;
  for (int64_t i = 0; i < n; i++) {
    at::Tensor& g = ts[i]->t.mutable_grad();
    if (!g.defined()) continue;
    if (set_to_none) {
      g = at::Tensor();
    } else {
      if (g.grad_fn()) g = g.detach();
      g.zero_();
    }
  }
  VLP_CATCH
}

char* vlp_set_grad_enabled(int64_t enabled, int64_t* prev) {
  VLP_TRY
  if (prev != nullptr) *prev = c10::GradMode::is_enabled();
  c10::GradMode::set_enabled(enabled != 0);
  VLP_CATCH
}

char* vlp_autocast_enter(int64_t dtype, int64_t* state) {
  VLP_TRY
  at::ScalarType dt = vlp::dtype(dtype);
  if (dt != at::kBFloat16 && dt != at::kHalf) throw std::invalid_argument("autocast dtype must be bfloat16 or float16");
  // state packs what exit restores: enabled flags (bits 0-1) and the previous dtypes.
  int64_t s = (ac_enabled(false) ? 1 : 0) | (ac_enabled(true) ? 2 : 0) | (code_or_float(ac_dtype(false)) << 8) |
              (code_or_float(ac_dtype(true)) << 16);
  if (dt == at::kBFloat16) {  // CPU autocast supports bfloat16 only
    ac_set_dtype(false, dt);
    ac_set_enabled(false, true);
  }
  ac_set_dtype(true, dt);
  ac_set_enabled(true, true);
  at::autocast::increment_nesting();
  *state = s;
  VLP_CATCH
}

char* vlp_autocast_exit(int64_t state) {
  VLP_TRY
  if (at::autocast::decrement_nesting() == 0) at::autocast::clear_cache();
  ac_set_enabled(false, (state & 1) != 0);
  ac_set_enabled(true, (state & 2) != 0);
  ac_set_dtype(false, vlp::dtype((state >> 8) & 0xff));
  ac_set_dtype(true, vlp::dtype((state >> 16) & 0xff));
  VLP_CATCH
}

}  // extern "C"
