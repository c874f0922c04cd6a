// cuda.cpp — CUDA devices, synchronisation and memory statistics.
//
// Device count and synchronize go through LibTorch's CUDA hooks and need no CUDA headers, so
// this file builds against a CPU-only LibTorch. Memory statistics and device names need the
// CUDA runtime headers: the GPU build (scripts/gpu-check.sh) defines VLP_WITH_CUDA when it finds
// them; without it those calls return an error saying so.
#include <c10/core/impl/DeviceGuardImplInterface.h>
#include <torch/cuda.h>

#include "internal.h"

#ifdef VLP_WITH_CUDA
#include <c10/cuda/CUDACachingAllocator.h>
#include <cuda_runtime_api.h>
#endif

namespace {

void check_device(int64_t device) {
  int64_t n = static_cast<int64_t>(torch::cuda::device_count());
  if (device < 0 || device >= n) {
    throw std::invalid_argument("cuda:" + std::to_string(device) + " does not exist (" + std::to_string(n) +
                                " CUDA devices)");
  }
}

#ifndef VLP_WITH_CUDA
[[noreturn]] void no_cuda_headers() {
  throw std::runtime_error("this libvlptorch.so was built without CUDA headers (VLP_WITH_CUDA)");
}
#endif

}  // namespace

extern "C" {

char* vlp_cuda_device_count(int64_t* out) {
  VLP_TRY
  *out = static_cast<int64_t>(torch::cuda::device_count());
  VLP_CATCH
}

char* vlp_cuda_built(int64_t* out) {
  VLP_TRY
  // libc10_cuda registers CUDA's device guard when it loads; a CPU-only LibTorch has none. This
  // tells "built without CUDA" from "no device visible", which device_count alone cannot.
  *out = c10::impl::hasDeviceGuardImpl(c10::DeviceType::CUDA) ? 1 : 0;
  VLP_CATCH
}

char* vlp_cuda_synchronize(int64_t device) {
  VLP_TRY
  check_device(device);
  torch::cuda::synchronize(device);
  VLP_CATCH
}

char* vlp_cuda_memory(int64_t device, int64_t* stats) {
  VLP_TRY
  check_device(device);
#ifdef VLP_WITH_CUDA
  auto s = c10::cuda::CUDACachingAllocator::getDeviceStats(static_cast<c10::DeviceIndex>(device));
  // Index 0 of every stat array is the aggregate over pool types.
  stats[0] = s.allocated_bytes[0].current;
  stats[1] = s.allocated_bytes[0].peak;
  stats[2] = s.reserved_bytes[0].current;
#else
  no_cuda_headers();
#endif
  VLP_CATCH
}

char* vlp_cuda_reset_peak(int64_t device) {
  VLP_TRY
  check_device(device);
#ifdef VLP_WITH_CUDA
  c10::cuda::CUDACachingAllocator::resetPeakStats(static_cast<c10::DeviceIndex>(device));
#else
  no_cuda_headers();
#endif
  VLP_CATCH
}

char* vlp_cuda_empty_cache(void) {
  VLP_TRY
#ifdef VLP_WITH_CUDA
  if (torch::cuda::device_count() > 0) c10::cuda::CUDACachingAllocator::emptyCache();
#endif
  VLP_CATCH
}

char* vlp_cuda_math_get(int64_t* flags) {
  VLP_TRY
  auto& ctx = at::globalContext();
  flags[0] = ctx.allowTF32CuBLAS() ? 1 : 0;
  flags[1] = ctx.benchmarkCuDNN() ? 1 : 0;
  flags[2] = ctx.allowTF32CuDNN() ? 1 : 0;
  VLP_CATCH
}

char* vlp_cuda_math_set(int64_t tf32_matmul, int64_t cudnn_benchmark, int64_t tf32_cudnn) {
  VLP_TRY
  for (int64_t v : {tf32_matmul, cudnn_benchmark, tf32_cudnn}) {
    if (v < -1 || v > 1) throw std::invalid_argument("a CUDA math flag is 0, 1 or -1 (unchanged), not " + std::to_string(v));
  }
  auto& ctx = at::globalContext();
  if (tf32_matmul >= 0) ctx.setAllowTF32CuBLAS(tf32_matmul == 1);
  if (cudnn_benchmark >= 0) ctx.setBenchmarkCuDNN(cudnn_benchmark == 1);
  if (tf32_cudnn >= 0) ctx.setAllowTF32CuDNN(tf32_cudnn == 1);
  VLP_CATCH
}

char* vlp_cuda_device_info(int64_t device, char** name, int64_t* total_mem) {
  VLP_TRY
  check_device(device);
#ifdef VLP_WITH_CUDA
  cudaDeviceProp prop;
  cudaError_t err = cudaGetDeviceProperties(&prop, static_cast<int>(device));
  if (err != cudaSuccess) throw std::runtime_error(std::string("cudaGetDeviceProperties: ") + cudaGetErrorString(err));
  *name = vlp::error_string(prop.name);
  *total_mem = static_cast<int64_t>(prop.totalGlobalMem);
#else
  no_cuda_headers();
#endif
  VLP_CATCH
}

}  // extern "C"
