// GPU kernels of the axis reductions (CPU: src/main/cpp/ops/tensor/elemwise_reduce.cc):
// sum, mean, max, min, prod, nansum, nanprod, norm (axis / keepdims / exclude / ord as the CPU)
// and their backward ops (prod's exact where a group holds a zero, as the CPU's); and
// argmax / argmin / argmax_channel (CPU: src/main/cpp/ops/index/reorder.cc), and moments (CPU:
// src/main/cpp/ops/tensor/moments.cc; one thread per output). Reductions go through the
// deterministic engine of tensor_common.cuh (no atomics; the same shapes always give the same
// bits). Sums accumulate in double as the CPU's; max/min propagate NaN like MXNet.
//
// Shapes: x [in shape], y / ograd [reduced shape], written K = x's shape with 1 on the reduced
// axes (same element order as y, so y and ograd are read as K).
#include <algorithm>
#include <string>

#include "kiln/moments.h"
#include "ops/tensor_common.cuh"

namespace kiln {
namespace cuda {
namespace tensor {
namespace {

/// Which axes of a rank-n input are reduced (the CPU's reduced_axes): axis None or () reduces
/// everything (exclude is then ignored); negative axes wrap; duplicates / out of range throw.
std::vector<bool> reduced_axes(const char* op, const Attrs& a, const Shape& ishape) {
  const int n = ishape.ndim();
  std::vector<bool> red((size_t)std::max(n, 0), true);
  if (!a.has("axis") || a.t("axis").empty()) return red;
  std::vector<int64_t> axes = a.t("axis");
  const std::string given = Shape(a.t("axis")).str();
  for (auto& x : axes)
    if (x < 0) x += n;
  std::sort(axes.begin(), axes.end());
  for (size_t i = 1; i < axes.size(); ++i)
    if (axes[i - 1] == axes[i]) throw KilnError(std::string(op) + " (GPU): reduction axes have duplicates " + given);
  if (axes.back() >= n || axes.front() < 0)
    throw KilnError(std::string(op) + " (GPU): reduction axis " + given + " exceeds input dimensions " + ishape.str());
  bool exclude = false;  // norm has no exclude parameter
  for (const auto& p : a.op->params)
    if (p.name == "exclude") exclude = a.b("exclude");
  std::fill(red.begin(), red.end(), exclude);
  for (auto x : axes) red[(size_t)x] = !exclude;
  return red;
}

/// K: the input shape with 1 on every reduced axis.
Shape keepdims_shape(const char* op, const Attrs& a, const Shape& ishape) {
  const std::vector<bool> red = reduced_axes(op, a, ishape);
  Shape k = ishape;
  for (int i = 0; i < ishape.ndim(); ++i)
    if (red[(size_t)i]) k[i] = 1;
  return k;
}

enum class Kind { kSum, kMean, kMax, kMin, kProd, kNanSum, kNanProd, kNorm };

const char* kind_name(Kind k) {
  switch (k) {
    case Kind::kSum: return "sum";
    case Kind::kMean: return "mean";
    case Kind::kMax: return "max";
    case Kind::kMin: return "min";
    case Kind::kProd: return "prod";
    case Kind::kNanSum: return "nansum";
    case Kind::kNanProd: return "nanprod";
    default: return "norm";
  }
}

// Reducers of prod, nansum, nanprod, norm and of prod's backward (the CPU's, in double).
template <typename T, bool kSkipNan>
struct ProdRed {  // kSkipNan: NaN reads as 1
  typedef double Acc;
  __device__ Acc init() const { return 1.0; }
  __device__ Acc step(Acc a, T x, int64_t) const { return (kSkipNan && x != x) ? a : a * (double)x; }
  __device__ Acc merge(Acc a, Acc b) const { return a * b; }
};
template <typename T>
struct NanSumRed {
  typedef double Acc;
  __device__ Acc init() const { return 0.0; }
  __device__ Acc step(Acc a, T x, int64_t) const { return x != x ? a : a + (double)x; }
  __device__ Acc merge(Acc a, Acc b) const { return a + b; }
};
template <typename T, int kOrd>
struct NormRed {  // ord 1: sum |x|; ord 2: sum x^2 (NormWrite takes the root)
  typedef double Acc;
  __device__ Acc init() const { return 0.0; }
  __device__ Acc step(Acc a, T x, int64_t) const { return kOrd == 1 ? a + fabs((double)x) : a + (double)x * (double)x; }
  __device__ Acc merge(Acc a, Acc b) const { return a + b; }
};
template <typename T>
struct NormWrite {
  T* y;
  int req;
  bool root;
  __device__ void operator()(int64_t m, double a) const { assign(y, m, req, (T)(root ? sqrt(a) : a)); }
};
template <typename T, bool kSkipNan>
struct NonZeroProdRed {  // the product of the non-zero (and, kSkipNan, non-NaN) elements
  typedef double Acc;
  __device__ Acc init() const { return 1.0; }
  __device__ Acc step(Acc a, T x, int64_t) const { return (x == T(0) || (kSkipNan && x != x)) ? a : a * (double)x; }
  __device__ Acc merge(Acc a, Acc b) const { return a * b; }
};
template <typename T>
struct ZeroCountRed {
  typedef double Acc;
  __device__ Acc init() const { return 0.0; }
  __device__ Acc step(Acc a, T x, int64_t) const { return x == T(0) ? a + 1.0 : a; }
  __device__ Acc merge(Acc a, Acc b) const { return a + b; }
};

// in: data [x]; out: [K elements]
template <Kind kind>
void reduce_forward(const OpCtx& ctx, const Attrs& attrs, const std::vector<TBlob>& in, const std::vector<OpReq>& req,
                    const std::vector<TBlob>& out) {
  const char* name = kind_name(kind);
  check_call(name, in, 1, 1, req, out, 1);
  check_dtype(name, in[0], out[0].dtype, "data");
  const Shape k = keepdims_shape(name, attrs, in[0].shape);
  check_size(name, out[0], k.size(), "output", k);
  if (req[0] == OpReq::kNullOp || out[0].size() == 0) return;
  const RPlan p = make_rplan(name, in[0].shape, k);
  const int device = device_of(ctx, in, out);
  DeviceGuard dg(device);
  KILN_FLOAT_SWITCH(out[0].dtype, T, {
    const T* x = in[0].dptr<T>();  // [x]
    T* y = out[0].dptr<T>();       // [K]
    if constexpr (kind == Kind::kSum || kind == Kind::kMean) {
      double divisor = 1.0;
      if (kind == Kind::kMean) divisor = (double)(in[0].size() / out[0].size());  // 0 for an empty input: NaN
      launch_reduce(ctx, device, p, x, SumRed<T>(), SumWrite<T>{y, req_int(req[0]), 1.0, divisor}, name);
    } else if constexpr (kind == Kind::kMax || kind == Kind::kMin) {
      launch_reduce(ctx, device, p, x, ExtRed<T, kind == Kind::kMax>(), PlainWrite<T>{y, req_int(req[0])}, name);
    } else if constexpr (kind == Kind::kProd || kind == Kind::kNanProd) {
      launch_reduce(ctx, device, p, x, ProdRed<T, kind == Kind::kNanProd>(), SumWrite<T>{y, req_int(req[0]), 1.0, 1.0},
                    name);
    } else if constexpr (kind == Kind::kNanSum) {
      launch_reduce(ctx, device, p, x, NanSumRed<T>(), SumWrite<T>{y, req_int(req[0]), 1.0, 1.0}, name);
    } else {
      if (attrs.i("ord") == 1) launch_reduce(ctx, device, p, x, NormRed<T, 1>(), NormWrite<T>{y, req_int(req[0]), false}, name);
      else launch_reduce(ctx, device, p, x, NormRed<T, 2>(), NormWrite<T>{y, req_int(req[0]), true}, name);
    }
  });
}

template <typename T> struct Pass { __device__ T operator()(T v) const { return v; } };
template <typename T> struct DivBy { T c; __device__ T operator()(T v) const { return v / c; } };
// (x, ograd, y): the gradient goes to every position equal to the extremum
template <typename T> struct EqPass {
  __device__ T operator()(T xv, T gv, T yv) const { return pass_if(xv == yv, gv); }
};

// _backward_sum / _backward_mean: in: ograd [K]; out: dx [x] = broadcast(ograd) (/ count)
template <Kind kind>
void reduce_backward_none(const OpCtx& ctx, const Attrs& attrs, const std::vector<TBlob>& in,
                          const std::vector<OpReq>& req, const std::vector<TBlob>& out) {
  const char* name = kind == Kind::kSum ? "_backward_sum" : "_backward_mean";
  check_call(name, in, 1, 1, req, out, 1);
  check_dtype(name, in[0], out[0].dtype, "ograd");
  const Shape k = keepdims_shape(name, attrs, out[0].shape);
  check_size(name, in[0], k.size(), "ograd", k);
  if (req[0] == OpReq::kNullOp || out[0].size() == 0) return;
  const BPlan p = make_bplan(name, out[0].shape, {k});
  DeviceGuard dg(device_of(ctx, in, out));
  KILN_FLOAT_SWITCH(out[0].dtype, T, {
    const T* g = in[0].dptr<T>();  // [K]
    T* dx = out[0].dptr<T>();      // [x]
    if (kind == Kind::kMean) {
      const T count = (T)(k.size() > 0 ? out[0].size() / k.size() : 0);
      launch_bcast<1>(ctx, p, req[0], dx, g, (const T*)nullptr, (const T*)nullptr, DivBy<T>{count}, name);
    } else {
      launch_bcast<1>(ctx, p, req[0], dx, g, (const T*)nullptr, (const T*)nullptr, Pass<T>(), name);
    }
  });
}

// _backward_max / _backward_min: in: ograd [K], x [x], y [K]; out: dx [x] (may alias x)
void reduce_backward_extremum(const OpCtx& ctx, const Attrs& attrs, const std::vector<TBlob>& in,
                              const std::vector<OpReq>& req, const std::vector<TBlob>& out) {
  const char* name = "_backward_max/_backward_min";
  check_call(name, in, 3, 3, req, out, 1);
  const Shape k = keepdims_shape(name, attrs, out[0].shape);
  check_size(name, in[0], k.size(), "ograd", k);
  check_size(name, in[1], out[0].size(), "data", out[0].shape);
  check_size(name, in[2], k.size(), "output", k);
  for (int i = 0; i < 3; ++i) check_dtype(name, in[i], out[0].dtype, "input");
  if (req[0] == OpReq::kNullOp || out[0].size() == 0) return;
  const BPlan p = make_bplan(name, out[0].shape, {out[0].shape, k, k});
  DeviceGuard dg(device_of(ctx, in, out));
  KILN_FLOAT_SWITCH(out[0].dtype, T, {
    launch_bcast<3>(ctx, p, req[0], out[0].dptr<T>(), in[1].dptr<T>(), in[0].dptr<T>(), in[2].dptr<T>(), EqPass<T>(),
                    name);
  });
}

// (x, ograd) -> ograd where x is not NaN
template <typename T> struct NotNanPass {
  __device__ T operator()(T xv, T gv) const { return xv != xv ? T(0) : gv; }
};
// (ograd, P, Z) -> ograd * P where Z == Zk (0: the zero-free groups, 1: the groups with one zero)
template <typename T> struct GroupScale {
  T zk;
  __device__ T operator()(T gv, T pv, T zv) const { return zv == zk ? gv * pv : T(0); }
};
// (x, ograd * P where Z == 0, ograd * P where Z == 1) -> the gradient of a product
template <typename T, bool kNan> struct ProdGrad {
  __device__ T operator()(T xv, T a, T b) const { return (kNan && xv != xv) ? T(0) : (xv != T(0) ? a / xv : b); }
};
// norm: (x, ograd, y) -> ograd * x / y (0 at y == 0), or ograd * sign(x) for ord 1
template <typename T> struct NormGrad {
  bool l1;
  __device__ T operator()(T xv, T gv, T yv) const {
    if (l1) return xv > T(0) ? gv : (xv < T(0) ? -gv : T(0));
    return yv == T(0) ? T(0) : gv * (xv / yv);
  }
};

// _backward_nansum: in: ograd [K], x [x]; out: dx [x] (may alias x)
void nansum_backward(const OpCtx& ctx, const Attrs& attrs, const std::vector<TBlob>& in, const std::vector<OpReq>& req,
                     const std::vector<TBlob>& out) {
  const char* name = "_backward_nansum";
  check_call(name, in, 2, 2, req, out, 1);
  const Shape k = keepdims_shape(name, attrs, out[0].shape);
  check_size(name, in[0], k.size(), "ograd", k);
  check_size(name, in[1], out[0].size(), "data", out[0].shape);
  for (int i = 0; i < 2; ++i) check_dtype(name, in[i], out[0].dtype, "input");
  if (req[0] == OpReq::kNullOp || out[0].size() == 0) return;
  const BPlan p = make_bplan(name, out[0].shape, {out[0].shape, k});
  DeviceGuard dg(device_of(ctx, in, out));
  KILN_FLOAT_SWITCH(out[0].dtype, T, {
    launch_bcast<2>(ctx, p, req[0], out[0].dptr<T>(), in[1].dptr<T>(), in[0].dptr<T>(), (const T*)nullptr,
                    NotNanPass<T>(), name);
  });
}

// _backward_prod / _backward_nanprod: in: ograd [K], x [x]; out: dx [x] (may alias x). As the CPU:
// P = the product of the non-zero (non-NaN) elements and Z = the zero count of each group, then
// dx = ograd * P / x where Z == 0, ograd * P at the zero where Z == 1, else 0.
template <bool kNan>
void prod_backward(const OpCtx& ctx, const Attrs& attrs, const std::vector<TBlob>& in, const std::vector<OpReq>& req,
                   const std::vector<TBlob>& out) {
  const char* name = kNan ? "_backward_nanprod" : "_backward_prod";
  check_call(name, in, 2, 2, req, out, 1);
  const Shape k = keepdims_shape(name, attrs, out[0].shape);
  check_size(name, in[0], k.size(), "ograd", k);
  check_size(name, in[1], out[0].size(), "data", out[0].shape);
  for (int i = 0; i < 2; ++i) check_dtype(name, in[i], out[0].dtype, "input");
  if (req[0] == OpReq::kNullOp || out[0].size() == 0) return;
  const int device = device_of(ctx, in, out);
  DeviceGuard dg(device);
  const RPlan rp = make_rplan(name, out[0].shape, k);
  const BPlan kp = make_bplan(name, k, {k, k, k});
  const BPlan xp = make_bplan(name, out[0].shape, {out[0].shape, k, k});
  const int64_t nk = k.size();
  KILN_FLOAT_SWITCH(out[0].dtype, T, {
    DeviceScratch scratch(device, sizeof(T) * (size_t)(4 * nk));
    T* pz = scratch.as<T>();  // [K] P
    T* zc = pz + nk;          // [K] Z
    T* ga = zc + nk;          // [K] ograd * P where Z == 0
    T* gb = ga + nk;          // [K] ograd * P where Z == 1
    const T* x = in[1].dptr<T>();
    const T* g = in[0].dptr<T>();
    launch_reduce(ctx, device, rp, x, NonZeroProdRed<T, kNan>(), SumWrite<T>{pz, kReqWrite, 1.0, 1.0}, name);
    launch_reduce(ctx, device, rp, x, ZeroCountRed<T>(), SumWrite<T>{zc, kReqWrite, 1.0, 1.0}, name);
    launch_bcast<3>(ctx, kp, OpReq::kWriteTo, ga, g, (const T*)pz, (const T*)zc, GroupScale<T>{T(0)}, name);
    launch_bcast<3>(ctx, kp, OpReq::kWriteTo, gb, g, (const T*)pz, (const T*)zc, GroupScale<T>{T(1)}, name);
    launch_bcast<3>(ctx, xp, req[0], out[0].dptr<T>(), x, (const T*)ga, (const T*)gb, ProdGrad<T, kNan>(), name);
  });
}

// _backward_norm: in: ograd [K], x [x], y [K]; out: dx [x] (may alias x)
void norm_backward(const OpCtx& ctx, const Attrs& attrs, const std::vector<TBlob>& in, const std::vector<OpReq>& req,
                   const std::vector<TBlob>& out) {
  const char* name = "_backward_norm";
  check_call(name, in, 3, 3, req, out, 1);
  const Shape k = keepdims_shape(name, attrs, out[0].shape);
  check_size(name, in[0], k.size(), "ograd", k);
  check_size(name, in[1], out[0].size(), "data", out[0].shape);
  check_size(name, in[2], k.size(), "output", k);
  for (int i = 0; i < 3; ++i) check_dtype(name, in[i], out[0].dtype, "input");
  if (req[0] == OpReq::kNullOp || out[0].size() == 0) return;
  const BPlan p = make_bplan(name, out[0].shape, {out[0].shape, k, k});
  DeviceGuard dg(device_of(ctx, in, out));
  KILN_FLOAT_SWITCH(out[0].dtype, T, {
    launch_bcast<3>(ctx, p, req[0], out[0].dptr<T>(), in[1].dptr<T>(), in[0].dptr<T>(), in[2].dptr<T>(),
                    NormGrad<T>{attrs.i("ord") == 1}, name);
  });
}

// ---- argmax / argmin -----------------------------------------------------------------------------

template <typename C>
struct ArgAcc {
  C v;
  int64_t idx;  // -1: nothing seen yet
  int nan;      // v is NaN: idx is the lowest NaN position seen, which wins
};

/// The CPU's rule made associative: the first NaN wins (MXNet 1.9 and NumPy); otherwise the
/// extremum, the lowest index among equal values.
template <typename T, bool kMax>
struct ArgRed {
  typedef typename CmpType<T>::type C;
  typedef ArgAcc<C> Acc;
  __device__ Acc init() const { return Acc{C(0), -1, 0}; }
  __device__ Acc merge(Acc a, Acc b) const {
    if (a.nan && b.nan) return a.idx <= b.idx ? a : b;
    if (a.nan) return a;
    if (b.nan) return b;
    if (a.idx < 0) return b;
    if (b.idx < 0) return a;
    if (kMax ? (b.v > a.v) : (b.v < a.v)) return b;
    if (kMax ? (a.v > b.v) : (a.v < b.v)) return a;
    return a.idx <= b.idx ? a : b;
  }
  __device__ Acc step(Acc a, T x, int64_t r) const {
    const C v = cmp_value(x);
    return merge(a, Acc{v, r, v != v ? 1 : 0});
  }
};

/// y[m] (=|+=) the index, in y's (= x's) dtype.
template <typename T>
struct ArgWrite {
  T* y;
  int req;
  template <typename Acc>
  __device__ void operator()(int64_t m, Acc a) const {
    const int64_t best = a.idx < 0 ? 0 : a.idx;
    if constexpr (std::is_floating_point<T>::value) assign(y, m, req, (T)best);
    else y[m] = convert<T>(best);  // accumulation is refused on the host for these types
  }
};

// in: x [outer, n, inner] around the axis (axis None: the flattened array); out: [outer, inner]
template <bool kMax>
void arg_forward(const OpCtx& ctx, const Attrs& a, const std::vector<TBlob>& in, const std::vector<OpReq>& req,
                 const std::vector<TBlob>& out) {
  const char* name = kMax ? "argmax" : "argmin";
  check_call(name, in, 1, 1, req, out, 1);
  if (req[0] == OpReq::kNullOp) return;
  const TBlob& x = in[0];
  Shape k = x.shape;
  int64_t n = x.size();
  if (a.has("axis")) {
    const int nd = x.shape.ndim();
    const int64_t ax0 = a.i("axis");
    if (ax0 < -nd || ax0 >= nd)
      throw KilnError(std::string(name) + " (GPU): axis " + std::to_string(ax0) + " is out of range for input shape " +
                      x.shape.str());
    const int ax = (int)(ax0 < 0 ? ax0 + nd : ax0);
    n = x.shape[ax];
    k[ax] = 1;
  } else {
    for (int i = 0; i < k.ndim(); ++i) k[i] = 1;
  }
  if (n <= 0) throw KilnError(std::string(name) + " (GPU): cannot reduce an empty array " + x.shape.str());
  check_size(name, out[0], k.size(), "output", k);
  check_dtype(name, out[0], x.dtype, "output");
  if (req[0] == OpReq::kAddTo && !is_float_dtype(out[0].dtype))
    throw KilnError(std::string(name) + " (GPU): accumulation needs float32/float64, got " + dtype_name(out[0].dtype));
  const RPlan p = make_rplan(name, x.shape, k);
  const int device = device_of(ctx, in, out);
  DeviceGuard dg(device);
  KILN_ANY_SWITCH(x.dtype, T, {
    launch_reduce(ctx, device, p, x.dptr<T>(), ArgRed<T, kMax>(), ArgWrite<T>{out[0].dptr<T>(), req_int(req[0])},
                  name);
  });
}

// ---- moments ---------------------------------------------------------------------------------------
// As ops/tensor/moments.cc (geometry in kiln/moments.h): one thread per output element sums its
// inputs in double (mean, then the squared deviations from the mean rounded to T).

// x: [x], mean / var: [K]
template <typename T>
__global__ void moments_kernel(MomentsMap m, const T* x, T* mean, T* var, int req_mean, int req_var) {
  KILN_GRID_STRIDE(o, m.outputs) {
    int64_t base = 0;
    for (int d = 0; d < m.nd; ++d)
      if (m.dim[d] > 1 && m.ostride[d] != 0) base += ((o / m.ostride[d]) % m.dim[d]) * m.istride[d];
    auto at = [&](int64_t r) {  // the r-th input of output o, reduced dims right to left
      int64_t off = base;
      for (int d = m.nd - 1; d >= 0; --d)
        if (m.dim[d] > 1 && m.ostride[d] == 0) {
          off += (r % m.dim[d]) * m.istride[d];
          r /= m.dim[d];
        }
      return x[off];
    };
    double s = 0;
    for (int64_t r = 0; r < m.count; ++r) s += (double)at(r);
    const T mu = (T)(s / (double)m.count);
    double s2 = 0;
    for (int64_t r = 0; r < m.count; ++r) {
      const T dv = at(r) - mu;
      s2 += (double)(dv * dv);
    }
    if (req_mean != kReqNull) assign(mean, o, req_mean, mu);
    if (req_var != kReqNull) assign(var, o, req_var, (T)(s2 / (double)m.count));
  }
}

// gm, gv, mean: [K], x / dx: [x]; dx (req) gm / N + gv * 2 (x - mean) / N
template <typename T>
__global__ void moments_grad_kernel(MomentsMap m, int64_t n, const T* gm, const T* gv, const T* x, const T* mean, T* dx,
                                    int req) {
  KILN_GRID_STRIDE(e, n) {
    int64_t o = 0;
    for (int d = 0; d < m.nd; ++d)
      if (m.dim[d] > 1) o += ((e / m.istride[d]) % m.dim[d]) * m.ostride[d];
    const T cnt = (T)m.count;
    assign(dx, e, req, gm[o] / cnt + gv[o] * T(2) * (x[e] - mean[o]) / cnt);
  }
}

void moments_forward(const OpCtx& ctx, const Attrs& a, const std::vector<TBlob>& in, const std::vector<OpReq>& req,
                     const std::vector<TBlob>& out) {
  const char* name = "moments";
  check_call(name, in, 1, 1, req, out, 2);
  const MomentsMap m = moments_map(a, in[0].shape);
  for (int i = 0; i < 2; ++i) {
    check_size(name, out[i], m.outputs, "output", moments_kept(a, in[0].shape));
    check_dtype(name, out[i], in[0].dtype, "output");
  }
  if (m.outputs == 0 || (req[0] == OpReq::kNullOp && req[1] == OpReq::kNullOp)) return;
  DeviceGuard dg(device_of(ctx, in, out));
  KILN_FLOAT_SWITCH(in[0].dtype, T, {
    moments_kernel<T><<<grid_for(m.outputs), kBlock, 0, stream_of(ctx)>>>(m, in[0].dptr<T>(), out[0].dptr<T>(),
                                                                         out[1].dptr<T>(), req_int(req[0]),
                                                                         req_int(req[1]));
  });
  KILN_CUDA_LAUNCH_CHECK(name);
}

/// Inputs: og_mean [K], og_var [K], data [x], mean [K]; output: dx [x].
void moments_backward(const OpCtx& ctx, const Attrs& a, const std::vector<TBlob>& in, const std::vector<OpReq>& req,
                      const std::vector<TBlob>& out) {
  const char* name = "_backward_moments";
  check_call(name, in, 4, 4, req, out, 1);
  if (req[0] == OpReq::kNullOp || out[0].size() == 0) return;
  const MomentsMap m = moments_map(a, out[0].shape);
  for (int i : {0, 1, 3}) check_size(name, in[i], m.outputs, "input", moments_kept(a, out[0].shape));
  check_size(name, in[2], out[0].size(), "data", out[0].shape);
  DeviceGuard dg(device_of(ctx, in, out));
  KILN_FLOAT_SWITCH(out[0].dtype, T, {
    moments_grad_kernel<T><<<grid_for(out[0].size()), kBlock, 0, stream_of(ctx)>>>(
        m, out[0].size(), in[0].dptr<T>(), in[1].dptr<T>(), in[2].dptr<T>(), in[3].dptr<T>(), out[0].dptr<T>(),
        req_int(req[0]));
  });
  KILN_CUDA_LAUNCH_CHECK(name);
}

}  // namespace

void register_tensor_reduce_gpu(OpRegistry& r) {
  set_gpu(r, "sum", reduce_forward<Kind::kSum>);
  set_gpu(r, "mean", reduce_forward<Kind::kMean>);
  set_gpu(r, "max", reduce_forward<Kind::kMax>);
  set_gpu(r, "min", reduce_forward<Kind::kMin>);
  set_gpu(r, "_backward_sum", reduce_backward_none<Kind::kSum>);
  set_gpu(r, "_backward_mean", reduce_backward_none<Kind::kMean>);
  set_gpu(r, "_backward_max", reduce_backward_extremum);
  set_gpu(r, "_backward_min", reduce_backward_extremum);
  set_gpu(r, "prod", reduce_forward<Kind::kProd>);
  set_gpu(r, "nansum", reduce_forward<Kind::kNanSum>);
  set_gpu(r, "nanprod", reduce_forward<Kind::kNanProd>);
  set_gpu(r, "norm", reduce_forward<Kind::kNorm>);
  set_gpu(r, "_backward_prod", prod_backward<false>);
  set_gpu(r, "_backward_nanprod", prod_backward<true>);
  set_gpu(r, "_backward_nansum", nansum_backward);
  set_gpu(r, "_backward_norm", norm_backward);
  set_gpu(r, "argmax", arg_forward<true>);
  set_gpu(r, "argmin", arg_forward<false>);
  set_gpu(r, "moments", moments_forward);
  set_gpu(r, "_backward_moments", moments_backward);
  // argmax_channel: argmax over axis 1 (the CPU's ops/index/reorder.cc)
  const Attrs channel = parse_attrs(r.at("argmax"), {{"axis", "1"}});
  set_gpu(r, "argmax_channel", [channel](const OpCtx& ctx, const Attrs&, const std::vector<TBlob>& in,
                                         const std::vector<OpReq>& req, const std::vector<TBlob>& out) {
    arg_forward<true>(ctx, channel, in, req, out);
  });
}

}  // namespace tensor
}  // namespace cuda
}  // namespace kiln
