// optim.cpp — AdamW, gradient clipping, and flat host buffers of values, gradients and state.
//
// AdamW is written here over a plain parameter list rather than taken from torch::optim so that
// its state is three plain things per parameter (exp_avg, exp_avg_sq, step): exporting it for a
// checkpoint or a broadcast is a copy, and the update is the one torch.optim.AdamW does
// (amsgrad=False, maximize=False) in the LibTorch version it is built against.
#include <algorithm>

#include "internal.h"

using vlp::T;
using vlp::wrap;

namespace {

struct ParamState {
  at::Tensor p, exp_avg, exp_avg_sq;
  int64_t step = 0;
};

struct Group {
  std::vector<size_t> idx;
  double lr, beta1, beta2, eps, wd;
};

// A flat buffer's element type.
at::ScalarType flat_dtype(int64_t code) {
  at::ScalarType dt = vlp::dtype(code);
  if (dt != at::kFloat && dt != at::kBFloat16) throw std::invalid_argument("flat buffers are float32 or bfloat16");
  return dt;
}

// to_flat copies parts (each flattened, converted to dt) end to end into buf.
void to_flat(const std::vector<at::Tensor>& parts, void* buf, int64_t numel, at::ScalarType dt) {
  int64_t total = 0;
  bool all_cpu = true;
  for (const auto& p : parts) {
    total += p.numel();
    all_cpu = all_cpu && p.is_cpu();
  }
  if (total != numel) {
    throw std::invalid_argument("flat buffer holds " + std::to_string(numel) + " elements, the tensors " +
                                std::to_string(total));
  }
  if (numel == 0) return;
  at::Tensor dst = at::from_blob(buf, {numel}, at::TensorOptions().dtype(dt));
  std::vector<at::Tensor> flat;
  flat.reserve(parts.size());
  for (const auto& p : parts) flat.push_back(p.detach().reshape({-1}).to(dt));
  if (all_cpu) {
    at::cat_out(dst, flat, 0);
  } else {
    // One device-side concatenation, then one transfer to the host.
    at::Device dev = parts.front().device();
    for (auto& f : flat) f = f.to(dev);
    dst.copy_(at::cat(flat, 0));
  }
}

// from_flat copies buf back into targets (same order and sizes as to_flat).
void from_flat(const std::vector<at::Tensor>& targets, const void* buf, int64_t numel, at::ScalarType dt) {
  int64_t total = 0;
  for (const auto& t : targets) total += t.numel();
  if (total != numel) {
    throw std::invalid_argument("flat buffer holds " + std::to_string(numel) + " elements, the tensors " +
                                std::to_string(total));
  }
  if (numel == 0) return;
  at::Tensor src = at::from_blob(const_cast<void*>(buf), {numel}, at::TensorOptions().dtype(dt));
  at::Tensor dev_src;  // one host-to-device transfer per device in use
  int64_t off = 0;
  for (const auto& t : targets) {
    int64_t n = t.numel();
    at::Tensor part;
    if (t.is_cpu()) {
      part = src.narrow(0, off, n);
    } else {
      if (!dev_src.defined() || dev_src.device() != t.device()) dev_src = src.to(t.device());
      part = dev_src.narrow(0, off, n);
    }
    at::Tensor tt = t;
    tt.copy_(part.view(t.sizes()));
    off += n;
  }
}

std::vector<at::Tensor> tensors(const vlp_tensor_t* ts, int64_t n) {
  std::vector<at::Tensor> v;
  v.reserve(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; i++) v.push_back(T(ts[i]));
  return v;
}

}  // namespace

struct vlp_adamw {
  std::vector<ParamState> params;
  std::vector<Group> groups;
  bool fused_cpu = true;  // float32 CPU parameters in one pass each (adamw_cpu.cpp)

  ParamState& at(int64_t i) {
    if (i < 0 || i >= static_cast<int64_t>(params.size())) {
      throw std::out_of_range("parameter index " + std::to_string(i) + " out of range [0, " +
                              std::to_string(params.size()) + ")");
    }
    return params[static_cast<size_t>(i)];
  }
  Group& group(int64_t g) {
    if (g < 0 || g >= static_cast<int64_t>(groups.size())) {
      throw std::out_of_range("group " + std::to_string(g) + " out of range [0, " + std::to_string(groups.size()) +
                              ")");
    }
    return groups[static_cast<size_t>(g)];
  }
  void init_state(ParamState& s) {
    if (!s.exp_avg.defined()) {
      s.exp_avg = at::zeros_like(s.p, at::MemoryFormat::Preserve);
      s.exp_avg_sq = at::zeros_like(s.p, at::MemoryFormat::Preserve);
    }
  }
};

