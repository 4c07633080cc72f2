// GPU kernels of Pooling and _backward_Pooling, mirroring src/main/cpp/ops/pool/pooling.cc:
// max / avg / sum / lp (p = 1, 2, 3), global_pool, pooling_convention valid / full / same,
// count_include_pad, 1-D (NCW), 2-D (NCHW) and 3-D (NCDHW) data, or channel-last (NWC, NHWC, NDHWC).
//
// Every layout is viewed as [planes = N*C, in0, in1, in2] with the missing leading spatial dims of
// size 1 (kernel 1, stride 1, pad 0); the kernels index planes and their elements logically and
// map them to memory with at() (channel-last: element stride C). Windows are MXNet's: for output index o along a dim,
// start = o*stride - pad, end_pad = min(start + kernel, in + pad) (the avg divisor with
// count_include_pad), [max(start, 0), min(end_pad, in)) the elements read.
//
// The backward is a gather, deterministic and free of atomics: one thread per input element sums,
// in row-major output order (the CPU kernel's accumulation order), the contributions of the
// windows that contain it. For max pooling a first pass stores, per output, the plane-local index
// of the first element of its window equal to the output (the CPU's choice), and the gather adds
// the output gradients of the windows whose chosen element is this one.
//
// float16 / bfloat16 data is computed in float32 and each output rounded once, as the CPU's
// promoted kernel (max pooling and the argmax compare the exact 16-bit values).
#include <cstdint>
#include <memory>
#include <string>
#include <type_traits>

#include "kiln/pool_layout.h"
#include "ops/nn_common.cuh"

