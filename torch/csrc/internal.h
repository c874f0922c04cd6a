// internal.h — what every compile unit of the shim shares: the handle structs, the error
// wrapper, dtype/device/scalar conversions and the version guards. Not part of the ABI.
#pragma once

#include <ATen/ATen.h>
#include <c10/core/GradMode.h>
#include <torch/version.h>

#include <atomic>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "vlp_torch.h"

#define VLP_TORCH_AT_LEAST(maj, min) \
  (TORCH_VERSION_MAJOR > (maj) || (TORCH_VERSION_MAJOR == (maj) && TORCH_VERSION_MINOR >= (min)))

struct vlp_tensor {
  at::Tensor t;
};

struct vlp_generator {
  at::Generator g;
  int64_t device;
};

namespace vlp {

extern std::atomic<int64_t> live_tensors;

// host_reads counts, per OS thread, the calls whose result needs the tensor's values on the host
// (a copy to host memory, a scalar, an output sized by the data): on a GPU each one waits for the
// device. A training step's count is part of its report.
extern thread_local int64_t host_reads;

// wrap hands a tensor to the caller as a new handle.
inline vlp_tensor_t wrap(at::Tensor t) {
  live_tensors.fetch_add(1, std::memory_order_relaxed);
  return new vlp_tensor{std::move(t)};
}

char* error_string(const std::string& msg);

// A null handle where a tensor is required is a caller bug; say so instead of crashing.
inline const at::Tensor& T(vlp_tensor_t h) {
  if (h == nullptr) throw std::invalid_argument("null tensor handle");
  return h->t;
}
// An optional tensor: undefined when the handle is NULL (LibTorch treats it as None).
inline at::Tensor opt(vlp_tensor_t h) { return h == nullptr ? at::Tensor() : h->t; }

inline double f64(vlp_f64 bits) {
  double d;
  std::memcpy(&d, &bits, sizeof d);
  return d;
}

at::ScalarType dtype(int64_t code);
int64_t dtype_code(at::ScalarType st);
at::Device device(int64_t code);
int64_t device_code(const at::Device& d);

// scalar turns a Go float64 into the Scalar PyTorch would make from the same Python number for
// tensor t: an integral value stays an integer for integer and bool tensors.
inline at::Scalar scalar(double v, const at::Tensor& t) {
  if (!at::isFloatingType(t.scalar_type()) && !at::isComplexType(t.scalar_type()) &&
      std::trunc(v) == v && std::fabs(v) < 9.2e18) {
    return at::Scalar(static_cast<int64_t>(v));
  }
  return at::Scalar(v);
}

inline at::IntArrayRef dims(const int64_t* p, int64_t n) {
  return at::IntArrayRef(p, static_cast<size_t>(n));
}

at::Generator generator(vlp_generator_t g, int64_t device);

// attention_matmul is a · b (batched: a [..., M, K], b [..., K, P]): for small float32 CPU
// matrices outside autocast the shim's own loop over every matrix (small_matmul.cpp), at::matmul
// elsewhere.
at::Tensor attention_matmul(const at::Tensor& a, const at::Tensor& b);

// adamw_fusable reports whether adamw_fused_cpu can update p: float32 on the CPU, dense, and its
// gradient and moments laid out exactly as it is (adamw_cpu.cpp).
bool adamw_fusable(const at::Tensor& p, const at::Tensor& grad, const at::Tensor& exp_avg,
                   const at::Tensor& exp_avg_sq);
// adamw_fused_cpu is torch.optim.AdamW's update of p at step (1-based) in one pass over memory.
void adamw_fused_cpu(const at::Tensor& p, const at::Tensor& grad, const at::Tensor& exp_avg,
                     const at::Tensor& exp_avg_sq, double lr, double beta1, double beta2, double eps, double wd,
                     int64_t step);

}  // namespace vlp

// VLP_TRY/VLP_CATCH wrap every exported body: success returns NULL, any exception becomes an
// error string (the message without LibTorch's C++ backtrace).
#define VLP_TRY try {
#define VLP_CATCH                                                  \
  return nullptr;                                                  \
  }                                                                \
  catch (const c10::Error& e) {                                    \
    return vlp::error_string(e.what_without_backtrace());          \
  }                                                                \
  catch (const std::exception& e) {                                \
    return vlp::error_string(e.what());                            \
  }                                                                \
  catch (...) {                                                    \
    return vlp::error_string("unknown C++ exception");             \
  }