namespace {

void step_single(vlp_adamw& o, const Group& g, ParamState& s, const at::Tensor& grad) {
  s.step += 1;
  if (o.fused_cpu && vlp::adamw_fusable(s.p, grad, s.exp_avg, s.exp_avg_sq)) {
    vlp::adamw_fused_cpu(s.p, grad, s.exp_avg, s.exp_avg_sq, g.lr, g.beta1, g.beta2, g.eps, g.wd, s.step);
    return;
  }
  s.p.mul_(1 - g.lr * g.wd);
#if TORCH_VERSION_MAJOR >= 2
  s.exp_avg.lerp_(grad, 1 - g.beta1);
#else
  s.exp_avg.mul_(g.beta1).add_(grad, 1 - g.beta1);
#endif
  s.exp_avg_sq.mul_(g.beta2).addcmul_(grad, grad, 1 - g.beta2);
  double step = static_cast<double>(s.step);
  double bc1 = 1 - std::pow(g.beta1, step);
  double bc2 = 1 - std::pow(g.beta2, step);
  double step_size = g.lr / bc1;
  double bc2_sqrt = std::sqrt(bc2);
  at::Tensor denom = (s.exp_avg_sq.sqrt() / bc2_sqrt).add_(g.eps);
  s.p.addcdiv_(s.exp_avg, denom, -step_size);
}

#if VLP_TORCH_AT_LEAST(2, 1)
// step_foreach is the same update for CUDA parameters sharing a step count, as a handful of
// multi-tensor kernels instead of eight launches per parameter (torch's foreach implementation).
void step_foreach(const Group& g, std::vector<ParamState*>& ss, std::vector<at::Tensor>& grads) {
  std::vector<at::Tensor> ps, m, v;
  for (auto* s : ss) {
    s->step += 1;
    ps.push_back(s->p);
    m.push_back(s->exp_avg);
    v.push_back(s->exp_avg_sq);
  }
  double step = static_cast<double>(ss.front()->step);
  at::_foreach_mul_(ps, 1 - g.lr * g.wd);
  at::_foreach_lerp_(m, grads, 1 - g.beta1);
  at::_foreach_mul_(v, g.beta2);
  at::_foreach_addcmul_(v, grads, grads, 1 - g.beta2);
  double bc1 = 1 - std::pow(g.beta1, step);
  double bc2 = 1 - std::pow(g.beta2, step);
  auto denom = at::_foreach_sqrt(v);
  at::_foreach_div_(denom, std::sqrt(bc2));
  at::_foreach_add_(denom, g.eps);
  at::_foreach_addcdiv_(ps, m, denom, -(g.lr / bc1));
}
#endif

}  // namespace

