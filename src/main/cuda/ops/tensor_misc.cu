// GPU kernels of the internal operators (CPU: src/main/cpp/ops/internal/internal.cc): identity,
// _identity_with_attr_like_rhs, BlockGrad, MakeLoss (+ _backward_MakeLoss), zeros_like,
// ones_like, _zeros, ElementWiseSum, _grad_add, _NoGradient; Cast and _backward_Cast (CPU:
// ops/index/cast.cc); where and _backward_where (ops/index/take.cc); _arange (ops/index/sort.cc);
// _contrib_arange_like (sort.cc), _contrib_div_sqrt_dim and _contrib_gradientmultiplier
// (tensor/elemwise_scalar.cc), _np_cumsum and its backward (index/cumsum.cc).
// Every storage dtype where the CPU kernel takes it (float16 as __half); accumulation (kAddTo)
// only into float32/float64, as the CPU.
#include <cmath>
#include <memory>
#include <string>

#include "kiln/arange.h"
#include "ops/tensor_common.cuh"

namespace kiln {
namespace cuda {
namespace tensor {
namespace {

template <typename T> struct Ident { __device__ T operator()(T x) const { return x; } };

// ---- copies ----------------------------------------------------------------------------------------

// identity / BlockGrad / MakeLoss / _identity_with_attr_like_rhs (in[1] only gives the shape):
// out = in[0] (any dtype; nothing when the planner aliased them), or out += in[0] (float).
void copy(const char* name, const OpCtx& ctx, const std::vector<TBlob>& in, const std::vector<OpReq>& req,
          const std::vector<TBlob>& out) {
  check_call(name, in, 1, 2, req, out, 1);
  const TBlob& x = in[0];   // [any]
  const TBlob& y = out[0];  // same size
  check_size(name, x, y.size(), "input", y.shape);
  check_dtype(name, x, y.dtype, "input");
  if (req[0] == OpReq::kNullOp || y.size() == 0) return;
  DeviceGuard dg(device_of(ctx, in, out));
  if (req[0] != OpReq::kAddTo) {
    if (x.ptr != y.ptr)
      KILN_CUDA_CHECK(cudaMemcpyAsync(y.ptr, x.ptr, y.bytes(), cudaMemcpyDeviceToDevice, stream_of(ctx)));
    return;
  }
  KILN_FLOAT_SWITCH(y.dtype, T, { launch_map1(ctx, y.size(), x.dptr<T>(), y.dptr<T>(), req[0], Ident<T>(), name); });
}

Kernel copy_op(const char* name) {
  return [name](const OpCtx& ctx, const Attrs&, const std::vector<TBlob>& in, const std::vector<OpReq>& req,
                const std::vector<TBlob>& out) { copy(name, ctx, in, req, out); };
}

// ---- fills -----------------------------------------------------------------------------------------

// y: [n] = v (write), y += v (add, float only)
template <typename T>
__global__ void fill_kernel(int64_t n, T* y, int req, double v) {
  const T tv = convert<T>(v);
  KILN_GRID_STRIDE(i, n) {
    if constexpr (std::is_floating_point<T>::value) assign(y, i, req, tv);
    else y[i] = tv;
  }
}

// zeros_like / ones_like (the input's data is not read) and _zeros (no input).
template <int kValue>
void fill_op(const OpCtx& ctx, const Attrs&, const std::vector<TBlob>& in, const std::vector<OpReq>& req,
             const std::vector<TBlob>& out) {
  const char* name = kValue == 0 ? "zeros_like/_zeros" : "ones_like";
  check_call(name, in, 0, 1, req, out, 1);
  const TBlob& y = out[0];  // [n]
  if (req[0] == OpReq::kNullOp || y.size() == 0) return;
  if (req[0] == OpReq::kAddTo && kValue == 0) return;
  if (req[0] == OpReq::kAddTo && !is_float_dtype(y.dtype))
    throw KilnError(std::string(name) + " (GPU): accumulation needs float32/float64, got " + dtype_name(y.dtype));
  DeviceGuard dg(device_of(ctx, in, out));
  if (kValue == 0) {
    KILN_CUDA_CHECK(cudaMemsetAsync(y.ptr, 0, y.bytes(), stream_of(ctx)));
    return;
  }
  const int64_t n = y.size();
  KILN_ANY_SWITCH(y.dtype, T, {
    fill_kernel<T><<<grid_for(n), kBlock, 0, stream_of(ctx)>>>(n, y.dptr<T>(), req_int(req[0]), (double)kValue);
  });
  KILN_CUDA_LAUNCH_CHECK(name);
}

// ---- ElementWiseSum / _grad_add ------------------------------------------------------------------

constexpr int kPackedInputs = 32;
template <typename T>
struct PtrPack {
  const T* p[kPackedInputs];
};

// y: [n] (=|+=) x_0 + x_1 + ... + x_{k-1}, each x_j: [n] (S), summed left to right in A as the CPU:
// A = S for float32 / float64, float for float16 / bfloat16 (the CPU's promoted kernel), y rounded
// once. k <= kPackedInputs pointers by value. acc_in: [n] (A) running sum to start from (all k
// inputs are then added to it), or null (start from x_0); acc_out: [n] (A) to write the sum to
// instead of y, or null; acc_in and acc_out may be the same buffer. y may alias x_0: every x_j[i]
// is read before y[i] is written.
template <typename S, typename A>
__global__ void add_n_kernel(int64_t n, PtrPack<S> pack, int k, const A* acc_in, A* acc_out, S* y, int req) {
  KILN_GRID_STRIDE(i, n) {
    A s = acc_in ? acc_in[i] : widen_to<A>(pack.p[0][i]);
    for (int j = acc_in ? 0 : 1; j < k; ++j) s += widen_to<A>(pack.p[j][i]);
    if (acc_out) acc_out[i] = s;
    else store_from(y, i, req, s);
  }
}

/// ElementWiseSum in runs of at most kPackedInputs inputs (the gradient of a weight shared by many
/// nodes, an LSTM unrolled over 35 steps, has more): each run after the first starts from the
/// running sum acc [n] (A), so the additions happen in one kernel's order (the same bits); the last
/// run writes y with the request. No pointer list is copied from the host, which would not be safe
/// inside a recorded CUDA graph.
template <typename S, typename A>
void elementwise_sum_t(const OpCtx& ctx, int device, const std::vector<TBlob>& in, OpReq req, const TBlob& out) {
  const int64_t n = out.size();
  const int k = (int)in.size();
  S* y = out.dptr<S>();  // [n]
  std::unique_ptr<DeviceScratch> acc;  // [n] (A), for more than kPackedInputs inputs
  if (k > kPackedInputs) acc.reset(new DeviceScratch(device, sizeof(A) * (size_t)n));
  int j = 0;
  while (j < k) {
    PtrPack<S> pack{};
    const bool first = j == 0;
    int cnt = 0;
    for (; cnt < kPackedInputs && j < k; ++cnt, ++j) pack.p[cnt] = in[j].dptr<S>();
    const bool last = j == k;
    add_n_kernel<S, A><<<grid_for(n), kBlock, 0, stream_of(ctx)>>>(n, pack, cnt, first ? nullptr : acc->as<A>(),
                                                                    last ? nullptr : acc->as<A>(), y, req_int(req));
    KILN_CUDA_LAUNCH_CHECK("ElementWiseSum");
  }
}

void elementwise_sum(const OpCtx& ctx, const Attrs&, const std::vector<TBlob>& in, const std::vector<OpReq>& req,
                     const std::vector<TBlob>& out) {
  const char* name = "ElementWiseSum";
  check_call(name, in, 1, 1 << 30, req, out, 1);
  const int64_t n = out[0].size();
  for (size_t j = 0; j < in.size(); ++j) {
    check_size(name, in[j], n, "input", out[0].shape);
    check_dtype(name, in[j], out[0].dtype, "input");
  }
  if (req[0] == OpReq::kNullOp || n == 0) return;
  const int device = device_of(ctx, in, out);
  DeviceGuard dg(device);
  if (is_low_precision(out[0].dtype))
    KILN_LOW_PRECISION_SWITCH(out[0].dtype, L, { elementwise_sum_t<L, float>(ctx, device, in, req[0], out[0]); });
  else
    KILN_FLOAT_SWITCH(out[0].dtype, T, { elementwise_sum_t<T, T>(ctx, device, in, req[0], out[0]); });
}

// ---- MakeLoss backward ---------------------------------------------------------------------------

/// Counts the elements above a threshold (exact integer sum: order-independent).
template <typename T>
struct CountAbove {
  typedef long long Acc;
  T th;
  __device__ Acc init() const { return 0; }
  __device__ Acc step(Acc a, T x, int64_t) const { return a + (x > th ? 1 : 0); }
  __device__ Acc merge(Acc a, Acc b) const { return a + b; }
};
struct StoreCount {
  long long* c;
  __device__ void operator()(int64_t, long long a) const { *c = a; }
};

// dx: [n] (=|+=) (T)(grad_scale / norm), norm = *count (>= 1) when count != nullptr, else host_norm
template <typename T>
__global__ void make_loss_grad_kernel(int64_t n, T* dx, int req, double grad_scale, double host_norm,
                                      const long long* count) {
  const double norm = count ? (*count > 0 ? (double)*count : 1.0) : host_norm;
  const T g = (T)(grad_scale / norm);
  KILN_GRID_STRIDE(i, n) { assign(dx, i, req, g); }
}

// in: output y [N, ...] (the head gradient is not read); out: dx [same]
void make_loss_backward(const OpCtx& ctx, const Attrs& a, const std::vector<TBlob>& in, const std::vector<OpReq>& req,
                        const std::vector<TBlob>& out) {
  const char* name = "_backward_MakeLoss";
  check_call(name, in, 1, 1, req, out, 1);
  const TBlob& y = in[0];
  const TBlob& dx = out[0];
  check_size(name, y, dx.size(), "output", dx.shape);
  if (req[0] == OpReq::kNullOp || dx.size() == 0) return;
  const std::string& mode = a.s("normalization");
  double norm = 1.0;
  if (mode == "batch") norm = y.shape.ndim() > 0 ? (double)y.shape[0] : 1.0;
  const double grad_scale = loss_grad_scale(ctx, a);
  const int64_t n = dx.size();
  const int device = device_of(ctx, in, out);
  DeviceGuard dg(device);
  KILN_FLOAT_SWITCH(dx.dtype, T, {
    if (mode == "valid") {
      check_dtype(name, y, dx.dtype, "output");
      DeviceScratch cnt(device, sizeof(long long));
      const RPlan p = make_rplan(name, Shape({n}), Shape({1}));
      launch_reduce(ctx, device, p, y.dptr<T>(), CountAbove<T>{(T)a.f("valid_thresh")},
                    StoreCount{cnt.as<long long>()}, name);
      make_loss_grad_kernel<T><<<grid_for(n), kBlock, 0, stream_of(ctx)>>>(n, dx.dptr<T>(), req_int(req[0]),
                                                                           grad_scale, norm, cnt.as<long long>());
      KILN_CUDA_LAUNCH_CHECK(name);
    } else {
      make_loss_grad_kernel<T><<<grid_for(n), kBlock, 0, stream_of(ctx)>>>(n, dx.dptr<T>(), req_int(req[0]),
                                                                           grad_scale, norm, nullptr);
      KILN_CUDA_LAUNCH_CHECK(name);
    }
  });
}

void no_gradient(const OpCtx&, const Attrs&, const std::vector<TBlob>&, const std::vector<OpReq>&,
                 const std::vector<TBlob>&) {
  throw KilnError("internal: _NoGradient executed");
}

// ---- Cast ------------------------------------------------------------------------------------------

// x: [n] (S), y: [n] (D); add: y = (D)(y + (D)x) (float D), y = half(double(y) + double(x)) (float16 D)
template <typename S, typename D>
__global__ void cast_kernel(int64_t n, const S* x, D* y, bool add) {
  KILN_GRID_STRIDE(i, n) {
    if constexpr (std::is_same<D, __half>::value) {
      y[i] = add ? __double2half(convert<double>(y[i]) + convert<double>(x[i])) : convert<D>(x[i]);
    } else {
      const D v = convert<D>(x[i]);
      if constexpr (std::is_floating_point<D>::value) y[i] = add ? (D)(y[i] + v) : v;
      else y[i] = v;
    }
  }
}

// x: [n] (S, any storage type), y: [n] bfloat16; as the CPU: through float32, y = bf16(float(x)),
// add: y = bf16(float(y) + float(x)), each rounded to nearest even once from float32
template <typename S>
__global__ void cast_to_bf16_kernel(int64_t n, const S* x, __nv_bfloat16* y, bool add) {
  KILN_GRID_STRIDE(i, n) { lp_assign(y, i, add ? kReqAdd : kReqWrite, widen_to<float>(x[i])); }
}

// x: [n] bfloat16, y: [n] (D, not bfloat16): the exact float32 value of x, then cast_kernel's rules
template <typename D>
__global__ void cast_from_bf16_kernel(int64_t n, const __nv_bfloat16* x, D* y, bool add) {
  KILN_GRID_STRIDE(i, n) {
    const float v = __bfloat162float(x[i]);
    if constexpr (std::is_same<D, __half>::value) {
      y[i] = add ? __double2half(convert<double>(y[i]) + (double)v) : convert<D>(v);
    } else {
      const D d = convert<D>(v);
      if constexpr (std::is_floating_point<D>::value) y[i] = add ? (D)(y[i] + d) : d;
      else y[i] = d;
    }
  }
}

void cast_blob(const OpCtx& ctx, const TBlob& src, const TBlob& dst, OpReq req, const char* op) {
  if (req == OpReq::kNullOp) return;
  const int64_t n = src.size();
  if (dst.size() != n)
    throw KilnError(std::string(op) + " (GPU): source " + src.shape.str() + " and destination " + dst.shape.str() +
                    " differ in size");
  if (req == OpReq::kAddTo && !is_float_dtype(dst.dtype) && dst.dtype != DType::kFloat16 && dst.dtype != DType::kBfloat16)
    throw KilnError(std::string(op) + " (GPU): accumulation (grad_req add) needs float16/bfloat16/float32/float64, got " +
                    dtype_name(dst.dtype));
  if (n == 0) return;
  if (req != OpReq::kAddTo && src.ptr == dst.ptr && src.dtype == dst.dtype) return;
  const bool add = req == OpReq::kAddTo;
  if (dst.dtype == DType::kBfloat16) {  // bfloat16 natively (AMP's casts), with the CPU's float32 route
    __nv_bfloat16* y = dst.dptr<__nv_bfloat16>();
    if (src.dtype == DType::kBfloat16)
      cast_to_bf16_kernel<__nv_bfloat16><<<grid_for(n), kBlock, 0, stream_of(ctx)>>>(n, src.dptr<__nv_bfloat16>(), y, add);
    else
      KILN_ANY_SWITCH(src.dtype, S, {
        cast_to_bf16_kernel<S><<<grid_for(n), kBlock, 0, stream_of(ctx)>>>(n, src.dptr<S>(), y, add);
      });
    KILN_CUDA_LAUNCH_CHECK(op);
    return;
  }
  if (src.dtype == DType::kBfloat16) {
    KILN_ANY_SWITCH(dst.dtype, D, {
      cast_from_bf16_kernel<D><<<grid_for(n), kBlock, 0, stream_of(ctx)>>>(n, src.dptr<__nv_bfloat16>(), dst.dptr<D>(), add);
    });
    KILN_CUDA_LAUNCH_CHECK(op);
    return;
  }
  KILN_ANY_SWITCH(src.dtype, S, {
    KILN_ANY_SWITCH(dst.dtype, D, {
      cast_kernel<S, D><<<grid_for(n), kBlock, 0, stream_of(ctx)>>>(n, src.dptr<S>(), dst.dptr<D>(),
                                                                    req == OpReq::kAddTo);
    });
  });
  KILN_CUDA_LAUNCH_CHECK(op);
}

// Cast: x [any] -> y [same shape, dtype]; _backward_Cast: dy [dtype] -> dx [x's dtype]
template <bool kBackward>
void cast_op(const OpCtx& ctx, const Attrs&, const std::vector<TBlob>& in, const std::vector<OpReq>& req,
             const std::vector<TBlob>& out) {
  const char* name = kBackward ? "_backward_Cast" : "Cast";
  check_call(name, in, 1, 1, req, out, 1);
  DeviceGuard dg(device_of(ctx, in, out));
  cast_blob(ctx, in[0], out[0], req[0], name);
}

// amp_cast: as Cast; amp_multicast: x_i [any] -> y_i [same shape, the common type], i < num_outputs;
// _backward_amp_multicast: dy_i -> dx_i
void amp_multicast_op(const OpCtx& ctx, const Attrs&, const std::vector<TBlob>& in, const std::vector<OpReq>& req,
                      const std::vector<TBlob>& out) {
  if (in.size() != out.size() || req.size() != out.size())
    throw KilnError("amp_multicast (GPU): " + std::to_string(in.size()) + " inputs, " + std::to_string(out.size()) +
                    " outputs");
  if (in.empty()) return;
  DeviceGuard dg(device_of(ctx, in, out));
  for (size_t i = 0; i < in.size(); ++i) cast_blob(ctx, in[i], out[i], req[i], "amp_multicast");
}

// ---- where -----------------------------------------------------------------------------------------

template <typename C>
__device__ __forceinline__ bool truthy(C c) { return cmp_value(c) != 0; }

// cond: [n / cols] (per element, or per row of cols elements), x, y, out: [n]
template <typename C, typename T>
__global__ void where_kernel(int64_t n, int64_t cols, const C* cond, const T* x, const T* y, T* out, int req) {
  KILN_GRID_STRIDE(i, n) {
    const T v = truthy(cond[i / cols]) ? x[i] : y[i];
    if constexpr (std::is_floating_point<T>::value) assign(out, i, req, v);
    else out[i] = v;
  }
}

// g: [n], cond: [n / cols]; dx, dy: [n]
template <typename C, typename T>
__global__ void where_grad_kernel(int64_t n, int64_t cols, const T* g, const C* cond, T* dx, int reqx, T* dy,
                                  int reqy) {
  KILN_GRID_STRIDE(i, n) {
    const bool s = truthy(cond[i / cols]);
    const T gv = g[i];
    if (reqx != kReqNull) assign(dx, i, reqx, s ? gv : T(0));
    if (reqy != kReqNull) assign(dy, i, reqy, s ? T(0) : gv);
  }
}

/// As the CPU's where_infer_shape: the condition has the size of x (shape s, n > 0 elements) or,
/// per row, the length of x's first dim; anything else would read cond out of bounds.
int64_t where_cols(const char* name, const TBlob& c, const Shape& s, int64_t n) {
  const int64_t cs = c.size();
  if (cs == n) return 1;
  if (cs <= 0 || s.ndim() < 1 || cs != s[0] || n % cs != 0)
    throw KilnError(std::string(name) + " (GPU): condition " + c.shape.str() + " must have the size of x " + s.str() +
                    " or be 1-D of length x.shape[0]");
  return n / cs;
}

// in: condition, x, y; out: [n]
void where_forward(const OpCtx& ctx, const Attrs&, const std::vector<TBlob>& in, const std::vector<OpReq>& req,
                   const std::vector<TBlob>& out) {
  const char* name = "where";
  check_call(name, in, 3, 3, req, out, 1);
  const TBlob& o = out[0];
  const int64_t n = o.size();
  for (int k = 1; k < 3; ++k) {
    check_size(name, in[k], n, k == 1 ? "x" : "y", o.shape);
    check_dtype(name, in[k], o.dtype, k == 1 ? "x" : "y");
  }
  if (req[0] == OpReq::kNullOp || n == 0) return;
  if (req[0] == OpReq::kAddTo && !is_float_dtype(o.dtype))
    throw KilnError("where (GPU): accumulation needs float32/float64");
  const int64_t cols = where_cols(name, in[0], o.shape, n);
  DeviceGuard dg(device_of(ctx, in, out));
  KILN_ANY_SWITCH(in[0].dtype, C, {
    KILN_ANY_SWITCH(o.dtype, T, {
      where_kernel<C, T><<<grid_for(n), kBlock, 0, stream_of(ctx)>>>(n, cols, in[0].dptr<C>(), in[1].dptr<T>(),
                                                                     in[2].dptr<T>(), o.dptr<T>(), req_int(req[0]));
    });
  });
  KILN_CUDA_LAUNCH_CHECK(name);
}

// in: ograd [n], condition; out: condition_grad (zeros), x_grad [n], y_grad [n]
void where_backward(const OpCtx& ctx, const Attrs&, const std::vector<TBlob>& in, const std::vector<OpReq>& req,
                    const std::vector<TBlob>& out) {
  const char* name = "_backward_where";
  check_call(name, in, 2, 2, req, out, 3);
  const TBlob& g = in[0];
  const int64_t n = g.size();
  for (int k = 1; k < 3; ++k) check_size(name, out[k], n, "gradient", g.shape);
  const bool run = !(req[1] == OpReq::kNullOp && req[2] == OpReq::kNullOp) && n > 0;
  const int64_t cols = run ? where_cols(name, in[1], g.shape, n) : 1;  // checked before any launch
  DeviceGuard dg(device_of(ctx, in, out));
  if ((req[0] == OpReq::kWriteTo || req[0] == OpReq::kWriteInplace) && out[0].bytes() > 0)
    KILN_CUDA_CHECK(cudaMemsetAsync(out[0].ptr, 0, out[0].bytes(), stream_of(ctx)));
  if (!run) return;
  KILN_FLOAT_SWITCH(g.dtype, T, {
    KILN_ANY_SWITCH(in[1].dtype, C, {
      where_grad_kernel<C, T><<<grid_for(n), kBlock, 0, stream_of(ctx)>>>(
          n, cols, g.dptr<T>(), in[1].dptr<C>(), out[1].dptr<T>(), req_int(req[1]), out[2].dptr<T>(), req_int(req[2]));
    });
  });
  KILN_CUDA_LAUNCH_CHECK(name);
}

// ---- _arange ---------------------------------------------------------------------------------------

// y: [n], y[i] = start + (i / repeat) * step computed in T as the CPU (float16 in float, rounded once)
template <typename T>
__global__ void arange_kernel(int64_t n, T* y, int req, double start_d, double step_d, int64_t repeat) {
  KILN_GRID_STRIDE(i, n) {
    const int64_t j = i / repeat;
    if constexpr (std::is_same<T, __half>::value) {  // as the CPU's float32 scratch (the op is not native 16-bit), rounded once
      assign(y, i, req, __float2half_rn((float)start_d + __fmul_rn((float)j, (float)step_d)));
    } else if constexpr (std::is_integral<T>::value) {  // as the CPU: 64-bit two's complement, narrowed modulo T
      const uint64_t start = (uint64_t)(int64_t)wrap_to_int<T>(start_d), step = (uint64_t)(int64_t)wrap_to_int<T>(step_d);
      y[i] = (T)(int64_t)(start + (uint64_t)j * step);
    } else {  // float, double
      const T start = (T)start_d, step = (T)step_d;
      T prod;  // rounded product: no fused multiply-add, as the CPU
      if constexpr (std::is_same<T, float>::value) prod = __fmul_rn((T)j, step);
      else prod = __dmul_rn((T)j, step);
      assign(y, i, req, (T)(start + prod));
    }
  }
}

void arange_forward(const OpCtx& ctx, const Attrs& a, const std::vector<TBlob>& in, const std::vector<OpReq>& req,
                    const std::vector<TBlob>& out) {
  const char* name = "_arange";
  check_call(name, in, 0, 0, req, out, 1);
  if (req[0] == OpReq::kNullOp) return;
  const ArangeRange r = arange_range(a);  // kiln/arange.h, as the CPU
  const TBlob& y = out[0];  // [size]
  if (y.size() != r.size)
    throw KilnError("_arange (GPU): output size " + y.shape.str() + " differs from " + std::to_string(r.size));
  if (req[0] == OpReq::kAddTo && !is_float_dtype(y.dtype))
    throw KilnError("_arange (GPU): accumulation needs float32/float64");
  if (r.size == 0) return;
  DeviceGuard dg(device_of(ctx, in, out));
  KILN_ANY_SWITCH(y.dtype, T, {
    arange_kernel<T><<<grid_for(r.size), kBlock, 0, stream_of(ctx)>>>(r.size, y.dptr<T>(), req_int(req[0]), r.start,
                                                                        r.step, r.repeat);
  });
  KILN_CUDA_LAUNCH_CHECK(name);
}

// ---- _contrib_arange_like ---------------------------------------------------------------------------

void arange_like_forward(const OpCtx& ctx, const Attrs& a, const std::vector<TBlob>& in, const std::vector<OpReq>& req,
                         const std::vector<TBlob>& out) {
  const char* name = "_contrib_arange_like";
  check_call(name, in, 1, 1, req, out, 1);
  if (req[0] == OpReq::kNullOp) return;
  const TBlob& y = out[0];  // [size] (the input's shape or its axis; its data is not read)
  const int64_t repeat = a.i("repeat");
  if (repeat < 1) throw KilnError("_contrib_arange_like: repeat must be positive");
  if (req[0] == OpReq::kAddTo && !is_float_dtype(y.dtype))
    throw KilnError("_contrib_arange_like (GPU): accumulation needs float32/float64");
  if (y.size() == 0) return;
  DeviceGuard dg(device_of(ctx, in, out));
  KILN_ANY_SWITCH(y.dtype, T, {
    arange_kernel<T><<<grid_for(y.size()), kBlock, 0, stream_of(ctx)>>>(y.size(), y.dptr<T>(), req_int(req[0]),
                                                                          a.f("start"), a.f("step"), repeat);
  });
  KILN_CUDA_LAUNCH_CHECK(name);
}

// ---- _contrib_div_sqrt_dim -------------------------------------------------------------------------

// x, y: [n]; y (req) x / d, d = T(sqrt(last dim)) (integer division for integer types, as the CPU)
template <typename T>
__global__ void div_sqrt_dim_kernel(int64_t n, const T* x, T d, T* y, int req) {
  KILN_GRID_STRIDE(i, n) {
    if constexpr (std::is_floating_point<T>::value) assign(y, i, req, x[i] / d);
    else y[i] = (T)(x[i] / d);
  }
}

void div_sqrt_dim_forward(const OpCtx& ctx, const Attrs&, const std::vector<TBlob>& in, const std::vector<OpReq>& req,
                          const std::vector<TBlob>& out) {
  const char* name = "_contrib_div_sqrt_dim";
  check_call(name, in, 1, 1, req, out, 1);
  const TBlob& x = in[0];   // [rows, D]
  const TBlob& y = out[0];  // [rows, D]
  check_size(name, x, y.size(), "input", y.shape);
  check_dtype(name, x, y.dtype, "input");
  if (req[0] == OpReq::kNullOp || y.size() == 0) return;
  if (x.shape.ndim() < 1) throw KilnError("_contrib_div_sqrt_dim needs an input with at least one dimension");
  if (req[0] == OpReq::kAddTo && !is_float_dtype(y.dtype))
    throw KilnError("_contrib_div_sqrt_dim: accumulation needs float32/float64");
  const double root = std::sqrt((double)x.shape[x.shape.ndim() - 1]);
  DeviceGuard dg(device_of(ctx, in, out));
  auto launch = [&](auto z) {
    using T = decltype(z);
    div_sqrt_dim_kernel<T><<<grid_for(y.size()), kBlock, 0, stream_of(ctx)>>>(y.size(), x.dptr<T>(), (T)root,
                                                                                y.dptr<T>(), req_int(req[0]));
  };
  switch (y.dtype) {  // float16 reaches the kernel as float32 (the promoting wrapper), as on the CPU
    case DType::kFloat32: launch(float{}); break;
    case DType::kFloat64: launch(double{}); break;
    case DType::kInt32: launch(int32_t{}); break;
    case DType::kInt64: launch(int64_t{}); break;
    case DType::kInt8: launch(int8_t{}); break;
    case DType::kUint8: launch(uint8_t{}); break;
    default: throw KilnError(std::string("_contrib_div_sqrt_dim: dtype ") + dtype_name(y.dtype) + " is not supported");
  }
  KILN_CUDA_LAUNCH_CHECK(name);
}

// ---- _np_cumsum (cumsum) ---------------------------------------------------------------------------
// As ops/index/cumsum.cc: one thread per lane of x [outer, n, inner], summed in order in the output
// type (integers wrapping), the backward reversed in the input's type.

template <typename T>
__device__ __forceinline__ T cumsum_add(T a, T b) {
  if constexpr (std::is_integral<T>::value) {
    using U = typename std::make_unsigned<T>::type;
    return (T)(U)((U)a + (U)b);
  } else if constexpr (std::is_same<T, __half>::value) {
    return __float2half_rn(__half2float(a) + __half2float(b));
  } else {
    return a + b;
  }
}

template <typename O, typename I>
__device__ __forceinline__ O cumsum_cast(I v) {
  if constexpr (std::is_same<I, __half>::value && std::is_same<O, __half>::value) return v;
  else if constexpr (std::is_same<I, __half>::value) return (O)__half2float(v);
  else if constexpr (std::is_same<O, __half>::value) return __float2half_rn((float)v);
  else return (O)v;
}

// x: [outer, n, inner], y: same; reverse: y[j] = sum_{k >= j} x[k] (the backward), else sum_{k <= j}
template <typename I, typename O, bool kReverse>
__global__ void cumsum_kernel(int64_t lanes, int64_t n, int64_t inner, const I* x, O* y, int req) {
  KILN_GRID_STRIDE(lane, lanes) {
    const int64_t off = (lane / inner) * n * inner + lane % inner;
    O run = cumsum_cast<O>(x[off + (kReverse ? n - 1 : 0) * inner]);
    for (int64_t s = 0; s < n; ++s) {
      const int64_t j = kReverse ? n - 1 - s : s;
      if (s > 0) run = cumsum_add(run, cumsum_cast<O>(x[off + j * inner]));
      if constexpr (std::is_floating_point<O>::value) assign(y, off + j * inner, req, run);
      else y[off + j * inner] = run;  // accumulation is refused on the host for these types
    }
  }
}

template <bool kBackward>
void cumsum_op(const OpCtx& ctx, const Attrs& a, const std::vector<TBlob>& in, const std::vector<OpReq>& req,
               const std::vector<TBlob>& out) {
  const char* name = kBackward ? "_backward_np_cumsum" : "cumsum";
  check_call(name, in, 1, 1, req, out, 1);
  if (req[0] == OpReq::kNullOp) return;
  const Shape& x = kBackward ? out[0].shape : in[0].shape;  // the data's shape
  check_size(name, kBackward ? in[0] : out[0], x.size(), kBackward ? "gradient" : "output", x);
  int64_t outer = 1, n = x.size(), inner = 1;
  if (a.has("axis")) {
    const int nd = x.ndim();
    const int64_t ax0 = a.i("axis");
    if (ax0 < -nd || ax0 >= nd) throw KilnError(std::string(name) + " (GPU): axis out of range for " + x.str());
    const int ax = (int)(ax0 < 0 ? ax0 + nd : ax0);
    outer = x.prod(0, ax);
    n = x[ax];
    inner = x.prod(ax + 1, nd);
  }
  if (req[0] == OpReq::kAddTo && !is_float_dtype(out[0].dtype))
    throw KilnError(std::string(name) + ": accumulation needs float32/float64");
  const int64_t lanes = outer * inner;
  if (lanes == 0 || n == 0) return;
  DeviceGuard dg(device_of(ctx, in, out));
  KILN_ANY_SWITCH(in[0].dtype, I, {
    KILN_ANY_SWITCH(out[0].dtype, O, {
      cumsum_kernel<I, O, kBackward><<<grid_for(lanes), kBlock, 0, stream_of(ctx)>>>(
          lanes, n, inner, in[0].dptr<I>(), out[0].dptr<O>(), req_int(req[0]));
    });
  });
  KILN_CUDA_LAUNCH_CHECK(name);
}

}  // namespace

void register_tensor_misc_gpu(OpRegistry& r) {
  set_gpu(r, "identity", copy_op("identity"));
  set_gpu(r, "BlockGrad", copy_op("BlockGrad"));
  set_gpu(r, "_identity_with_attr_like_rhs", copy_op("_identity_with_attr_like_rhs"));
  set_gpu(r, "MakeLoss", copy_op("MakeLoss"));
  set_gpu(r, "_backward_MakeLoss", make_loss_backward);
  set_gpu(r, "zeros_like", fill_op<0>);
  set_gpu(r, "ones_like", fill_op<1>);
  set_gpu(r, "_zeros", fill_op<0>);
  set_gpu(r, "ElementWiseSum", elementwise_sum, kNativeLowPrecision);
  set_gpu(r, "_grad_add", elementwise_sum, kNativeLowPrecision);
  set_gpu(r, "_NoGradient", no_gradient);
  set_gpu(r, "Cast", cast_op<false>, kNativeLowPrecision);
  set_gpu(r, "_backward_Cast", cast_op<true>, kNativeLowPrecision);
  set_gpu(r, "amp_cast", cast_op<false>, kNativeLowPrecision);
  set_gpu(r, "_backward_amp_cast", cast_op<true>, kNativeLowPrecision);
  set_gpu(r, "amp_multicast", amp_multicast_op, kNativeLowPrecision);
  set_gpu(r, "_backward_amp_multicast", amp_multicast_op, kNativeLowPrecision);
  set_gpu(r, "where", where_forward);
  set_gpu(r, "_backward_where", where_backward);
  set_gpu(r, "_arange", arange_forward);
  set_gpu(r, "_contrib_arange_like", arange_like_forward);
  set_gpu(r, "_contrib_div_sqrt_dim", div_sqrt_dim_forward);
  set_gpu(r, "_contrib_gradientmultiplier", copy_op("_contrib_gradientmultiplier"));
  set_gpu(r, "_np_cumsum", cumsum_op<false>);
  set_gpu(r, "_backward_np_cumsum", cumsum_op<true>);
}

}  // namespace tensor
}  // namespace cuda
}  // namespace kiln
