// Axis reductions (MXNet broadcast_reduce_op_value.cc): sum (sum_axis), mean, max (max_axis),
// min (min_axis). Params axis (shape, None = all axes; negative axes count from the end),
// keepdims=False, exclude=False (reduce the axes NOT listed). Reducing everything without
// keepdims gives shape (1,). Input `data`, output `output`.
//
// Backward (one output: the gradient of data, data's shape):
//   _backward_sum(ograd)           dx = broadcast(ograd)
//   _backward_mean(ograd)          dx = broadcast(ograd) / count      (count = inputs per output)
//   _backward_max(ograd, x, y)     dx = broadcast(ograd) * (x == broadcast(y))
//   _backward_min(ograd, x, y)     same rule
// max/min give the gradient to EVERY position equal to the extremum (MXNet's mshadow_op::eq
// rule), so ties each receive the full ograd.
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
  const bool exclude = a.b("exclude");
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

enum class Kind { kSum, kMean, kMax, kMin };

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
    } else {
      simd::reduce_apply(p, simd::MinReducer<T>(), x, req[0], y);
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
  constexpr bool extremum = kind == Kind::kMax || kind == Kind::kMin;
  OpDef d;
  d.name = name;
  d.aliases = std::move(aliases);
  d.description = desc;
  d.params = reduce_params();
  d.input_names_ = {"data"};
  d.output_names_ = {"output"};
  d.infer_shape = infer_reduce_shape;
  d.cpu = reduce_forward<kind>;
  // integer arrays: exact sums (in double, to 2^53) wrapped into the type once; mean truncates
  d.integers_via_float64 = true;
  d.gradient = [bw](const NodePtr& fwd, const std::vector<NodeEntry>& og) {
    if (!extremum) return backward_or_zeros(bw, fwd, og, {og[0]});
    NodeEntry y;
    y.node = fwd;
    y.index = 0;
    return backward_or_zeros(bw, fwd, og, {og[0], fwd->inputs[0], y});
  };
  reg.add(std::move(d));

  OpDef b;
  b.name = bw;
  b.description = "Backward of " + name + ".";
  b.params = reduce_params();
  b.input_names_ = extremum ? std::vector<std::string>{"ograd", "data", "output"} : std::vector<std::string>{"ograd"};
  b.output_names_ = {"data_grad"};
  b.is_backward = true;
  b.non_differentiable = true;
  if constexpr (extremum) b.cpu = reduce_backward_extremum;
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
}

}  // namespace elemwise
}  // namespace kiln
