/*
 * vlp_torch.h — the C ABI of libvlptorch.so, the shim between Go and LibTorch.
 *
 * Conventions (every function follows them):
 *  - Handles are opaque pointers to heap objects owned by the caller: a vlp_tensor_t holds one
 *    at::Tensor (a reference to its storage, like a Python variable), freed by vlp_tensor_free.
 *  - Every function except vlp_free_string returns NULL on success, or a malloc'd, NUL-terminated
 *    error message that the caller frees with vlp_free_string. No C++ exception crosses the ABI.
 *  - Results go through pointer arguments; an output is written only on success.
 *  - Floating scalars travel as vlp_f64: the IEEE-754 bits of a double in an integer argument.
 *    The Go side calls through purego.SyscallN, which fills integer registers only; passing
 *    every argument as an integer keeps the ABI identical for all callers and costs nothing.
 *  - Devices are int64: -1 is the CPU, n >= 0 is cuda:n. Dtypes are the VLP_* codes below.
 *  - Shapes and dim lists are (const int64_t* ptr, int64_t len). Dims may be negative.
 *  - Optional tensor arguments accept NULL.
 */
#ifndef VLP_TORCH_H
#define VLP_TORCH_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define VLP_API __attribute__((visibility("default")))

typedef struct vlp_tensor* vlp_tensor_t;
typedef struct vlp_generator* vlp_generator_t;
typedef struct vlp_adamw* vlp_adamw_t;
typedef struct vlp_buckets* vlp_buckets_t;
typedef uint64_t vlp_f64;

/* dtypes */
enum {
  VLP_FLOAT32 = 0,
  VLP_FLOAT64 = 1,
  VLP_FLOAT16 = 2,
  VLP_BFLOAT16 = 3,
  VLP_INT64 = 4,
  VLP_INT32 = 5,
  VLP_UINT8 = 6,
  VLP_BOOL = 7,
  VLP_DTYPE_COUNT
};

/* ---- the ABI itself (abi.cpp) ---- */
/* VLP_ABI_VERSION counts incompatible changes of this header: a function added, removed or given
 * other arguments, an enum code moved. Bump it with every such change; the Go side refuses a
 * library whose version differs from its own, naming both. (Defined only when not given on the
 * command line, so that a test can build a library that reports another version.) */
#ifndef VLP_ABI_VERSION
#define VLP_ABI_VERSION 6
#endif
/* The op tables whose sizes vlp_abi reports: the codes of each enum below. A table that grew or
 * shrank without a version bump still tells a mismatched library apart. */
enum { VLP_TABLE_DTYPE = 0, VLP_TABLE_SHAPE, VLP_TABLE_UNARY, VLP_TABLE_BINARY, VLP_TABLE_REDUCE,
       VLP_TABLE_COUNT };
/* *version = VLP_ABI_VERSION; sizes[i] = the number of codes of table i for i < min(cap,
 * VLP_TABLE_COUNT); *ntables = VLP_TABLE_COUNT. It touches nothing of LibTorch and never fails:
 * the Go side calls it before resolving any other symbol. */
VLP_API char* vlp_abi(int64_t* version, int64_t* sizes, int64_t cap, int64_t* ntables);

/* ---- library, strings, tensor lifetime (tensor.cpp) ---- */
VLP_API void vlp_free_string(char* s);
/* The LibTorch version the shim was built against, e.g. "1.13.0" (caller frees with vlp_free_string). */
VLP_API char* vlp_version(char** out);
/* *out = the calling OS thread's count of host reads so far: copies to host memory (vlp_to_host),
 * scalars (vlp_item) and outputs sized by the data (vlp_nonzero, vlp_masked_select); on a GPU each
 * one waits for the device. */
VLP_API char* vlp_host_reads(int64_t* out);
/* at::show_config(): build options, BLAS and LAPACK in use. */
VLP_API char* vlp_build_config(char** out);
/* Number of live tensor handles (created and not yet freed). */
VLP_API char* vlp_live_tensors(int64_t* out);
VLP_API char* vlp_tensor_free(vlp_tensor_t t);
/* Frees n handles in one call; NULL entries are skipped. */
VLP_API char* vlp_tensor_free_many(const vlp_tensor_t* ts, int64_t n);
/* meta[0..7] = ndim, numel, dtype, device, requires_grad, is_contiguous, has_grad, is_leaf;
 * shape gets min(ndim, cap) sizes. */
