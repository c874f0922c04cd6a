// ops_shape.cpp — views, reshapes, indexing, concatenation.
#include "internal.h"

using vlp::T;
using vlp::wrap;

extern "C" {

char* vlp_shape_op(int64_t op, vlp_tensor_t h, const int64_t* dims, int64_t n, vlp_tensor_t* out) {
  VLP_TRY
  const at::Tensor& t = T(h);
  auto d = vlp::dims(dims, n);
  at::Tensor r;
  switch (op) {
    case VLP_SHAPE_RESHAPE: r = t.reshape(d); break;
    case VLP_SHAPE_VIEW: r = t.view(d); break;
    case VLP_SHAPE_EXPAND: r = t.expand(d); break;
    case VLP_SHAPE_REPEAT: r = t.repeat(d); break;
    case VLP_SHAPE_PERMUTE: r = t.permute(d); break;
    default: throw std::invalid_argument("unknown shape op");
  }
  *out = wrap(std::move(r));
  VLP_CATCH
}

char* vlp_transpose(vlp_tensor_t h, int64_t d0, int64_t d1, vlp_tensor_t* out) {
  VLP_TRY
  *out = wrap(T(h).transpose(d0, d1));
  VLP_CATCH
}

char* vlp_narrow(vlp_tensor_t h, int64_t dim, int64_t start, int64_t length, vlp_tensor_t* out) {
  VLP_TRY
  *out = wrap(T(h).narrow(dim, start, length));
  VLP_CATCH
}

char* vlp_slice(vlp_tensor_t h, int64_t dim, int64_t start, int64_t end, int64_t step, vlp_tensor_t* out) {
  VLP_TRY
  *out = wrap(T(h).slice(dim, start, end, step));
  VLP_CATCH
}

char* vlp_select(vlp_tensor_t h, int64_t dim, int64_t index, vlp_tensor_t* out) {
  VLP_TRY
  *out = wrap(T(h).select(dim, index));
  VLP_CATCH
}

char* vlp_index_select(vlp_tensor_t h, int64_t dim, vlp_tensor_t index, vlp_tensor_t* out) {
  VLP_TRY
  *out = wrap(T(h).index_select(dim, T(index)));
  VLP_CATCH
}

char* vlp_gather(vlp_tensor_t h, int64_t dim, vlp_tensor_t index, vlp_tensor_t* out) {
  VLP_TRY
  *out = wrap(T(h).gather(dim, T(index)));
  VLP_CATCH
}

char* vlp_scatter_add(vlp_tensor_t h, int64_t dim, vlp_tensor_t index, vlp_tensor_t src, vlp_tensor_t* out) {
  VLP_TRY
  *out = wrap(T(h).scatter_add(dim, T(index), T(src)));
  VLP_CATCH
}

char* vlp_masked_select(vlp_tensor_t h, vlp_tensor_t mask, vlp_tensor_t* out) {
  VLP_TRY
  const at::Tensor& t = T(h);
  const at::Tensor& m = T(mask);
  if (m.scalar_type() != at::kBool) throw std::invalid_argument("mask must be bool");
  // t[mask]: advanced indexing keeps the trailing dims, unlike at::masked_select.
  vlp::host_reads++;  // the output's size is the mask's count
  *out = wrap(t.index({m}));
  VLP_CATCH
}

char* vlp_cat(int64_t op, const vlp_tensor_t* ts, int64_t n, int64_t dim, vlp_tensor_t* out) {
  VLP_TRY
  std::vector<at::Tensor> v;
  v.reserve(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; i++) v.push_back(T(ts[i]));
  *out = wrap(op == 0 ? at::cat(v, dim) : at::stack(v, dim));
  VLP_CATCH
}

char* vlp_squeeze(vlp_tensor_t h, int64_t dim, int64_t all, vlp_tensor_t* out) {
  VLP_TRY
  *out = wrap(all ? T(h).squeeze() : T(h).squeeze(dim));
  VLP_CATCH
}

char* vlp_unsqueeze(vlp_tensor_t h, int64_t dim, vlp_tensor_t* out) {
  VLP_TRY
  *out = wrap(T(h).unsqueeze(dim));
  VLP_CATCH
}

char* vlp_flatten(vlp_tensor_t h, int64_t start, int64_t end, vlp_tensor_t* out) {
  VLP_TRY
  *out = wrap(T(h).flatten(start, end));
  VLP_CATCH
}

char* vlp_split(vlp_tensor_t h, const int64_t* sizes, int64_t n, int64_t dim, vlp_tensor_t* outs) {
  VLP_TRY
  auto parts = T(h).split_with_sizes(vlp::dims(sizes, n), dim);
  if (static_cast<int64_t>(parts.size()) != n) throw std::runtime_error("split: unexpected part count");
  for (int64_t i = 0; i < n; i++) outs[i] = wrap(std::move(parts[static_cast<size_t>(i)]));
  VLP_CATCH
}

char* vlp_nonzero(vlp_tensor_t h, vlp_tensor_t* out) {
  VLP_TRY
  vlp::host_reads++;  // the output's size is the count of non-zeros
  *out = wrap(T(h).nonzero());
  VLP_CATCH
}

}  // extern "C"
