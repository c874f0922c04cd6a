// serialize.cpp — tensors to bytes and back, and dicts of tensors that Python's torch.load reads.
// torch::jit::pickle_save writes the zip format of torch.save (readable by torch.load).
#include <ATen/core/Dict.h>
#include <torch/csrc/jit/serialization/pickle.h>

#include "internal.h"

using vlp::T;
using vlp::wrap;

namespace {

at::Tensor bytes_tensor(const std::vector<char>& data) {
  at::Tensor r = at::empty({static_cast<int64_t>(data.size())}, at::TensorOptions().dtype(at::kByte));
  if (!data.empty()) std::memcpy(r.data_ptr(), data.data(), data.size());
  return r;
}

}  // namespace

extern "C" {

char* vlp_serialize(vlp_tensor_t h, vlp_tensor_t* out) {
  VLP_TRY
  at::Tensor t = T(h).detach().to(at::kCPU).contiguous();
  *out = wrap(bytes_tensor(torch::jit::pickle_save(c10::IValue(t))));
  VLP_CATCH
}

char* vlp_deserialize(const void* data, int64_t n, int64_t device, vlp_tensor_t* out) {
  VLP_TRY
  if (n <= 0) throw std::invalid_argument("no bytes to deserialize");
  const char* p = static_cast<const char*>(data);
  std::vector<char> buf(p, p + n);
  c10::IValue v = torch::jit::pickle_load(buf);
  if (!v.isTensor()) throw std::invalid_argument("the bytes hold a " + v.tagKind() + ", not a tensor");
  at::Tensor t = v.toTensor();
  at::Device dev = vlp::device(device);
  if (t.device() != dev) t = t.to(dev);
  *out = wrap(std::move(t));
  VLP_CATCH
}

char* vlp_pickle_save(const char* names, const vlp_tensor_t* ts, int64_t n, vlp_tensor_t* out) {
  VLP_TRY
  c10::Dict<std::string, at::Tensor> d;
  const char* p = names;
  for (int64_t i = 0; i < n; i++) {
    std::string name(p);
    p += name.size() + 1;
    if (d.contains(name)) throw std::invalid_argument("duplicate name " + name);
    d.insert(name, T(ts[i]).detach().to(at::kCPU).contiguous());
  }
  *out = wrap(bytes_tensor(torch::jit::pickle_save(c10::IValue(d))));
  VLP_CATCH
}

}  // extern "C"