VLP_API char* vlp_tensor_meta(vlp_tensor_t t, int64_t* meta, int64_t* shape, int64_t cap);
/* Number of threads LibTorch uses for intra-op parallelism (get; set when n > 0). Setting it sets
 * OpenBLAS's pool to the same count when LibTorch's BLAS is OpenBLAS. */
VLP_API char* vlp_num_threads(int64_t n, int64_t* out);
/* *out = the size of OpenBLAS's thread pool, or -1 when LibTorch's BLAS is not OpenBLAS. */
VLP_API char* vlp_blas_threads(int64_t* out);

/* ---- creation (tensor.cpp) ---- */
enum { VLP_FILL_EMPTY = 0, VLP_FILL_ZEROS = 1, VLP_FILL_ONES = 2, VLP_FILL_FULL = 3 };
VLP_API char* vlp_fill(int64_t kind, const int64_t* shape, int64_t ndim, int64_t dtype, int64_t device,
                       vlp_f64 value, vlp_tensor_t* out);
VLP_API char* vlp_arange(vlp_f64 start, vlp_f64 end, vlp_f64 step, int64_t dtype, int64_t device,
                         vlp_tensor_t* out);
/* Copies nbytes of host data (row-major, element type = dtype) into a new tensor on device. */
VLP_API char* vlp_from_data(const void* data, int64_t nbytes, const int64_t* shape, int64_t ndim,
                            int64_t dtype, int64_t device, vlp_tensor_t* out);
/* Copies t (any device/layout) into host memory dst; nbytes must equal numel * element size. */
VLP_API char* vlp_to_host(vlp_tensor_t t, void* dst, int64_t nbytes);
VLP_API char* vlp_item(vlp_tensor_t t, double* out);
VLP_API char* vlp_to_device(vlp_tensor_t t, int64_t device, int64_t non_blocking, vlp_tensor_t* out);
VLP_API char* vlp_to_dtype(vlp_tensor_t t, int64_t dtype, vlp_tensor_t* out);
/* dst.copy_(src), in place, broadcasting src; no autograd history is recorded. */
VLP_API char* vlp_copy_(vlp_tensor_t dst, vlp_tensor_t src);
/* t.fill_(value), in place, under no-grad. */
VLP_API char* vlp_fill_(vlp_tensor_t t, vlp_f64 value);
/* A second handle to the same tensor (same storage, same autograd identity). */
VLP_API char* vlp_tensor_share(vlp_tensor_t t, vlp_tensor_t* out);

/* ---- random generators (tensor.cpp) ---- */
VLP_API char* vlp_generator_new(int64_t seed, int64_t device, vlp_generator_t* out);
VLP_API char* vlp_generator_free(vlp_generator_t g);
VLP_API char* vlp_generator_seed(vlp_generator_t g, int64_t seed);
/* State of g, or of the device's default generator when g is NULL, as a CPU uint8 tensor. */
VLP_API char* vlp_rng_get_state(vlp_generator_t g, int64_t device, vlp_tensor_t* out);
VLP_API char* vlp_rng_set_state(vlp_generator_t g, int64_t device, const void* data, int64_t n);
/* Seeds every default generator (CPU and all CUDA devices). */
VLP_API char* vlp_manual_seed(int64_t seed);
/* kind 0: normal(0,1); 1: uniform[0,1). The numbers come from g (NULL: the default generator of
 * g's device) on g's device and are then moved to device, so a seed gives the same values anywhere. */
VLP_API char* vlp_random(int64_t kind, vlp_generator_t g, const int64_t* shape, int64_t ndim,
                         int64_t dtype, int64_t device, vlp_tensor_t* out);
VLP_API char* vlp_randint(vlp_generator_t g, int64_t low, int64_t high, const int64_t* shape,
                          int64_t ndim, int64_t dtype, int64_t device, vlp_tensor_t* out);
VLP_API char* vlp_randperm(vlp_generator_t g, int64_t n, int64_t device, vlp_tensor_t* out);

/* ---- shape (ops_shape.cpp) ---- */
enum { VLP_SHAPE_RESHAPE = 0, VLP_SHAPE_VIEW = 1, VLP_SHAPE_EXPAND = 2, VLP_SHAPE_REPEAT = 3,
       VLP_SHAPE_PERMUTE = 4, VLP_SHAPE_COUNT };
