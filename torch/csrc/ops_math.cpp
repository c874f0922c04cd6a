// ops_math.cpp — elementwise maths, comparisons, reductions, matmul.
#include "internal.h"

using vlp::T;
using vlp::wrap;

extern "C" {

char* vlp_unary(int64_t op, vlp_tensor_t h, vlp_tensor_t* out) {
  VLP_TRY
  const at::Tensor& t = T(h);
  at::Tensor r;
  switch (op) {
    case VLP_U_NEG: r = t.neg(); break;
    case VLP_U_SQRT: r = t.sqrt(); break;
    case VLP_U_RSQRT: r = t.rsqrt(); break;
    case VLP_U_EXP: r = t.exp(); break;
    case VLP_U_LOG: r = t.log(); break;
    case VLP_U_ABS: r = t.abs(); break;
    case VLP_U_RELU: r = t.relu(); break;
    case VLP_U_SIGMOID: r = t.sigmoid(); break;
    case VLP_U_TANH: r = t.tanh(); break;
    case VLP_U_LOGICAL_NOT: r = t.logical_not(); break;
    case VLP_U_CONTIGUOUS: r = t.contiguous(); break;
    case VLP_U_SIN: r = t.sin(); break;
    case VLP_U_COS: r = t.cos(); break;
    case VLP_U_FLOOR: r = t.floor(); break;
    case VLP_U_CEIL: r = t.ceil(); break;
    case VLP_U_ROUND: r = t.round(); break;
    case VLP_U_SIGN: r = t.sign(); break;
    case VLP_U_SUM: r = t.sum(); break;
    case VLP_U_MEAN: r = t.mean(); break;
    case VLP_U_MIN: r = t.min(); break;
    case VLP_U_MAX: r = t.max(); break;
    case VLP_U_DETACH: r = t.detach(); break;
    case VLP_U_CLONE: r = t.clone(); break;
    case VLP_U_ZEROS_LIKE: r = at::zeros_like(t); break;
    case VLP_U_ONES_LIKE: r = at::ones_like(t); break;
    case VLP_U_RECIPROCAL: r = t.reciprocal(); break;
    case VLP_U_GELU: r = at::gelu(t); break;
    case VLP_U_GELU_TANH: r = at::gelu(t, "tanh"); break;
    case VLP_U_SILU: r = at::silu(t); break;
    case VLP_U_LOG1P: r = t.log1p(); break;
    case VLP_U_ANY: r = t.any(); break;
    case VLP_U_ALL: r = t.all(); break;
    case VLP_U_SQUARE: r = t.square(); break;
    case VLP_U_ISNAN: r = t.isnan(); break;
    case VLP_U_ARGMAX: r = t.argmax(); break;
    case VLP_U_LOG_SIGMOID: r = at::log_sigmoid(t); break;
    case VLP_U_CHANNELS_LAST:
      if (t.dim() != 4) {
        throw std::invalid_argument("channels_last needs a 4-D [N, C, H, W] tensor, not " + std::to_string(t.dim()) + "-D");
      }
      r = t.contiguous(at::MemoryFormat::ChannelsLast);
      break;
    default: throw std::invalid_argument("unknown unary op " + std::to_string(op));
  }
  *out = wrap(std::move(r));
  VLP_CATCH
}

char* vlp_binary(int64_t op, vlp_tensor_t ha, vlp_tensor_t hb, vlp_tensor_t* out) {
  VLP_TRY
  const at::Tensor& a = T(ha);
  const at::Tensor& b = T(hb);
  at::Tensor r;
  switch (op) {
    case VLP_B_ADD: r = at::add(a, b); break;
    case VLP_B_SUB: r = at::sub(a, b); break;
    case VLP_B_MUL: r = at::mul(a, b); break;
    case VLP_B_DIV: r = at::div(a, b); break;
    case VLP_B_POW: r = at::pow(a, b); break;
    case VLP_B_MINIMUM: r = at::minimum(a, b); break;
    case VLP_B_MAXIMUM: r = at::maximum(a, b); break;
    case VLP_B_EQ: r = at::eq(a, b); break;
    case VLP_B_NE: r = at::ne(a, b); break;
    case VLP_B_LT: r = at::lt(a, b); break;
    case VLP_B_LE: r = at::le(a, b); break;
    case VLP_B_GT: r = at::gt(a, b); break;
    case VLP_B_GE: r = at::ge(a, b); break;
    case VLP_B_LOGICAL_AND: r = at::logical_and(a, b); break;
    case VLP_B_LOGICAL_OR: r = at::logical_or(a, b); break;
    case VLP_B_MATMUL: r = at::matmul(a, b); break;
    case VLP_B_BMM: r = at::bmm(a, b); break;
    case VLP_B_ATAN2: r = at::atan2(a, b); break;
    case VLP_B_REMAINDER: r = at::remainder(a, b); break;
    case VLP_B_FLOOR_DIVIDE: r = at::div(a, b, "floor"); break;
    case VLP_B_RSUB: r = at::sub(b, a); break;
    default: throw std::invalid_argument("unknown binary op " + std::to_string(op));
  }
  *out = wrap(std::move(r));
  VLP_CATCH
}

char* vlp_binary_scalar(int64_t op, vlp_tensor_t ha, vlp_f64 sbits, vlp_tensor_t* out) {
  VLP_TRY
  const at::Tensor& a = T(ha);
  double v = vlp::f64(sbits);
  at::Scalar s = vlp::scalar(v, a);
  at::Tensor r;
  switch (op) {
    case VLP_B_ADD: r = at::add(a, s); break;
    case VLP_B_SUB: r = at::sub(a, s); break;
    case VLP_B_MUL: r = at::mul(a, s); break;
    case VLP_B_DIV: r = at::div(a, s); break;
    case VLP_B_POW: r = at::pow(a, s); break;
    case VLP_B_MINIMUM: r = at::clamp_max(a, s); break;
    case VLP_B_MAXIMUM: r = at::clamp_min(a, s); break;
    case VLP_B_EQ: r = at::eq(a, s); break;
    case VLP_B_NE: r = at::ne(a, s); break;
    case VLP_B_LT: r = at::lt(a, s); break;
    case VLP_B_LE: r = at::le(a, s); break;
    case VLP_B_GT: r = at::gt(a, s); break;
    case VLP_B_GE: r = at::ge(a, s); break;
    case VLP_B_REMAINDER: r = at::remainder(a, s); break;
    case VLP_B_FLOOR_DIVIDE: r = at::div(a, s, "floor"); break;
    case VLP_B_RSUB: r = at::rsub(a, s); break;
    default: throw std::invalid_argument("unknown scalar op " + std::to_string(op));
  }
  *out = wrap(std::move(r));
  VLP_CATCH
}

char* vlp_add_(vlp_tensor_t ha, vlp_tensor_t hb, vlp_f64 alpha) {
  VLP_TRY
  c10::NoGradGuard ng;
  ha->t.add_(T(hb), vlp::scalar(vlp::f64(alpha), T(ha)));
  VLP_CATCH
}

char* vlp_mul_scalar_(vlp_tensor_t ha, vlp_f64 s) {
  VLP_TRY
  c10::NoGradGuard ng;
  ha->t.mul_(vlp::scalar(vlp::f64(s), T(ha)));
  VLP_CATCH
}

char* vlp_reduce(int64_t op, vlp_tensor_t h, const int64_t* dims, int64_t n, int64_t keepdim,
                 vlp_tensor_t* out) {
  VLP_TRY
  const at::Tensor& t = T(h);
  auto d = vlp::dims(dims, n);
  bool keep = keepdim != 0;
  at::Tensor r;
  auto one = [&](const char* what) -> int64_t {
    if (n != 1) throw std::invalid_argument(std::string(what) + " takes exactly one dim");
    return dims[0];
  };
  switch (op) {
    case VLP_R_SUM: r = t.sum(d, keep); break;
    case VLP_R_MEAN: r = t.mean(d, keep); break;
    case VLP_R_AMAX: r = t.amax(d, keep); break;
    case VLP_R_AMIN: r = t.amin(d, keep); break;
    case VLP_R_LOGSUMEXP: r = t.logsumexp(d, keep); break;
    case VLP_R_PROD: r = t.prod(one("prod"), keep); break;
    case VLP_R_ANY: r = t.any(one("any"), keep); break;
    case VLP_R_ALL: r = t.all(one("all"), keep); break;
    case VLP_R_NORM: r = at::norm(t, at::Scalar(2.0), d, keep); break;
    case VLP_R_VAR: r = t.var(d, /*unbiased=*/false, keep); break;
    case VLP_R_STD: r = t.std(d, /*unbiased=*/false, keep); break;
    default: throw std::invalid_argument("unknown reduction " + std::to_string(op));
  }
  *out = wrap(std::move(r));
  VLP_CATCH
}

char* vlp_reduce_index(int64_t op, vlp_tensor_t h, int64_t dim, int64_t keepdim, vlp_tensor_t* values,
                       vlp_tensor_t* indices) {
  VLP_TRY
  const at::Tensor& t = T(h);
  bool keep = keepdim != 0;
  at::Tensor v, i;
  switch (op) {
    case 0: std::tie(v, i) = t.max(dim, keep); break;
    case 1: std::tie(v, i) = t.min(dim, keep); break;
    case 2: i = t.argmax(dim, keep); break;
    case 3: i = t.argmin(dim, keep); break;
    case 4: std::tie(v, i) = t.sort(dim, false); break;
    case 5: std::tie(v, i) = t.sort(dim, true); break;
    default: throw std::invalid_argument("unknown index reduction " + std::to_string(op));
  }
  if (values != nullptr && v.defined()) *values = wrap(std::move(v));
  if (indices != nullptr) *indices = wrap(std::move(i));
  VLP_CATCH
}

char* vlp_topk(vlp_tensor_t h, int64_t k, int64_t dim, int64_t largest, int64_t sorted, vlp_tensor_t* values,
               vlp_tensor_t* indices) {
  VLP_TRY
  auto r = T(h).topk(k, dim, largest != 0, sorted != 0);
  *values = wrap(std::get<0>(r));
  *indices = wrap(std::get<1>(r));
  VLP_CATCH
}

char* vlp_cumsum(vlp_tensor_t h, int64_t dim, vlp_tensor_t* out) {
  VLP_TRY
  *out = wrap(T(h).cumsum(dim));
  VLP_CATCH
}

char* vlp_clamp(vlp_tensor_t h, int64_t has_min, vlp_f64 mn, int64_t has_max, vlp_f64 mx, vlp_tensor_t* out) {
  VLP_TRY
  const at::Tensor& t = T(h);
  at::Tensor r;
  if (has_min && has_max) {
    r = t.clamp(vlp::scalar(vlp::f64(mn), t), vlp::scalar(vlp::f64(mx), t));
  } else if (has_min) {
    r = t.clamp_min(vlp::scalar(vlp::f64(mn), t));
  } else if (has_max) {
    r = t.clamp_max(vlp::scalar(vlp::f64(mx), t));
  } else {
    r = t.clone();
  }
  *out = wrap(std::move(r));
  VLP_CATCH
}

char* vlp_where(vlp_tensor_t cond, vlp_tensor_t a, vlp_tensor_t b, vlp_tensor_t* out) {
  VLP_TRY
  *out = wrap(at::where(T(cond), T(a), T(b)));
  VLP_CATCH
}

char* vlp_masked_fill(vlp_tensor_t h, vlp_tensor_t mask, vlp_f64 value, vlp_tensor_t* out) {
  VLP_TRY
  const at::Tensor& t = T(h);
  const at::Tensor& m = T(mask);
  if (m.scalar_type() != at::kBool) {
    throw std::invalid_argument(std::string("mask must be bool, not ") + c10::toString(m.scalar_type()));
  }
  *out = wrap(t.masked_fill(m, vlp::scalar(vlp::f64(value), t)));
  VLP_CATCH
}

char* vlp_linear(vlp_tensor_t x, vlp_tensor_t w, vlp_tensor_t b, vlp_tensor_t* out) {
  VLP_TRY
  *out = wrap(at::linear(T(x), T(w), vlp::opt(b)));
  VLP_CATCH
}

char* vlp_tril(vlp_tensor_t h, int64_t k, int64_t upper, vlp_tensor_t* out) {
  VLP_TRY
  *out = wrap(upper ? T(h).triu(k) : T(h).tril(k));
  VLP_CATCH
}

char* vlp_one_hot(vlp_tensor_t h, int64_t classes, vlp_tensor_t* out) {
  VLP_TRY
  *out = wrap(at::one_hot(T(h), classes));
  VLP_CATCH
}

}  // extern "C"