namespace kiln {
namespace cuda {
namespace nn_gpu {
namespace {

enum PoolType { kMax = 0, kAvg = 1, kSum = 2, kLp = 3 };

/// The geometry in index type I: int64_t as built, int32_t for the kernels when every index and
/// intermediate fits (fits_int32), which spares the 64-bit divisions of the index arithmetic.
template <typename I>
struct PoolGeomT {
  I planes = 0;  // N * C
  I C = 1;       // channel-last: the channels (planes interleave, element stride C); else 1
  I in[3], out[3], k[3], s[3], p[3];
  int type = kMax;
  int pval = 1;              // lp only
  bool include_pad = true;   // avg only
  __host__ __device__ I in_plane() const { return in[0] * in[1] * in[2]; }
  __host__ __device__ I out_plane() const { return out[0] * out[1] * out[2]; }
};
using PoolGeom = PoolGeomT<int64_t>;

/// Whether the kernels' index arithmetic on g stays within int32: the flat indices, the window
/// bounds (o * s - p + k, i + p) and the window sizes.
bool fits_int32(const PoolGeom& g) {
  const int64_t lim = INT32_MAX / 2;
  if (g.planes * g.in_plane() > lim || g.planes * g.out_plane() > lim || g.k[0] * g.k[1] * g.k[2] > lim) return false;
  for (int i = 0; i < 3; ++i)
    if (g.out[i] * g.s[i] + g.k[i] + g.p[i] > lim || g.in[i] + g.p[i] + g.k[i] > lim) return false;
  return true;
}

template <typename I>
PoolGeomT<I> narrow(const PoolGeom& g) {
  PoolGeomT<I> n;
  n.planes = (I)g.planes;
  n.C = (I)g.C;
  for (int i = 0; i < 3; ++i) {
    n.in[i] = (I)g.in[i];
    n.out[i] = (I)g.out[i];
    n.k[i] = (I)g.k[i];
    n.s[i] = (I)g.s[i];
    n.p[i] = (I)g.p[i];
  }
  n.type = g.type;
  n.pval = g.pval;
  n.include_pad = g.include_pad;
  return n;
}

int pool_type_of(const std::string& t) {
  if (t == "max") return kMax;
  if (t == "avg") return kAvg;
  if (t == "sum") return kSum;
  if (t == "lp") return kLp;
  throw KilnError("Pooling (GPU): unknown pool_type '" + t + "'");
}

PoolGeom pool_geom(const char* op, const Attrs& a, const Shape& x, const Shape& y) {
  // x [N, C, spatial...], y [N, C, pooled spatial...]; channel-last: x [N, spatial..., C], y [N, pooled..., C]
  PoolGeom g;
  const int nd = x.ndim(), nsp = nd - 2;
  const PoolLayout l = pool_layout(a, nd);  // kiln/pool_layout.h, as the CPU
  const int sp0 = l.spatial0, cd = l.channel;
  if (nsp < 1 || nsp > 3 || y.ndim() != nd || y[0] != x[0] || y[cd] != x[cd])
    throw KilnError(std::string(op) + ": bad data/output shapes " + x.str() + ", " + y.str());
  g.planes = x[0] * x[cd];
  g.C = l.channel_last ? x[cd] : 1;
  g.type = pool_type_of(a.s("pool_type"));
  if (g.type == kLp) {
    if (!a.has("p_value")) throw KilnError("Pooling: pool_type='lp' requires p_value (1, 2 or 3)");
    g.pval = (int)a.i("p_value");
    if (g.pval < 1 || g.pval > 3)
      throw KilnError("Pooling: p value of " + std::to_string(g.pval) +
                      " is not supported yet (lp pooling supports p_value 1, 2 and 3)");
  }
  g.include_pad = a.has("count_include_pad") ? a.b("count_include_pad") : true;
  const bool global = a.b("global_pool");
  const bool same = a.s("pooling_convention") == "same";
  const auto& k = a.t("kernel");
  const auto& s = a.t("stride");
  const auto& p = a.t("pad");
  if (!global && (int)k.size() != nsp)
    throw KilnError(std::string(op) + ": kernel has " + std::to_string(k.size()) + " dims for data shape " + x.str());
  for (int i = 0; i < 3; ++i) {
    const int j = i - (3 - nsp);  // spatial index, < 0 for the padding dims
    if (j < 0) {
      g.in[i] = g.out[i] = g.k[i] = g.s[i] = 1;
      g.p[i] = 0;
      continue;
    }
    g.in[i] = x[sp0 + j];
    g.out[i] = y[sp0 + j];
    if (global) {
      g.k[i] = g.in[i];
      g.s[i] = 1;
      g.p[i] = 0;
    } else {
      g.k[i] = k[j];
      g.s[i] = s.empty() ? 1 : s[j];
      g.p[i] = (p.empty() || same) ? 0 : p[j];
    }
    // global_pool over an empty spatial dim has kernel 0: empty windows (lowest / 0) as on the CPU
    if ((!global && g.k[i] <= 0) || g.s[i] <= 0 || g.p[i] < 0)
      throw KilnError(std::string(op) + ": bad kernel/stride/pad for data shape " + x.str());
  }
  return g;
}

/// One window along every dim: elements [lo, hi) are read; the divisors with and without padding.
template <typename I>
struct Window {
  I lo[3], hi[3];
  I pad_size, in_size;
};

template <typename I>
__device__ __forceinline__ Window<I> window(const PoolGeomT<I>& g, const I o[3]) {
  Window<I> w;
  w.pad_size = 1;
  w.in_size = 1;
  for (int i = 0; i < 3; ++i) {
    const I st = o[i] * g.s[i] - g.p[i];
    const I ep = min(st + g.k[i], g.in[i] + g.p[i]);
    w.pad_size *= ep - st;
    w.lo[i] = max(st, (I)0);
    w.hi[i] = min(ep, g.in[i]);
    w.in_size *= w.hi[i] - w.lo[i];
  }
  return w;
}

template <typename T>
__device__ __forceinline__ T pow_p(T v, int p) {
  return p == 1 ? v : p == 2 ? v * v : v * v * v;
}
template <typename T>
__device__ __forceinline__ T root_p(T v, int p) {
  return p == 1 ? v : p == 2 ? k_sqrt(v) : k_cbrt(v);
}
template <typename T>
__device__ __forceinline__ T lp_grad(T dy, T x, T y, int p) {
  return p == 1 ? dy : p == 2 ? dy * x / y : dy * x * x / (y * y);
}

/// Memory offset of element `local` of plane pl in a tensor of `plane` elements a plane:
/// pl * plane + local channel-first, (n * plane + local) * C + c channel-last (pl = n * C + c).
template <typename I>
__device__ __forceinline__ int64_t at(const PoolGeomT<I>& g, I pl, I local, I plane) {
  if (g.C == 1) return (int64_t)pl * plane + local;
  return ((int64_t)(pl / g.C) * plane + local) * g.C + pl % g.C;
}

/// Output flat index -> (plane, o[3]).
template <typename I>
__device__ __forceinline__ I split_out(const PoolGeomT<I>& g, I idx, I o[3]) {
  o[2] = idx % g.out[2];
  I t = idx / g.out[2];
  o[1] = t % g.out[1];
  t /= g.out[1];
  o[0] = t % g.out[0];
  return t / g.out[0];
}

/// Output flat index -> its plane and its window.
template <typename I>
__device__ __forceinline__ I out_window(const PoolGeomT<I>& g, I idx, Window<I>* w) {
  I o[3];
  const I pl = split_out(g, idx, o);
  *w = window(g, o);
  return pl;
}

// x: [planes, in0, in1, in2], y: [planes, out0, out1, out2] (storage S; in memory through at()),
// computed in T (float for float16 / bfloat16 storage); I: the index type (PoolGeomT)
template <typename S, typename T, typename I>
__global__ void pool_forward_kernel(PoolGeomT<I> g, const S* x, S* y, int req) {
  const I n = g.planes * g.out_plane(), ip = g.in_plane(), op = g.out_plane();
  KILN_GRID_STRIDE(idx64, n) {
    const I idx = (I)idx64;
    Window<I> w;
    const I pl = out_window(g, idx, &w);
    T v;
    if (g.type == kMax) {
      v = lowest_of<T>();
      for (I a = w.lo[0]; a < w.hi[0]; ++a)
        for (I b = w.lo[1]; b < w.hi[1]; ++b)
          for (I c = w.lo[2]; c < w.hi[2]; ++c) {
            const T e = widen_to<T>(x[at(g, pl, (a * g.in[1] + b) * g.in[2] + c, ip)]);
            v = e > v ? e : v;
          }
    } else {
      T sum = T(0);
      for (I a = w.lo[0]; a < w.hi[0]; ++a)
        for (I b = w.lo[1]; b < w.hi[1]; ++b)
          for (I c = w.lo[2]; c < w.hi[2]; ++c) sum += pow_p(widen_to<T>(x[at(g, pl, (a * g.in[1] + b) * g.in[2] + c, ip)]), g.pval);
      const I cnt = g.include_pad ? w.pad_size : w.in_size;
      if (g.type == kAvg) v = cnt > 0 ? sum / T(cnt) : T(0);
      else v = g.type == kLp ? root_p(sum, g.pval) : sum;
    }
    store_from(y, at(g, pl, idx - pl * op, op), req, v);
  }
}

// x: [planes, in0, in1, in2], y: [planes, out...] (through at()) -> arg: [planes, out...] (plane-major,
// always), the plane-local index of the first window element (row-major) equal to y, or -1
template <typename S, typename T, typename I>
__global__ void pool_argmax_kernel(PoolGeomT<I> g, const S* x, const S* y, I* arg) {
  const I n = g.planes * g.out_plane(), ip = g.in_plane(), op = g.out_plane();
  KILN_GRID_STRIDE(idx64, n) {
    const I idx = (I)idx64;
    Window<I> w;
    const I pl = out_window(g, idx, &w);
    const T yv = widen_to<T>(y[at(g, pl, idx - pl * op, op)]);
    I found = -1;
    for (I a = w.lo[0]; a < w.hi[0] && found < 0; ++a)
      for (I b = w.lo[1]; b < w.hi[1] && found < 0; ++b)
        for (I c = w.lo[2]; c < w.hi[2]; ++c) {
          const I i = (a * g.in[1] + b) * g.in[2] + c;
          if (widen_to<T>(x[at(g, pl, i, ip)]) == yv) {
            found = i;
            break;
          }
        }
    arg[idx] = found;
  }
}

/// Outputs whose window contains input index i along one dim: [*lo, *hi] (empty when lo > hi).
template <typename I>
__device__ __forceinline__ void covering(const PoolGeomT<I>& g, int d, I i, I* lo, I* hi) {
  const I num = i + g.p[d] - g.k[d] + 1;
  *lo = num <= 0 ? 0 : (num + g.s[d] - 1) / g.s[d];
  *hi = min((i + g.p[d]) / g.s[d], g.out[d] - 1);
}

// dy, y: [planes, out...]; x, dx: [planes, in...] (through at()); arg: [planes, out...] (max only, else null)
template <typename S, typename T, typename I>
__global__ void pool_backward_kernel(PoolGeomT<I> g, const S* dy, const S* x, const S* y, const I* arg, S* dx,
                                     int req) {
  const I n = g.planes * g.in_plane();
  const I op = g.out_plane();
  KILN_GRID_STRIDE(idx64, n) {
    const I idx = (I)idx64;
    I i[3];
    i[2] = idx % g.in[2];
    I t = idx / g.in[2];
    i[1] = t % g.in[1];
    t /= g.in[1];
    i[0] = t % g.in[0];
    const I pl = t / g.in[0];
    const I local = (i[0] * g.in[1] + i[1]) * g.in[2] + i[2];
    I lo[3], hi[3];
    for (int d = 0; d < 3; ++d) covering(g, d, i[d], &lo[d], &hi[d]);
    T acc = T(0);
    if (g.type == kMax) {
      const I* ap = arg + (int64_t)pl * op;  // [out0, out1, out2]
      for (I a = lo[0]; a <= hi[0]; ++a)
        for (I b = lo[1]; b <= hi[1]; ++b)
          for (I c = lo[2]; c <= hi[2]; ++c) {
            const I oi = (a * g.out[1] + b) * g.out[2] + c;
            if (ap[oi] == local) acc += widen_to<T>(dy[at(g, pl, oi, op)]);
          }
    } else {
      const T xv = widen_to<T>(x[at(g, pl, local, g.in_plane())]);
      for (I a = lo[0]; a <= hi[0]; ++a)
        for (I b = lo[1]; b <= hi[1]; ++b)
          for (I c = lo[2]; c <= hi[2]; ++c) {
            const I o[3] = {a, b, c};
            const I oi = (a * g.out[1] + b) * g.out[2] + c;
            T size = T(1);
            if (g.type == kAvg) {
              const Window<I> w = window(g, o);
              size = T(g.include_pad ? w.pad_size : w.in_size);
            }
            const T d = widen_to<T>(dy[at(g, pl, oi, op)]);
            acc += (g.type == kLp ? lp_grad(d, xv, widen_to<T>(y[at(g, pl, oi, op)]), g.pval) : d) / size;
          }
    }
    store_from(dx, at(g, pl, local, g.in_plane()), req, acc);
  }
}

void pool_forward(const OpCtx& ctx, const Attrs& a, const std::vector<TBlob>& in, const std::vector<OpReq>& req,
                  const std::vector<TBlob>& out) {
  const char* op = "Pooling";
  // in: data [N, C, spatial...]; out: output [N, C, pooled...]
  prologue(op, in, 1, 1, req, out, 1, 1);
  const PoolGeom g = pool_geom(op, a, in[0].shape, out[0].shape);
  const int64_t n = g.planes * g.out_plane();
  if (req[0] == OpReq::kNullOp || n == 0) return;
  DeviceGuard dg(device_of(ctx, in, out));
  const bool i32 = fits_int32(g);
  auto launch = [&](auto s_tag, auto t_tag) {
    using S = decltype(s_tag);
    using T = decltype(t_tag);
    if (i32)
      pool_forward_kernel<S, T, int32_t><<<grid_for(n), kBlock, 0, stream_of(ctx)>>>(
          narrow<int32_t>(g), in[0].dptr<S>(), out[0].dptr<S>(), req_int(req[0]));
    else
      pool_forward_kernel<S, T, int64_t><<<grid_for(n), kBlock, 0, stream_of(ctx)>>>(g, in[0].dptr<S>(), out[0].dptr<S>(),
                                                                                    req_int(req[0]));
  };
  if (is_low_precision(in[0].dtype)) KILN_LOW_PRECISION_SWITCH(in[0].dtype, L, { launch(L(), 0.f); });
  else KILN_FLOAT_SWITCH(in[0].dtype, T, { launch(T(), T()); });
  KILN_CUDA_LAUNCH_CHECK(op);
}

void pool_backward(const OpCtx& ctx, const Attrs& a, const std::vector<TBlob>& in, const std::vector<OpReq>& req,
                   const std::vector<TBlob>& out) {
  const char* op = "_backward_Pooling";
  // in: ograd [N, C, pooled...], data [N, C, spatial...], output [N, C, pooled...]; out: data_grad (data-shaped)
  prologue(op, in, 3, 3, req, out, 1, 1);
  const PoolGeom g = pool_geom(op, a, in[1].shape, in[0].shape);
  expect_size(op, "output", in[2], in[0].size());
  expect_size(op, "data_grad", out[0], in[1].size());
  const int64_t n = g.planes * g.in_plane(), no = g.planes * g.out_plane();
  if (req[0] == OpReq::kNullOp || n == 0) return;
  const int dev = device_of(ctx, in, out);
  DeviceGuard dg(dev);
  cudaStream_t s = stream_of(ctx);
  if (no == 0) {  // no window: no gradient
    if (req[0] != OpReq::kAddTo) zero_unless_add(ctx, req[0], out[0]);
    return;
  }
  const bool i32 = fits_int32(g);
  std::unique_ptr<DeviceScratch> arg;  // [planes, out...] argmax indices (I)
  if (g.type == kMax) arg.reset(new DeviceScratch(dev, (size_t)no * (i32 ? sizeof(int32_t) : sizeof(int64_t))));
  auto launch_i = [&](auto s_tag, auto t_tag, const auto& gi) {
    using S = decltype(s_tag);
    using T = decltype(t_tag);
    using I = std::remove_const_t<std::remove_reference_t<decltype(gi.planes)>>;
    if (arg) {
      pool_argmax_kernel<S, T, I><<<grid_for(no), kBlock, 0, s>>>(gi, in[1].dptr<S>(), in[2].dptr<S>(), arg->as<I>());
      KILN_CUDA_LAUNCH_CHECK("_backward_Pooling (argmax)");
    }
    pool_backward_kernel<S, T, I><<<grid_for(n), kBlock, 0, s>>>(gi, in[0].dptr<S>(), in[1].dptr<S>(), in[2].dptr<S>(),
                                                                arg ? arg->as<I>() : nullptr, out[0].dptr<S>(),
                                                                req_int(req[0]));
  };
  auto launch = [&](auto s_tag, auto t_tag) {
    if (i32) launch_i(s_tag, t_tag, narrow<int32_t>(g));
    else launch_i(s_tag, t_tag, g);
  };
  if (is_low_precision(in[0].dtype)) KILN_LOW_PRECISION_SWITCH(in[0].dtype, L, { launch(L(), 0.f); });
  else KILN_FLOAT_SWITCH(in[0].dtype, T, { launch(T(), T()); });
  KILN_CUDA_LAUNCH_CHECK(op);
}

}  // namespace

void register_pooling(OpRegistry& r) {
  set_gpu(r, "Pooling", pool_forward, kNativeLowPrecision);
  set_gpu(r, "_backward_Pooling", pool_backward, kNativeLowPrecision);
}

}  // namespace nn_gpu
}  // namespace cuda
}  // namespace kiln