VLP_API char* vlp_shape_op(int64_t op, vlp_tensor_t t, const int64_t* dims, int64_t n, vlp_tensor_t* out);
VLP_API char* vlp_transpose(vlp_tensor_t t, int64_t d0, int64_t d1, vlp_tensor_t* out);
VLP_API char* vlp_narrow(vlp_tensor_t t, int64_t dim, int64_t start, int64_t length, vlp_tensor_t* out);
VLP_API char* vlp_slice(vlp_tensor_t t, int64_t dim, int64_t start, int64_t end, int64_t step,
                        vlp_tensor_t* out);
VLP_API char* vlp_select(vlp_tensor_t t, int64_t dim, int64_t index, vlp_tensor_t* out);
VLP_API char* vlp_index_select(vlp_tensor_t t, int64_t dim, vlp_tensor_t index, vlp_tensor_t* out);
VLP_API char* vlp_gather(vlp_tensor_t t, int64_t dim, vlp_tensor_t index, vlp_tensor_t* out);
/* t.scatter_add(dim, index, src) — out of place. */
VLP_API char* vlp_scatter_add(vlp_tensor_t t, int64_t dim, vlp_tensor_t index, vlp_tensor_t src,
                              vlp_tensor_t* out);
/* t[mask] for a bool mask of t's leading shape. */
VLP_API char* vlp_masked_select(vlp_tensor_t t, vlp_tensor_t mask, vlp_tensor_t* out);
/* op 0: cat, 1: stack. */
VLP_API char* vlp_cat(int64_t op, const vlp_tensor_t* ts, int64_t n, int64_t dim, vlp_tensor_t* out);
/* all != 0: squeeze every size-1 dim, else only dim. */
VLP_API char* vlp_squeeze(vlp_tensor_t t, int64_t dim, int64_t all, vlp_tensor_t* out);
VLP_API char* vlp_unsqueeze(vlp_tensor_t t, int64_t dim, vlp_tensor_t* out);
VLP_API char* vlp_flatten(vlp_tensor_t t, int64_t start, int64_t end, vlp_tensor_t* out);
/* split_with_sizes: outs receives n handles. */
VLP_API char* vlp_split(vlp_tensor_t t, const int64_t* sizes, int64_t n, int64_t dim, vlp_tensor_t* outs);
/* nonzero(t): [N, ndim] int64 indices of the non-zero elements. */
VLP_API char* vlp_nonzero(vlp_tensor_t t, vlp_tensor_t* out);

/* ---- math (ops_math.cpp) ---- */
/* Unary ops. A new code goes last, before VLP_U_COUNT, with the same change to torch/ops_math.go and
 * a VLP_ABI_VERSION bump. CHANNELS_LAST is t.contiguous(at::MemoryFormat::ChannelsLast): the same
 * values laid out NHWC, for a 4-D [N, C, H, W] tensor only. */
enum {
  VLP_U_NEG = 0, VLP_U_SQRT, VLP_U_RSQRT, VLP_U_EXP, VLP_U_LOG, VLP_U_ABS, VLP_U_RELU, VLP_U_SIGMOID,
  VLP_U_TANH, VLP_U_LOGICAL_NOT, VLP_U_CONTIGUOUS, VLP_U_SIN, VLP_U_COS, VLP_U_FLOOR, VLP_U_CEIL,
  VLP_U_ROUND, VLP_U_SIGN, VLP_U_SUM, VLP_U_MEAN, VLP_U_MIN, VLP_U_MAX, VLP_U_DETACH, VLP_U_CLONE,
  VLP_U_ZEROS_LIKE, VLP_U_ONES_LIKE, VLP_U_RECIPROCAL, VLP_U_GELU, VLP_U_GELU_TANH, VLP_U_SILU,
  VLP_U_LOG1P, VLP_U_ANY, VLP_U_ALL, VLP_U_SQUARE, VLP_U_ISNAN, VLP_U_ARGMAX, VLP_U_LOG_SIGMOID,
  VLP_U_CHANNELS_LAST,
  VLP_U_COUNT
};
VLP_API char* vlp_unary(int64_t op, vlp_tensor_t t, vlp_tensor_t* out);
enum {
  VLP_B_ADD = 0, VLP_B_SUB, VLP_B_MUL, VLP_B_DIV, VLP_B_POW, VLP_B_MINIMUM, VLP_B_MAXIMUM, VLP_B_EQ,
  VLP_B_NE, VLP_B_LT, VLP_B_LE, VLP_B_GT, VLP_B_GE, VLP_B_LOGICAL_AND, VLP_B_LOGICAL_OR, VLP_B_MATMUL,
  VLP_B_BMM, VLP_B_ATAN2, VLP_B_REMAINDER, VLP_B_FLOOR_DIVIDE, VLP_B_RSUB, VLP_B_COUNT
};
VLP_API char* vlp_binary(int64_t op, vlp_tensor_t a, vlp_tensor_t b, vlp_tensor_t* out);
/* a op s with a Go scalar; RSUB is s - a, POW is a^s. An integral s on an integer tensor stays
 * integral. MINIMUM/MAXIMUM clamp. */
