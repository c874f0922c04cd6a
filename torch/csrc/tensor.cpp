// tensor.cpp — handles, conversions, creation, host copies and random generators.
#include <ATen/CPUGeneratorImpl.h>
#include <ATen/Parallel.h>

#include "internal.h"

namespace vlp {

std::atomic<int64_t> live_tensors{0};
thread_local int64_t host_reads = 0;

char* error_string(const std::string& msg) {
  char* s = static_cast<char*>(std::malloc(msg.size() + 1));
  if (s == nullptr) return nullptr;  // out of memory: nothing better to report
  std::memcpy(s, msg.c_str(), msg.size() + 1);
  return s;
}

static char* dup_string(const std::string& msg) { return error_string(msg); }

at::ScalarType dtype(int64_t code) {
  switch (code) {
    case VLP_FLOAT32: return at::kFloat;
    case VLP_FLOAT64: return at::kDouble;
    case VLP_FLOAT16: return at::kHalf;
    case VLP_BFLOAT16: return at::kBFloat16;
    case VLP_INT64: return at::kLong;
    case VLP_INT32: return at::kInt;
    case VLP_UINT8: return at::kByte;
    case VLP_BOOL: return at::kBool;
  }
  throw std::invalid_argument("unknown dtype code " + std::to_string(code));
}

int64_t dtype_code(at::ScalarType st) {
  switch (st) {
    case at::kFloat: return VLP_FLOAT32;
    case at::kDouble: return VLP_FLOAT64;
    case at::kHalf: return VLP_FLOAT16;
    case at::kBFloat16: return VLP_BFLOAT16;
    case at::kLong: return VLP_INT64;
    case at::kInt: return VLP_INT32;
    case at::kByte: return VLP_UINT8;
    case at::kBool: return VLP_BOOL;
    default: return -1;
  }
}

at::Device device(int64_t code) {
  if (code < 0) return at::Device(at::kCPU);
  return at::Device(at::kCUDA, static_cast<c10::DeviceIndex>(code));
}

int64_t device_code(const at::Device& d) {
  if (d.is_cpu()) return -1;
  if (d.is_cuda()) return d.has_index() ? d.index() : 0;
  return -100 - static_cast<int64_t>(d.type());  // another backend: never produced by this shim
}

at::Generator generator(vlp_generator_t g, int64_t dev) {
  if (g != nullptr) return g->g;
  return at::globalContext().defaultGenerator(device(dev));
}

}  // namespace vlp

using vlp::T;

