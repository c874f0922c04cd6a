// ops_nn.cpp — convolution, normalisation, pooling, softmax, embedding, dropout, resize.
#include "internal.h"

using vlp::T;
using vlp::wrap;

extern "C" {

char* vlp_conv2d(vlp_tensor_t x, vlp_tensor_t w, vlp_tensor_t b, const int64_t* p, int64_t groups,
                 vlp_tensor_t* out) {
  VLP_TRY
  *out = wrap(at::conv2d(T(x), T(w), vlp::opt(b), at::IntArrayRef(p, 2), at::IntArrayRef(p + 2, 2),
                         at::IntArrayRef(p + 4, 2), groups));
  VLP_CATCH
}

char* vlp_batch_norm(vlp_tensor_t x, vlp_tensor_t w, vlp_tensor_t b, vlp_tensor_t rm, vlp_tensor_t rv,
                     int64_t mode, vlp_f64 momentum, vlp_f64 eps, vlp_tensor_t* out) {
  VLP_TRY
  const at::Tensor& in = T(x);
  double e = vlp::f64(eps);
  at::Tensor r;
  if (mode == 2) {
    // FrozenBatchNorm2d: every statistic is a constant, folded into one scale and shift.
    const at::Tensor& mean = T(rm);
    const at::Tensor& var = T(rv);
    if (in.dim() < 2) throw std::invalid_argument("frozen batch_norm needs [N, C, ...] input");
    int64_t c = in.size(1);
    at::Tensor scale = var.add(e).rsqrt();
    if (w != nullptr) scale = scale * T(w);
    at::Tensor shift = mean.neg() * scale;
    if (b != nullptr) shift = shift + T(b);
    std::vector<int64_t> bshape(static_cast<size_t>(in.dim()), 1);
    bshape[1] = c;
    r = in * scale.reshape(bshape) + shift.reshape(bshape);
  } else if (mode == 0 || mode == 1) {
    if (mode == 1 && (rm == nullptr || rv == nullptr)) {
      throw std::invalid_argument("eval batch_norm needs running mean and variance");
    }
    r = at::batch_norm(in, vlp::opt(w), vlp::opt(b), vlp::opt(rm), vlp::opt(rv), mode == 0,
                       vlp::f64(momentum), e, at::globalContext().userEnabledCuDNN());
  } else {
    throw std::invalid_argument("unknown batch_norm mode " + std::to_string(mode));
  }
  *out = wrap(std::move(r));
  VLP_CATCH
}

char* vlp_max_pool2d(vlp_tensor_t x, const int64_t* p, int64_t ceil_mode, vlp_tensor_t* out) {
  VLP_TRY
  *out = wrap(at::max_pool2d(T(x), at::IntArrayRef(p, 2), at::IntArrayRef(p + 2, 2), at::IntArrayRef(p + 4, 2),
                             at::IntArrayRef(p + 6, 2), ceil_mode != 0));
  VLP_CATCH
}

char* vlp_adaptive_avg_pool2d(vlp_tensor_t x, int64_t oh, int64_t ow, vlp_tensor_t* out) {
  VLP_TRY
  std::vector<int64_t> size{oh, ow};
  *out = wrap(at::adaptive_avg_pool2d(T(x), size));
  VLP_CATCH
}

char* vlp_softmax(vlp_tensor_t x, int64_t dim, int64_t log, vlp_tensor_t* out) {
  VLP_TRY
  *out = wrap(log ? T(x).log_softmax(dim) : T(x).softmax(dim));
  VLP_CATCH
}

char* vlp_layer_norm(vlp_tensor_t x, const int64_t* shape, int64_t n, vlp_tensor_t w, vlp_tensor_t b,
                     vlp_f64 eps, vlp_tensor_t* out) {
  VLP_TRY
  // A floating input of another dtype than the weight (bf16 activations under autocast, fp32
  // parameters) is normalised in the weight's dtype: what CUDA autocast's fp32 policy does for
  // layer_norm. LibTorch 1.13's CPU autocast leaves layer_norm out and would fail instead; where
  // autocast does cover it, it recasts the inputs as it would have anyway.
  at::Tensor in = T(x);
  at::Tensor wt = vlp::opt(w);
  if (wt.defined() && in.is_floating_point() && in.scalar_type() != wt.scalar_type()) in = in.to(wt.scalar_type());
  *out = wrap(at::layer_norm(in, vlp::dims(shape, n), wt, vlp::opt(b), vlp::f64(eps)));
  VLP_CATCH
}

char* vlp_embedding(vlp_tensor_t w, vlp_tensor_t idx, int64_t padding_idx, vlp_tensor_t* out) {
  VLP_TRY
  *out = wrap(at::embedding(T(w), T(idx), padding_idx < 0 ? -1 : padding_idx));
  VLP_CATCH
}

char* vlp_dropout(vlp_tensor_t x, vlp_f64 pbits, int64_t train, vlp_generator_t g, vlp_tensor_t* out) {
  VLP_TRY
  const at::Tensor& in = T(x);
  double p = vlp::f64(pbits);
  if (p < 0 || p > 1) throw std::invalid_argument("dropout probability " + std::to_string(p) + " not in [0, 1]");
  if (!train || p == 0) {
    *out = wrap(in);  // identity: a second handle to the same tensor
    return nullptr;
  }
  if (p == 1) {
    *out = wrap(in * 0);
    return nullptr;
  }
  at::Generator gen = vlp::generator(g, vlp::device_code(in.device()));
  at::Tensor mask;
  {
    c10::NoGradGuard ng;
    mask = at::empty_like(in, in.options().requires_grad(false));
    mask.bernoulli_(1 - p, gen);
    mask.div_(1 - p);
  }
  *out = wrap(in * mask);
  VLP_CATCH
}

char* vlp_interpolate_nearest(vlp_tensor_t x, int64_t oh, int64_t ow, vlp_tensor_t* out) {
  VLP_TRY
  const at::Tensor& in = T(x);
  std::vector<int64_t> size{oh, ow};
  at::Tensor r;
  if (in.scalar_type() == at::kBool || !at::isFloatingType(in.scalar_type())) {
    // The nearest kernels take floating types only; masks and labels go through float.
    r = at::upsample_nearest2d(in.to(at::kFloat), size).to(in.scalar_type());
  } else {
    r = at::upsample_nearest2d(in, size);
  }
  *out = wrap(std::move(r));
  VLP_CATCH
}

}  // extern "C"