VLP_API char* vlp_binary_scalar(int64_t op, vlp_tensor_t a, vlp_f64 s, vlp_tensor_t* out);
/* In place, no autograd guard: a.add_(b * alpha). Used for parameter updates under no-grad. */
VLP_API char* vlp_add_(vlp_tensor_t a, vlp_tensor_t b, vlp_f64 alpha);
/* a.mul_(s) in place. */
VLP_API char* vlp_mul_scalar_(vlp_tensor_t a, vlp_f64 s);
enum { VLP_R_SUM = 0, VLP_R_MEAN, VLP_R_AMAX, VLP_R_AMIN, VLP_R_LOGSUMEXP, VLP_R_PROD, VLP_R_ANY,
       VLP_R_ALL, VLP_R_NORM, VLP_R_VAR, VLP_R_STD, VLP_R_COUNT };
VLP_API char* vlp_reduce(int64_t op, vlp_tensor_t t, const int64_t* dims, int64_t n, int64_t keepdim,
                         vlp_tensor_t* out);
/* op 0: max, 1: min, 2: argmax, 3: argmin, 4: sort (ascending), 5: sort (descending).
 * values may be NULL for argmax/argmin; indices may be NULL for max/min. */
VLP_API char* vlp_reduce_index(int64_t op, vlp_tensor_t t, int64_t dim, int64_t keepdim,
                               vlp_tensor_t* values, vlp_tensor_t* indices);
VLP_API char* vlp_topk(vlp_tensor_t t, int64_t k, int64_t dim, int64_t largest, int64_t sorted,
                       vlp_tensor_t* values, vlp_tensor_t* indices);
VLP_API char* vlp_cumsum(vlp_tensor_t t, int64_t dim, vlp_tensor_t* out);
VLP_API char* vlp_clamp(vlp_tensor_t t, int64_t has_min, vlp_f64 min, int64_t has_max, vlp_f64 max,
                        vlp_tensor_t* out);
VLP_API char* vlp_where(vlp_tensor_t cond, vlp_tensor_t a, vlp_tensor_t b, vlp_tensor_t* out);
VLP_API char* vlp_masked_fill(vlp_tensor_t t, vlp_tensor_t mask, vlp_f64 value, vlp_tensor_t* out);
/* x @ w^T + b; b may be NULL. */
VLP_API char* vlp_linear(vlp_tensor_t x, vlp_tensor_t w, vlp_tensor_t b, vlp_tensor_t* out);
/* Lower (upper != 0: upper) triangle of the last two dims, from diagonal k. */
VLP_API char* vlp_tril(vlp_tensor_t t, int64_t k, int64_t upper, vlp_tensor_t* out);
/* one_hot(t, classes) as int64. */
VLP_API char* vlp_one_hot(vlp_tensor_t t, int64_t classes, vlp_tensor_t* out);

/* ---- nn (ops_nn.cpp) ---- */
/* p = {stride_h, stride_w, pad_h, pad_w, dil_h, dil_w}. */
VLP_API char* vlp_conv2d(vlp_tensor_t x, vlp_tensor_t w, vlp_tensor_t b, const int64_t* p, int64_t groups,
                         vlp_tensor_t* out);
/* mode 0: train (batch statistics; running stats updated in place when given),
 * 1: eval (running stats), 2: frozen (x * w/sqrt(rv+eps) + (b - rm*w/sqrt(rv+eps)), DETR's
 * FrozenBatchNorm2d: w, b, rm, rv are constants). */
VLP_API char* vlp_batch_norm(vlp_tensor_t x, vlp_tensor_t w, vlp_tensor_t b, vlp_tensor_t rm,
                             vlp_tensor_t rv, int64_t mode, vlp_f64 momentum, vlp_f64 eps,
                             vlp_tensor_t* out);
