// Axis reductions (MXNet broadcast_reduce_op_value.cc, broadcast_reduce_norm_value.cc): sum
// (sum_axis), mean, max (max_axis), min (min_axis), prod, nansum, nanprod, norm. Params axis
// (shape, None = all axes; negative axes count from the end), keepdims=False, exclude=False
// (reduce the axes NOT listed; norm has no exclude, and takes ord = 1 or 2). Reducing everything
// without keepdims gives shape (1,). Input `data`, output `output`.
//
// Backward (one output: the gradient of data, data's shape):
//   _backward_sum(ograd)           dx = broadcast(ograd)
//   _backward_mean(ograd)          dx = broadcast(ograd) / count      (count = inputs per output)
//   _backward_max(ograd, x, y)     dx = broadcast(ograd) * (x == broadcast(y))
//   _backward_min(ograd, x, y)     same rule
//   _backward_nansum(ograd, x)     dx = broadcast(ograd) where x is not NaN, else 0
//   _backward_prod(ograd, x)       dx = broadcast(ograd) * (the product of the other elements)
//   _backward_nanprod(ograd, x)    the same with NaN read as 1, and 0 at NaN positions
//   _backward_norm(ograd, x, y)    ord 2: dx = ograd * x / y (0 where y == 0); ord 1: ograd * sign(x)
// max/min give the gradient to EVERY position equal to the extremum (MXNet's mshadow_op::eq
// rule), so ties each receive the full ograd. prod's gradient is exact where the group holds a
// zero (MXNet's ograd * y / x gives NaN or inf there), and norm's is 0 at a zero norm (MXNet: NaN).
//
// Sums accumulate in double (MXNet accumulates in DType with a Kahan residual); max/min propagate
// NaN like MXNet's red::maximum / red::minimum.
// Shapes: x [in shape], y / ograd [reduced shape], written K below = x's shape with 1 on the
// reduced axes (same element order as y, so y and ograd are read as K).
#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "kiln/kernel_common.h"
#include "kiln/op.h"
#include "kiln/simd.h"

