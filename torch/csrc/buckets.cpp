// buckets.cpp — gradient buckets: the parameters' gradients as views into one flat float32
// buffer, cut into buckets, and a post-hook on each parameter's gradient accumulator that reports
// a bucket (through a file descriptor the caller reads) as soon as backward has written every
// gradient in it, so that the caller can all-reduce that bucket while backward computes the rest
// (what DistributedDataParallel's reducer does with its autograd hooks).
#include <torch/csrc/autograd/function.h>
#include <torch/csrc/autograd/utils/lambda_post_hook.h>
#include <torch/csrc/autograd/variable.h>
#include <unistd.h>

#include <cerrno>
#include <memory>

#include "internal.h"

struct vlp_buckets {
  at::Tensor flat;  // [total] float32 on the parameters' device: the gradients, bucket after bucket, then `extra`
  at::Tensor host;  // [total] float32 in host memory: flat itself on the CPU, a pinned copy on CUDA
  std::vector<at::Tensor> params;
  std::vector<at::Tensor> views;  // params[i]'s gradient: flat[off_i : off_i+numel_i] shaped as params[i]
  std::vector<std::shared_ptr<torch::autograd::Node>> accs;  // each parameter's accumulator, kept alive
  std::vector<uintptr_t> hooks;                              // the post-hook registered on accs[i]
  std::vector<int64_t> bucket_of;                            // parameter -> bucket
  std::vector<int64_t> lo, hi;                               // bucket b is flat[lo[b]:hi[b]]
  std::vector<int64_t> members;                              // parameters per bucket
  std::unique_ptr<std::atomic<int64_t>[]> pending;           // parameters of the bucket not yet accumulated
  std::unique_ptr<std::atomic<bool>[]> reported;
  std::atomic<int32_t> epoch{0};  // counts arm calls; every report carries it
  int64_t ngrad = 0;
  bool cuda = false;
  int fd = -1;
  std::atomic<int64_t> write_errors{0};
};

namespace {

// report copies bucket b to the host (CUDA) and writes {epoch, b} to the caller's descriptor once
// per arm.
void report(vlp_buckets* bk, int64_t b) {
  bool was = false;
  if (!bk->reported[b].compare_exchange_strong(was, true)) return;
  if (bk->cuda) {
    c10::NoGradGuard ng;
    bk->host.narrow(0, bk->lo[b], bk->hi[b] - bk->lo[b]).copy_(bk->flat.narrow(0, bk->lo[b], bk->hi[b] - bk->lo[b]));
  }
  int32_t msg[2] = {bk->epoch.load(), static_cast<int32_t>(b)};
  const char* p = reinterpret_cast<const char*>(msg);
  size_t left = sizeof msg;
  while (left > 0) {
    ssize_t n = ::write(bk->fd, p, left);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      bk->write_errors.fetch_add(1);
      return;
    }
    p += n;
    left -= static_cast<size_t>(n);
  }
}

// accumulated runs after parameter i's accumulator: its gradient is final for this backward. The
// accumulator adds into the existing view in place; should it ever have replaced the gradient
// tensor, the value is copied back into the view, which becomes the gradient again.
void accumulated(vlp_buckets* bk, size_t i) {
  at::Tensor& g = bk->params[i].mutable_grad();
  if (!g.defined() || !g.is_same(bk->views[i])) {
    c10::NoGradGuard ng;
    if (g.defined()) {
      bk->views[i].copy_(g);
    }
    g = bk->views[i];
  }
  int64_t b = bk->bucket_of[i];
  if (bk->pending[b].fetch_sub(1) == 1) report(bk, b);
}

}  // namespace