/* p = {k_h, k_w, stride_h, stride_w, pad_h, pad_w, dil_h, dil_w}. */
VLP_API char* vlp_max_pool2d(vlp_tensor_t x, const int64_t* p, int64_t ceil_mode, vlp_tensor_t* out);
VLP_API char* vlp_adaptive_avg_pool2d(vlp_tensor_t x, int64_t oh, int64_t ow, vlp_tensor_t* out);
/* log != 0: log_softmax. */
VLP_API char* vlp_softmax(vlp_tensor_t x, int64_t dim, int64_t log, vlp_tensor_t* out);
VLP_API char* vlp_layer_norm(vlp_tensor_t x, const int64_t* shape, int64_t n, vlp_tensor_t w,
                             vlp_tensor_t b, vlp_f64 eps, vlp_tensor_t* out);
/* padding_idx < 0: none. */
VLP_API char* vlp_embedding(vlp_tensor_t w, vlp_tensor_t idx, int64_t padding_idx, vlp_tensor_t* out);
/* Inverted dropout; the mask comes from g (NULL: the default generator of x's device). */
VLP_API char* vlp_dropout(vlp_tensor_t x, vlp_f64 p, int64_t train, vlp_generator_t g, vlp_tensor_t* out);
/* Nearest-neighbour resize of the last two dims of a [N, C, H, W] tensor (any dtype, bool too). */
VLP_API char* vlp_interpolate_nearest(vlp_tensor_t x, int64_t oh, int64_t ow, vlp_tensor_t* out);

/* ---- losses (loss.cpp); reduction 0: none, 1: mean, 2: sum ---- */
VLP_API char* vlp_cross_entropy(vlp_tensor_t logits, vlp_tensor_t target, vlp_tensor_t weight,
                                int64_t ignore_index, int64_t reduction, vlp_f64 label_smoothing,
                                vlp_tensor_t* out);
VLP_API char* vlp_bce_with_logits(vlp_tensor_t x, vlp_tensor_t y, vlp_tensor_t weight,
                                  vlp_tensor_t pos_weight, int64_t reduction, vlp_tensor_t* out);
/* op 0: l1, 1: mse, 2: smooth_l1 (beta). */
VLP_API char* vlp_pair_loss(int64_t op, vlp_tensor_t x, vlp_tensor_t y, int64_t reduction, vlp_f64 beta,
                            vlp_tensor_t* out);

/* ---- fused attention (fused.cpp) ---- */
/* q [B,H,L,D], k [B,H,S,D], v [B,H,S,Dv] -> [B,H,L,Dv]. key_padding_mask: NULL or bool [B,S],
 * true = padding (ignored key). causal: query i sees keys j <= i. A row with every key masked
 * attends uniformly (no NaN). Dropout on the attention weights when dropout_p > 0. */
VLP_API char* vlp_sdpa(vlp_tensor_t q, vlp_tensor_t k, vlp_tensor_t v, vlp_tensor_t key_padding_mask,
                       int64_t causal, vlp_f64 dropout_p, vlp_generator_t g, vlp_tensor_t* out);
/* nn.MultiheadAttention (batch_first) in one call: query [B,L,E], key [B,S,E], value [B,S,E];
 * in_w [3E,E], in_b [3E] or NULL, out_w [E,E], out_b [E] or NULL -> [B,L,E]. When query, key and
 * value are the same tensor the three projections are one matmul (two when only query and key are). */
VLP_API char* vlp_mha(vlp_tensor_t query, vlp_tensor_t key, vlp_tensor_t value, vlp_tensor_t in_w,
                      vlp_tensor_t in_b, vlp_tensor_t out_w, vlp_tensor_t out_b, int64_t heads,
                      vlp_tensor_t key_padding_mask, int64_t causal, vlp_f64 dropout_p, vlp_generator_t g,
                      vlp_tensor_t* out);