extern "C" {

void vlp_free_string(char* s) { std::free(s); }

char* vlp_version(char** out) {
  VLP_TRY
  *out = vlp::dup_string(TORCH_VERSION);
  VLP_CATCH
}

char* vlp_host_reads(int64_t* out) {
  VLP_TRY
  *out = vlp::host_reads;
  VLP_CATCH
}

char* vlp_build_config(char** out) {
  VLP_TRY
  *out = vlp::dup_string(at::show_config());
  VLP_CATCH
}

char* vlp_live_tensors(int64_t* out) {
  VLP_TRY
  *out = vlp::live_tensors.load(std::memory_order_relaxed);
  VLP_CATCH
}

char* vlp_tensor_free(vlp_tensor_t t) {
  VLP_TRY
  if (t != nullptr) {
    delete t;
    vlp::live_tensors.fetch_sub(1, std::memory_order_relaxed);
  }
  VLP_CATCH
}

char* vlp_tensor_free_many(const vlp_tensor_t* ts, int64_t n) {
  VLP_TRY
  int64_t freed = 0;
  for (int64_t i = 0; i < n; i++) {
    if (ts[i] != nullptr) {
      delete ts[i];
      freed++;
    }
  }
  vlp::live_tensors.fetch_sub(freed, std::memory_order_relaxed);
  VLP_CATCH
}

char* vlp_tensor_meta(vlp_tensor_t h, int64_t* meta, int64_t* shape, int64_t cap) {
  VLP_TRY
  const at::Tensor& t = T(h);
  if (!t.defined()) throw std::invalid_argument("undefined tensor");
  int64_t nd = t.dim();
  meta[0] = nd;
  meta[1] = t.numel();
  meta[2] = vlp::dtype_code(t.scalar_type());
  meta[3] = vlp::device_code(t.device());
  meta[4] = t.requires_grad();
  meta[5] = t.is_contiguous();
  meta[6] = (t.is_leaf() || t.retains_grad()) && t.grad().defined();  // non-leaf .grad() warns
  meta[7] = t.is_leaf();
  if (shape != nullptr) {
    for (int64_t i = 0; i < nd && i < cap; i++) shape[i] = t.size(i);
  }
  VLP_CATCH
}

// OpenBLAS keeps its own pool of threads (one a core by default, whatever LibTorch's count), and
// its sgemm splits work over that pool, so its count changes both the time (idle threads spin on
// sched_yield beside LibTorch's) and the float bits. The pool follows LibTorch's count. The
// symbols are weak: they resolve when the BLAS LibTorch loaded is OpenBLAS, and are null otherwise.
extern "C" void openblas_set_num_threads(int) __attribute__((weak));
extern "C" int openblas_get_num_threads(void) __attribute__((weak));

char* vlp_num_threads(int64_t n, int64_t* out) {
  VLP_TRY
  if (n > 0) {
    at::set_num_threads(static_cast<int>(n));
    if (openblas_set_num_threads != nullptr) openblas_set_num_threads(static_cast<int>(n));
  }
  *out = at::get_num_threads();
  VLP_CATCH
}

char* vlp_blas_threads(int64_t* out) {
  VLP_TRY
  *out = openblas_get_num_threads != nullptr ? openblas_get_num_threads() : -1;
  VLP_CATCH
}

char* vlp_fill(int64_t kind, const int64_t* shape, int64_t ndim, int64_t dtype, int64_t device,
               vlp_f64 value, vlp_tensor_t* out) {
  VLP_TRY
  auto opts = at::TensorOptions().dtype(vlp::dtype(dtype)).device(vlp::device(device));
  auto size = vlp::dims(shape, ndim);
  at::Tensor r;
  switch (kind) {
    case VLP_FILL_EMPTY: r = at::empty(size, opts); break;
    case VLP_FILL_ZEROS: r = at::zeros(size, opts); break;
    case VLP_FILL_ONES: r = at::ones(size, opts); break;
    case VLP_FILL_FULL: {
      r = at::empty(size, opts);
      r.fill_(vlp::scalar(vlp::f64(value), r));
      break;
    }
    default: throw std::invalid_argument("unknown fill kind");
  }
  *out = vlp::wrap(std::move(r));
  VLP_CATCH
}

char* vlp_arange(vlp_f64 start, vlp_f64 end, vlp_f64 step, int64_t dtype, int64_t device,
                 vlp_tensor_t* out) {
  VLP_TRY
  auto st = vlp::dtype(dtype);
  auto opts = at::TensorOptions().dtype(st).device(vlp::device(device));
  double a = vlp::f64(start), b = vlp::f64(end), s = vlp::f64(step);
  at::Tensor r;
  if (at::isFloatingType(st)) {
    r = at::arange(at::Scalar(a), at::Scalar(b), at::Scalar(s), opts);
  } else {
    r = at::arange(at::Scalar(static_cast<int64_t>(a)), at::Scalar(static_cast<int64_t>(b)),
                   at::Scalar(static_cast<int64_t>(s)), opts);
  }
  *out = vlp::wrap(std::move(r));
  VLP_CATCH
}

char* vlp_from_data(const void* data, int64_t nbytes, const int64_t* shape, int64_t ndim, int64_t dtype,
                    int64_t device, vlp_tensor_t* out) {
  VLP_TRY
  auto st = vlp::dtype(dtype);
  auto size = vlp::dims(shape, ndim);
  int64_t numel = 1;
  for (auto s : size) {
    if (s < 0) throw std::invalid_argument("negative size in shape " + c10::str(size));
    numel *= s;
  }
  int64_t want = numel * static_cast<int64_t>(c10::elementSize(st));
  if (want != nbytes) {
    throw std::invalid_argument("shape " + c10::str(size) + " needs " + std::to_string(numel) +
                                " elements, the data holds " +
                                std::to_string(nbytes / static_cast<int64_t>(c10::elementSize(st))));
  }
  at::Tensor r = at::empty(size, at::TensorOptions().dtype(st));
  if (nbytes > 0) std::memcpy(r.data_ptr(), data, static_cast<size_t>(nbytes));
  at::Device dev = vlp::device(device);
  if (!dev.is_cpu()) r = r.to(dev);
  *out = vlp::wrap(std::move(r));
  VLP_CATCH
}

char* vlp_to_host(vlp_tensor_t h, void* dst, int64_t nbytes) {
  VLP_TRY
  const at::Tensor& t = T(h);
  int64_t want = t.numel() * static_cast<int64_t>(t.element_size());
  if (want != nbytes) {
    throw std::invalid_argument("tensor of shape " + c10::str(t.sizes()) + " and dtype " +
                                std::string(c10::toString(t.scalar_type())) + " holds " + std::to_string(want) +
                                " bytes, the buffer " + std::to_string(nbytes));
  }
  if (nbytes == 0) return nullptr;
  vlp::host_reads++;
  at::Tensor dstT = at::from_blob(dst, t.sizes(), at::TensorOptions().dtype(t.scalar_type()));
  c10::NoGradGuard ng;
  dstT.copy_(t.detach());
  VLP_CATCH
}

char* vlp_item(vlp_tensor_t h, double* out) {
  VLP_TRY
  vlp::host_reads++;
  *out = T(h).item<double>();
  VLP_CATCH
}

char* vlp_to_device(vlp_tensor_t h, int64_t device, int64_t non_blocking, vlp_tensor_t* out) {
  VLP_TRY
  *out = vlp::wrap(T(h).to(vlp::device(device), non_blocking != 0));
  VLP_CATCH
}

char* vlp_to_dtype(vlp_tensor_t h, int64_t dtype, vlp_tensor_t* out) {
  VLP_TRY
  *out = vlp::wrap(T(h).to(vlp::dtype(dtype)));
  VLP_CATCH
}

char* vlp_copy_(vlp_tensor_t dst, vlp_tensor_t src) {
  VLP_TRY
  c10::NoGradGuard ng;
  dst->t.copy_(T(src));
  VLP_CATCH
}

char* vlp_fill_(vlp_tensor_t h, vlp_f64 value) {
  VLP_TRY
  c10::NoGradGuard ng;
  h->t.fill_(vlp::scalar(vlp::f64(value), T(h)));
  VLP_CATCH
}

char* vlp_tensor_share(vlp_tensor_t h, vlp_tensor_t* out) {
  VLP_TRY
  *out = vlp::wrap(T(h));
  VLP_CATCH
}

// ---- generators ----

char* vlp_generator_new(int64_t seed, int64_t device, vlp_generator_t* out) {
  VLP_TRY
  at::Generator g;
  if (device < 0) {
    g = at::make_generator<at::CPUGeneratorImpl>(static_cast<uint64_t>(seed));
  } else {
    // A CUDA generator through the hooks, so this file needs no CUDA headers.
    g = at::globalContext().defaultGenerator(vlp::device(device)).clone();
    std::lock_guard<std::mutex> lock(g.mutex());
    g.set_current_seed(static_cast<uint64_t>(seed));
  }
  *out = new vlp_generator{std::move(g), device < 0 ? -1 : device};
  VLP_CATCH
}

char* vlp_generator_free(vlp_generator_t g) {
  VLP_TRY
  delete g;
  VLP_CATCH
}

char* vlp_generator_seed(vlp_generator_t g, int64_t seed) {
  VLP_TRY
  std::lock_guard<std::mutex> lock(g->g.mutex());
  g->g.set_current_seed(static_cast<uint64_t>(seed));
  VLP_CATCH
}

char* vlp_rng_get_state(vlp_generator_t g, int64_t device, vlp_tensor_t* out) {
  VLP_TRY
  at::Generator gen = vlp::generator(g, device);
  at::Tensor st;
  {
    std::lock_guard<std::mutex> lock(gen.mutex());
    st = gen.get_state();
  }
  *out = vlp::wrap(st.to(at::kCPU).contiguous());
  VLP_CATCH
}

char* vlp_rng_set_state(vlp_generator_t g, int64_t device, const void* data, int64_t n) {
  VLP_TRY
  at::Generator gen = vlp::generator(g, device);
  at::Tensor st = at::empty({n}, at::TensorOptions().dtype(at::kByte));
  if (n > 0) std::memcpy(st.data_ptr(), data, static_cast<size_t>(n));
  std::lock_guard<std::mutex> lock(gen.mutex());
  gen.set_state(st);
  VLP_CATCH
}

char* vlp_manual_seed(int64_t seed) {
  VLP_TRY
  at::manual_seed(static_cast<uint64_t>(seed));
  VLP_CATCH
}

static int64_t gen_device(vlp_generator_t g, int64_t device) { return g != nullptr ? g->device : device; }

char* vlp_random(int64_t kind, vlp_generator_t g, const int64_t* shape, int64_t ndim, int64_t dtype,
                 int64_t device, vlp_tensor_t* out) {
  VLP_TRY
  int64_t gdev = gen_device(g, device);
  at::Generator gen = vlp::generator(g, gdev);
  auto opts = at::TensorOptions().dtype(vlp::dtype(dtype)).device(vlp::device(gdev));
  auto size = vlp::dims(shape, ndim);
  at::Tensor r;
  if (kind == 0) {
    r = at::randn(size, gen, opts);
  } else if (kind == 1) {
    r = at::rand(size, gen, opts);
  } else {
    throw std::invalid_argument("unknown random kind");
  }
  if (gdev != device) r = r.to(vlp::device(device));
  *out = vlp::wrap(std::move(r));
  VLP_CATCH
}

char* vlp_randint(vlp_generator_t g, int64_t low, int64_t high, const int64_t* shape, int64_t ndim,
                  int64_t dtype, int64_t device, vlp_tensor_t* out) {
  VLP_TRY
  int64_t gdev = gen_device(g, device);
  at::Generator gen = vlp::generator(g, gdev);
  auto opts = at::TensorOptions().dtype(vlp::dtype(dtype)).device(vlp::device(gdev));
  at::Tensor r = at::randint(low, high, vlp::dims(shape, ndim), gen, opts);
  if (gdev != device) r = r.to(vlp::device(device));
  *out = vlp::wrap(std::move(r));
  VLP_CATCH
}

char* vlp_randperm(vlp_generator_t g, int64_t n, int64_t device, vlp_tensor_t* out) {
  VLP_TRY
  int64_t gdev = gen_device(g, device);
  at::Generator gen = vlp::generator(g, gdev);
  at::Tensor r = at::randperm(n, gen, at::TensorOptions().dtype(at::kLong).device(vlp::device(gdev)));
  if (gdev != device) r = r.to(vlp::device(device));
  *out = vlp::wrap(std::move(r));
  VLP_CATCH
}

}  // extern "C"