extern "C" {

char* vlp_buckets_new(const vlp_tensor_t* params, int64_t n, const int64_t* ends, int64_t nb, int64_t extra,
                      int64_t fd, vlp_buckets_t* out, float** host) {
  VLP_TRY
  if (n <= 0 || nb <= 0 || ends[nb - 1] != n) throw std::invalid_argument("buckets: the bucket ends must cover every parameter");
  auto bk = std::make_unique<vlp_buckets>();
  bk->fd = static_cast<int>(fd);
  int64_t total = 0;
  for (int64_t i = 0; i < n; i++) {
    const at::Tensor& p = vlp::T(params[i]);
    if (p.scalar_type() != at::kFloat) throw std::invalid_argument("buckets: every parameter must be float32");
    if (!p.requires_grad() || !p.is_leaf()) throw std::invalid_argument("buckets: every parameter must be a leaf that requires grad");
    if (i > 0 && p.device() != bk->params[0].device()) throw std::invalid_argument("buckets: the parameters are on several devices");
    bk->params.push_back(p);
    total += p.numel();
  }
  bk->ngrad = total;
  total += extra;
  at::Device dev = bk->params[0].device();
  bk->cuda = dev.is_cuda();
  bk->flat = at::zeros({total}, at::TensorOptions().dtype(at::kFloat).device(dev));
  bk->host = bk->cuda ? at::zeros({total}, at::TensorOptions().dtype(at::kFloat).pinned_memory(true)) : bk->flat;
  bk->pending.reset(new std::atomic<int64_t>[nb]);
  bk->reported.reset(new std::atomic<bool>[nb]);
  int64_t off = 0, first = 0;
  for (int64_t b = 0; b < nb; b++) {
    if (ends[b] <= first || ends[b] > n) throw std::invalid_argument("buckets: bucket ends must increase");
    bk->lo.push_back(off);
    for (int64_t i = first; i < ends[b]; i++) {
      at::Tensor& p = bk->params[i];
      at::Tensor v = bk->flat.narrow(0, off, p.numel()).view(p.sizes());
      bk->views.push_back(v);
      bk->bucket_of.push_back(b);
      off += p.numel();
    }
    bk->hi.push_back(off);
    bk->members.push_back(ends[b] - first);
    bk->pending[b] = ends[b] - first;
    bk->reported[b] = false;
    first = ends[b];
  }
  vlp_buckets* raw = bk.get();
  for (int64_t i = 0; i < n; i++) {
    bk->params[i].mutable_grad() = bk->views[i];
    std::shared_ptr<torch::autograd::Node> acc = torch::autograd::impl::grad_accumulator(bk->params[i]);
    if (!acc) throw std::invalid_argument("buckets: a parameter has no gradient accumulator");
    size_t idx = static_cast<size_t>(i);
    bk->hooks.push_back(acc->add_post_hook(std::make_unique<torch::autograd::utils::LambdaPostHook>(
        [raw, idx](const torch::autograd::variable_list& outputs, const torch::autograd::variable_list&) {
          accumulated(raw, idx);
          return outputs;
        })));
    bk->accs.push_back(std::move(acc));
  }
  *host = bk->host.data_ptr<float>();
  *out = bk.release();
  VLP_CATCH
}

char* vlp_buckets_arm(vlp_buckets_t bk, int64_t* epoch) {
  VLP_TRY
  c10::NoGradGuard ng;
  for (size_t i = 0; i < bk->params.size(); i++) {
    at::Tensor& g = bk->params[i].mutable_grad();
    if (!g.defined() || !g.is_same(bk->views[i])) g = bk->views[i];
  }
  bk->flat.narrow(0, 0, bk->ngrad).zero_();
  for (size_t b = 0; b < bk->lo.size(); b++) {
    bk->pending[b] = bk->members[b];
    bk->reported[b] = false;
  }
  *epoch = bk->epoch.fetch_add(1) + 1;
  VLP_CATCH
}

char* vlp_buckets_finish(vlp_buckets_t bk, int64_t* write_errors) {
  VLP_TRY
  for (size_t b = 0; b < bk->lo.size(); b++) report(bk, static_cast<int64_t>(b));
  *write_errors = bk->write_errors.exchange(0);
  VLP_CATCH
}

char* vlp_buckets_to_device(vlp_buckets_t bk) {
  VLP_TRY
  if (bk->cuda) {
    c10::NoGradGuard ng;
    bk->flat.narrow(0, 0, bk->ngrad).copy_(bk->host.narrow(0, 0, bk->ngrad));
  }
  VLP_CATCH
}

void vlp_buckets_free(vlp_buckets_t bk) {
  if (bk == nullptr) return;
  for (size_t i = 0; i < bk->accs.size(); i++) {
    bk->accs[i]->del_post_hook(bk->hooks[i]);
    at::Tensor& g = bk->params[i].mutable_grad();
    if (g.defined() && g.is_same(bk->views[i])) g = bk->views[i].clone();
  }
  delete bk;
}

}  // extern "C"