/* ---- autograd (autograd.cpp) ---- */
VLP_API char* vlp_set_requires_grad(vlp_tensor_t t, int64_t flag);
/* t.backward(grad); grad NULL means ones (t must be a scalar). */
VLP_API char* vlp_backward(vlp_tensor_t t, vlp_tensor_t grad, int64_t retain_graph);
/* *out = t.grad(), or NULL when t has no gradient. */
VLP_API char* vlp_grad(vlp_tensor_t t, vlp_tensor_t* out);
/* Sets t.grad (a copy is not made; g must match t's shape, dtype, device). g NULL: none. */
VLP_API char* vlp_set_grad(vlp_tensor_t t, vlp_tensor_t g);
/* set_to_none != 0: grads become undefined; else zeroed in place. */
VLP_API char* vlp_zero_grad(const vlp_tensor_t* ts, int64_t n, int64_t set_to_none);
/* Sets the calling thread's grad mode; *prev gets the old one. */
VLP_API char* vlp_set_grad_enabled(int64_t enabled, int64_t* prev);
/* Enters a bf16/fp16 autocast region on the calling thread (CPU and CUDA); *state gets what
 * vlp_autocast_exit needs to restore. */
VLP_API char* vlp_autocast_enter(int64_t dtype, int64_t* state);
VLP_API char* vlp_autocast_exit(int64_t state);

/* ---- optimisation and flat buffers (optim.cpp) ---- */
VLP_API char* vlp_adamw_new(vlp_adamw_t* out);
VLP_API char* vlp_adamw_free(vlp_adamw_t o);
/* Adds a parameter group; the optimizer keeps its own references to the parameters. */
VLP_API char* vlp_adamw_add_group(vlp_adamw_t o, const vlp_tensor_t* params, int64_t n, vlp_f64 lr,
                                  vlp_f64 beta1, vlp_f64 beta2, vlp_f64 eps, vlp_f64 weight_decay);
/* One AdamW step over every parameter with a gradient (torch.optim.AdamW, amsgrad=False). */
VLP_API char* vlp_adamw_step(vlp_adamw_t o);
/* what: 0 lr, 1 beta1, 2 beta2, 3 eps, 4 weight_decay. */
VLP_API char* vlp_adamw_set_hparam(vlp_adamw_t o, int64_t group, int64_t what, vlp_f64 value);
VLP_API char* vlp_adamw_get_hparam(vlp_adamw_t o, int64_t group, int64_t what, double* out);
/* counts[0] = groups, counts[1] = parameters, counts[2] = total elements. */
/* fused != 0 (the default): a float32 CPU parameter updates in one pass over its memory; 0: through
 * LibTorch's ops, one pass per op. The same update either way. */
VLP_API char* vlp_adamw_set_fused(vlp_adamw_t o, int64_t fused);
VLP_API char* vlp_adamw_counts(vlp_adamw_t o, int64_t* counts);
/* State of parameter i (over all groups, in order): handles share storage with the state (NULL
 * when not yet initialised), step count. */
VLP_API char* vlp_adamw_get_state(vlp_adamw_t o, int64_t i, vlp_tensor_t* exp_avg, vlp_tensor_t* exp_avg_sq,
                                  int64_t* step);
/* Copies exp_avg/exp_avg_sq (NULL: zeros) into parameter i's state and sets its step. */
VLP_API char* vlp_adamw_set_state(vlp_adamw_t o, int64_t i, vlp_tensor_t exp_avg, vlp_tensor_t exp_avg_sq,
                                  int64_t step);
/* Flat state: for each parameter, exp_avg then exp_avg_sq (2 * total elements); steps[i] per
 * parameter. dtype VLP_FLOAT32 or VLP_BFLOAT16. dir 0: state -> dst, 1: src -> state. */
VLP_API char* vlp_adamw_flat_state(vlp_adamw_t o, int64_t dir, void* buf, int64_t numel, int64_t dtype,
                                   int64_t* steps, int64_t nsteps);
/* Global-norm gradient clipping (torch.nn.utils.clip_grad_norm_, norm 2). The norm before
 * clipping goes to *total (a device sync) and/or *norm (a 0-dim tensor, no sync); either may be NULL. */
VLP_API char* vlp_clip_grad_norm(const vlp_tensor_t* ts, int64_t n, vlp_f64 max_norm, double* total,
                                 vlp_tensor_t* norm);
/* Flat copy between tensors and one host buffer: what 0 = values, 1 = gradients (missing ones
 * read as zeros and are created on write). dir 0: tensors -> buf, 1: buf -> tensors.
 * dtype VLP_FLOAT32 or VLP_BFLOAT16; numel must equal the tensors' total. */