namespace kiln {
namespace elemwise {

// Shared helpers (elemwise_ops.cc).
std::vector<NodeEntry> backward_or_zeros(const std::string& op, const NodePtr& fwd, const std::vector<NodeEntry>& ograds,
                                         const std::vector<NodeEntry>& inputs);

namespace {

/// Which axes of a rank-n input are reduced, following MXNet's ReduceAxesShapeImpl: axis None or
/// () reduces everything (exclude is then ignored); negative axes wrap; duplicates and
/// out-of-range axes are errors. `ishape` is only used in messages.
std::vector<bool> reduced_axes(const Attrs& a, const Shape& ishape) {
  const int n = ishape.ndim();
  std::vector<bool> red((size_t)n, true);
  if (!a.has("axis") || a.t("axis").empty()) return red;
  std::vector<int64_t> axes = a.t("axis");
  const std::string given = Shape(a.t("axis")).str();
  for (auto& x : axes)
    if (x < 0) x += n;
  std::sort(axes.begin(), axes.end());
  for (size_t i = 1; i < axes.size(); ++i)
    if (axes[i - 1] == axes[i]) throw InferError(true, 0, "Reduction axes have duplicates " + given);
  if (axes.back() >= n || axes.front() < 0)
    throw InferError(true, 0, "Reduction axis " + given + " Exceeds input dimensions " + ishape.str());
  bool exclude = false;  // norm has no exclude parameter
  for (const auto& p : a.op->params)
    if (p.name == "exclude") exclude = a.b("exclude");
  std::fill(red.begin(), red.end(), exclude);
  for (auto x : axes) red[(size_t)x] = !exclude;
  return red;
}

/// K: the input shape with 1 on every reduced axis.
Shape keepdims_shape(const Attrs& a, const Shape& ishape) {
  const std::vector<bool> red = reduced_axes(a, ishape);
  Shape k = ishape;
  for (int i = 0; i < ishape.ndim(); ++i)
    if (red[(size_t)i]) k[i] = 1;
  return k;
}

/// Output shape: K with keepdims; otherwise the kept dims in order, or (1,) when none is kept.
void infer_reduce_shape(const Attrs& a, std::vector<Shape>* in, std::vector<Shape>* out) {
  const Shape& x = (*in)[0];
  if (!x.rank_known()) return;
  const std::vector<bool> red = reduced_axes(a, x);
  Shape o;
  if (a.b("keepdims")) {
    o = x;
    for (int i = 0; i < x.ndim(); ++i)
      if (red[(size_t)i]) o[i] = 1;
  } else {
    std::vector<int64_t> d;
    for (int i = 0; i < x.ndim(); ++i)
      if (!red[(size_t)i]) d.push_back(x[i]);
    if (d.empty()) d.push_back(1);
    o = Shape(d);
  }
  assign_out(out, 0, o);
}

enum class Kind { kSum, kMean, kMax, kMin, kProd, kNanSum, kNanProd, kNorm };

// Reducers (kiln/simd.h's concept) of prod, nansum, nanprod and norm, and of prod's backward.
// Products and sums accumulate in double.
template <typename T, bool kSkipNan>
struct ProdReducer {  // kSkipNan: NaN reads as 1 (nanprod)
  using Acc = double;
  static Acc init() { return 1.0; }
  static Acc step(Acc a, T x) { return (kSkipNan && x != x) ? a : a * (Acc)x; }
  static Acc merge(Acc a, Acc b) { return a * b; }
  T finish(Acc a) const { return (T)a; }
};
template <typename T>
struct NanSumReducer {
  using Acc = double;
  static Acc init() { return 0.0; }
  static Acc step(Acc a, T x) { return x != x ? a : a + (Acc)x; }
  static Acc merge(Acc a, Acc b) { return a + b; }
  T finish(Acc a) const { return (T)a; }
};
template <typename T, int kOrd>
struct NormReducer {  // ord 1: sum |x|; ord 2: sqrt(sum x^2)
  using Acc = double;
  static Acc init() { return 0.0; }
  static Acc step(Acc a, T x) { return kOrd == 1 ? a + std::abs((Acc)x) : a + (Acc)x * (Acc)x; }
  static Acc merge(Acc a, Acc b) { return a + b; }
  T finish(Acc a) const { return (T)(kOrd == 1 ? a : std::sqrt(a)); }
};
template <typename T, bool kSkipNan>
struct NonZeroProdReducer {  // the product of the non-zero (and, kSkipNan, non-NaN) elements
  using Acc = double;
  static Acc init() { return 1.0; }
  static Acc step(Acc a, T x) { return (x == T(0) || (kSkipNan && x != x)) ? a : a * (Acc)x; }
  static Acc merge(Acc a, Acc b) { return a * b; }
  T finish(Acc a) const { return (T)a; }
};
template <typename T>
struct ZeroCountReducer {
  using Acc = double;
  static Acc init() { return 0.0; }
  static Acc step(Acc a, T x) { return x == T(0) ? a + 1.0 : a; }
  static Acc merge(Acc a, Acc b) { return a + b; }
  T finish(Acc a) const { return (T)a; }
};

// in: data [x]; out: [y] (= K elements, contiguous).
template <Kind kind>
void reduce_forward(const OpCtx&, const Attrs& attrs, const std::vector<TBlob>& in, const std::vector<OpReq>& req,
                    const std::vector<TBlob>& out) {
  const simd::ReducePlan p = simd::make_reduce_plan(in[0].shape, keepdims_shape(attrs, in[0].shape));
  KILN_FLOAT_SWITCH(out[0].dtype, T, {
    const T* x = in[0].dptr<T>();  // [x]
    T* y = out[0].dptr<T>();       // [K]
    if constexpr (kind == Kind::kSum || kind == Kind::kMean) {
      simd::SumReducer<T> r;
      if (kind == Kind::kMean && out[0].size() > 0) r.divisor = (double)(in[0].size() / out[0].size());
      if (kind == Kind::kMean && in[0].size() == 0) r.divisor = 0.0;  // mean of nothing: NaN, as 0/0
      simd::reduce_apply(p, r, x, req[0], y);
    } else if constexpr (kind == Kind::kMax) {
      simd::reduce_apply(p, simd::MaxReducer<T>(), x, req[0], y);
    } else if constexpr (kind == Kind::kMin) {
      simd::reduce_apply(p, simd::MinReducer<T>(), x, req[0], y);
    } else if constexpr (kind == Kind::kProd || kind == Kind::kNanProd) {
      simd::reduce_apply(p, ProdReducer<T, kind == Kind::kNanProd>(), x, req[0], y);
    } else if constexpr (kind == Kind::kNanSum) {
      simd::reduce_apply(p, NanSumReducer<T>(), x, req[0], y);
    } else {
      if (attrs.i("ord") == 1) simd::reduce_apply(p, NormReducer<T, 1>(), x, req[0], y);
      else simd::reduce_apply(p, NormReducer<T, 2>(), x, req[0], y);
    }
  });
}

// _backward_sum / _backward_mean: in: ograd [K]; out: dx [x].
template <Kind kind>
void reduce_backward_none(const OpCtx&, const Attrs& attrs, const std::vector<TBlob>& in, const std::vector<OpReq>& req,
                          const std::vector<TBlob>& out) {
  const Shape k = keepdims_shape(attrs, out[0].shape);
  const simd::BcastPlan p = simd::make_bcast_plan(out[0].shape, {k});
  KILN_FLOAT_SWITCH(out[0].dtype, T, {
    const T* g = in[0].dptr<T>();  // ograd [K]
    T* dx = out[0].dptr<T>();      // [x]
    const T* none = nullptr;
    if (kind == Kind::kMean) {
      const T count = (T)(k.size() > 0 ? out[0].size() / k.size() : 0);
      simd::bcast_apply<1>(p, req[0], dx, g, none, none, [count](T v) { return v / count; });
    } else {
      simd::bcast_apply<1>(p, req[0], dx, g, none, none, [](T v) { return v; });
    }
  });
}

// _backward_max / _backward_min: in: ograd [K], x [x], y [K]; out: dx [x] (may alias x).
void reduce_backward_extremum(const OpCtx&, const Attrs& attrs, const std::vector<TBlob>& in,
                              const std::vector<OpReq>& req, const std::vector<TBlob>& out) {
  const Shape k = keepdims_shape(attrs, out[0].shape);
  const simd::BcastPlan p = simd::make_bcast_plan(out[0].shape, {out[0].shape, k, k});
  KILN_FLOAT_SWITCH(out[0].dtype, T, {
    const T* g = in[0].dptr<T>();  // ograd [K]
    const T* x = in[1].dptr<T>();  // [x]
    const T* y = in[2].dptr<T>();  // [K]
    T* dx = out[0].dptr<T>();      // [x]
    // MXNet: g * (x == y); a select vectorizes on AVX2 too (same bits for finite g).
    simd::bcast_apply<3>(p, req[0], dx, x, g, y,
                         [](T xv, T gv, T yv) { return xv == yv ? gv : std::copysign(T(0), gv); });
  });
}

// _backward_nansum: in: ograd [K], x [x]; out: dx [x] (may alias x) = ograd where x is not NaN.
void nansum_backward(const OpCtx&, const Attrs& attrs, const std::vector<TBlob>& in, const std::vector<OpReq>& req,
                     const std::vector<TBlob>& out) {
  const Shape k = keepdims_shape(attrs, out[0].shape);
  const simd::BcastPlan p = simd::make_bcast_plan(out[0].shape, {out[0].shape, k});
  KILN_FLOAT_SWITCH(out[0].dtype, T, {
    const T* g = in[0].dptr<T>();  // ograd [K]
    const T* x = in[1].dptr<T>();  // [x]
    simd::bcast_apply<2>(p, req[0], out[0].dptr<T>(), x, g, static_cast<const T*>(nullptr),
                         [](T xv, T gv) { return xv != xv ? T(0) : gv; });
  });
}

// _backward_prod / _backward_nanprod: in: ograd [K], x [x]; out: dx [x] (may alias x).
// Per output: P = the product of the non-zero (non-NaN) elements, Z = the number of zeros; then
// dx = ograd * P / x where Z == 0, ograd * P at the zero where Z == 1, else 0 (NaN positions: 0).
template <bool kNan>
void prod_backward(const OpCtx&, const Attrs& attrs, const std::vector<TBlob>& in, const std::vector<OpReq>& req,
                   const std::vector<TBlob>& out) {
  if (req[0] == OpReq::kNullOp) return;
  const Shape k = keepdims_shape(attrs, out[0].shape);
  const int64_t nk = k.size();
  const simd::ReducePlan rp = simd::make_reduce_plan(out[0].shape, k);
  const simd::BcastPlan bp = simd::make_bcast_plan(out[0].shape, {out[0].shape, k, k});
  KILN_FLOAT_SWITCH(out[0].dtype, T, {
    const T* g = in[0].dptr<T>();  // ograd [K]
    const T* x = in[1].dptr<T>();  // [x]
    std::vector<T> ga((size_t)nk), gb((size_t)nk);  // [K] each: P, then ograd * P where Z == 0; Z, then where Z == 1
    simd::reduce_apply(rp, NonZeroProdReducer<T, kNan>(), x, OpReq::kWriteTo, ga.data());
    simd::reduce_apply(rp, ZeroCountReducer<T>(), x, OpReq::kWriteTo, gb.data());
    for (int64_t i = 0; i < nk; ++i) {
      const T gp = g[i] * ga[(size_t)i], z = gb[(size_t)i];
      ga[(size_t)i] = z == T(0) ? gp : T(0);
      gb[(size_t)i] = z == T(1) ? gp : T(0);
    }
    simd::bcast_apply<3>(bp, req[0], out[0].dptr<T>(), x, static_cast<const T*>(ga.data()),
                         static_cast<const T*>(gb.data()), [](T xv, T a, T b) {
                           return (kNan && xv != xv) ? T(0) : (xv != T(0) ? a / xv : b);
                         });
  });
}

// _backward_norm: in: ograd [K], x [x], y [K]; out: dx [x] (may alias x).
void norm_backward(const OpCtx&, const Attrs& attrs, const std::vector<TBlob>& in, const std::vector<OpReq>& req,
                   const std::vector<TBlob>& out) {
  const Shape k = keepdims_shape(attrs, out[0].shape);
  const simd::BcastPlan p = simd::make_bcast_plan(out[0].shape, {out[0].shape, k, k});
  const bool l1 = attrs.i("ord") == 1;
  KILN_FLOAT_SWITCH(out[0].dtype, T, {
    const T* g = in[0].dptr<T>();  // ograd [K]
    const T* x = in[1].dptr<T>();  // [x]
    const T* y = in[2].dptr<T>();  // [K]
    if (l1) {
      simd::bcast_apply<3>(p, req[0], out[0].dptr<T>(), x, g, y, [](T xv, T gv, T) {
        return xv > T(0) ? gv : (xv < T(0) ? -gv : T(0));
      });
    } else {
      simd::bcast_apply<3>(p, req[0], out[0].dptr<T>(), x, g, y,
                           [](T xv, T gv, T yv) { return yv == T(0) ? T(0) : gv * (xv / yv); });
    }
  });
}

/// norm: ord 1 or 2 (MXNet supports no other), out_dtype only as the input's type.
std::vector<ParamDef> norm_params() {
  ParamDef ord = param("ord", ParamType::kInt, "2", "Order of the norm. Currently ord=1 and ord=2 is supported.");
  ord.lower = 1;
  ord.upper = 2;
  ParamDef axis = param("axis", ParamType::kShape, "None",
                        "The axis or axes along which to perform the reduction (None: every axis, output (1,)).");
  ParamDef out_dtype = param_enum("out_dtype", "None", {"float16", "float32", "float64", "int32", "int64", "int8"},
                                  "The data type of the output; only the input's type is supported.");
  ParamDef keepdims = param("keepdims", ParamType::kBool, "False",
                            "If this is set to True, the reduced axis is left in the result as dimension with size one.");
  return {ord, axis, out_dtype, keepdims};
}

void norm_infer_type(const Attrs& a, std::vector<DType>* in, std::vector<DType>* out) {
  if (a.has("out_dtype") && (*in)[0] != DType::kUnknown && dtype_from_name(a.s("out_dtype")) != (*in)[0])
    throw InferError(true, 0, "norm: out_dtype=" + a.s("out_dtype") + " differs from the input type " +
                                  dtype_name((*in)[0]) + "; an output type other than the input's is not supported");
  infer_same_type(a, in, out);
}

std::vector<ParamDef> reduce_params() {
  ParamDef axis;
  axis.name = "axis";
  axis.type = ParamType::kShape;
  axis.default_value = "None";
  axis.description =
      "The axis or axes along which to perform the reduction. The default, axis=(), will compute over all "
      "elements into a scalar array with shape (1,). If axis is int, a reduction is performed on a particular "
      "axis. If axis is a tuple of ints, a reduction is performed on all the axes specified in the tuple. If "
      "exclude is true, reduction will be performed on the axes that are NOT in axis instead. Negative values "
      "means indexing from right to left.";
  ParamDef keepdims;
  keepdims.name = "keepdims";
  keepdims.type = ParamType::kBool;
  keepdims.default_value = "False";
  keepdims.description =
      "If this is set to True, the reduced axes are left in the result as dimension with size one.";
  ParamDef exclude;
  exclude.name = "exclude";
  exclude.type = ParamType::kBool;
  exclude.default_value = "False";
  exclude.description = "Whether to perform reduction on axis that are NOT in axis instead.";
  return {axis, keepdims, exclude};
}

template <Kind kind>
void add_reduce(OpRegistry& reg, const std::string& name, std::vector<std::string> aliases, const std::string& desc) {
  const std::string bw = "_backward_" + name;
  // the backward reads (ograd, x, y) for max, min and norm, (ograd, x) for nansum and the products
  constexpr bool reads_y = kind == Kind::kMax || kind == Kind::kMin || kind == Kind::kNorm;
  constexpr bool reads_x = reads_y || kind == Kind::kProd || kind == Kind::kNanSum || kind == Kind::kNanProd;
  OpDef d;
  d.name = name;
  d.aliases = std::move(aliases);
  d.description = desc;
  d.params = kind == Kind::kNorm ? norm_params() : reduce_params();
  if (kind == Kind::kNorm) d.infer_type = norm_infer_type;
  d.input_names_ = {"data"};
  d.output_names_ = {"output"};
  d.infer_shape = infer_reduce_shape;
  d.cpu = reduce_forward<kind>;
  // integer arrays: exact sums (in double, to 2^53) wrapped into the type once; mean truncates
  d.integers_via_float64 = true;
  d.mxnet_unnamed_inputs = true;
  d.gradient = [bw](const NodePtr& fwd, const std::vector<NodeEntry>& og) {
    if (!reads_x) return backward_or_zeros(bw, fwd, og, {og[0]});
    if (!reads_y) return backward_or_zeros(bw, fwd, og, {og[0], fwd->inputs[0]});
    NodeEntry y;
    y.node = fwd;
    y.index = 0;
    return backward_or_zeros(bw, fwd, og, {og[0], fwd->inputs[0], y});
  };
  const std::vector<ParamDef> params = d.params;
  reg.add(std::move(d));

  OpDef b;
  b.name = bw;
  b.description = "Backward of " + name + ".";
  b.params = params;
  b.input_names_ = reads_y   ? std::vector<std::string>{"ograd", "data", "output"}
                   : reads_x ? std::vector<std::string>{"ograd", "data"}
                             : std::vector<std::string>{"ograd"};
  b.output_names_ = {"data_grad"};
  b.is_backward = true;
  b.non_differentiable = true;
  if constexpr (kind == Kind::kMax || kind == Kind::kMin) b.cpu = reduce_backward_extremum;
  else if constexpr (kind == Kind::kNorm) b.cpu = norm_backward;
  else if constexpr (kind == Kind::kNanSum) b.cpu = nansum_backward;
  else if constexpr (kind == Kind::kProd || kind == Kind::kNanProd) b.cpu = prod_backward<kind == Kind::kNanProd>;
  else b.cpu = reduce_backward_none<kind>;
  reg.add(std::move(b));
}

}  // namespace

void register_reduce(OpRegistry& reg) {
  add_reduce<Kind::kSum>(reg, "sum", {"sum_axis"}, "Computes the sum of array elements over given axes.");
  add_reduce<Kind::kMean>(reg, "mean", {}, "Computes the mean of array elements over given axes.");
  add_reduce<Kind::kMax>(reg, "max", {"max_axis"},
                         "Computes the max of array elements over given axes. The gradient goes to every element "
                         "equal to the maximum.");
  add_reduce<Kind::kMin>(reg, "min", {"min_axis"},
                         "Computes the min of array elements over given axes. The gradient goes to every element "
                         "equal to the minimum.");
  add_reduce<Kind::kProd>(reg, "prod", {}, "Computes the product of array elements over given axes.");
  add_reduce<Kind::kNanSum>(reg, "nansum", {},
                            "Computes the sum of array elements over given axes, treating NaN as zero.");
  add_reduce<Kind::kNanProd>(reg, "nanprod", {},
                             "Computes the product of array elements over given axes, treating NaN as one.");
  add_reduce<Kind::kNorm>(reg, "norm", {},
                          "Computes the L1 (ord=1) or L2 (ord=2) norm of array elements over given axes.");
}

}  // namespace elemwise
}  // namespace kiln
