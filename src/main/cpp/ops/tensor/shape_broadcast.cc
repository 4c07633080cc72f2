// Explicit broadcasting (MXNet src/operator/tensor/broadcast_reduce_op_value.cc): broadcast_to
// (target shape, 0 keeps a dim), broadcast_like (the shape of a second array, optionally only on
// some axes) and broadcast_axis (broadcast_axes; sizes for chosen axes). The output has the
// input's rank and every input dim is 1 or the output's. The gradient of all three is
// _broadcast_backward: the output gradient summed over the broadcast axes back to the input's
// shape (broadcast_like's rhs lends only its shape and gets zeros).
// Kernels: the forward is the NumPy broadcasting engine of kiln/simd.h with one operand (data
// moves as raw elements of the dtype's size; kAddTo needs float32/float64), the backward its
// axis-reduction engine (sums in double).
#include <string>
#include <vector>

#include "kiln/kernel_common.h"
#include "kiln/op.h"
#include "kiln/simd.h"

namespace kiln {
namespace {

/// Output dim of a broadcast input dim `x` (-1: unknown) to `t` (> 0), or throws `fail`.
template <typename Fail>
int64_t bcast_dim(int64_t x, int64_t t, const Fail& fail) {
  if (x >= 0 && x != 1 && x != t) throw fail();
  return t;
}

/// The input completed from a known output where the target dim was kept (broadcast_to's 0):
/// there the input dim is the output dim. Elsewhere an input dim may be 1 or the output's.
void fill_kept_dims(std::vector<Shape>* in, const std::vector<Shape>& out, const std::vector<bool>& kept) {
  const Shape& y = out[0];
  const Shape& x = (*in)[0];
  if (!y.rank_known() || !x.rank_known() || y.ndim() != x.ndim()) return;
  Shape x_from_y = Shape::unknown_dims(x.ndim());
  for (int i = 0; i < x.ndim(); ++i)
    if (kept[i]) x_from_y[i] = y[i];
  assign_in(in, 0, x_from_y);
}

// ---- broadcast_to -----------------------------------------------------------------------------

/// MXNet BroadcastToShape: `shape` has the input's rank; 0 keeps the input dim, any other value is
/// the output dim, which the input dim must equal or be 1 for.
void broadcast_to_infer_shape(const Attrs& a, std::vector<Shape>* in, std::vector<Shape>* out) {
  const std::vector<int64_t>& t = a.t("shape");
  for (int64_t v : t)
    if (v < 0)
      throw InferError(true, 0, "broadcast_to: shape=" + tuple_str(t) +
                                    " has a negative dimension (0 keeps the input's dimension)");
  const Shape& x = (*in)[0];
  if (!x.rank_known()) {
    const Shape& y = (*out)[0];
    if (y.rank_known() && y.ndim() != (int)t.size())
      throw InferError(false, 0, "broadcast_to: the output has the rank of shape=" + tuple_str(t) + ", got " + y.str());
    return;
  }
  if (x.ndim() != (int)t.size())
    throw InferError(true, 0, "broadcast_to: Operand of shape " + x.str() + " cannot be broadcasted to " + tuple_str(t) +
                                  " (shape must have the input's " + std::to_string(x.ndim()) + " dimensions)");
  std::vector<int64_t> od(x.ndim());
  std::vector<bool> kept(x.ndim());
  for (int i = 0; i < x.ndim(); ++i) {
    kept[i] = t[i] == 0;
    od[i] = kept[i] ? x[i] : bcast_dim(x[i], t[i], [&] {
      return InferError(true, 0, "broadcast_to: Array cannot be broadcasted from " + x.str() + " to " + tuple_str(t) +
                                     " (dimension " + std::to_string(i) + " is " + std::to_string(x[i]) +
                                     ", neither 1 nor " + std::to_string(t[i]) + ")");
    });
  }
  assign_out(out, 0, Shape(od));
  fill_kept_dims(in, *out, kept);
}

// ---- broadcast_like ---------------------------------------------------------------------------

/// MXNet BroadcastLikeShape. Without lhs_axes and rhs_axes: the rhs's shape (same rank, each lhs dim
/// 1 or equal). With both: for each pair, lhs dim lhs_axes[k] (which must be 1) becomes rhs dim
/// rhs_axes[k].
void broadcast_like_infer_shape(const Attrs& a, std::vector<Shape>* in, std::vector<Shape>* out) {
  const Shape& l = (*in)[0];
  const Shape& r = (*in)[1];
  if (!l.rank_known() || !r.rank_known()) return;
  const int nl = l.ndim(), nr = r.ndim();
  if (!a.has("lhs_axes") || !a.has("rhs_axes")) {
    if (nl != nr)
      throw InferError(true, 0, "broadcast_like: Operand of shape " + l.str() + " cannot be broadcasted to " + r.str() +
                                    " (without lhs_axes and rhs_axes both arrays need the same rank)");
    std::vector<int64_t> od(nl);
    for (int i = 0; i < nl; ++i) {
      if (r[i] < 0) {
        od[i] = l[i] >= 0 && l[i] != 1 ? l[i] : -1;  // 1 would broadcast to the unknown rhs dim
        continue;
      }
      od[i] = bcast_dim(l[i], r[i], [&] {
        return InferError(true, 0, "broadcast_like: Array cannot be broadcasted from " + l.str() + " to " + r.str() +
                                       " (dimension " + std::to_string(i) + ")");
      });
    }
    assign_out(out, 0, Shape(od));
    return;
  }
  const std::vector<int64_t>& la = a.t("lhs_axes");
  const std::vector<int64_t>& ra = a.t("rhs_axes");
  if (la.size() != ra.size())
    throw InferError(true, 0, "broadcast_like: Input_axis and other_axis size does not match (lhs_axes=" + tuple_str(la) +
                                  ", rhs_axes=" + tuple_str(ra) + ")");
  if (la.empty()) throw InferError(true, 0, "broadcast_like: Empty axes tuple is not allowed (lhs_axes=())");
  std::vector<int64_t> od = l.d;
  for (size_t k = 0; k < la.size(); ++k) {
    const int64_t from = la[k] < 0 ? la[k] + nl : la[k];
    if (from < 0 || from >= nl)
      throw InferError(true, 0, "broadcast_like: Invalid dimension specified in lhs_axes: " + std::to_string(la[k]) +
                                    " (lhs shape " + l.str() + ")");
    const int64_t to = ra[k] < 0 ? ra[k] + nr : ra[k];
    if (to < 0 || to >= nr)
      throw InferError(true, 1, "broadcast_like: Invalid dimension specified in rhs_axes: " + std::to_string(ra[k]) +
                                    " (rhs shape " + r.str() + ")");
    if (l[from] >= 0 && l[from] != 1)
      throw InferError(true, 0, "broadcast_like: Input axis " + std::to_string(la[k]) + " at dimension " +
                                    std::to_string(k) + " cannot be broadcasted to " + std::to_string(r[to]) +
                                    ": lhs dim " + std::to_string(l[from]) + " must be 1 (lhs shape " + l.str() + ")");
    od[from] = r[to];
  }
  assign_out(out, 0, Shape(od));
}

/// The output has the lhs's dtype; the rhs only lends its shape (any dtype).
void lhs_type_only(const Attrs& a, std::vector<DType>* in, std::vector<DType>* out) {
  std::vector<DType> lhs = {(*in)[0]};
  infer_same_type(a, &lhs, out);
  (*in)[0] = lhs[0];
}

// ---- broadcast_axis ---------------------------------------------------------------------------

/// MXNet BroadcastAxesShape: axis[k] (negative: from the end) has size 1 and becomes size[k]; an
/// axis named twice must still be 1 the second time.
void broadcast_axis_infer_shape(const Attrs& a, std::vector<Shape>* in, std::vector<Shape>* out) {
  const std::vector<int64_t>& axes = a.t("axis");
  const std::vector<int64_t>& sizes = a.t("size");
  if (axes.size() != sizes.size())
    throw InferError(true, 0, "broadcast_axis: axis=" + tuple_str(axes) + " and size=" + tuple_str(sizes) +
                                  " must have the same length");
  for (int64_t v : sizes)
    if (v < 0) throw InferError(true, 0, "broadcast_axis: size=" + tuple_str(sizes) + " has a negative size");
  const Shape& x = (*in)[0];
  if (!x.rank_known()) return;
  const int nd = x.ndim();
  std::vector<int64_t> od = x.d;
  std::vector<bool> kept(nd, true);
  Shape x_ones = x;
  for (size_t k = 0; k < axes.size(); ++k) {
    const int64_t ax = axes[k] < 0 ? axes[k] + nd : axes[k];
    if (ax < 0 || ax >= nd)
      throw InferError(true, 0, "broadcast_axis: Invalid broadcast axis: " + std::to_string(axes[k]) + " for input shape " +
                                    x.str());
    if (od[ax] >= 0 && od[ax] != 1)
      throw InferError(true, 0, "broadcast_axis: Broadcasting axis must have size 1: axis " + std::to_string(axes[k]) +
                                    " of input shape " + x.str() + (kept[ax] ? std::string() : " (named twice)"));
    od[ax] = sizes[k];
    kept[ax] = false;
    x_ones[ax] = 1;
  }
  assign_in(in, 0, x_ones);
  assign_out(out, 0, Shape(od));
  fill_kept_dims(in, *out, kept);
}

// ---- kernels ----------------------------------------------------------------------------------

/// y = x broadcast (same rank, each x dim 1 or y's). x: [x dims], y: [y dims].
void broadcast_forward(const OpCtx&, const Attrs& a, const std::vector<TBlob>& in, const std::vector<OpReq>& req,
                       const std::vector<TBlob>& out) {
  const TBlob& x = in[0];   // [d_0, .., d_k], d_i in {1, n_i}
  const TBlob& y = out[0];  // [n_0, .., n_k]
  const std::string op = a.op ? a.op->name : "broadcast";
  if (req[0] == OpReq::kNullOp || y.size() == 0) return;
  KILN_CHECK(x.dtype == y.dtype, op + ": input and output must share a dtype");
  KILN_CHECK(x.shape.ndim() == y.shape.ndim(), op + ": input " + x.shape.str() + " and output " + y.shape.str() +
                                                   " differ in rank");
  const simd::BcastPlan p = simd::make_bcast_plan(y.shape, {x.shape});
  auto run = [&](auto zero) {
    using T = decltype(zero);
    const T* none = nullptr;
    simd::bcast_apply<1>(p, req[0], y.dptr<T>(), x.dptr<T>(), none, none, [](T v) { return v; });
  };
  if (req[0] == OpReq::kAddTo) {
    float_switch(y.dtype, run);
    return;
  }
  switch (dtype_size(y.dtype)) {
    case 1: run(uint8_t{}); break;
    case 2: run(uint16_t{}); break;
    case 4: run(uint32_t{}); break;
    case 8: run(uint64_t{}); break;
    default: throw KilnError(op + ": unsupported dtype " + dtype_name(y.dtype));
  }
}

/// _broadcast_backward: dx = dy summed over the axes where x has 1 and y more (or nothing).
/// in: dy [y dims]; out: dx [x dims] (same rank).
void broadcast_backward(const OpCtx&, const Attrs&, const std::vector<TBlob>& in, const std::vector<OpReq>& req,
                        const std::vector<TBlob>& out) {
  const TBlob& dy = in[0];   // [n_0, .., n_k]
  const TBlob& dx = out[0];  // [d_0, .., d_k], d_i in {1, n_i}
  if (req[0] == OpReq::kNullOp || dx.size() == 0) return;
  KILN_CHECK(dx.shape.ndim() == dy.shape.ndim(), "_broadcast_backward: gradient " + dy.shape.str() + " and input " +
                                                     dx.shape.str() + " differ in rank");
  const simd::ReducePlan p = simd::make_reduce_plan(dy.shape, dx.shape);
  float_switch(dx.dtype, [&](auto zero) {
    using T = decltype(zero);
    simd::reduce_apply(p, simd::SumReducer<T>(), dy.dptr<T>(), req[0], dx.dptr<T>());
  });
}

std::vector<NodeEntry> broadcast_grad(const NodePtr& fwd, const std::vector<NodeEntry>& ograds) {
  return make_backward("_broadcast_backward", fwd, {ograds[0]});
}

/// dlhs = the reduced gradient, drhs = zeros (MXNet).
std::vector<NodeEntry> broadcast_like_grad(const NodePtr& fwd, const std::vector<NodeEntry>& ograds) {
  std::vector<NodeEntry> g = make_backward("_broadcast_backward", fwd, {ograds[0]});
  g.push_back(zeros_like(fwd->inputs[1], fwd->name + "_rhs_backward"));
  return g;
}

}  // namespace

void register_shape_broadcast_ops(OpRegistry& r) {
  {
    OpDef d;
    d.name = "broadcast_to";
    d.mxnet_unnamed_inputs = true;  // MXNet's monitor: input0
    d.description = "Broadcasts the input array to a new shape.";
    d.params = {param("shape", ParamType::kShape, "()",
                      "The shape of the desired array. We can set the dim to zero if it's same as the original. E.g "
                      "`A = broadcast_to(B, shape=(10, 0, 0))` has the same meaning as `A = broadcast_to(B, shape=(10, "
                      "3, 4))`.")};
    d.input_names_ = {"data"};
    d.infer_shape = broadcast_to_infer_shape;
    d.cpu = broadcast_forward;
    d.gradient = broadcast_grad;
    r.add(std::move(d));
  }
  {
    OpDef d;
    d.name = "broadcast_like";
    d.description = "Broadcasts lhs to have the same shape as rhs (on all axes, or on lhs_axes from rhs_axes).";
    d.params = {param("lhs_axes", ParamType::kShape, "None", "Axes to perform broadcast on in the first input array"),
                param("rhs_axes", ParamType::kShape, "None", "Axes to copy from the second input array")};
    d.input_names_ = {"lhs", "rhs"};
    d.infer_shape = broadcast_like_infer_shape;
    d.infer_type = lhs_type_only;
    d.cpu = broadcast_forward;
    d.gradient = broadcast_like_grad;
    d.ignore_inputs = [](const Attrs&) { return std::vector<int>{1}; };  // rhs: its shape only
    r.add(std::move(d));
  }
  {
    OpDef d;
    d.name = "broadcast_axis";
    d.mxnet_unnamed_inputs = true;  // MXNet's monitor: input0
    d.aliases = {"broadcast_axes"};
    d.description = "Broadcasts the input array over particular axes.";
    d.params = {param("axis", ParamType::kShape, "()", "The axes to perform the broadcasting."),
                param("size", ParamType::kShape, "()", "Target sizes of the broadcasting axes.")};
    d.input_names_ = {"data"};
    d.infer_shape = broadcast_axis_infer_shape;
    d.cpu = broadcast_forward;
    d.gradient = broadcast_grad;
    r.add(std::move(d));
  }
  {
    // Inputs: dy; output: dx (the forward input's shape, copied from the forward node). The
    // attributes are the forward node's (broadcast_to, broadcast_like or broadcast_axis).
    OpDef d;
    d.name = "_broadcast_backward";
    d.description = "Backward of broadcast_to, broadcast_like and broadcast_axis: dy summed over the broadcast axes.";
    d.input_names_ = {"ograd"};
    d.output_names_ = {"data_grad"};
    d.is_backward = true;
    d.non_differentiable = true;
    d.cpu = broadcast_backward;
    r.add(std::move(d));
  }
}

}  // namespace kiln