VLP_API char* vlp_flat_copy(int64_t what, int64_t dir, const vlp_tensor_t* ts, int64_t n, void* buf,
                            int64_t numel, int64_t dtype);

/* ---- gradient buckets (buckets.cpp) ---- */
/* The n parameters' gradients become views into one flat float32 buffer of their total size plus
 * `extra` elements, laid out in parameter order and cut into nb buckets: bucket b holds parameters
 * ends[b-1] .. ends[b]-1 (ends[nb-1] == n). A post-hook on every parameter's gradient accumulator
 * counts the bucket's parameters down during backward; when the last one is accumulated the bucket
 * is reported: copied to host memory (CUDA) and {int32 epoch, int32 bucket} written to fd. *host
 * is the host buffer (the flat buffer itself on the CPU, a pinned copy on CUDA), valid until
 * vlp_buckets_free. Every parameter must be a float32 leaf that requires grad, on one device. */
VLP_API char* vlp_buckets_new(const vlp_tensor_t* params, int64_t n, const int64_t* ends, int64_t nb,
                              int64_t extra, int64_t fd, vlp_buckets_t* out, float** host);
/* Before a backward: zeroes the gradients (restoring any view replaced since), resets the counts
 * and starts a new epoch (*epoch), which every report until the next arm carries. */
VLP_API char* vlp_buckets_arm(vlp_buckets_t b, int64_t* epoch);
/* After a backward: reports every bucket not reported yet (parameters the graph did not reach keep
 * zero gradients); *write_errors counts the reports fd refused since the last call. */
VLP_API char* vlp_buckets_finish(vlp_buckets_t b, int64_t* write_errors);
/* Copies the host buffer's gradients back into the flat device buffer (CUDA; nothing on the CPU). */
VLP_API char* vlp_buckets_to_device(vlp_buckets_t b);
/* Removes the hooks; each parameter keeps a copy of its gradient. */
VLP_API void vlp_buckets_free(vlp_buckets_t b);

/* ---- serialisation (serialize.cpp) ---- */
/* torch::pickle_save of t (moved to the CPU) -> a uint8 CPU tensor holding the bytes. */
VLP_API char* vlp_serialize(vlp_tensor_t t, vlp_tensor_t* out);
VLP_API char* vlp_deserialize(const void* data, int64_t n, int64_t device, vlp_tensor_t* out);
/* torch::pickle_save of a dict {names[i]: ts[i]} (CPU copies); names is n NUL-terminated strings
 * laid end to end. The bytes are what Python's torch.load reads. */
VLP_API char* vlp_pickle_save(const char* names, const vlp_tensor_t* ts, int64_t n, vlp_tensor_t* out);

/* ---- CUDA (cuda.cpp) ---- */
VLP_API char* vlp_cuda_device_count(int64_t* out);
/* *out = 1 when the LibTorch loaded has a CUDA backend (libc10_cuda registered its device guard),
 * whether or not a device is visible; 0 for a CPU-only LibTorch. */
VLP_API char* vlp_cuda_built(int64_t* out);
VLP_API char* vlp_cuda_synchronize(int64_t device);
/* stats = {allocated, peak allocated, reserved} in bytes; needs a shim built with CUDA headers. */
VLP_API char* vlp_cuda_memory(int64_t device, int64_t* stats);
VLP_API char* vlp_cuda_reset_peak(int64_t device);
VLP_API char* vlp_cuda_empty_cache(void);
/* Device name and total memory in bytes. */
VLP_API char* vlp_cuda_device_info(int64_t device, char** name, int64_t* total_mem);
/* The process's CUDA math settings (at::globalContext()): flags[0] = float32 matrix products
 * through cuBLAS may use TensorFloat-32 (torch.backends.cuda.matmul.allow_tf32), flags[1] = cuDNN
 * picks each convolution's fastest algorithm by timing them (torch.backends.cudnn.benchmark),
 * flags[2] = cuDNN convolutions may use TensorFloat-32 (torch.backends.cudnn.allow_tf32). Get
 * fills all three; set takes them as 0 or 1, or -1 to leave one as it is. Plain settings: a
 * CPU-only LibTorch holds them too, and they change nothing there. */
VLP_API char* vlp_cuda_math_get(int64_t* flags);
VLP_API char* vlp_cuda_math_set(int64_t tf32_matmul, int64_t cudnn_benchmark, int64_t tf32_cudnn);

#ifdef __cplusplus
}
#endif

#endif