extern "C" {

char* vlp_adamw_new(vlp_adamw_t* out) {
  VLP_TRY
  *out = new vlp_adamw();
  VLP_CATCH
}

char* vlp_adamw_free(vlp_adamw_t o) {
  VLP_TRY
  delete o;
  VLP_CATCH
}

char* vlp_adamw_add_group(vlp_adamw_t o, const vlp_tensor_t* params, int64_t n, vlp_f64 lr, vlp_f64 beta1,
                          vlp_f64 beta2, vlp_f64 eps, vlp_f64 weight_decay) {
  VLP_TRY
  Group g{{}, vlp::f64(lr), vlp::f64(beta1), vlp::f64(beta2), vlp::f64(eps), vlp::f64(weight_decay)};
  if (!(g.lr >= 0)) throw std::invalid_argument("lr must be >= 0");
  if (!(g.beta1 >= 0 && g.beta1 < 1) || !(g.beta2 >= 0 && g.beta2 < 1)) {
    throw std::invalid_argument("betas must be in [0, 1)");
  }
  if (!(g.eps >= 0)) throw std::invalid_argument("eps must be >= 0");
  if (!(g.wd >= 0)) throw std::invalid_argument("weight decay must be >= 0");
  for (int64_t i = 0; i < n; i++) {
    const at::Tensor& p = T(params[i]);
    if (!at::isFloatingType(p.scalar_type())) throw std::invalid_argument("parameter " + std::to_string(i) + " is not floating point");
    if (!p.is_leaf()) throw std::invalid_argument("parameter " + std::to_string(i) + " is not a leaf tensor");
    g.idx.push_back(o->params.size());
    o->params.push_back(ParamState{p, {}, {}, 0});
  }
  o->groups.push_back(std::move(g));
  VLP_CATCH
}

char* vlp_adamw_step(vlp_adamw_t o) {
  VLP_TRY
  c10::NoGradGuard ng;
  for (const auto& g : o->groups) {
#if VLP_TORCH_AT_LEAST(2, 1)
    std::vector<ParamState*> batch;
    std::vector<at::Tensor> batch_grads;
#endif
    for (size_t i : g.idx) {
      ParamState& s = o->params[i];
      const at::Tensor& grad = s.p.grad();
      if (!grad.defined()) continue;
      o->init_state(s);
#if VLP_TORCH_AT_LEAST(2, 1)
      if (s.p.is_cuda() && (batch.empty() || (batch.front()->step == s.step &&
                                              batch.front()->p.device() == s.p.device() &&
                                              batch.front()->p.scalar_type() == s.p.scalar_type()))) {
        batch.push_back(&s);
        batch_grads.push_back(grad);
        continue;
      }
#endif
      step_single(*o, g, s, grad);
    }
#if VLP_TORCH_AT_LEAST(2, 1)
    if (!batch.empty()) step_foreach(g, batch, batch_grads);
#endif
  }
  VLP_CATCH
}

char* vlp_adamw_set_hparam(vlp_adamw_t o, int64_t group, int64_t what, vlp_f64 value) {
  VLP_TRY
  Group& g = o->group(group);
  double v = vlp::f64(value);
  switch (what) {
    case 0: g.lr = v; break;
    case 1: g.beta1 = v; break;
    case 2: g.beta2 = v; break;
    case 3: g.eps = v; break;
    case 4: g.wd = v; break;
    default: throw std::invalid_argument("unknown hyper-parameter " + std::to_string(what));
  }
  VLP_CATCH
}

char* vlp_adamw_get_hparam(vlp_adamw_t o, int64_t group, int64_t what, double* out) {
  VLP_TRY
  Group& g = o->group(group);
  switch (what) {
    case 0: *out = g.lr; break;
    case 1: *out = g.beta1; break;
    case 2: *out = g.beta2; break;
    case 3: *out = g.eps; break;
    case 4: *out = g.wd; break;
    default: throw std::invalid_argument("unknown hyper-parameter " + std::to_string(what));
  }
  VLP_CATCH
}

char* vlp_adamw_set_fused(vlp_adamw_t o, int64_t fused) {
  VLP_TRY
  o->fused_cpu = fused != 0;
  VLP_CATCH
}

char* vlp_adamw_counts(vlp_adamw_t o, int64_t* counts) {
  VLP_TRY
  counts[0] = static_cast<int64_t>(o->groups.size());
  counts[1] = static_cast<int64_t>(o->params.size());
  int64_t total = 0;
  for (const auto& s : o->params) total += s.p.numel();
  counts[2] = total;
  VLP_CATCH
}

char* vlp_adamw_get_state(vlp_adamw_t o, int64_t i, vlp_tensor_t* exp_avg, vlp_tensor_t* exp_avg_sq,
                          int64_t* step) {
  VLP_TRY
  ParamState& s = o->at(i);
  *exp_avg = s.exp_avg.defined() ? wrap(s.exp_avg) : nullptr;
  *exp_avg_sq = s.exp_avg_sq.defined() ? wrap(s.exp_avg_sq) : nullptr;
  *step = s.step;
  VLP_CATCH
}

char* vlp_adamw_set_state(vlp_adamw_t o, int64_t i, vlp_tensor_t exp_avg, vlp_tensor_t exp_avg_sq, int64_t step) {
  VLP_TRY
  c10::NoGradGuard ng;
  ParamState& s = o->at(i);
  o->init_state(s);
  if (exp_avg != nullptr) {
    s.exp_avg.copy_(T(exp_avg));
  } else {
    s.exp_avg.zero_();
  }
  if (exp_avg_sq != nullptr) {
    s.exp_avg_sq.copy_(T(exp_avg_sq));
  } else {
    s.exp_avg_sq.zero_();
  }
  s.step = step;
  VLP_CATCH
}

char* vlp_adamw_flat_state(vlp_adamw_t o, int64_t dir, void* buf, int64_t numel, int64_t dtype, int64_t* steps,
                           int64_t nsteps) {
  VLP_TRY
  c10::NoGradGuard ng;
  at::ScalarType dt = flat_dtype(dtype);
  if (steps != nullptr && nsteps != static_cast<int64_t>(o->params.size())) {
    throw std::invalid_argument("steps holds " + std::to_string(nsteps) + " entries, the optimizer has " +
                                std::to_string(o->params.size()) + " parameters");
  }
  std::vector<at::Tensor> parts;
  parts.reserve(2 * o->params.size());
  for (auto& s : o->params) {
    if (dir == 1) o->init_state(s);
    if (s.exp_avg.defined()) {
      parts.push_back(s.exp_avg);
      parts.push_back(s.exp_avg_sq);
    } else {
      at::Tensor z = at::zeros_like(s.p);  // not yet stepped: its state reads as zeros
      parts.push_back(z);
      parts.push_back(z);
    }
  }
  if (dir == 0) {
    to_flat(parts, buf, numel, dt);
    if (steps != nullptr) {
      for (size_t i = 0; i < o->params.size(); i++) steps[i] = o->params[i].step;
    }
  } else {
    from_flat(parts, buf, numel, dt);
    if (steps != nullptr) {
      for (size_t i = 0; i < o->params.size(); i++) o->params[i].step = steps[i];
    }
  }
  VLP_CATCH
}

// one_block is a 1-d view of the memory that ts tile exactly — every tensor contiguous, in one
// storage, of one dtype, the tensors' element ranges adjacent without gap or overlap, in any
// order — or an undefined tensor when they do not.
static at::Tensor one_block(const std::vector<at::Tensor>& ts) {
  if (ts.size() < 2) return at::Tensor();
  const at::Tensor& t0 = ts.front();
  std::vector<std::pair<int64_t, int64_t>> spans;  // [offset, offset + numel) in elements
  spans.reserve(ts.size());
  for (const auto& t : ts) {
    if (!t.is_contiguous() || t.scalar_type() != t0.scalar_type() || t.device() != t0.device() ||
        !t.storage().is_alias_of(t0.storage())) {
      return at::Tensor();
    }
    spans.emplace_back(t.storage_offset(), t.storage_offset() + t.numel());
  }
  std::sort(spans.begin(), spans.end());
  for (size_t i = 1; i < spans.size(); i++) {
    if (spans[i].first != spans[i - 1].second) return at::Tensor();
  }
  int64_t lo = spans.front().first, n = spans.back().second - lo;
  return t0.as_strided({n}, {1}, lo);
}

char* vlp_clip_grad_norm(const vlp_tensor_t* ts, int64_t n, vlp_f64 max_norm, double* total, vlp_tensor_t* norm) {
  VLP_TRY
  c10::NoGradGuard ng;
  std::vector<at::Tensor> grads;
  for (int64_t i = 0; i < n; i++) {
    const at::Tensor& g = T(ts[i]).grad();
    if (g.defined()) grads.push_back(g);
  }
  at::Tensor tn;
  if (grads.empty()) {
    tn = at::zeros({}, at::TensorOptions().dtype(at::kFloat));
  } else {
    // The norm of every gradient's own norm, as torch.nn.utils.clip_grad_norm_ takes it: the same
    // bits whatever the gradients' memory (a learner with gradient buckets clips as one without).
    std::vector<at::Tensor> norms;
#if VLP_TORCH_AT_LEAST(2, 1)
    if (grads.front().is_cuda()) {
      norms = at::_foreach_norm(grads, 2);
    } else
#endif
    {
      norms.reserve(grads.size());
      for (const auto& g : grads) norms.push_back(at::norm(g, 2));
    }
    at::Device dev = grads.front().device();
    for (auto& x : norms) x = x.to(dev);
    tn = at::norm(at::stack(norms), 2);
    at::Tensor coef = (vlp::f64(max_norm) / (tn + 1e-6)).clamp_max(1.0);
    if (at::Tensor flat = one_block(grads); flat.defined()) {
      flat.mul_(coef);  // the gradients tile one block (a learner's buckets): one scaling of it
    } else {
      for (auto& g : grads) {
        at::Tensor gg = g;
        gg.mul_(coef.to(g.device()));
      }
    }
  }
  if (norm != nullptr) *norm = wrap(tn);
  if (total != nullptr) *total = tn.item<double>();
  VLP_CATCH
}

char* vlp_flat_copy(int64_t what, int64_t dir, const vlp_tensor_t* ts, int64_t n, void* buf, int64_t numel,
                    int64_t dtype) {
  VLP_TRY
  c10::NoGradGuard ng;
  at::ScalarType dt = flat_dtype(dtype);
  std::vector<at::Tensor> v = tensors(ts, n);
  if (what == 1) {
    for (size_t i = 0; i < v.size(); i++) {
      at::Tensor& param = ts[i]->t;
      at::Tensor g = param.grad();
      if (!g.defined()) {
        g = at::zeros_like(param, at::MemoryFormat::Preserve);
        if (dir == 1) param.mutable_grad() = g;  // written below, through this reference
      }
      v[i] = g;
    }
  } else if (what != 0) {
    throw std::invalid_argument("flat copy: what must be 0 (values) or 1 (gradients)");
  }
  if (dir == 0) {
    to_flat(v, buf, numel, dt);
  } else {
    from_flat(v, buf, numel, dt);
  }
  VLP_CATCH
}

}  // extern "C"
